/*
 * util.h - small helpers every part of the host uses: allocation that never
 * returns NULL, monotonic clocks, a growable byte buffer, whole-file reads.
 *
 * Out of memory in the host is fatal (one line on stderr, exit 3): there is
 * no sensible way to go on running other people's workflows without memory.
 */
#ifndef PERCH_UTIL_H
#define PERCH_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *perch_xmalloc(size_t n);
void *perch_xcalloc(size_t n, size_t size);
void *perch_xrealloc(void *p, size_t n);
char *perch_xstrdup(const char *s);
char *perch_xstrndup(const char *s, size_t n);
/* A malloc'd string formatted like printf.  Caller frees. */
char *perch_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* CLOCK_MONOTONIC in milliseconds / nanoseconds. */
int64_t perch_mono_ms(void);
int64_t perch_mono_ns(void);
/* CLOCK_REALTIME in nanoseconds since the epoch. */
int64_t perch_real_ns(void);

/* A new ULID (26 Crockford base-32 characters: 48 bits of milliseconds,
 * 80 random bits), the id Woodpecker's CLI gives a task.  Thread-safe. */
void perch_new_ulid(char out[27]);

/* A growable byte buffer, always NUL-terminated.  Zero-initialise to use;
 * perch_buf_free releases it. */
typedef struct perch_buf {
	char *data;
	size_t len;
	size_t cap;
} perch_buf;
void perch_buf_reserve(perch_buf *b, size_t extra);
void perch_buf_append(perch_buf *b, const void *data, size_t n);
void perch_buf_puts(perch_buf *b, const char *s);
void perch_buf_putc(perch_buf *b, char c);
void perch_buf_printf(perch_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void perch_buf_vprintf(perch_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hands the data to the caller (who frees it) and resets b. */
char *perch_buf_steal(perch_buf *b);
void perch_buf_free(perch_buf *b);

/* Reads a whole file ("-" is standard input) into a malloc'd, NUL-terminated
 * buffer.  On failure returns NULL and sets *err to a malloc'd one-line
 * reason naming the path. */
char *perch_read_file(const char *path, size_t *len, char **err);

/* write(2) all of buf, retrying on EINTR and short writes.  0 or -1/errno. */
int perch_write_all(int fd, const void *buf, size_t n);

#endif
