/* test_logpipe.c - splitting, numbering, timing and masking of a step's log
 * stream (host/logpipe.c), observed through a capturing sink. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "logpipe.h"
#include "util.h"

#define MIB ((size_t)1024 * 1024)

/* ---- a sink that records what it gets ---- */

typedef struct cap_line {
	uint64_t number;
	int64_t ms;
	char *data;
	size_t len;
	bool in_input; /* data pointed into the buffer given to feed */
} cap_line;

typedef struct cap_sink {
	perch_logsink base;
	cap_line *lines;
	size_t n, cap;
	int attached, detached, flushes;
	bool fail_attach, fail_flush;
	const char *in_lo, *in_hi; /* the buffer currently being fed */
	char name[64], uuid[64];
} cap_sink;

static void *cap_attach(perch_logsink *b, const char *name, const char *uuid, char **err)
{
	cap_sink *c = (cap_sink *)b;
	if (c->fail_attach) {
		*err = perch_xstrdup("cap: refused");
		return NULL;
	}
	snprintf(c->name, sizeof c->name, "%s", name);
	snprintf(c->uuid, sizeof c->uuid, "%s", uuid);
	c->attached++;
	return c;
}

static void cap_write(void *step, const perch_log_line *l)
{
	cap_sink *c = step;
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->lines = perch_xrealloc(c->lines, c->cap * sizeof *c->lines);
	}
	cap_line *cl = &c->lines[c->n++];
	cl->number = l->number;
	cl->ms = l->elapsed_ms;
	cl->len = l->len;
	cl->data = perch_xmalloc(l->len + 1);
	memcpy(cl->data, l->data, l->len);
	cl->data[l->len] = '\0';
	cl->in_input = c->in_lo && l->data >= c->in_lo && l->data + l->len <= c->in_hi;
	assert_string_equal(l->step_name, c->name);
}

static int cap_flush(void *step, char **err)
{
	cap_sink *c = step;
	c->flushes++;
	if (c->fail_flush) {
		*err = perch_xstrdup("cap: disk on fire");
		return -1;
	}
	return 0;
}

static int cap_detach(void *step, char **err)
{
	cap_sink *c = step;
	c->detached++;
	return cap_flush(c, err);
}

static void cap_destroy(perch_logsink *b)
{
	cap_sink *c = (cap_sink *)b;
	for (size_t i = 0; i < c->n; i++)
		free(c->lines[i].data);
	free(c->lines);
	free(c);
}

static const perch_logsink_ops cap_ops = {cap_attach, cap_write, cap_flush, cap_detach,
					  cap_destroy};

static cap_sink *cap_new(void)
{
	cap_sink *c = perch_xcalloc(1, sizeof *c);
	c->base.ops = &cap_ops;
	return c;
}

/* A stream named "build" starting at t=1000 with the given secrets
 * (NULL-terminated list, may be NULL). */
typedef struct fixture {
	cap_sink *cap;
	perch_masker *m;
	perch_logstream *s;
} fixture;

static void fx_open(fixture *fx, const char *const *secrets)
{
	perch_secret sec[16];
	size_t n = 0;
	while (secrets && secrets[n]) {
		sec[n].name = "s";
		sec[n].value = secrets[n];
		n++;
	}
	fx->cap = cap_new();
	fx->m = perch_masker_new(sec, n);
	perch_logsink *sinks[] = {&fx->cap->base};
	char *err = NULL;
	fx->s = perch_logstream_new(fx->m, "build", "uuid-1", 1000, sinks, 1, &err);
	assert_non_null(fx->s);
	assert_null(err);
}

static void fx_feed(fixture *fx, const char *data, size_t n, int64_t now)
{
	fx->cap->in_lo = data;
	fx->cap->in_hi = data + n;
	perch_logstream_feed(fx->s, data, n, now);
	fx->cap->in_lo = fx->cap->in_hi = NULL;
}

static void fx_feeds(fixture *fx, const char *text, int64_t now)
{
	fx_feed(fx, text, strlen(text), now);
}

static void fx_finish(fixture *fx, int64_t now)
{
	char *err = NULL;
	assert_int_equal(perch_logstream_finish(fx->s, now, &err), 0);
	assert_null(err);
	assert_int_equal(fx->cap->detached, 1);
}

static void fx_close(fixture *fx)
{
	perch_logstream_free(fx->s);
	perch_logsink_free(&fx->cap->base);
	perch_masker_free(fx->m);
}

/* Checks that the captured lines are exactly want (NULL-terminated),
 * numbered from 0. */
