/*
 * fuzz_logpipe.c - the log pipeline (host/logpipe.c, host/mask.c and the
 * text and JSON sinks of host/logsink.c) on arbitrary bytes in arbitrary
 * chunks, with secrets.
 *
 * The input is a little program (see run_ops): up to four secrets (any
 * bytes but NUL and '*', newlines included), then operations that feed
 * bytes from the input, feed long runs of one byte (to reach the 1 MiB
 * line cut cheaply), feed text dense with secrets, flush, or advance the
 * clock.  Every fed byte is also kept, and at the end the lines the stream
 * produced are compared with a model computed from all of them at once:
 *
 *  - lines are the input split on '\n' (the last one kept without it), each
 *    cut into pieces of PERCH_LOG_LINE_MAX bytes: so no line is longer than
 *    1 MiB before masking, and no byte is lost, added or reordered;
 *  - each piece is masked leftmost-longest over its whole line, a secret
 *    that straddles a cut shows "********" in both pieces (logpipe.h), so
 *    the byte count is conserved modulo masking, exactly;
 *  - no secret part longer than 3 bytes survives anywhere (checked
 *    separately from the model, with the pattern rule of mask.h);
 *  - lines are numbered from 0 without gaps and timed by the feed that
 *    completed them;
 *  - the text sink wrote exactly "[name:L<n>:<s>s] <line>\n" per line, and
 *    the JSON sink valid JSON whose fields decode to the line (invalid
 *    UTF-8 as U+FFFD, byte by byte).
 * Optionally a sink fails its flushes (the error must come back from
 * finish) or refuses to attach (the others must be detached again).
 */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json.h>

#include "fuzz.h"
#include "logpipe.h"
#include "util.h"

#define LINE_MAX_ PERCH_LOG_LINE_MAX
/* Bytes fed per input at most: a few over-long lines' worth. */
#define MAX_FEED (3 * LINE_MAX_)
#define MAX_SECRETS 4
#define STEP_NAME "fz"
#define STEP_UUID "fz-uuid"
#define START_MS 1000

/* ---- reading the input --------------------------------------------------- */

typedef struct reader {
	const uint8_t *p;
	size_t n;
} reader;

static uint8_t take(reader *r)
{
	if (r->n == 0)
		return 0;
	r->n--;
	return *r->p++;
}

/* Up to want bytes at *out; returns how many. */
static size_t take_bytes(reader *r, size_t want, const uint8_t **out)
{
	size_t n = want < r->n ? want : r->n;
	*out = r->p;
	r->p += n;
	r->n -= n;
	return n;
}

/* ---- a sink that checks what it gets -------------------------------------- */

typedef struct line_rec {
	size_t off, len; /* in check_sink.data */
	int64_t elapsed_ms;
} line_rec;

typedef struct check_sink {
	perch_logsink base;
	bool refuse_attach;
	int fail_flush_from; /* flushes from this one on fail; 0: never */
	int attached, detached, flushes;
	char first_err[32]; /* the first error this sink reported */
	const int64_t *now_ms; /* the harness's clock, for the timing check */
	size_t max_len;
	perch_buf data;
	line_rec *lines;
	size_t n_lines, cap_lines;
} check_sink;

static void *cs_attach(perch_logsink *b, const char *name, const char *uuid, char **err)
{
	check_sink *c = (check_sink *)b;
	FUZZ_CHECK(strcmp(name, STEP_NAME) == 0 && strcmp(uuid, STEP_UUID) == 0,
		   "attach got %s %s", name, uuid);
	FUZZ_CHECK(c->attached == 0, "attached twice");
	if (c->refuse_attach) {
		*err = perch_xstrdup("fz: attach refused");
		return NULL;
	}
	c->attached++;
	return c;
}

