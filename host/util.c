/* util.c - see util.h. */
#include "config.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
	/* No allocation here: we are out of memory. */
	static const char msg[] = "perch: out of memory\n";
	(void)n;
	if (write(2, msg, sizeof msg - 1) < 0) {
		/* nothing left to do */
	}
	_exit(3);
}

void *perch_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

void *perch_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		oom(n * size);
	return p;
}

void *perch_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom(n);
	return q;
}

char *perch_xstrdup(const char *s)
{
	return perch_xstrndup(s, strlen(s));
}

char *perch_xstrndup(const char *s, size_t n)
{
	char *p = perch_xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *perch_xasprintf(const char *fmt, ...)
{
	perch_buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	perch_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return perch_buf_steal(&b);
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t perch_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
int64_t perch_mono_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000; }
int64_t perch_real_ns(void) { return clock_ns(CLOCK_REALTIME); }

void perch_new_ulid(char out[27])
{
	static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
	unsigned char rnd[10] = {0};
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd)
			memset(rnd, 0, sizeof rnd);
		close(fd);
	}
	uint64_t ms = (uint64_t)(perch_real_ns() / 1000000);
	for (int i = 9; i >= 0; i--, ms >>= 5)
		out[i] = alphabet[ms & 31];
	uint64_t hi = 0, lo = 0;
	for (int i = 0; i < 5; i++)
		hi = hi << 8 | rnd[i], lo = lo << 8 | rnd[5 + i];
	for (int i = 17; i >= 10; i--, hi >>= 5)
		out[i] = alphabet[hi & 31];
	for (int i = 25; i >= 18; i--, lo >>= 5)
		out[i] = alphabet[lo & 31];
	out[26] = '\0';
}

void perch_buf_reserve(perch_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->data = perch_xrealloc(b->data, cap);
	b->cap = cap;
	/* Always a string, also before the first append (an empty read). */
	b->data[b->len] = '\0';
}

void perch_buf_append(perch_buf *b, const void *data, size_t n)
{
	perch_buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void perch_buf_puts(perch_buf *b, const char *s) { perch_buf_append(b, s, strlen(s)); }

void perch_buf_putc(perch_buf *b, char c) { perch_buf_append(b, &c, 1); }

void perch_buf_vprintf(perch_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	perch_buf_reserve(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void perch_buf_printf(perch_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	perch_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

char *perch_buf_steal(perch_buf *b)
{
	char *p = b->data;
	if (p == NULL)
		p = perch_xstrdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void perch_buf_free(perch_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *perch_read_file(const char *path, size_t *len, char **err)
{
	bool is_stdin = strcmp(path, "-") == 0;
	int fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	perch_buf b = {0};
	if (fd < 0) {
		*err = perch_xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		perch_buf_reserve(&b, 65536);
		ssize_t n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = perch_xasprintf("%s: %s", is_stdin ? "<stdin>" : path,
					       strerror(errno));
			perch_buf_free(&b);
			if (!is_stdin)
				close(fd);
			return NULL;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
	}
	if (!is_stdin)
		close(fd);
	if (len)
		*len = b.len;
	return perch_buf_steal(&b);
}

int perch_write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}
