/*
 * util.c - growable buffers and string vectors for the local backend.
 *
 * The plugin links nothing of perch, so it cannot use the host's helpers;
 * and unlike the host it must not exit on OOM.  These builders remember an
 * allocation failure instead, so that a caller checks once at the end.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static bool buf_reserve(perch_local_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->oom)
		return false;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return true;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
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

void perch_local_buf_add(perch_local_buf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void perch_local_buf_puts(perch_local_buf *b, const char *s)
{
	perch_local_buf_add(b, s, strlen(s));
}

void perch_local_buf_printf(perch_local_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = true;
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *perch_local_buf_steal(perch_local_buf *b)
{
	char *s;

	if (b->oom) {
		perch_local_buf_free(b);
		return NULL;
	}
	if (b->data == NULL && !buf_reserve(b, 0))
		return NULL;
	s = b->data;
	memset(b, 0, sizeof *b);
	return s;
}

void perch_local_buf_free(perch_local_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void perch_local_strv_take(perch_local_strv *sv, char *s)
{
	if (s == NULL || sv->oom) {
		sv->oom = true;
		free(s);
		return;
	}
	if (sv->n + 2 > sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 16;
		char **v = realloc(sv->v, cap * sizeof *v);
		if (v == NULL) {
			sv->oom = true;
			free(s);
			return;
		}
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = s;
	sv->v[sv->n] = NULL;
}

void perch_local_strv_push(perch_local_strv *sv, const char *s)
{
	perch_local_strv_take(sv, strdup(s));
}

void perch_local_strv_free(perch_local_strv *sv)
{
	for (size_t i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	memset(sv, 0, sizeof *sv);
}

char *perch_local_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

int64_t perch_local_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