static void expect_lines(const fixture *fx, const char *const *want)
{
	size_t n = 0;
	while (want[n])
		n++;
	assert_int_equal(fx->cap->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(fx->cap->lines[i].number, i);
		assert_int_equal(fx->cap->lines[i].len, strlen(want[i]));
		assert_memory_equal(fx->cap->lines[i].data, want[i], strlen(want[i]));
	}
	assert_int_equal(perch_logstream_lines(fx->s), n);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- tests ---- */

static void test_basic(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, NULL);
	fx_feeds(&fx, "one\ntwo\nthr", 1000);
	fx_feeds(&fx, "ee\n", 3500);
	fx_finish(&fx, 9000);
	expect_lines(&fx, L("one", "two", "three"));
	/* Timed from the step's start, as of the feed that completed them. */
	assert_int_equal(fx.cap->lines[0].ms, 0);
	assert_int_equal(fx.cap->lines[1].ms, 0);
	assert_int_equal(fx.cap->lines[2].ms, 2500);
	assert_int_equal(perch_logstream_bytes(fx.s), 14);
	assert_string_equal(fx.cap->uuid, "uuid-1");
	fx_close(&fx);
}

static void test_tiny_reads(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, L("s3cr3tvalue"));
	const char *text = "alpha\n\nbeta s3cr3tvalue gamma\r\nlast";
	for (size_t i = 0; text[i]; i++)
		fx_feed(&fx, text + i, 1, 1000 + (int64_t)i);
	fx_finish(&fx, 2000);
	expect_lines(&fx, L("alpha", "", "beta ******** gamma\r", "last"));
	assert_int_equal(fx.cap->lines[0].ms, 5); /* its '\n' was byte 5 */
	assert_int_equal(fx.cap->lines[3].ms, 1000);
	fx_close(&fx);
}

static void test_secret_straddles_reads(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, L("topsecret"));
	fx_feeds(&fx, "a\nvalue=top", 1000);
	fx_feeds(&fx, "sec", 1001);
	fx_feeds(&fx, "ret end\nb topsec", 1002);
	fx_feeds(&fx, "ret\n", 1003);
	fx_finish(&fx, 1004);
	expect_lines(&fx, L("a", "value=******** end", "b ********"));
	fx_close(&fx);
}

static void test_multiline_secret(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, L("first-line\nsecond-line\nxy\n"));
	fx_feeds(&fx, "key:\nfirst-line\nsecond-line\nxy\ndone first-line\n", 1000);
	fx_finish(&fx, 1000);
	expect_lines(&fx, L("key:", "********", "********", "xy", "done ********"));
	fx_close(&fx);
}

static void test_short_secret_not_masked(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, L("abc", " de ", "long-enough"));
	fx_feeds(&fx, "abc de long-enough\n", 1000);
	fx_finish(&fx, 1000);
	expect_lines(&fx, L("abc de ********"));
	fx_close(&fx);
}

static void test_overlapping_secrets(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, L("passw0rd", "w0rd-and-more", "pass"));
	fx_feeds(&fx, "xpassw0rd-and-more\npass w0rd-and-more\n", 1000);
	fx_finish(&fx, 1000);
	/* passw0rd starts leftmost; "-and-more" is left (not a secret). */
	expect_lines(&fx, L("x********-and-more", "******** ********"));
	fx_close(&fx);
}

static void test_lines_not_copied(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, L("hidden-value"));
	fx_feeds(&fx, "plain one\nhas hidden-value\nplain two\npart", 1000);
	fx_feeds(&fx, "ial\nplain three\n", 1000);
	fx_finish(&fx, 1000);
	expect_lines(&fx, L("plain one", "has ********", "plain two", "partial", "plain three"));
	bool want[] = {true, false, true, false, true};
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(fx.cap->lines[i].in_input, want[i]);
	fx_close(&fx);
}

static void test_no_final_newline(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, NULL);
	fx_feeds(&fx, "done", 1000);
	assert_int_equal(fx.cap->n, 0);
	fx_finish(&fx, 1750);
	expect_lines(&fx, L("done"));
	assert_int_equal(fx.cap->lines[0].ms, 750);
	/* Finish is idempotent. */
	assert_int_equal(perch_logstream_finish(fx.s, 5000, NULL), 0);
	assert_int_equal(fx.cap->n, 1);
	fx_close(&fx);
}

