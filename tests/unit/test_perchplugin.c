/*
 * test_perchplugin.c - plugins/common, the convenience library the shipped
 * plugins share: buffers, formatting, shell quoting and trace lines, mkdir
 * -p, atomic writes, rm -rf that stays put, writing into a pipe whose
 * reader stalls, stops or goes away, and the context's cancel descriptor.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "perchplugin.h"
#include "plugintest.h"
#include "util.h"

/* ---- buffers and formatting ---- */

static void test_buf(void **unused)
{
	pp_buf b = {0};
	char *s;

	/* Nothing added: an empty string, not NULL. */
	s = pp_buf_steal(&b);
	assert_string_equal(s, "");
	free(s);

	pp_buf_puts(&b, "a");
	pp_buf_add(&b, "bcdef", 2);
	pp_buf_printf(&b, "-%d-%s", 42, "x");
	for (int i = 0; i < 100; i++)
		pp_buf_add(&b, "0123456789", 10);
	assert_int_equal(b.len, 8 + 1000);
	assert_false(b.oom);
	assert_int_equal(b.data[b.len], '\0');
	s = pp_buf_steal(&b);
	assert_true(strncmp(s, "abc-42-x0123", 12) == 0);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(s);

	/* A latched failure: appends are ignored, steal gives NULL. */
	pp_buf_puts(&b, "kept?");
	b.oom = true;
	pp_buf_puts(&b, "ignored");
	assert_int_equal(b.len, 5);
	assert_null(pp_buf_steal(&b));
	assert_null(b.data);
	assert_false(b.oom);

	pp_buf_puts(&b, "x");
	pp_buf_free(&b);
	assert_null(b.data);
}

static void test_format_and_paths(void **unused)
{
	char *s = pp_format("%s=%d", "n", 7);
	assert_string_equal(s, "n=7");
	free(s);
	s = pp_path_join("/a/b", "c");
	assert_string_equal(s, "/a/b/c");
	free(s);
	s = pp_path_join("/a/b/", "c");
	assert_string_equal(s, "/a/b/c");
	free(s);
	s = pp_path_join("/", "c");
	assert_string_equal(s, "/c");
	free(s);
}

/* ---- shell text ---- */

static char *quoted(const char *s)
{
	pp_buf b = {0};
	pp_shell_quote(&b, s);
	return pp_buf_steal(&b);
}

static void test_shell(void **unused)
{
	const char *cases[][2] = {
		{"", "''"},
		{"go", "go"},
		{"a-b_c.d/e:f,g@h%i+j=k", "a-b_c.d/e:f,g@h%i+j=k"},
		{"two words", "'two words'"},
		{"echo ${PATH}", "'echo ${PATH}'"},
		{"it's", "'it'\"'\"'s'"},
		{"a\nb", "'a\nb'"},
		{"$HOME `x` \\", "'$HOME `x` \\'"},
	};
	pp_buf b = {0};
	char *s;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		s = quoted(cases[i][0]);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
	pp_script_command(&b, "echo hi");
	pp_script_command(&b, "printf 'a\\nb'");
	s = pp_buf_steal(&b);
	assert_string_equal(s, "printf '%s\\n' '+ echo hi'\n"
			       "echo hi\n"
			       "printf '%s\\n' '+ printf '\"'\"'a\\nb'\"'\"''\n"
			       "printf 'a\\nb'\n");
	free(s);
}

/* ---- the file system ---- */

static char *slurp(const char *path)
{
	size_t len = 0;
	char *err = NULL;
	char *data = perch_read_file(path, &len, &err);
	if (data == NULL)
		fail_msg("%s", err);
	return data;
}

