/*
 * thread.c - the threads a plugin starts, and how they write into the
 * pipes the host reads logs from.
 *
 * A plugin thread runs with every signal blocked: the host's handlers stay
 * on the host's threads, and a write to a pipe whose reader the host has
 * closed returns EPIPE instead of killing the process.  The SIGPIPE such a
 * write raises stays pending on the writing thread; it is taken back at
 * once, so that it cannot reach the host later.
 */
#define _GNU_SOURCE
#include "perchplugin.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

int pp_thread_start(pthread_t *t, const pthread_attr_t *attr,
		    void *(*fn)(void *), void *arg)
{
	sigset_t all, prev;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &prev);
	rc = pthread_create(t, attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &prev, NULL);
	return rc;
}

static void sigpipe_discard(void)
{
	sigset_t pipe_only;
	struct timespec zero = {0, 0};

	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	while (sigtimedwait(&pipe_only, NULL, &zero) == SIGPIPE)
		;
}

int pp_write_pipe(int fd, int stop_fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pf[2] = {
				{.fd = fd, .events = POLLOUT},
				{.fd = stop_fd, .events = POLLIN},
			};
			if (poll(pf, stop_fd >= 0 ? 2 : 1, -1) < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (stop_fd >= 0 && pf[1].revents != 0) {
				errno = ECANCELED;
				return -1;
			}
			if (pf[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
				errno = EPIPE; /* the reader is gone */
				return -1;
			}
			continue;
		}
		if (w < 0 && errno == EPIPE) {
			sigpipe_discard();
			errno = EPIPE;
		} else if (w == 0) {
			errno = EIO;
		}
		return -1;
	}
	return 0;
}