static void cs_write(void *step, const perch_log_line *l)
{
	check_sink *c = step;
	FUZZ_CHECK(c->attached == 1 && c->detached == 0, "write outside attach/detach");
	FUZZ_CHECK(strcmp(l->step_name, STEP_NAME) == 0 && strcmp(l->step_uuid, STEP_UUID) == 0,
		   "line names %s %s", l->step_name, l->step_uuid);
	FUZZ_CHECK(l->number == c->n_lines, "line number %llu, expected %zu",
		   (unsigned long long)l->number, c->n_lines);
	FUZZ_CHECK(l->elapsed_ms == *c->now_ms - START_MS,
		   "line %zu timed %lld ms, completed at %lld ms", c->n_lines,
		   (long long)l->elapsed_ms, (long long)(*c->now_ms - START_MS));
	FUZZ_CHECK(l->len <= c->max_len, "line %zu is %zu bytes long (limit %zu)", c->n_lines,
		   l->len, c->max_len);
	FUZZ_CHECK(l->len == 0 || l->data != NULL, "line %zu: NULL data", c->n_lines);
	if (c->n_lines == c->cap_lines) {
		c->cap_lines = c->cap_lines ? 2 * c->cap_lines : 64;
		c->lines = perch_xrealloc(c->lines, c->cap_lines * sizeof *c->lines);
	}
	c->lines[c->n_lines++] = (line_rec){c->data.len, l->len, l->elapsed_ms};
	perch_buf_append(&c->data, l->data, l->len);
}

static int cs_flush(void *step, char **err)
{
	check_sink *c = step;
	FUZZ_CHECK(c->attached == 1 && c->detached == 0, "flush outside attach/detach");
	c->flushes++;
	if (c->fail_flush_from && c->flushes >= c->fail_flush_from) {
		*err = perch_xasprintf("fz: flush %d failed", c->flushes);
		if (c->first_err[0] == '\0')
			snprintf(c->first_err, sizeof c->first_err, "%s", *err);
		return -1;
	}
	return 0;
}

static int cs_detach(void *step, char **err)
{
	check_sink *c = step;
	FUZZ_CHECK(c->attached == 1 && c->detached == 0, "detach twice");
	c->detached++;
	/* Detaching flushes: it fails like a flush would. */
	if (c->fail_flush_from && c->flushes + 1 >= c->fail_flush_from) {
		*err = perch_xstrdup("fz: detach failed");
		if (c->first_err[0] == '\0')
			snprintf(c->first_err, sizeof c->first_err, "%s", *err);
		return -1;
	}
	return 0;
}

static void cs_destroy(perch_logsink *b)
{
	(void)b;
}

static const perch_logsink_ops cs_ops = {
	.attach = cs_attach,
	.write = cs_write,
	.flush = cs_flush,
	.detach = cs_detach,
	.destroy = cs_destroy,
};

/* ---- the model ------------------------------------------------------------- */

/* The patterns of mask.h, derived here independently: trim ASCII
 * whitespace, split on '\n', trim each part, keep parts over 3 bytes. */
typedef struct pat {
	const char *s;
	size_t len;
} pat;

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

static size_t patterns_of(const char *v, pat *out, size_t max)
{
	size_t n = 0;
	const char *end = v + strlen(v);
	while (v < end) {
		const char *nl = memchr(v, '\n', (size_t)(end - v));
		const char *a = v, *b = nl ? nl : end;
		while (a < b && is_space(*a))
			a++;
		while (b > a && is_space(b[-1]))
			b--;
		if (b - a > 3 && n < max)
			out[n++] = (pat){a, (size_t)(b - a)};
		v = nl ? nl + 1 : end;
	}
	return n;
}

/* The expected masked pieces of the line L (no '\n' in it), appended to
 * exp as (offset, length) records.  Matches come from the masker over the
 * whole line; a piece shows "********" for every match it overlaps. */
