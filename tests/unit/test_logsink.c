/* test_logsink.c - the text, JSON and logs-dir sinks (host/logsink*.c),
 * fed through real log streams. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <json.h>

#include "logpipe.h"
#include "util.h"

/* ---- helpers ---- */

static char *make_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	char *path = perch_xasprintf("%s/perch-logsink-XXXXXX", t && *t ? t : "/tmp");
	assert_non_null(mkdtemp(path));
	return path;
}

static void rm_rf(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) < 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		assert_non_null(d);
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char *sub = perch_xasprintf("%s/%s", path, e->d_name);
			rm_rf(sub);
			free(sub);
		}
		closedir(d);
		assert_int_equal(rmdir(path), 0);
	} else {
		assert_int_equal(unlink(path), 0);
	}
}

/* A temporary file, open for writing; its path in *path (malloc'd). */
static int tmpfile_fd(char **path)
{
	const char *t = getenv("TMPDIR");
	*path = perch_xasprintf("%s/perch-logsink-XXXXXX", t && *t ? t : "/tmp");
	int fd = mkstemp(*path);
	assert_true(fd >= 0);
	return fd;
}

static char *slurp(const char *path, size_t *len)
{
	char *err = NULL;
	char *s = perch_read_file(path, len, &err);
	if (s == NULL)
		fail_msg("%s", err);
	return s;
}

/* Runs one step through the given sinks: feeds the chunks (each at its
 * time), then finishes at end_ms.  The step starts at t=0. */
typedef struct chunk {
	const char *data;
	size_t len;
	int64_t ms;
} chunk;

static void run_step(perch_logsink *const *sinks, size_t n_sinks, const char *name,
		     const char *uuid, const perch_masker *m, const chunk *chunks, size_t n_chunks,
		     int64_t end_ms)
{
	char *err = NULL;
	perch_logstream *s = perch_logstream_new(m, name, uuid, 0, sinks, n_sinks, &err);
	if (s == NULL)
		fail_msg("%s", err);
	for (size_t i = 0; i < n_chunks; i++)
		perch_logstream_feed(s, chunks[i].data, chunks[i].len, chunks[i].ms);
	if (perch_logstream_finish(s, end_ms, &err) < 0)
		fail_msg("%s", err);
	perch_logstream_free(s);
}

#define C(s, t) {(s), sizeof(s) - 1, (t)}

