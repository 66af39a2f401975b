/* logsink.c - the text and JSON sinks, which share one shape: a shared fd,
 * per-step buffers, one locked write(2) per batch of whole lines.  The logs
 * directory sink is in logsink_dir.c.  See logsink.h. */
#include "config.h"

#include "logsink.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* A step's batch is written once it reaches this size.  Large enough that a
 * busy step makes few syscalls, small enough that the live view stays
 * smooth. */
#define BATCH_BYTES (64 * 1024)

void perch_logsink_free(perch_logsink *sink)
{
	if (sink)
		sink->ops->destroy(sink);
}

size_t perch_fmt_u64(char *out, uint64_t v)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	return n;
}

/* The length of the well-formed UTF-8 sequence (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF) that starts at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return len;
}

/* 1 for the bytes a JSON string may hold as they are: ASCII from the space
 * on, but the quote (0x22) and the backslash (0x5c). */
static const unsigned char json_plain[256] = {
	[0x20 ... 0x21] = 1,
	[0x23 ... 0x5b] = 1,
	[0x5d ... 0x7f] = 1,
};

size_t perch_json_escape(char *out, const char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0, i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (json_plain[c]) {
			/* The common case: a run of plain ASCII. */
			size_t j = i + 1;
			while (j < n && json_plain[s[j]])
				j++;
			memcpy(out + o, s + i, j - i);
			o += j - i;
			i = j;
			continue;
		}
		if (c >= 0x80) {
			size_t k = utf8_len(s + i, n - i);
			if (k) {
				memcpy(out + o, s + i, k);
				o += k;
				i += k;
			} else {
				memcpy(out + o, "\\ufffd", 6);
				o += 6;
				i++;
			}
			continue;
		}
		out[o++] = '\\';
		switch (c) {
		case '"': out[o++] = '"'; break;
		case '\\': out[o++] = '\\'; break;
		case '\n': out[o++] = 'n'; break;
		case '\r': out[o++] = 'r'; break;
		case '\t': out[o++] = 't'; break;
		case '\b': out[o++] = 'b'; break;
		case '\f': out[o++] = 'f'; break;
		default:
			memcpy(out + o, "u00", 3);
			out[o + 3] = hex[c >> 4];
			out[o + 4] = hex[c & 15];
			o += 5;
		}
		i++;
	}
	return o;
}

/* ---- text and JSON ---- */

typedef struct fd_sink {
	perch_logsink base;
	int fd;
	bool json;
	/* Serialises batches so that lines never interleave. */
	pthread_mutex_t lock;
} fd_sink;

typedef struct fd_step {
	fd_sink *sink;
	perch_buf out;
	/* Text: "[<name>:L"; JSON: {"step":"<name>","uuid":"<uuid>","line": */
	char *prefix;
	size_t prefix_len;
	int err; /* errno of the first failed write, then lines are dropped */
} fd_step;

static void *fd_attach(perch_logsink *base, const char *name, const char *uuid, char **err)
{
	fd_sink *sink = (fd_sink *)base;
	fd_step *st = perch_xcalloc(1, sizeof *st);
	(void)err;
	st->sink = sink;
	perch_buf pre = {0};
	if (sink->json) {
		size_t nl = strlen(name), ul = strlen(uuid);
		perch_buf_reserve(&pre, 6 * (nl + ul) + 64);
		perch_buf_puts(&pre, "{\"step\":\"");
		pre.len += perch_json_escape(pre.data + pre.len, name, nl);
		perch_buf_puts(&pre, "\",\"uuid\":\"");
		pre.len += perch_json_escape(pre.data + pre.len, uuid, ul);
		perch_buf_puts(&pre, "\",\"line\":");
	} else {
		perch_buf_printf(&pre, "[%s:L", name);
	}
	st->prefix_len = pre.len;
	st->prefix = perch_buf_steal(&pre);
	perch_buf_reserve(&st->out, BATCH_BYTES + 4096);
	return st;
}

static int fd_flush(void *step, char **err)
{
	fd_step *st = step;
	if (st->err == 0 && st->out.len > 0) {
		pthread_mutex_lock(&st->sink->lock);
		if (perch_write_all(st->sink->fd, st->out.data, st->out.len) < 0)
			st->err = errno ? errno : EIO;
		pthread_mutex_unlock(&st->sink->lock);
	}
	st->out.len = 0;
	if (st->err) {
		*err = perch_xasprintf("%s log output (fd %d): %s", st->sink->json ? "JSON" : "text",
				       st->sink->fd, strerror(st->err));
		return -1;
	}
	return 0;
}

static void fd_write(void *step, const perch_log_line *l)
{
	fd_step *st = step;
	if (st->err)
		return;
	int64_t ms = l->elapsed_ms > 0 ? l->elapsed_ms : 0;
	if (st->sink->json) {
		perch_buf_reserve(&st->out, st->prefix_len + 6 * l->len + 100);
		char *p = st->out.data + st->out.len;
		memcpy(p, st->prefix, st->prefix_len);
		p += st->prefix_len;
		p += perch_fmt_u64(p, l->number);
		memcpy(p, ",\"time\":", 8);
		p += 8;
		p += perch_fmt_u64(p, (uint64_t)ms / 1000);
		memcpy(p, ",\"time_ms\":", 11);
		p += 11;
		p += perch_fmt_u64(p, (uint64_t)ms);
		memcpy(p, ",\"data\":\"", 9);
		p += 9;
		p += perch_json_escape(p, l->data, l->len);
		memcpy(p, "\"}\n", 3);
		p += 3;
		st->out.len = (size_t)(p - st->out.data);
	} else {
		perch_buf_reserve(&st->out, st->prefix_len + l->len + 50);
		char *p = st->out.data + st->out.len;
		memcpy(p, st->prefix, st->prefix_len);
		p += st->prefix_len;
		p += perch_fmt_u64(p, l->number);
		*p++ = ':';
		p += perch_fmt_u64(p, (uint64_t)ms / 1000);
		memcpy(p, "s] ", 3);
		p += 3;
		if (l->len)
			memcpy(p, l->data, l->len);
		p += l->len;
		*p++ = '\n';
		st->out.len = (size_t)(p - st->out.data);
	}
	if (st->out.len >= BATCH_BYTES) {
		char *e = NULL;
		if (fd_flush(st, &e) < 0)
			free(e); /* remembered in st->err; reported by flush/detach */
	}
}

static int fd_detach(void *step, char **err)
{
	fd_step *st = step;
	int rc = fd_flush(st, err);
	perch_buf_free(&st->out);
	free(st->prefix);
	free(st);
	return rc;
}

static void fd_destroy(perch_logsink *base)
{
	fd_sink *sink = (fd_sink *)base;
	pthread_mutex_destroy(&sink->lock);
	free(sink);
}

static const perch_logsink_ops fd_ops = {
	.attach = fd_attach,
	.write = fd_write,
	.flush = fd_flush,
	.detach = fd_detach,
	.destroy = fd_destroy,
};

static perch_logsink *fd_sink_new(int fd, bool json)
{
	fd_sink *sink = perch_xcalloc(1, sizeof *sink);
	sink->base.ops = &fd_ops;
	sink->fd = fd;
	sink->json = json;
	pthread_mutex_init(&sink->lock, NULL);
	return &sink->base;
}

perch_logsink *perch_logsink_text_new(int fd)
{
	return fd_sink_new(fd, false);
}

perch_logsink *perch_logsink_json_new(int fd)
{
	return fd_sink_new(fd, true);
}
