/*
 * buf.c - a growable byte buffer and the few string helpers the rest of
 * the backend shares.  The buffer latches out-of-memory instead of failing
 * each append, so that building a body is a run of appends and one check.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(perch_docker_buf *b, size_t extra)
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

void perch_docker_buf_add(perch_docker_buf *b, const void *p, size_t n)
{
	if (!reserve(b, n))
		return;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void perch_docker_buf_puts(perch_docker_buf *b, const char *s)
{
	perch_docker_buf_add(b, s, strlen(s));
}

void perch_docker_buf_printf(perch_docker_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *perch_docker_buf_steal(perch_docker_buf *b)
{
	char *s = NULL;

	if (!b->oom)
		s = b->data != NULL ? b->data : strdup("");
	else
		free(b->data);
	memset(b, 0, sizeof *b);
	return s;
}

void perch_docker_buf_free(perch_docker_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

void perch_docker_buf_urlencode(perch_docker_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == '~') {
			perch_docker_buf_add(b, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			perch_docker_buf_add(b, e, 3);
		}
	}
}

char *perch_docker_strdup(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

char *perch_docker_path(const char *head, const char *id, const char *tail)
{
	perch_docker_buf b = {0};
	perch_docker_buf_puts(&b, head);
	perch_docker_buf_urlencode(&b, id);
	perch_docker_buf_puts(&b, tail);
	return perch_docker_buf_steal(&b);
}
