/* test_state.c - the daemon's state directory (host/state.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state.h"
#include "util.h"

static char *make_tmp(void)
{
	const char *base = getenv("TMPDIR");
	char *t = perch_xasprintf("%s/perch-state-XXXXXX", base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(t));
	return t;
}

static void rm_rf(const char *path)
{
	char *cmd = perch_xasprintf("rm -rf '%s'", path);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static int setup(void **state)
{
	*state = make_tmp();
	return 0;
}

static int teardown(void **state)
{
	rm_rf(*state);
	free(*state);
	return 0;
}

/* a/b exists. */
static bool exists2(const char *a, const char *b)
{
	char *p = perch_xasprintf("%s/%s", a, b);
	struct stat st;
	bool r = stat(p, &st) == 0;
	free(p);
	return r;
}

static void test_open_creates_and_locks(void **state)
{
	char *dir = perch_xasprintf("%s/deep/state", (char *)*state);
	char *err = NULL;
	perch_store *s = perch_store_open(dir, &err);
	assert_non_null(s);
	assert_true(exists2(dir, "workflows"));
	assert_true(exists2(dir, "plugins"));
	assert_string_equal(perch_store_dir(s), dir);
	/* A second daemon on the same folder is refused, naming the first. */
	perch_store *t = perch_store_open(dir, &err);
	assert_null(t);
	assert_non_null(strstr(err, "in use by another perch daemon"));
	char pid[32];
	snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
	assert_non_null(strstr(err, pid));
	free(err);
	perch_store_close(s);
	/* Closed: free again. */
	s = perch_store_open(dir, &err);
	assert_non_null(s);
	perch_store_close(s);
	free(dir);
}

static void test_create_get_put_list_remove(void **state)
{
	char *err = NULL;
	perch_store *s = perch_store_open(*state, &err);
	assert_non_null(s);
	const char wf[] = "{\"pipeline\":[]}";
	assert_int_equal(perch_store_create(s, "B2", wf, strlen(wf), "{\"state\":\"queued\"}\n", &err), 0);
	assert_int_equal(perch_store_create(s, "A1", wf, strlen(wf), "{}\n", &err), 0);
	/* An id is created once. */
	assert_int_equal(perch_store_create(s, "A1", wf, strlen(wf), "{}\n", &err), -1);
	assert_non_null(strstr(err, "exists already"));
	free(err);
	err = NULL;
	/* Ids that are not plain names are refused. */
	assert_int_equal(perch_store_create(s, "../x", wf, strlen(wf), "{}\n", &err), -1);
	free(err);
	err = NULL;
	assert_int_equal(perch_store_create(s, ".hidden", wf, strlen(wf), "{}\n", &err), -1);
	free(err);
	err = NULL;

	size_t len = 0;
	char *got = perch_store_get(s, "B2", "workflow.json", &len, &err);
	assert_non_null(got);
	assert_int_equal(len, strlen(wf));
	assert_string_equal(got, wf);
	free(got);
	/* workflow.json holds secrets: 0600. */
	char *p = perch_xasprintf("%s/workflows/B2/workflow.json", (char *)*state);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	free(p);

	assert_int_equal(perch_store_put(s, "B2", "meta.json", "{\"state\":\"running\"}\n", &err), 0);
	assert_int_equal(perch_store_put(s, "B2", "steps/0.json", "{\"done\":true}\n", &err), 0);
	got = perch_store_get(s, "B2", "meta.json", NULL, &err);
	assert_string_equal(got, "{\"state\":\"running\"}\n");
	free(got);
	got = perch_store_get(s, "B2", "steps/0.json", NULL, &err);
	assert_string_equal(got, "{\"done\":true}\n");
	free(got);
	/* No temporary file stays behind. */
	assert_false(exists2(*state, "workflows/B2/meta.json.tmp"));
	/* Missing: NULL, with or without an error wanted. */
	assert_null(perch_store_get(s, "B2", "result.json", NULL, NULL));
	assert_null(perch_store_get(s, "B2", "result.json", NULL, &err));
	assert_non_null(err);
	free(err);
	err = NULL;

	size_t n = 0;
	char **ids = perch_store_list(s, &n);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "A1");
	assert_string_equal(ids[1], "B2");
	perch_store_free_list(ids, n);

	assert_int_equal(perch_store_remove(s, "A1", &err), 0);
	assert_int_equal(perch_store_remove(s, "A1", &err), 0); /* missing is fine */
	assert_false(exists2(*state, "workflows/A1"));
	ids = perch_store_list(s, &n);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "B2");
	perch_store_free_list(ids, n);
	perch_store_close(s);
}