static void model_line(const perch_masker *m, const char *L, size_t len, perch_buf *exp,
		       line_rec **recs, size_t *n, size_t *cap)
{
	size_t *mpos = NULL, *mend = NULL, nm = 0, capm = 0;
	perch_mask_scan sc;
	perch_mask_scan_init(&sc, m);
	perch_mask_scan_reset(&sc, L, len);
	size_t at = 0, pos, mlen;
	while (at < len && perch_mask_scan_next(&sc, at, &pos, &mlen)) {
		FUZZ_CHECK(pos >= at && mlen > 3 && pos + mlen <= len, "scan gave %zu+%zu from %zu",
			   pos, mlen, at);
		if (nm == capm) {
			capm = capm ? 2 * capm : 16;
			mpos = perch_xrealloc(mpos, capm * sizeof *mpos);
			mend = perch_xrealloc(mend, capm * sizeof *mend);
		}
		mpos[nm] = pos;
		mend[nm++] = pos + mlen;
		at = pos + mlen;
	}
	perch_mask_scan_free(&sc);

	size_t k = 0; /* first match that may overlap the piece */
	size_t c0 = 0;
	do {
		size_t c1 = len - c0 > LINE_MAX_ ? c0 + LINE_MAX_ : len;
		size_t start = exp->len;
		at = c0;
		while (k < nm && mpos[k] < c1) {
			if (mend[k] <= c0) {
				k++;
				continue;
			}
			if (mpos[k] > at)
				perch_buf_append(exp, L + at, mpos[k] - at);
			perch_buf_append(exp, PERCH_MASK_TEXT, PERCH_MASK_TEXT_LEN);
			at = mend[k] < c1 ? mend[k] : c1;
			if (mend[k] > c1)
				break; /* it goes on into the next piece */
			k++;
		}
		perch_buf_append(exp, L + at, c1 - at);
		if (*n == *cap) {
			*cap = *cap ? 2 * *cap : 64;
			*recs = perch_xrealloc(*recs, *cap * sizeof **recs);
		}
		(*recs)[(*n)++] = (line_rec){start, exp->len - start, 0};
		c0 = c1;
	} while (c0 < len);
	free(mpos);
	free(mend);
}

/* ---- the JSON sink's text ---------------------------------------------------- */

/* The well-formed UTF-8 sequence at s: its length, or 0.  Decodes and checks
 * the code point's range, unlike logsink.c's table of second bytes. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;
	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* What a JSON reader must get back for the line: bad bytes as U+FFFD. */
static void json_expect(const char *d, size_t n, perch_buf *out)
{
	const unsigned char *s = (const unsigned char *)d;
	out->len = 0;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(s + i, n - i);
		if (k == 0) {
			perch_buf_append(out, "\xef\xbf\xbd", 3);
			i++;
		} else {
			perch_buf_append(out, s + i, k);
			i += k;
		}
	}
}

static char *read_memfd(int fd, size_t *len)
{
	perch_buf b = {0};
	FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0, "lseek: %s", strerror(errno));
	char tmp[65536];
	ssize_t got;
	while ((got = read(fd, tmp, sizeof tmp)) > 0)
		perch_buf_append(&b, tmp, (size_t)got);
	FUZZ_CHECK(got == 0, "read: %s", strerror(errno));
	*len = b.len;
	perch_buf_putc(&b, '\0');
	return perch_buf_steal(&b);
}

static void check_text_sink(int fd, const check_sink *c)
{
	size_t len;
	char *got = read_memfd(fd, &len);
	perch_buf exp = {0};
	perch_buf_reserve(&exp, 64); /* data never NULL, even when empty */
	for (size_t i = 0; i < c->n_lines; i++) {
		perch_buf_printf(&exp, "[" STEP_NAME ":L%zu:%llds] ", i,
				 (long long)(c->lines[i].elapsed_ms / 1000));
		perch_buf_append(&exp, c->data.data + c->lines[i].off, c->lines[i].len);
		perch_buf_putc(&exp, '\n');
	}
	FUZZ_CHECK(len == exp.len && memcmp(got, exp.data, len) == 0,
		   "text sink wrote %zu bytes, expected %zu", len, exp.len);
	perch_buf_free(&exp);
	free(got);
}

static int64_t get_int(json_object *o, const char *key)
{
	json_object *v;
	FUZZ_CHECK(json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int),
		   "JSON line without integer %s", key);
	return json_object_get_int64(v);
}

/* Decoding every line with json-c is the slowest check by far: a run of
 * newlines makes a million lines.  Past this many, lines are only counted. */
#define JSON_DECODE_MAX 20000