static void test_empty_lines_and_stream(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, NULL);
	fx_feeds(&fx, "\n\n", 1000);
	fx_feeds(&fx, "", 1000);
	fx_feeds(&fx, "\nx\n\n", 1000);
	fx_finish(&fx, 1000);
	expect_lines(&fx, L("", "", "", "x", ""));
	fx_close(&fx);

	fx_open(&fx, NULL);
	fx_finish(&fx, 1000);
	assert_int_equal(fx.cap->n, 0);
	fx_close(&fx);
}

static void test_crlf_and_binary(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, NULL);
	const char in[] = "win\r\n\r\n\xff\xfe\x00z\n\xc3(\n";
	fx_feed(&fx, in, sizeof in - 1, 1000);
	fx_finish(&fx, 1000);
	assert_int_equal(fx.cap->n, 4);
	assert_int_equal(fx.cap->lines[0].len, 4);
	assert_memory_equal(fx.cap->lines[0].data, "win\r", 4);
	assert_int_equal(fx.cap->lines[1].len, 1);
	assert_memory_equal(fx.cap->lines[1].data, "\r", 1);
	assert_int_equal(fx.cap->lines[2].len, 4);
	assert_memory_equal(fx.cap->lines[2].data, "\xff\xfe\x00z", 4);
	assert_int_equal(fx.cap->lines[3].len, 2);
	assert_memory_equal(fx.cap->lines[3].data, "\xc3(", 2);
	fx_close(&fx);
}

/* n bytes of a repeating pattern with no '\n'. */
static char *filler(size_t n)
{
	char *b = perch_xmalloc(n);
	for (size_t i = 0; i < n; i++)
		b[i] = (char)('a' + i % 26);
	return b;
}

static void check_piece(const cap_line *l, uint64_t number, const char *src, size_t len)
{
	assert_int_equal(l->number, number);
	assert_int_equal(l->len, len);
	assert_memory_equal(l->data, src, len);
}

static void test_long_line_pieces(void **state)
{
	(void)state;
	char *big = filler(5 * MIB + 1);
	fixture fx;

	/* 5 MiB then '\n', in one feed: five pieces of exactly 1 MiB. */
	fx_open(&fx, NULL);
	fx_feed(&fx, big, 5 * MIB, 1000);
	fx_feeds(&fx, "\nnext\n", 1000);
	fx_finish(&fx, 1000);
	assert_int_equal(fx.cap->n, 6);
	for (size_t i = 0; i < 5; i++)
		check_piece(&fx.cap->lines[i], i, big + i * MIB, MIB);
	check_piece(&fx.cap->lines[5], 5, "next", 4);
	fx_close(&fx);

	/* 5 MiB + 1 without '\n', in odd-sized feeds: 5 x 1 MiB and 1 byte. */
	fx_open(&fx, NULL);
	for (size_t off = 0; off < 5 * MIB + 1;) {
		size_t n = 5 * MIB + 1 - off < 77777 ? 5 * MIB + 1 - off : 77777;
		fx_feed(&fx, big + off, n, 1000);
		off += n;
	}
	fx_finish(&fx, 1000);
	assert_int_equal(fx.cap->n, 6);
	for (size_t i = 0; i < 5; i++)
		check_piece(&fx.cap->lines[i], i, big + i * MIB, MIB);
	check_piece(&fx.cap->lines[5], 5, big + 5 * MIB, 1);
	fx_close(&fx);

	/* Exactly 1 MiB then '\n': one line, no empty piece after it. */
	fx_open(&fx, NULL);
	fx_feed(&fx, big, MIB, 1000);
	fx_feeds(&fx, "\n", 1000);
	fx_finish(&fx, 1000);
	assert_int_equal(fx.cap->n, 1);
	check_piece(&fx.cap->lines[0], 0, big, MIB);
	fx_close(&fx);

	/* 1 MiB + 1 then '\n': two lines. */
	fx_open(&fx, NULL);
	fx_feed(&fx, big, MIB + 1, 1000);
	fx_feeds(&fx, "\n", 1000);
	fx_finish(&fx, 1000);
	assert_int_equal(fx.cap->n, 2);
	check_piece(&fx.cap->lines[1], 1, big + MIB, 1);
	fx_close(&fx);
	free(big);
}