static void test_leftovers_are_swept(void **state)
{
	char *err = NULL;
	perch_store *s = perch_store_open(*state, &err);
	assert_non_null(s);
	perch_store_close(s);
	/* What a crash in the middle of create or remove leaves. */
	char *a = perch_xasprintf("%s/workflows/.tmp-X", (char *)*state);
	char *b = perch_xasprintf("%s/workflows/.trash-Y/steps", (char *)*state);
	assert_int_equal(mkdir(a, 0700), 0);
	char *b0 = perch_xasprintf("%s/workflows/.trash-Y", (char *)*state);
	assert_int_equal(mkdir(b0, 0700), 0);
	assert_int_equal(mkdir(b, 0700), 0);
	s = perch_store_open(*state, &err);
	assert_non_null(s);
	struct stat st;
	assert_int_not_equal(stat(a, &st), 0);
	assert_int_not_equal(stat(b0, &st), 0);
	size_t n = 5;
	char **ids = perch_store_list(s, &n);
	assert_int_equal(n, 0);
	perch_store_free_list(ids, n);
	perch_store_close(s);
	free(a);
	free(b);
	free(b0);
}

static void test_logs_cut_partial_lines(void **state)
{
	char *err = NULL;
	perch_store *s = perch_store_open(*state, &err);
	assert_non_null(s);
	assert_int_equal(perch_store_create(s, "W", "{}", 2, "{}\n", &err), 0);
	assert_int_equal(perch_store_log_lines(s, "W", 0), 0); /* none yet */
	uint64_t lines = 99;
	int fd = perch_store_open_log(s, "W", 0, &lines, &err);
	assert_true(fd >= 0);
	assert_int_equal(lines, 0);
	const char data[] = "0 one\n12 two\n345 thr";
	assert_int_equal(write(fd, data, sizeof data - 1), (ssize_t)(sizeof data - 1));
	close(fd);
	/* The cut-off third line is not counted, and is removed. */
	assert_int_equal(perch_store_log_lines(s, "W", 0), 2);
	char *path = perch_store_log_path(s, "W", 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, (off_t)strlen("0 one\n12 two\n"));
	/* Appending continues after the last whole line. */
	fd = perch_store_open_log(s, "W", 0, &lines, &err);
	assert_true(fd >= 0);
	assert_int_equal(lines, 2);
	assert_int_equal(write(fd, "999 three\n", 10), 10);
	close(fd);
	assert_int_equal(perch_store_log_lines(s, "W", 0), 3);
	free(path);
	perch_store_close(s);
}

static void test_parse_line(void **state)
{
	perch_store_line l;
	assert_true(perch_store_parse_line("1234 hello world", 16, &l));
	assert_int_equal(l.elapsed_ms, 1234);
	assert_int_equal(l.len, 11);
	assert_memory_equal(l.data, "hello world", 11);
	assert_true(perch_store_parse_line("0 ", 2, &l));
	assert_int_equal(l.len, 0);
	/* Bytes are bytes: a NUL inside the data is fine. */
	assert_true(perch_store_parse_line("5 a\0b", 5, &l));
	assert_int_equal(l.len, 3);
	assert_false(perch_store_parse_line("x hello", 7, &l));
	assert_false(perch_store_parse_line("12", 2, &l));
	assert_false(perch_store_parse_line("", 0, &l));
	(void)state;
}

static void test_write_atomic_errors(void **state)
{
	char *err = NULL;
	char *dir = perch_xasprintf("%s/missing", (char *)*state);
	assert_int_equal(perch_store_write_atomic(dir, "x", "a", 1, 0600, &err), -1);
	assert_non_null(strstr(err, dir));
	free(err);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_and_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_get_put_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftovers_are_swept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_logs_cut_partial_lines, setup, teardown),
		cmocka_unit_test(test_parse_line),
		cmocka_unit_test_setup_teardown(test_write_atomic_errors, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
