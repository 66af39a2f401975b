/*
 * tail.c - the dummy's output and the pipe that carries it to the host.
 *
 * The output is Woodpecker's, byte for byte, and deterministic: the same
 * step always yields the same lines, which lets a resumed tail skip exactly
 * the lines the host already has.
 *
 * Most outputs fit the pipe buffer and are written before tail_step
 * returns.  A bigger one (huge command lists) must not block the caller
 * until the host reads, so the rest goes to a small writer thread
 * (pp_write_pipe: it polls the pipe and a stop eventfd, every signal
 * blocked); destroy_step and unload stop it.
 */
#define _GNU_SOURCE
#include "dummy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct perch_dummy_writer {
	perch_dummy_writer *next;
	perch_instance *inst;
	pthread_t thread;
	int fd;      /* the pipe's write end; the thread's, closed by it */
	int stop_fd; /* eventfd: readable when the writer must give up */
	char *data;
	size_t len, off;
	char *task_uuid;
	char *step_uuid;
	bool finished; /* under inst->lock: the thread is about to return */
};

char *perch_dummy_log_text(const perch_step *step, size_t *len)
{
	static const char rule[] = "------------------\n";
	const char *name = step->name ? step->name : "";
	const char *type = step->type ? step->type : "";
	const char *uuid = step->uuid ? step->uuid : "";
	size_t i, n, cmds = 0;
	char *out, *p;
	int head;

	for (i = 0; i < step->commands.len; i++)
		cmds += strlen(step->commands.items[i]) + 1;
	head = snprintf(NULL, 0, "StepName: %s\nStepType: %s\nStepUUID: %s\n"
				 "StepCommands:\n",
			name, type, uuid);
	if (head < 0)
		return NULL;
	/* head, rule, commands joined by \n, \n, rule */
	n = (size_t)head + 2 * (sizeof rule - 1) + cmds + 1;
	out = malloc(n + 1);
	if (out == NULL)
		return NULL;
	p = out + snprintf(out, n + 1,
			   "StepName: %s\nStepType: %s\nStepUUID: %s\n"
			   "StepCommands:\n",
			   name, type, uuid);
	memcpy(p, rule, sizeof rule - 1);
	p += sizeof rule - 1;
	for (i = 0; i < step->commands.len; i++) {
		size_t l = strlen(step->commands.items[i]);
		if (i > 0)
			*p++ = '\n';
		memcpy(p, step->commands.items[i], l);
		p += l;
	}
	*p++ = '\n';
	memcpy(p, rule, sizeof rule - 1);
	p += sizeof rule - 1;
	*p = '\0';
	*len = (size_t)(p - out);
	return out;
}

/* Writes what the pipe takes without blocking.  Returns false on a real
 * error (the pipe's reader is ours until we return the fd, so no EPIPE). */
static bool write_some(int fd, const char *data, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = write(fd, data + *off, len - *off);
		if (n > 0) {
			*off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
	return true;
}

static void writer_free(perch_dummy_writer *w)
{
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	free(w->data);
	free(w->task_uuid);
	free(w->step_uuid);
	free(w);
}

static void *writer_main(void *arg)
{
	perch_dummy_writer *w = arg;

	/* Ends early when stopped or when the host closed its end. */
	(void)pp_write_pipe(w->fd, w->stop_fd, w->data + w->off,
			    w->len - w->off);
	close(w->fd);
	pthread_mutex_lock(&w->inst->lock);
	w->finished = true;
	pthread_mutex_unlock(&w->inst->lock);
	return NULL;
}

perch_status perch_dummy_pipe_out(perch_instance *inst, char *data, size_t len,
				  const char *task_uuid, const char *step_uuid,
				  int *fd, perch_error *err)
{
	perch_dummy_writer *w;
	int p[2];
	size_t off = 0;
	int rc;

	perch_dummy_writers_reap(inst);
	if (pipe2(p, O_CLOEXEC) != 0) {
		free(data);
		return perch_error_set(err, PERCH_ERR_IO, "pipe: %s",
				       strerror(errno));
	}
	if (fcntl(p[1], F_SETFL, O_NONBLOCK) != 0 ||
	    !write_some(p[1], data, len, &off)) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		free(data);
		return perch_error_set(err, PERCH_ERR_IO, "writing the log: %s",
				       strerror(e));
	}
	if (off == len) {
		close(p[1]);
		free(data);
		*fd = p[0];
		return PERCH_OK;
	}

	w = calloc(1, sizeof *w);
	if (w == NULL)
		goto oom;
	w->inst = inst;
	w->fd = p[1];
	w->data = data;
	w->len = len;
	w->off = off;
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->task_uuid = strdup(task_uuid);
	w->step_uuid = strdup(step_uuid);
	if (w->stop_fd < 0 || w->task_uuid == NULL || w->step_uuid == NULL) {
		w->data = NULL;
		writer_free(w);
		goto oom;
	}
	/* Link before starting so that unload finds it, whatever happens. */
	pthread_mutex_lock(&inst->lock);
	rc = pp_thread_start(&w->thread, NULL, writer_main, w);
	if (rc == 0) {
		w->next = inst->writers;
		inst->writers = w;
	}
	pthread_mutex_unlock(&inst->lock);
	if (rc != 0) {
		close(p[0]);
		close(p[1]);
		writer_free(w);
		return perch_error_set(err, PERCH_ERR_IO,
				       "starting the log writer: %s",
				       strerror(rc));
	}
	*fd = p[0];
	return PERCH_OK;
oom:
	close(p[0]);
	close(p[1]);
	free(data);
	return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
}

static void writer_signal(perch_dummy_writer *w)
{
	uint64_t one = 1;
	ssize_t n = write(w->stop_fd, &one, sizeof one);
	(void)n; /* EAGAIN: already signalled often enough */
}

void perch_dummy_writers_stop(perch_instance *inst, const char *task_uuid,
			      const char *step_uuid)
{
	perch_dummy_writer *w;

	for (w = inst->writers; w != NULL; w = w->next)
		if (strcmp(w->task_uuid, task_uuid) == 0 &&
		    (step_uuid == NULL || strcmp(w->step_uuid, step_uuid) == 0))
			writer_signal(w);
}

void perch_dummy_writers_reap(perch_instance *inst)
{
	perch_dummy_writer *done = NULL, **pp, *w;

	pthread_mutex_lock(&inst->lock);
	for (pp = &inst->writers; *pp != NULL;) {
		w = *pp;
		if (w->finished) {
			*pp = w->next;
			w->next = done;
			done = w;
		} else {
			pp = &w->next;
		}
	}
	pthread_mutex_unlock(&inst->lock);
	while (done != NULL) {
		w = done;
		done = w->next;
		pthread_join(w->thread, NULL);
		writer_free(w);
	}
}

void perch_dummy_writers_shutdown(perch_instance *inst)
{
	perch_dummy_writer *w;

	pthread_mutex_lock(&inst->lock);
	for (w = inst->writers; w != NULL; w = w->next)
		writer_signal(w);
	w = inst->writers;
	inst->writers = NULL;
	pthread_mutex_unlock(&inst->lock);
	while (w != NULL) {
		perch_dummy_writer *next = w->next;
		pthread_join(w->thread, NULL);
		writer_free(w);
		w = next;
	}
}