/* Parses one JSON line strictly (valid UTF-8 required). */
static json_object *parse_json(const char *s, size_t n)
{
	json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	json_object *o = json_tokener_parse_ex(tok, s, (int)n);
	if (o == NULL)
		fail_msg("invalid JSON (%s): %.*s",
			 json_tokener_error_desc(json_tokener_get_error(tok)), (int)n, s);
	json_tokener_free(tok);
	return o;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v;
	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

/* ---- text ---- */

static void test_text_format(void **state)
{
	(void)state;
	char *path;
	int fd = tmpfile_fd(&path);
	perch_logsink *text = perch_logsink_text_new(fd);
	const perch_secret sec[] = {{"token", "tok-12345"}};
	perch_masker *m = perch_masker_new(sec, 1);
	const chunk ch[] = {C("hello\nwor", 10), C("ld tok-12345\r\n\nlast", 2999),
			    C("", 3000)};
	run_step(&text, 1, "build", "u1", m, ch, 3, 61500);
	perch_logsink_free(text);
	perch_masker_free(m);
	close(fd);
	size_t len;
	char *out = slurp(path, &len);
	assert_string_equal(out, "[build:L0:0s] hello\n"
				 "[build:L1:2s] world ********\r\n"
				 "[build:L2:2s] \n"
				 "[build:L3:61s] last\n");
	free(out);
	unlink(path);
	free(path);
}

/* ---- JSON ---- */

static void test_json_format(void **state)
{
	(void)state;
	char *path;
	int fd = tmpfile_fd(&path);
	perch_logsink *js = perch_logsink_json_new(fd);
	const chunk ch[] = {C("plain \"quoted\" \\ \t\x01\n", 1234),
			    C("bad \xff\xc3( ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6 \xed\xa0\x80\n",
			      5678),
			    C("\x00\n", 5678)};
	run_step(&js, 1, "na\"me\n", "uu-1", NULL, ch, 3, 6000);
	perch_logsink_free(js);
	close(fd);
	size_t len;
	char *out = slurp(path, &len);
	const char *want[] = {
		"plain \"quoted\" \\ \t\x01",
		/* Each byte of a broken sequence is one U+FFFD; valid UTF-8
		 * (é, €, a bird) passes; a UTF-16 surrogate is invalid. */
		"bad \xef\xbf\xbd\xef\xbf\xbd( ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xa6 "
		"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
	};
	char *line = out;
	for (int i = 0; i < 3; i++) {
		char *nl = memchr(line, '\n', len - (size_t)(line - out));
		assert_non_null(nl);
		json_object *o = parse_json(line, (size_t)(nl - line));
		assert_string_equal(jstr(o, "step"), "na\"me\n");
		assert_string_equal(jstr(o, "uuid"), "uu-1");
		assert_int_equal(jint(o, "line"), i);
		if (i < 2)
			assert_string_equal(jstr(o, "data"), want[i]);
		else
			assert_string_equal(jstr(o, "data"), ""); /* json-c stops at NUL */
		assert_int_equal(jint(o, "time"), i == 0 ? 1 : 5);
		assert_int_equal(jint(o, "time_ms"), i == 0 ? 1234 : 5678);
		json_object_put(o);
		line = nl + 1;
	}
	assert_int_equal(line - out, (ptrdiff_t)len);
	/* The NUL byte is escaped, not written raw. */
	assert_non_null(strstr(out, "\"data\":\"\\u0000\""));
	free(out);
	unlink(path);
	free(path);
}

static void test_json_escape_every_byte(void **state)
{
	(void)state;
	char in[3], out[6 * 3 + 3];
	/* Every single byte, and every byte after a lead byte, escapes to a
	 * valid JSON string. */
	for (int a = 0; a < 256; a++) {
		for (int b = 0; b < 256; b += (a < 0xc0 ? 255 : 1)) {
			in[0] = (char)a;
			in[1] = (char)b;
			in[2] = (char)0xbf;
			out[0] = '"';
			size_t n = perch_json_escape(out + 1, in, 3);
			assert_true(n <= 18);
			out[n + 1] = '"';
			json_object *o = parse_json(out, n + 2);
			json_object_put(o);
		}
	}
}

/* ---- logs dir ---- */

static void test_dir_naming(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	char *dir = perch_xasprintf("%s/new/logs", tmp); /* created with its parent */
	char *err = NULL;
	perch_logsink *d = perch_logsink_dir_new(dir, &err);
	if (d == NULL)
		fail_msg("%s", err);
	const chunk ch[] = {C("one\ntwo", 100)};
	run_step(&d, 1, "build", "u-1", NULL, ch, 1, 200);
	const chunk ch2[] = {C("second build\n", 100)};
	run_step(&d, 1, "build", "u-2", NULL, ch2, 1, 200);
	run_step(&d, 1, "build", "u-2", NULL, ch2, 1, 200); /* same uuid again */
	run_step(&d, 1, "a/b\tc\x7f", "u-3", NULL, NULL, 0, 0);
	run_step(&d, 1, "a_b_c_", "u-4", NULL, NULL, 0, 0);
	run_step(&d, 1, "", "u-5", NULL, NULL, 0, 0);
	perch_logsink_free(d);

	const char *const files[] = {
		"build.log", "build-u-2.log", "build-u-2-2.log", "a_b_c_.log", "a_b_c_-u-4.log",
		"step.log",
	};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char *p = perch_xasprintf("%s/%s", dir, files[i]);
		struct stat sb;
		if (stat(p, &sb) < 0)
			fail_msg("%s: %s", p, strerror(errno));
		mode_t um = umask(0);
		umask(um);
		assert_int_equal(sb.st_mode & 0777, 0644 & ~um);
		if (i == 0) {
			size_t len;
			char *s = slurp(p, &len);
			assert_string_equal(s, "one\ntwo\n");
			free(s);
		} else if (i == 1) {
			size_t len;
			char *s = slurp(p, &len);
			assert_string_equal(s, "second build\n");
			free(s);
		}
		free(p);
	}
	free(dir);
	rm_rf(tmp);
	free(tmp);
}

