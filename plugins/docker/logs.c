/*
 * logs.c - tail_step: a follower thread per step that reads the engine's
 * log stream and hands the host a pipe.
 *
 * The follower first writes the step's prelude (its pull output), then
 * follows GET /containers/{id}/logs?follow=1 from the container's first
 * line, strips the 8-byte frame headers and writes the payloads, stdout
 * and stderr interleaved as the engine recorded them.  It closes the pipe
 * when the stream ends (the container ended), when the step is destroyed
 * (its stop descriptor fires), or when the host closed its end.
 *
 * Resume without repeating or losing a byte: the json-file log driver
 * keeps every line, and the prelude is kept on the container as a label,
 * so the stream "prelude + all logs" is the same every time it is read.
 * A resumed tail reads it again from the start and drops the first
 * bytes_seen bytes (or, when the host counted only lines, lines_seen
 * lines) of the perch_resume_point: exactly what the host already has.
 * Timestamps or `since` would not do: lines share timestamps, and the
 * host's clock is not the engine's.
 *
 * Signals: the thread runs with every signal blocked, so a write to a
 * pipe the host has closed returns EPIPE (the SIGPIPE stays pending on
 * this thread and is taken back) instead of reaching the host's handlers.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct perch_docker_follower {
	pthread_t thread;
	int stop_fd; /* eventfd: readable once the follower must stop */
	int wfd;     /* the pipe's write end; the thread closes it */
	const perch_host *host;
	const perch_docker_client *client; /* the instance's */
	char *container_id;
	char *step_name;
	char *prelude;
	uint64_t skip_bytes, skip_lines;
	perch_docker_demux demux;
	bool broken; /* EPIPE seen: the host closed its end */
};

static void follower_free(perch_docker_follower *f)
{
	if (f->stop_fd >= 0)
		close(f->stop_fd);
	if (f->wfd >= 0)
		close(f->wfd);
	free(f->container_id);
	free(f->step_name);
	free(f->prelude);
	free(f);
}

/* Writes all of data into the pipe, waiting for room; false when told to
 * stop or the host is gone. */
static bool write_all(perch_docker_follower *f, const char *data, size_t n)
{
	while (n > 0) {
		ssize_t w = write(f->wfd, data, n);
		if (w > 0) {
			data += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd p[2] = {
				{.fd = f->wfd, .events = POLLOUT},
				{.fd = f->stop_fd, .events = POLLIN},
			};
			if (poll(p, 2, -1) < 0 && errno != EINTR)
				return false;
			if (p[1].revents != 0)
				return false;
			if (p[0].revents & (POLLERR | POLLNVAL))
				return false;
			continue;
		}
		f->broken = w < 0 && errno == EPIPE;
		return false;
	}
	return true;
}

/* Drops what the host already has, writes the rest. */
static bool out(void *user, const char *data, size_t n)
{
	perch_docker_follower *f = user;

	if (f->skip_bytes > 0) {
		size_t k = n < f->skip_bytes ? n : (size_t)f->skip_bytes;
		data += k;
		n -= k;
		f->skip_bytes -= k;
	}
	while (f->skip_lines > 0 && n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t k;
		if (nl == NULL)
			return true;
		k = (size_t)(nl - data) + 1;
		data += k;
		n -= k;
		f->skip_lines--;
	}
	return write_all(f, data, n);
}

static bool on_stream(void *user, const char *data, size_t n)
{
	perch_docker_follower *f = user;
	return perch_docker_demux_feed(&f->demux, data, n, out, f);
}

static void *follower_main(void *arg)
{
	perch_docker_follower *f = arg;
	perch_docker_resp resp = {0};
	char *p = NULL;
	bool ok;

	if (!out(f, f->prelude, strlen(f->prelude)))
		goto done;
	p = perch_docker_path("/containers/", f->container_id,
			      "/logs?follow=1&stdout=1&stderr=1");
	if (p == NULL)
		goto done;
	perch_docker_req r = {
		.method = "GET",
		.path = p,
		.cancel_fd = {f->stop_fd, -1},
		.on_data = on_stream,
		.user = f,
	};
	ok = perch_docker_http(f->client, &r, &resp);
	if (!ok && !resp.cancelled && !resp.stopped)
		perch_logf(f->host, PERCH_LOG_WARN,
			   "docker: the log stream of step %s broke: %s",
			   f->step_name, resp.curl_error);
	else if (ok && resp.status != 200)
		perch_logf(f->host, PERCH_LOG_WARN,
			   "docker: no logs for step %s: HTTP %ld", f->step_name,
			   resp.status);
done:
	perch_docker_resp_free(&resp);
	free(p);
	close(f->wfd);
	f->wfd = -1;
	if (f->broken) {
		sigset_t pipe_only;
		struct timespec zero = {0, 0};
		sigemptyset(&pipe_only);
		sigaddset(&pipe_only, SIGPIPE);
		while (sigtimedwait(&pipe_only, NULL, &zero) == SIGPIPE)
			;
	}
	return NULL;
}