static void check_json_sink(int fd, const check_sink *c)
{
	size_t len;
	char *got = read_memfd(fd, &len);
	perch_buf exp = {0};
	perch_buf_reserve(&exp, 64);
	const char *p = got, *end = got + len;
	json_tokener *tok = json_tokener_new_ex(8);
	for (size_t i = 0; i < c->n_lines; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		FUZZ_CHECK(nl != NULL, "JSON sink: %zu lines, expected %zu", i, c->n_lines);
		if (i >= JSON_DECODE_MAX) {
			p = nl + 1;
			continue;
		}
		json_tokener_reset(tok);
		json_object *o = json_tokener_parse_ex(tok, p, (int)(nl - p));
		FUZZ_CHECK(o != NULL && json_tokener_get_parse_end(tok) == (size_t)(nl - p),
			   "JSON sink line %zu is not one JSON value: %s", i,
			   json_tokener_error_desc(json_tokener_get_error(tok)));
		json_object *v;
		FUZZ_CHECK(json_object_object_get_ex(o, "step", &v) &&
				   strcmp(json_object_get_string(v), STEP_NAME) == 0,
			   "JSON step");
		FUZZ_CHECK(json_object_object_get_ex(o, "uuid", &v) &&
				   strcmp(json_object_get_string(v), STEP_UUID) == 0,
			   "JSON uuid");
		FUZZ_CHECK(get_int(o, "line") == (int64_t)i, "JSON line number");
		FUZZ_CHECK(get_int(o, "time_ms") == c->lines[i].elapsed_ms, "JSON time_ms");
		FUZZ_CHECK(get_int(o, "time") == c->lines[i].elapsed_ms / 1000, "JSON time");
		FUZZ_CHECK(json_object_object_get_ex(o, "data", &v) &&
				   json_object_is_type(v, json_type_string),
			   "JSON data");
		json_expect(c->data.data + c->lines[i].off, c->lines[i].len, &exp);
		size_t dl = (size_t)json_object_get_string_len(v);
		FUZZ_CHECK(dl == exp.len && memcmp(json_object_get_string(v), exp.data, dl) == 0,
			   "JSON line %zu data decodes to %zu bytes, expected %zu", i, dl, exp.len);
		json_object_put(o);
		p = nl + 1;
	}
	FUZZ_CHECK(p == end, "JSON sink wrote %zu bytes after the last line", (size_t)(end - p));
	json_tokener_free(tok);
	perch_buf_free(&exp);
	free(got);
}

/* ---- the run ------------------------------------------------------------------ */

typedef struct run {
	perch_logstream *s;
	perch_buf fed; /* every byte fed, in order */
	int64_t now;
	perch_masker *masker;
	pat pats[MAX_SECRETS * 8];
	size_t n_pats;
	char *secrets[MAX_SECRETS];
	size_t n_secrets;
} run;

static void feed(run *r, const void *p, size_t n)
{
	if (r->fed.len + n > MAX_FEED)
		n = MAX_FEED - r->fed.len;
	perch_buf_append(&r->fed, p, n);
	perch_logstream_feed(r->s, p, n, r->now);
}