static void test_secret_across_piece_cut(void **state)
{
	(void)state;
	const char *secret = "SECRET-0123456789";
	size_t sl = strlen(secret);
	char *line = filler(2 * MIB + 10);
	/* The secret starts 5 bytes before the first cut. */
	memcpy(line + MIB - 5, secret, sl);
	line[2 * MIB + 9] = '\n';
	fixture fx;
	fx_open(&fx, L(secret));
	/* Feed in pieces that end right after the cut, inside the secret. */
	fx_feed(&fx, line, MIB + 1, 1000);
	fx_feed(&fx, line + MIB + 1, 2 * MIB + 10 - (MIB + 1), 1000);
	fx_finish(&fx, 1000);
	assert_int_equal(fx.cap->n, 3);
	const cap_line *a = &fx.cap->lines[0], *b = &fx.cap->lines[1];
	assert_int_equal(a->len, MIB - 5 + 8);
	assert_memory_equal(a->data, line, MIB - 5);
	assert_memory_equal(a->data + MIB - 5, "********", 8);
	assert_int_equal(b->len, 8 + MIB - (sl - 5));
	assert_memory_equal(b->data, "********", 8);
	assert_memory_equal(b->data + 8, line + MIB - 5 + sl, MIB - (sl - 5));
	assert_int_equal(fx.cap->lines[2].len, 9);
	for (size_t i = 0; i < fx.cap->n; i++)
		assert_null(memmem(fx.cap->lines[i].data, fx.cap->lines[i].len, "SECRET", 6));
	fx_close(&fx);
	free(line);
}

static void test_fifty_thousand_lines(void **state)
{
	(void)state;
	perch_buf in = {0};
	for (int i = 0; i < 50000; i++)
		perch_buf_printf(&in, "%d\n", i);
	fixture fx;
	fx_open(&fx, NULL);
	/* Uneven chunks, like reads from a pipe. */
	for (size_t off = 0; off < in.len;) {
		size_t n = in.len - off < 4093 ? in.len - off : 4093;
		fx_feed(&fx, in.data + off, n, 1000 + (int64_t)off / 1000);
		off += n;
	}
	fx_finish(&fx, 5000);
	assert_int_equal(fx.cap->n, 50000);
	for (size_t i = 0; i < 50000; i++) {
		char want[16];
		snprintf(want, sizeof want, "%zu", i);
		assert_int_equal(fx.cap->lines[i].number, i);
		assert_string_equal(fx.cap->lines[i].data, want);
		if (i)
			assert_true(fx.cap->lines[i].ms >= fx.cap->lines[i - 1].ms);
	}
	assert_int_equal(perch_logstream_bytes(fx.s), in.len);
	fx_close(&fx);
	perch_buf_free(&in);
}

static void test_periodic_flush(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, NULL);
	fx_feeds(&fx, "a\n", 1000);
	fx_feeds(&fx, "b\n", 1100);
	assert_int_equal(fx.cap->flushes, 0);
	fx_feeds(&fx, "c\n", 1250); /* 250 ms after the start */
	assert_int_equal(fx.cap->flushes, 1);
	fx_feeds(&fx, "d\n", 1400);
	assert_int_equal(fx.cap->flushes, 1);
	perch_logstream_flush(fx.s, 1450);
	assert_int_equal(fx.cap->flushes, 2);
	fx_finish(&fx, 1500);
	assert_int_equal(fx.cap->flushes, 3); /* detach flushes */
	fx_close(&fx);
}

static void test_sink_errors(void **state)
{
	(void)state;
	/* A sink that refuses to attach: the stream is not created and the
	 * sinks attached before are detached. */
	cap_sink *ok = cap_new(), *bad = cap_new();
	bad->fail_attach = true;
	perch_logsink *sinks[] = {&ok->base, &bad->base};
	char *err = NULL;
	assert_null(perch_logstream_new(NULL, "s", "u", 0, sinks, 2, &err));
	assert_string_equal(err, "cap: refused");
	free(err);
	assert_int_equal(ok->attached, 1);
	assert_int_equal(ok->detached, 1);

	/* A failing flush is reported by finish, once, with its message. */
	ok->fail_flush = true;
	perch_logstream *s = perch_logstream_new(NULL, "s", "u", 0, sinks, 1, &err);
	assert_non_null(s);
	perch_logstream_feed(s, "x\n", 2, 300);
	err = NULL;
	assert_int_equal(perch_logstream_finish(s, 400, &err), -1);
	assert_string_equal(err, "cap: disk on fire");
	free(err);
	perch_logstream_free(s);
	perch_logsink_free(&ok->base);
	perch_logsink_free(&bad->base);
}