static int count_entries(const char *dir)
{
	char *cmd = perch_xasprintf("ls -A '%s' | wc -l", dir);
	FILE *p = popen(cmd, "r");
	int n = -1;

	free(cmd);
	assert_non_null(p);
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

static void test_files(void **unused)
{
	char *dir = plugintest_tmpdir("pp");
	char *deep = perch_xasprintf("%s/a/b/c", dir);
	char *adir = perch_xasprintf("%s/a", dir);
	char *file = perch_xasprintf("%s/a/rec", dir);
	char *link = perch_xasprintf("%s/a/b/out", dir);
	char *outside = plugintest_tmpdir("pp-outside");
	char *kept = perch_xasprintf("%s/kept", outside);
	char why[256];
	struct stat sb;
	char *text;

	/* mkdir -p, again is fine, a file in the way is not. */
	assert_int_equal(pp_mkdirs(deep, 0700), 0);
	assert_int_equal(pp_mkdirs(deep, 0700), 0);
	assert_int_equal(stat(deep, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));

	/* Whole-file writes replace atomically and leave no temporary. */
	assert_int_equal(pp_write_file(file, "one", 3, 0640, false, why,
				       sizeof why),
			 0);
	assert_int_equal(pp_write_file(file, "two\n", 4, 0600, true, why,
				       sizeof why),
			 0);
	text = slurp(file);
	assert_string_equal(text, "two\n");
	free(text);
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(count_entries(adir), 2); /* b and rec */
	assert_int_equal(pp_mkdirs(file, 0700), -1);
	assert_int_equal(errno, ENOTDIR);
	/* A failure says what and where. */
	assert_int_equal(pp_write_file("/nonexistent-perch/x", "x", 1, 0600,
				       false, why, sizeof why),
			 -1);
	assert_int_equal(errno, ENOENT);
	assert_non_null(strstr(why, "creating /nonexistent-perch/.x."));

	/* rm -rf: read-only folders are opened up, links are not followed. */
	assert_int_equal(pp_write_file(kept, "x", 1, 0600, false, NULL, 0), 0);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(chmod(deep, 0500), 0);
	assert_int_equal(pp_remove_tree(dir, why, sizeof why), 0);
	assert_int_equal(lstat(dir, &sb), -1);
	assert_int_equal(stat(kept, &sb), 0);
	/* Missing is fine. */
	assert_int_equal(pp_remove_tree(dir, why, sizeof why), 0);

	free(deep);
	free(adir);
	free(file);
	free(link);
	free(kept);
	free(dir);
	plugintest_rm_tree(outside);
}

/* ---- writing into the host's pipe ---- */

typedef struct writer {
	int fd, stop_fd;
	const char *data;
	size_t len;
	int rc, err;
} writer;

static void *write_main(void *arg)
{
	writer *w = arg;
	w->rc = pp_write_pipe(w->fd, w->stop_fd, w->data, w->len);
	w->err = errno;
	return NULL;
}

static void start_writer(writer *w, pthread_t *t, int fd, int stop_fd,
			 const char *data, size_t len)
{
	*w = (writer){fd, stop_fd, data, len, 0, 0};
	assert_int_equal(pp_thread_start(t, NULL, write_main, w), 0);
}

static void test_pipe(void **unused)
{
	const size_t big = 4u << 20; /* far more than a pipe holds */
	char *data = malloc(big);
	char *got;
	int p[2], stop;
	uint64_t one = 1;
	pthread_t t;
	writer w;
	size_t n = 0;
	sigset_t pending;

	assert_non_null(data);
	for (size_t i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);

	/* Everything arrives, however slowly the reader reads. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	start_writer(&w, &t, p[1], -1, data, big);
	got = malloc(big);
	assert_non_null(got);
	while (n < big) {
		ssize_t r = read(p[0], got + n, big - n < 1000 ? big - n : 1000);
		assert_true(r > 0);
		n += (size_t)r;
	}
	pthread_join(t, NULL);
	assert_int_equal(w.rc, 0);
	assert_memory_equal(got, data, big);
	free(got);
	close(p[0]);
	close(p[1]);

	/* A stalled reader and a stop: ECANCELED. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	stop = eventfd(0, EFD_CLOEXEC);
	assert_true(stop >= 0);
	start_writer(&w, &t, p[1], stop, data, big);
	assert_int_equal(write(stop, &one, sizeof one), sizeof one);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, -1);
	assert_int_equal(w.err, ECANCELED);
	close(stop);

	/* The reader gone: EPIPE, and no SIGPIPE left for anyone. */
	close(p[0]);
	start_writer(&w, &t, p[1], -1, data, big);
	pthread_join(t, NULL);
	assert_int_equal(w.rc, -1);
	assert_int_equal(w.err, EPIPE);
	close(p[1]);
	sigpending(&pending);
	assert_false(sigismember(&pending, SIGPIPE));
	free(data);
}

/* ---- the context ---- */

static void test_cancel_fd(void **unused)
{
	testhost *th = testhost_new();
	const perch_host *host = testhost_table(th);
	perch_ctx *ctx = testhost_ctx(th);
	int fd = pp_cancel_fd(host, ctx);

	assert_true(fd >= 0);
	assert_int_equal(fd, perch_ctx_cancel_fd(ctx));
	assert_int_equal(pp_cancel_fd(host, NULL), -1);
	testhost_free(th);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf),
		cmocka_unit_test(test_format_and_paths),
		cmocka_unit_test(test_shell),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_pipe),
		cmocka_unit_test(test_cancel_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