void perch_docker_follower_stop(perch_docker_follower *f)
{
	uint64_t one = 1;

	if (f == NULL)
		return;
	if (write(f->stop_fd, &one, sizeof one) < 0) {
		/* An eventfd write only fails at overflow: it is readable. */
	}
	pthread_join(f->thread, NULL);
	follower_free(f);
}

perch_status perch_docker_tail_step(perch_instance *inst, const perch_ctx *ctx,
				    const perch_step *step,
				    const char *task_uuid, int *fd,
				    perch_error *err)
{
	int cfd = perch_docker_cancel_fd(inst, ctx);
	perch_docker_follower *f, *old = NULL;
	perch_docker_step *s;
	sigset_t all, prev;
	int pfd[2] = {-1, -1};
	perch_status st;
	int rc;

	*fd = -1;
	st = perch_docker_step_attach(inst, cfd, task_uuid, step->uuid,
				      step->name, NULL, err);
	if (st != PERCH_OK)
		return st;
	f = calloc(1, sizeof *f);
	if (f == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	f->stop_fd = eventfd(0, EFD_CLOEXEC);
	f->wfd = -1;
	f->host = inst->host;
	f->client = &inst->client;
	if (f->stop_fd < 0 || pipe2(pfd, O_CLOEXEC) != 0) {
		st = perch_error_set(err, PERCH_ERR_IO, "tail step %s: %s",
				     step->name, strerror(errno));
		follower_free(f);
		return st;
	}
	f->wfd = pfd[1];
	/* Non-blocking so that a stalled reader never hides a stop. */
	fcntl(f->wfd, F_SETFL, fcntl(f->wfd, F_GETFL) | O_NONBLOCK);

	pthread_mutex_lock(&inst->lock);
	s = perch_docker_step_find(inst, task_uuid, step->uuid);
	if (s != NULL) {
		f->container_id = strdup(s->container_id);
		f->prelude = strdup(s->prelude);
		f->step_name = strdup(s->name);
		f->demux.tty = s->tty;
		f->skip_bytes = s->skip_bytes;
		f->skip_lines = s->skip_lines;
		/* A second tail of the same step starts from the top. */
		s->skip_bytes = s->skip_lines = 0;
	}
	pthread_mutex_unlock(&inst->lock);
	if (s == NULL || !f->container_id || !f->prelude || !f->step_name) {
		st = s == NULL ? perch_error_set(err, PERCH_ERR_NOT_FOUND,
						 "tail step %s: the step is gone",
						 step->name)
			       : perch_error_set(err, PERCH_ERR_NO_MEMORY,
						 "out of memory");
		close(pfd[0]);
		follower_free(f);
		return st;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &prev);
	rc = pthread_create(&f->thread, NULL, follower_main, f);
	pthread_sigmask(SIG_SETMASK, &prev, NULL);
	if (rc != 0) {
		close(pfd[0]);
		follower_free(f);
		return perch_error_set(err, PERCH_ERR_IO,
				       "tail step %s: cannot start a thread: %s",
				       step->name, strerror(rc));
	}
	pthread_mutex_lock(&inst->lock);
	s = perch_docker_step_find(inst, task_uuid, step->uuid);
	if (s != NULL) {
		old = s->follower;
		s->follower = f;
		f = NULL;
	}
	pthread_mutex_unlock(&inst->lock);
	/* The step was destroyed meanwhile: this follower has no owner. */
	perch_docker_follower_stop(f);
	perch_docker_follower_stop(old);
	*fd = pfd[0];
	return PERCH_OK;
}