static void run_ops(run *r, reader *in)
{
	char *big = NULL;
	bool huge = false;
	while (in->n > 0 && r->fed.len < MAX_FEED) {
		uint8_t op = take(in);
		r->now += (op >> 4) * 37;
		switch (op & 7) {
		case 0: case 1: case 2: case 3: { /* bytes from the input */
			size_t n = take(in);
			if (op & 8)
				n += (size_t)take(in) << 8;
			const uint8_t *p;
			n = take_bytes(in, n, &p);
			feed(r, p, n);
			break;
		}
		case 4: { /* a long run of one byte, in chunks */
			/* Runs past the 1 MiB cut are slow to check: rare, and
			 * one per input. */
			uint8_t ch = take(in), b = take(in);
			size_t base = b & 1 ? 4096 : 300;
			if ((b & 15) < 2 && !huge) {
				base = (b & 15) == 0 ? LINE_MAX_ : 2 * LINE_MAX_;
				huge = true;
			}
			int delta = (int8_t)take(in);
			size_t len = (size_t)((long)base + delta);
			uint8_t split = take(in);
			size_t chunk = !split		  ? len
				       : base >= LINE_MAX_ ? (size_t)split * 4096 + (split & 7)
							   : split;
			big = perch_xrealloc(big, len ? len : 1);
			memset(big, ch, len);
			for (size_t off = 0; off < len; off += chunk)
				feed(r, big + off, len - off < chunk ? len - off : chunk);
			break;
		}
		case 5: /* flush */
			perch_logstream_flush(r->s, r->now);
			break;
		case 6: { /* text dense with secrets */
			if (r->n_secrets == 0)
				break;
			const char *sec = r->secrets[take(in) % r->n_secrets];
			size_t reps = take(in) % 32, sl = strlen(sec);
			uint8_t sep = take(in), cut = take(in);
			perch_buf b = {0};
			perch_buf_reserve(&b, 64);
			for (size_t i = 0; i < reps; i++) {
				perch_buf_append(&b, sec, sl);
				if (sep & 1)
					perch_buf_putc(&b, (char)(sep >> 1));
			}
			/* In two chunks, the cut anywhere, so secrets straddle reads. */
			size_t at = b.len ? cut % (b.len + 1) : 0;
			feed(r, b.data, at);
			feed(r, b.data + at, b.len - at);
			perch_buf_free(&b);
			break;
		}
		default: /* an empty read */
			feed(r, "", 0);
			break;
		}
	}
	free(big);
}

