/*
 * buf.c - a growable byte buffer and malloc'd formatting.
 *
 * The plugins link nothing of perch, so they cannot use the host's
 * helpers; and unlike the host they must not exit on OOM.  The buffer
 * latches an allocation failure instead of failing each append, so that
 * building a request body, a script or a record is a run of appends and
 * one check at the end.
 */
#define _GNU_SOURCE
#include "perchplugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(pp_buf *b, size_t extra)
{
	size_t want, cap;
	char *p;

	if (b->oom)
		return false;
	if (extra > SIZE_MAX / 2 - b->len) {
		b->oom = true;
		return false;
	}
	want = b->len + extra + 1;
	if (want <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < want)
		cap *= 2;
	p = realloc(b->data, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void pp_buf_add(pp_buf *b, const void *p, size_t n)
{
	if (!reserve(b, n))
		return;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void pp_buf_puts(pp_buf *b, const char *s)
{
	pp_buf_add(b, s, strlen(s));
}

void pp_buf_vprintf(pp_buf *b, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	if (n < 0)
		b->oom = true; /* a format that cannot be written is no result */
	if (n >= 0 && reserve(b, (size_t)n)) {
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, again);
		b->len += (size_t)n;
	}
	va_end(again);
}

void pp_buf_printf(pp_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pp_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *pp_buf_steal(pp_buf *b)
{
	char *s;

	if (b->data == NULL)
		reserve(b, 0);
	if (b->oom) {
		pp_buf_free(b);
		return NULL;
	}
	b->data[b->len] = '\0';
	s = b->data;
	memset(b, 0, sizeof *b);
	return s;
}

void pp_buf_free(pp_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

char *pp_format(const char *fmt, ...)
{
	pp_buf b = {0};
	va_list ap;

	va_start(ap, fmt);
	pp_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return pp_buf_steal(&b);
}

char *pp_path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	return pp_format("%s%s%s", dir, n > 0 && dir[n - 1] == '/' ? "" : "/",
			 name);
}
