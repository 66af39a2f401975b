/*
 * daemon_proto.h - the framing of the control protocol, shared by the
 * daemon (daemon_ctl.c) and its clients (client.c).  The protocol itself
 * is in docs/daemon-protocol.md: one connection carries one request, a JSON
 * object on one line; the daemon answers with zero or more event lines and
 * one final line holding "ok".
 *
 * Threads: a reader belongs to one thread; the functions are reentrant.
 */
#ifndef PERCH_HOST_DAEMON_PROTO_H
#define PERCH_HOST_DAEMON_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* The longest request line (a workflow travels inside it). */
#define PERCH_CTL_MAX_REQUEST (16u * 1024 * 1024)
/* The longest reply line a client accepts (ps of many workflows). */
#define PERCH_CTL_MAX_REPLY (256u * 1024 * 1024)

enum {
	PERCH_CTL_LINE = 1,     /* a line was read */
	PERCH_CTL_EOF = 0,      /* end of stream before any byte of a line */
	PERCH_CTL_ERROR = -1,   /* read error (errno), or end of stream inside a line */
	PERCH_CTL_TOO_LONG = -2,
	PERCH_CTL_TIMEOUT = -3, /* timed out, or stop() said so */
};

typedef struct perch_linereader {
	int fd;
	perch_buf buf;
	size_t start; /* where the unread data begins */
} perch_linereader;

/* stop (may be NULL) is asked every 200 ms while waiting. */
typedef bool (*perch_ctl_stop_fn)(void *arg);

/*
 * Reads the next '\n'-terminated line of at most max bytes.  On
 * PERCH_CTL_LINE, *line is the line without its '\n', NUL-terminated, valid
 * until the next call; *len its length.  timeout_ms < 0 waits forever.
 */
int perch_lr_next(perch_linereader *r, size_t max, int timeout_ms, perch_ctl_stop_fn stop,
		  void *arg, char **line, size_t *len);
void perch_lr_free(perch_linereader *r);

/* Writes all of data, waiting for room; 0, or -1 (errno) on error or when
 * stop() says so. */
int perch_ctl_send(int fd, const char *data, size_t len, perch_ctl_stop_fn stop, void *arg);

/* A connected socket (O_CLOEXEC), or -1 with a malloc'd *err that says
 * what to do about it. */
int perch_ctl_connect(const char *path, char **err);

#endif