static void test_dir_stem(void **state)
{
	(void)state;
	char *s = perch_logsink_file_stem("x/y\n\x01z");
	assert_string_equal(s, "x_y__z");
	free(s);
	s = perch_logsink_file_stem("");
	assert_string_equal(s, "step");
	free(s);
	char longname[400];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	/* A multi-byte character across the cut is dropped whole. */
	memcpy(longname + 199, "\xc3\xa9", 2);
	s = perch_logsink_file_stem(longname);
	assert_int_equal(strlen(s), 199);
	free(s);
}

static void test_dir_errors(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	char *file = perch_xasprintf("%s/plain", tmp);
	int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	close(fd);
	char *err = NULL;

	/* Not a directory. */
	assert_null(perch_logsink_dir_new(file, &err));
	char *want = perch_xasprintf("logs dir %s: not a directory", file);
	assert_string_equal(err, want);
	free(want);
	free(err);

	/* A file where a parent should be. */
	char *below = perch_xasprintf("%s/sub/dir", file);
	err = NULL;
	assert_null(perch_logsink_dir_new(below, &err));
	assert_non_null(err);
	assert_non_null(strstr(err, below));
	assert_null(strchr(err, '\n'));
	free(err);
	free(below);

	err = NULL;
	assert_null(perch_logsink_dir_new("", &err));
	assert_string_equal(err, "logs dir: empty path");
	free(err);

	/* An existing directory is fine, and trailing slashes too. */
	char *slash = perch_xasprintf("%s//", tmp);
	err = NULL;
	perch_logsink *d = perch_logsink_dir_new(slash, &err);
	assert_non_null(d);
	perch_logsink_free(d);
	free(slash);

	free(file);
	rm_rf(tmp);
	free(tmp);
}

/* ---- invalid UTF-8 through all three sinks ---- */

static void test_invalid_utf8_all_sinks(void **state)
{
	(void)state;
	char *tmp = make_tmpdir();
	char *tpath, *jpath;
	int tfd = tmpfile_fd(&tpath), jfd = tmpfile_fd(&jpath);
	char *err = NULL;
	perch_logsink *sinks[] = {perch_logsink_text_new(tfd), perch_logsink_json_new(jfd),
				  perch_logsink_dir_new(tmp, &err)};
	assert_non_null(sinks[2]);
	const char raw[] = "\xc0\xaf \xfe\xff \xe2\x82 \xf4\x90\x80\x80 \x80";
	const chunk ch[] = {{raw, sizeof raw - 1, 0}, C("\n", 0)};
	run_step(sinks, 3, "st\xffp", "u", NULL, ch, 2, 0);
	for (int i = 0; i < 3; i++)
		perch_logsink_free(sinks[i]);
	close(tfd);
	close(jfd);

	size_t len;
	char *t = slurp(tpath, &len);
	char *want = perch_xasprintf("[st\xffp:L0:0s] %s\n", raw);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(t, want, len); /* the text sink passes bytes through */
	free(want);
	free(t);

	char *j = slurp(jpath, &len);
	json_object *o = parse_json(j, len - 1);
	const char *data = jstr(o, "data");
	/* 2 + 2 + 2 + 4 + 1 invalid bytes, 4 spaces. */
	assert_int_equal(strlen(data), 11 * 3 + 4);
	assert_string_equal(jstr(o, "step"), "st\xef\xbf\xbdp");
	json_object_put(o);
	free(j);

	char *dpath = perch_xasprintf("%s/st\xffp.log", tmp);
	char *d = slurp(dpath, &len);
	assert_int_equal(len, sizeof raw);
	assert_memory_equal(d, raw, sizeof raw - 1);
	assert_int_equal(d[len - 1], '\n');
	free(d);
	free(dpath);

	unlink(tpath);
	unlink(jpath);
	free(tpath);
	free(jpath);
	rm_rf(tmp);
	free(tmp);
}

