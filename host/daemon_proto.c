/* daemon_proto.c - see daemon_proto.h. */
#include "config.h"

#include "daemon_proto.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define TICK_MS 200

int perch_lr_next(perch_linereader *r, size_t max, int timeout_ms, perch_ctl_stop_fn stop,
		  void *arg, char **line, size_t *len)
{
	int64_t end = timeout_ms < 0 ? INT64_MAX : perch_mono_ms() + timeout_ms;
	size_t scanned = 0;
	for (;;) {
		char *begin = r->buf.data ? r->buf.data + r->start : NULL;
		size_t have = r->buf.len - r->start;
		char *nl = begin ? memchr(begin + scanned, '\n', have - scanned) : NULL;
		if (nl) {
			*nl = '\0';
			*line = begin;
			*len = (size_t)(nl - begin);
			r->start += *len + 1;
			return *len > max ? PERCH_CTL_TOO_LONG : PERCH_CTL_LINE;
		}
		scanned = have;
		if (have > max)
			return PERCH_CTL_TOO_LONG;
		/* Keep the unread part at the front, then read more. */
		if (r->start > 0) {
			memmove(r->buf.data, r->buf.data + r->start, have);
			r->buf.len = have;
			r->start = 0;
		}
		int wait = TICK_MS;
		if (end != INT64_MAX) {
			int64_t left = end - perch_mono_ms();
			if (left <= 0)
				return PERCH_CTL_TIMEOUT;
			if (left < wait)
				wait = (int)left;
		}
		if (stop == NULL && end == INT64_MAX)
			wait = -1;
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		int rc = poll(&p, 1, wait);
		if (rc < 0 && errno != EINTR)
			return PERCH_CTL_ERROR;
		if (rc <= 0) {
			if (stop && stop(arg))
				return PERCH_CTL_TIMEOUT;
			continue;
		}
		perch_buf_reserve(&r->buf, 65536);
		ssize_t n = read(r->fd, r->buf.data + r->buf.len, r->buf.cap - r->buf.len - 1);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return PERCH_CTL_ERROR;
		}
		if (n == 0) {
			if (r->buf.len == 0)
				return PERCH_CTL_EOF;
			errno = EPROTO; /* a line cut short */
			return PERCH_CTL_ERROR;
		}
		r->buf.len += (size_t)n;
		r->buf.data[r->buf.len] = '\0';
	}
}

void perch_lr_free(perch_linereader *r)
{
	perch_buf_free(&r->buf);
	r->start = 0;
}

int perch_ctl_send(int fd, const char *data, size_t len, perch_ctl_stop_fn stop, void *arg)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -1;
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int rc = poll(&p, 1, stop ? TICK_MS : -1);
		if (rc < 0 && errno != EINTR)
			return -1;
		if (rc == 0 && stop && stop(arg)) {
			errno = ECANCELED;
			return -1;
		}
	}
	return 0;
}

int perch_ctl_connect(const char *path, char **err)
{
	struct sockaddr_un sa;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		*err = perch_xasprintf("control socket path %s is too long (at most %zu bytes)", path,
				       sizeof sa.sun_path - 1);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*err = perch_xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
		int e = errno;
		close(fd);
		const char *hint = "";
		if (e == ENOENT || e == ECONNREFUSED)
			hint = " (is perch daemon running? the socket comes from --socket, "
			       "$PERCH_SOCKET or control_socket in the config)";
		else if (e == EACCES || e == EPERM)
			hint = " (the socket is mode 0660: run as the daemon's user or a member "
			       "of its group)";
		*err = perch_xasprintf("cannot connect to the daemon at %s: %s%s", path, strerror(e),
				       hint);
		return -1;
	}
	return fd;
}