static void check_against_model(run *r, const check_sink *c)
{
	perch_buf exp = {0};
	perch_buf_reserve(&exp, 64);
	line_rec *recs = NULL;
	size_t n = 0, cap = 0;
	const char *p = r->fed.data, *end = p + r->fed.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		model_line(r->masker, p, (size_t)(le - p), &exp, &recs, &n, &cap);
		p = nl ? nl + 1 : end;
	}
	FUZZ_CHECK(c->n_lines == n, "%zu lines out, the model has %zu", c->n_lines, n);
	for (size_t i = 0; i < n; i++) {
		const char *got = c->data.data + c->lines[i].off;
		const char *want = exp.data + recs[i].off;
		size_t gl = c->lines[i].len, wl = recs[i].len;
		if (gl == wl && memcmp(got, want, gl) == 0)
			continue;
		size_t d = 0;
		while (d < gl && d < wl && got[d] == want[d])
			d++;
		FUZZ_FAIL("line %zu: %zu bytes out, the model has %zu; first difference at %zu",
			  i, gl, wl, d);
	}
	free(recs);
	perch_buf_free(&exp);

	/* Independently of the model: no secret part survives. */
	for (size_t i = 0; i < c->n_lines; i++)
		for (size_t k = 0; k < r->n_pats; k++)
			FUZZ_CHECK(c->lines[i].len < r->pats[k].len ||
					   memmem(c->data.data + c->lines[i].off, c->lines[i].len,
						  r->pats[k].s, r->pats[k].len) == NULL,
				   "line %zu shows a secret (%zu bytes)", i, r->pats[k].len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	reader in = {data, size};
	run r = {.now = START_MS};
	perch_buf_reserve(&r.fed, 64); /* buffers are never NULL, even empty */

	/* Secrets: a count, then length-prefixed values. */
	perch_secret secs[MAX_SECRETS];
	r.n_secrets = take(&in) % (MAX_SECRETS + 1);
	for (size_t i = 0; i < r.n_secrets; i++) {
		const uint8_t *p;
		size_t n = take_bytes(&in, take(&in) % 24, &p);
		char *v = perch_xstrndup((const char *)p, n);
		/* No NUL (C strings) and no '*' (the mask text must not be able
		 * to complete a secret, or "no secret survives" proves nothing). */
		for (size_t k = 0; k < n; k++)
			if (v[k] == '\0' || v[k] == '*')
				v[k] = (char)('a' + k % 26);
		r.secrets[i] = v;
		secs[i] = (perch_secret){"S", v};
		r.n_pats += patterns_of(v, r.pats + r.n_pats, 8);
	}
	r.masker = perch_masker_new(secs, r.n_secrets);

	/* Which sinks: bit 0 text, bit 1 JSON, bits 2-3 a failing flush,
	 * bit 4 a second sink that refuses to attach. */
	uint8_t which = take(&in);
	check_sink c = {.base.ops = &cs_ops, .now_ms = &r.now};
	perch_buf_reserve(&c.data, 64);
	/* Masking turns 4 bytes into 8 at worst, plus a straddled secret's
	 * share at either end of a piece. */
	c.max_len = r.n_pats ? 2 * LINE_MAX_ + 2 * PERCH_MASK_TEXT_LEN : LINE_MAX_;
	c.fail_flush_from = (which >> 2) & 3;
	check_sink refuser = {.base.ops = &cs_ops, .refuse_attach = true, .now_ms = &r.now};
	int text_fd = -1, json_fd = -1;
	perch_logsink *sinks[4];
	size_t n_sinks = 0;
	sinks[n_sinks++] = &c.base;
	if (which & 1) {
		text_fd = memfd_create("fz-text", MFD_CLOEXEC);
		FUZZ_CHECK(text_fd >= 0, "memfd_create: %s", strerror(errno));
		sinks[n_sinks++] = perch_logsink_text_new(text_fd);
	}
	if (which & 2) {
		json_fd = memfd_create("fz-json", MFD_CLOEXEC);
		FUZZ_CHECK(json_fd >= 0, "memfd_create: %s", strerror(errno));
		sinks[n_sinks++] = perch_logsink_json_new(json_fd);
	}
	if (which & 16)
		sinks[n_sinks++] = &refuser.base;

	char *err = NULL;
	r.s = perch_logstream_new(r.masker, STEP_NAME, STEP_UUID, START_MS, sinks, n_sinks, &err);
	if (which & 16) {
		FUZZ_CHECK(r.s == NULL && err != NULL, "a refused attach was not reported");
		FUZZ_CHECK(c.attached == c.detached, "a refused attach left sinks attached");
		free(err);
	} else {
		FUZZ_CHECK(r.s != NULL, "logstream_new failed: %s", err);
		run_ops(&r, &in);
		r.now += 1;
		int rc = perch_logstream_finish(r.s, r.now, &err);
		FUZZ_CHECK(c.detached == 1, "finish did not detach the sink");
		if (c.first_err[0]) {
			/* The first error seen, and only that one. */
			FUZZ_CHECK(rc == -1 && err != NULL && strcmp(err, c.first_err) == 0,
				   "sink error \"%s\" came back as rc %d \"%s\"", c.first_err, rc,
				   rc ? err : "");
			free(err);
			err = NULL;
		} else {
			FUZZ_CHECK(rc == 0, "finish failed: %s", err);
		}
		/* Idempotent, and the counters stay. */
		int rc2 = perch_logstream_finish(r.s, r.now + 5, NULL);
		FUZZ_CHECK(rc2 == rc, "second finish gave %d, first %d", rc2, rc);
		FUZZ_CHECK(perch_logstream_lines(r.s) == c.n_lines, "lines() %llu, sink got %zu",
			   (unsigned long long)perch_logstream_lines(r.s), c.n_lines);
		FUZZ_CHECK(perch_logstream_bytes(r.s) == r.fed.len, "bytes() %llu, fed %zu",
			   (unsigned long long)perch_logstream_bytes(r.s), r.fed.len);
		perch_logstream_free(r.s);
		check_against_model(&r, &c);
		if (text_fd >= 0)
			check_text_sink(text_fd, &c);
		if (json_fd >= 0)
			check_json_sink(json_fd, &c);
	}

	for (size_t i = 1; i < n_sinks; i++)
		if (sinks[i] != &refuser.base)
			perch_logsink_free(sinks[i]);
	if (text_fd >= 0)
		close(text_fd);
	if (json_fd >= 0)
		close(json_fd);
	for (size_t i = 0; i < r.n_secrets; i++)
		free(r.secrets[i]);
	perch_masker_free(r.masker);
	perch_buf_free(&r.fed);
	perch_buf_free(&c.data);
	free(c.lines);
	return 0;
}