/* ---- concurrency ---- */

#define THREADS 8
#define THREAD_LINES 20000

typedef struct step_arg {
	perch_logsink *sink;
	int id;
} step_arg;

static void *step_thread(void *p)
{
	step_arg *a = p;
	char name[16], uuid[16];
	snprintf(name, sizeof name, "step%d", a->id);
	snprintf(uuid, sizeof uuid, "u%d", a->id);
	char *err = NULL;
	perch_logstream *s = perch_logstream_new(NULL, name, uuid, 0, &a->sink, 1, &err);
	if (s == NULL)
		return err;
	char xs[97];
	memset(xs, 'x', sizeof xs);
	perch_buf b = {0};
	for (int i = 0; i < THREAD_LINES; i++) {
		perch_buf_printf(&b, "step %d says %d %.*s\n", a->id, i, i % 97, xs);
		if (b.len > 1500 || i == THREAD_LINES - 1) {
			/* Time moves so that periodic flushes happen too. */
			perch_logstream_feed(s, b.data, b.len, i);
			b.len = 0;
		}
	}
	perch_buf_free(&b);
	if (perch_logstream_finish(s, THREAD_LINES, &err) < 0) {
		perch_logstream_free(s);
		return err;
	}
	perch_logstream_free(s);
	return NULL;
}

static void test_concurrent_text(void **state)
{
	(void)state;
	char *path;
	int fd = tmpfile_fd(&path);
	perch_logsink *text = perch_logsink_text_new(fd);
	pthread_t th[THREADS];
	step_arg args[THREADS];
	for (int i = 0; i < THREADS; i++) {
		args[i].sink = text;
		args[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, step_thread, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		if (ret)
			fail_msg("%s", (char *)ret);
	}
	perch_logsink_free(text);
	close(fd);

	size_t len;
	char *out = slurp(path, &len);
	int next[THREADS] = {0};
	char *line = out;
	size_t total = 0;
	while (line < out + len) {
		char *nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		int id, num, secs, id2, num2, used = 0;
		if (sscanf(line, "[step%d:L%d:%ds] step %d says %d %n", &id, &num, &secs, &id2,
			   &num2, &used) != 5)
			fail_msg("garbled line: %s", line);
		assert_true(id >= 0 && id < THREADS);
		assert_int_equal(id2, id);
		assert_int_equal(num, next[id]);
		assert_int_equal(num2, num);
		assert_int_equal(strlen(line + used), (size_t)(num % 97));
		next[id]++;
		total++;
		line = nl + 1;
	}
	assert_int_equal(total, THREADS * THREAD_LINES);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(next[i], THREAD_LINES);
	free(out);
	unlink(path);
	free(path);
}

/* ---- write errors ---- */

static void test_write_error(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	close(p[0]); /* nobody reads: EPIPE */
	perch_logsink *text = perch_logsink_text_new(p[1]);
	char *err = NULL;
	perch_logstream *s = perch_logstream_new(NULL, "x", "u", 0, &text, 1, &err);
	assert_non_null(s);
	perch_logstream_feed(s, "a\nb\n", 4, 0);
	err = NULL;
	assert_int_equal(perch_logstream_finish(s, 0, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, strerror(EPIPE)));
	free(err);
	perch_logstream_free(s);
	perch_logsink_free(text);
	close(p[1]);
}

int main(void)
{
	/* test_write_error wants EPIPE, not death by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_format),
		cmocka_unit_test(test_json_format),
		cmocka_unit_test(test_json_escape_every_byte),
		cmocka_unit_test(test_dir_naming),
		cmocka_unit_test(test_dir_stem),
		cmocka_unit_test(test_dir_errors),
		cmocka_unit_test(test_invalid_utf8_all_sinks),
		cmocka_unit_test(test_concurrent_text),
		cmocka_unit_test(test_write_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
