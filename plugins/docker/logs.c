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
 * Signals: the thread runs with every signal blocked (pp_thread_start),
 * so a write to a pipe the host has closed returns EPIPE (pp_write_pipe
 * takes the SIGPIPE back) instead of reaching the host's handlers.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
	pp_buf batch; /* payloads of one read, written to the pipe at once */
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
	pp_buf_free(&f->batch);
	free(f);
}

/* Drops what the host already has, keeps the rest for flush(). */
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
	pp_buf_add(&f->batch, data, n);
	return !f->batch.oom;
}

/* Writes what out() kept.  One write per read from the engine, not one
 * per frame: the engine sends every log line as a frame (and an HTTP
 * chunk) of its own, and a write per line cost more CPU than the rest of
 * the path (a busy log moves 10^5 lines a second). */
static bool flush(void *user)
{
	perch_docker_follower *f = user;
	bool ok = f->batch.len == 0 ||
		  pp_write_pipe(f->wfd, f->stop_fd, f->batch.data,
				f->batch.len) == 0;
	f->batch.len = 0; /* keeps the room for the next read */
	return ok;
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

	if (!out(f, f->prelude, strlen(f->prelude)) || !flush(f))
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
		.on_flush = flush,
		.user = f,
	};
	ok = perch_docker_http(f->client, &r, &resp);
	if (ok)
		(void)flush(f); /* what the last read brought */
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
	int cfd = pp_cancel_fd(inst->host, ctx);
	perch_docker_follower *f, *old = NULL;
	perch_docker_step *s;
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
	rc = pp_thread_start(&f->thread, NULL, follower_main, f);
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