static void test_free_without_finish(void **state)
{
	(void)state;
	cap_sink *c = cap_new();
	perch_logsink *sinks[] = {&c->base};
	char *err = NULL;
	perch_logstream *s = perch_logstream_new(NULL, "s", "u", 0, sinks, 1, &err);
	perch_logstream_feed(s, "partial", 7, 10);
	perch_logstream_free(s);
	assert_int_equal(c->detached, 1);
	assert_int_equal(c->n, 1);
	perch_logsink_free(&c->base);
}

/* ---- pump_fd ---- */

typedef struct writer_arg {
	int fd;
	const char *text;
	size_t chunk;
} writer_arg;

static void *writer(void *p)
{
	writer_arg *w = p;
	size_t n = strlen(w->text);
	for (size_t off = 0; off < n; off += w->chunk) {
		size_t k = n - off < w->chunk ? n - off : w->chunk;
		if (perch_write_all(w->fd, w->text + off, k) < 0)
			break;
	}
	close(w->fd);
	return NULL;
}

static int64_t fake_clock(void *arg)
{
	int64_t *t = arg;
	return (*t)++;
}

static void test_pump_fd(void **state)
{
	(void)state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	perch_buf text = {0};
	for (int i = 0; i < 20000; i++)
		perch_buf_printf(&text, "line %d token=hunter2hunter2\n", i);
	perch_buf_puts(&text, "tail");
	writer_arg w = {p[1], text.data, 333};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, writer, &w), 0);

	fixture fx;
	fx_open(&fx, L("hunter2hunter2"));
	int64_t t = 1000;
	char *err = NULL;
	assert_int_equal(perch_logstream_pump_fd(fx.s, p[0], -1, fake_clock, &t, &err), 0);
	assert_null(err);
	pthread_join(th, NULL);
	close(p[0]);
	fx_finish(&fx, t);
	assert_int_equal(fx.cap->n, 20001);
	for (size_t i = 0; i < 20000; i++) {
		char want[64];
		snprintf(want, sizeof want, "line %zu token=********", i);
		assert_string_equal(fx.cap->lines[i].data, want);
	}
	assert_string_equal(fx.cap->lines[20000].data, "tail");
	fx_close(&fx);
	perch_buf_free(&text);
}

static void test_pump_fd_cancel(void **state)
{
	(void)state;
	/* The writer end stays open (a stray grandchild): only cancellation
	 * ends the pump, and what was written still arrives. */
	int p[2], c[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(pipe(c), 0);
	assert_int_equal(perch_write_all(p[1], "before\nhalf", 11), 0);
	assert_int_equal(perch_write_all(c[1], "x", 1), 0);
	fixture fx;
	fx_open(&fx, NULL);
	char *err = NULL;
	assert_int_equal(perch_logstream_pump_fd(fx.s, p[0], c[0], NULL, NULL, &err), 1);
	assert_null(err);
	fx_finish(&fx, perch_mono_ms());
	expect_lines(&fx, L("before", "half"));
	fx_close(&fx);
	close(p[0]);
	close(p[1]);
	close(c[0]);
	close(c[1]);
}

static void test_pump_fd_error(void **state)
{
	(void)state;
	fixture fx;
	fx_open(&fx, NULL);
	/* A directory polls readable, and read(2) fails with EISDIR. */
	int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	char *err = NULL;
	assert_int_equal(perch_logstream_pump_fd(fx.s, fd, -1, NULL, NULL, &err), -1);
	assert_non_null(err);
	assert_non_null(strstr(err, "build"));
	assert_non_null(strstr(err, strerror(EISDIR)));
	free(err);
	close(fd);
	fx_finish(&fx, 0);
	fx_close(&fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_tiny_reads),
		cmocka_unit_test(test_secret_straddles_reads),
		cmocka_unit_test(test_multiline_secret),
		cmocka_unit_test(test_short_secret_not_masked),
		cmocka_unit_test(test_overlapping_secrets),
		cmocka_unit_test(test_lines_not_copied),
		cmocka_unit_test(test_no_final_newline),
		cmocka_unit_test(test_empty_lines_and_stream),
		cmocka_unit_test(test_crlf_and_binary),
		cmocka_unit_test(test_long_line_pieces),
		cmocka_unit_test(test_secret_across_piece_cut),
		cmocka_unit_test(test_fifty_thousand_lines),
		cmocka_unit_test(test_periodic_flush),
		cmocka_unit_test(test_sink_errors),
		cmocka_unit_test(test_free_without_finish),
		cmocka_unit_test(test_pump_fd),
		cmocka_unit_test(test_pump_fd_cancel),
		cmocka_unit_test(test_pump_fd_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
