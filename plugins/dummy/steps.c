/*
 * steps.c - the dummy's workflow and step calls.
 *
 * Behaviour follows Woodpecker's dummy (woodpecker-backends.md section 2.4)
 * with these deliberate differences, each because perch's contract asks
 * for it:
 *  - A simulated step's clock starts at start_step (start + SLEEP), not at
 *    wait_step, so that its end is a fixed point in time that can be
 *    persisted and replayed by a new instance.
 *  - Cancellation during wait_step returns PERCH_ERR_CANCELLED (backend.h
 *    requires it) *and* fills Woodpecker's state {exit_code 130, exited}.
 *    The step then counts as ended with 130, also in its persisted record,
 *    so a host that adopts it later sees the same outcome.
 *  - A service without SLEEP runs until destroy_workflow (or destroy_step)
 *    instead of failing after Woodpecker's 1 s test timeout; it then ends
 *    with its STEP_EXIT_CODE / STEP_OOM_KILLED.  Destroying any other step
 *    while it is waited for ends it the same way, at once.
 *  - destroy_step and destroy_workflow are idempotent: unknown, failed or
 *    never-started steps and workflows are fine.
 *  - Setting up a workflow that exists is refused, like a double start.
 *  - With a state directory, steps can be started in a workflow that an
 *    earlier instance set up (know_from_store): a restarted host goes on
 *    with the next stage of a workflow it adopted.
 *  - SETUP_HOLD_FILE, START_HOLD_FILE and DESTROY_HOLD_FILE hold a call
 *    for tests (hold.c).
 */
#define _GNU_SOURCE
#include "dummy.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define ENV_EXPECT_TYPE "EXPECT_TYPE"
#define ENV_START_FAIL "STEP_START_FAIL"
#define ENV_TAIL_FAIL "STEP_TAIL_FAIL"

/* The persisted wall-clock deadline on the monotonic clock, so that a
 * running wait is immune to clock steps. */
static int64_t mono_deadline(int64_t real_deadline)
{
	return pp_mono_ns() + (real_deadline - pp_real_ns());
}

/* ---- records in memory ---- */

perch_dummy_workflow *perch_dummy_find_workflow(perch_instance *inst,
						const char *task_uuid)
{
	perch_dummy_workflow *wf;

	for (wf = inst->workflows; wf != NULL; wf = wf->next)
		if (strcmp(wf->task_uuid, task_uuid) == 0)
			return wf;
	return NULL;
}

perch_dummy_step *perch_dummy_find_step(perch_dummy_workflow *wf,
					const char *step_uuid)
{
	perch_dummy_step *st;

	for (st = wf->steps; st != NULL; st = st->next)
		if (strcmp(st->uuid, step_uuid) == 0)
			return st;
	return NULL;
}

perch_dummy_workflow *perch_dummy_workflow_new(const char *task_uuid)
{
	perch_dummy_workflow *wf = calloc(1, sizeof *wf);

	if (wf == NULL)
		return NULL;
	wf->task_uuid = strdup(task_uuid);
	if (wf->task_uuid == NULL) {
		free(wf);
		return NULL;
	}
	wf->refs = 1;
	pthread_mutex_init(&wf->io_lock, NULL);
	return wf;
}

perch_dummy_step *perch_dummy_step_new(const char *step_uuid,
				       perch_dummy_record *rec)
{
	perch_dummy_step *st = calloc(1, sizeof *st);

	if (st == NULL)
		return NULL;
	st->uuid = strdup(step_uuid);
	if (st->uuid == NULL) {
		free(st);
		return NULL;
	}
	st->refs = 1;
	st->rec = *rec;
	memset(rec, 0, sizeof *rec);
	st->deadline_mono_ns = mono_deadline(st->rec.deadline_real_ns);
	st->state = PERCH_DUMMY_STARTED;
	st->wake_fd = -1;
	return st;
}

void perch_dummy_workflow_unref(perch_dummy_workflow *wf)
{
	if (wf == NULL || --wf->refs > 0)
		return;
	/* Its steps were unlinked (and unreferenced) when it was. */
	pthread_mutex_destroy(&wf->io_lock);
	free(wf->task_uuid);
	free(wf);
}

void perch_dummy_step_unref(perch_dummy_step *st)
{
	if (st == NULL || --st->refs > 0)
		return;
	if (st->wake_fd >= 0)
		close(st->wake_fd);
	perch_dummy_record_free(&st->rec);
	free(st->uuid);
	free(st);
}

/* Ends a step's life in memory: unlinks it, wakes its wait, drops the
 * list's reference.  Caller holds inst->lock. */
static void unlink_step(perch_dummy_workflow *wf, perch_dummy_step *st)
{
	perch_dummy_step **pp;

	for (pp = &wf->steps; *pp != NULL; pp = &(*pp)->next) {
		if (*pp != st)
			continue;
		*pp = st->next;
		st->next = NULL;
		st->removed = true;
		if (st->wake_fd >= 0) {
			uint64_t one = 1;
			ssize_t n = write(st->wake_fd, &one, sizeof one);
			(void)n; /* EAGAIN: already woken */
		}
		perch_dummy_step_unref(st);
		return;
	}
}

/* Unlinks wf from the instance and all its steps from wf; the list's
 * reference to wf passes to the caller.  Caller holds inst->lock. */
static void unlink_workflow(perch_instance *inst, perch_dummy_workflow *wf)
{
	perch_dummy_workflow **pp;

	while (wf->steps != NULL)
		unlink_step(wf, wf->steps);
	for (pp = &inst->workflows; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == wf) {
			*pp = wf->next;
			wf->next = NULL;
			return;
		}
	}
}

static void unref_both(perch_instance *inst, perch_dummy_workflow *wf,
		       perch_dummy_step *st)
{
	pthread_mutex_lock(&inst->lock);
	perch_dummy_step_unref(st);
	perch_dummy_workflow_unref(wf);
	pthread_mutex_unlock(&inst->lock);
}

/* ---- argument checks ---- */

static perch_status check_task(const char *task_uuid, perch_error *err)
{
	if (perch_dummy_valid_name(task_uuid))
		return PERCH_OK;
	return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
			       "invalid task uuid \"%s\": it must be 1-200 "
			       "bytes, without '/', not starting with '.'",
			       task_uuid ? task_uuid : "(null)");
}

static perch_status check_step(const perch_step *step, const char *task_uuid,
			       perch_error *err)
{
	if (check_task(task_uuid, err) != PERCH_OK)
		return PERCH_ERR_INVALID_INPUT;
	if (step == NULL)
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "no step given (workflow %s)", task_uuid);
	if (perch_dummy_valid_name(step->uuid))
		return PERCH_OK;
	return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
			       "invalid uuid \"%s\" of step '%s' (workflow %s): "
			       "it must be 1-200 bytes, without '/', not "
			       "starting with '.'",
			       step->uuid ? step->uuid : "(null)",
			       step->name ? step->name : "", task_uuid);
}

/* Finds the workflow and the step of a step call, or says which is
 * missing.  Caller holds inst->lock. */
static perch_status find_both(perch_instance *inst, const perch_step *step,
			      const char *task_uuid, perch_dummy_workflow **wf,
			      perch_dummy_step **st, perch_error *err)
{
	*st = NULL;
	*wf = perch_dummy_find_workflow(inst, task_uuid);
	if (*wf == NULL)
		return perch_error_set(err, PERCH_ERR_NOT_FOUND,
				       "workflow %s not found (not set up, or "
				       "already destroyed)",
				       task_uuid);
	*st = perch_dummy_find_step(*wf, step->uuid);
	if (*st == NULL)
		return perch_error_set(err, PERCH_ERR_NOT_FOUND,
				       "step '%s' (%s) of workflow %s not found "
				       "(not started, or already destroyed)",
				       step->name, step->uuid, task_uuid);
	return PERCH_OK;
}

static void fill_state(perch_state *state, int32_t code, bool oom)
{
	if (PERCH_HAS_FIELD(state, perch_state, exit_code))
		state->exit_code = code;
	if (PERCH_HAS_FIELD(state, perch_state, exited))
		state->exited = true;
	if (PERCH_HAS_FIELD(state, perch_state, oom_killed))
		state->oom_killed = oom;
}

/* Holds a workflow call while the file its knob names exists (hold.c). */
static perch_status hold_workflow(perch_instance *inst, const perch_ctx *ctx,
				  const perch_config *config, const char *knob,
				  const char *call, const char *task_uuid,
				  perch_error *err)
{
	const char *path = perch_dummy_workflow_knob(config, knob);
	char what[300];

	if (path == NULL)
		return PERCH_OK;
	snprintf(what, sizeof what, "%s of workflow %s", call, task_uuid);
	return perch_dummy_hold(inst, ctx, path, what, err);
}

/*
 * Makes a workflow that this instance does not know, but whose complete
 * folder the state directory holds, known in memory, so that steps can be
 * started in it: an earlier instance (before a restart, or an older
 * version of the plugin) set it up, and the host goes on with its next
 * stage here.  Nothing happens without a state directory, for a workflow
 * known already, or one the folder does not (fully) hold.  Takes
 * inst->lock; touches the disk without it.
 */
static void know_from_store(perch_instance *inst, const char *task_uuid)
{
	perch_dummy_workflow *wf;
	bool known;

	if (inst->state_dir == NULL)
		return;
	pthread_mutex_lock(&inst->lock);
	known = perch_dummy_find_workflow(inst, task_uuid) != NULL;
	pthread_mutex_unlock(&inst->lock);
	if (known || !perch_dummy_store_has_workflow(inst, task_uuid))
		return;
	wf = perch_dummy_workflow_new(task_uuid);
	if (wf == NULL)
		return; /* out of memory: start_step then says "not found" */
	pthread_mutex_lock(&inst->lock);
	known = perch_dummy_find_workflow(inst, task_uuid) != NULL;
	if (!known) {
		wf->next = inst->workflows;
		inst->workflows = wf; /* our reference becomes the list's */
		wf = NULL;
	}
	perch_dummy_workflow_unref(wf); /* a concurrent call won: ours goes */
	pthread_mutex_unlock(&inst->lock);
	if (!known)
		perch_logf(inst->host, PERCH_LOG_DEBUG,
			   "dummy: took up workflow %s from %s", task_uuid,
			   inst->state_dir);
}

/* ---- the calls ---- */

perch_status perch_dummy_setup_workflow(perch_instance *inst,
					const perch_ctx *ctx,
					const perch_config *config,
					const char *task_uuid,
					perch_error *err)
{
	perch_dummy_workflow *wf;
	perch_status st = PERCH_OK;

	if (check_task(task_uuid, err) != PERCH_OK)
		return PERCH_ERR_INVALID_INPUT;
	if (strcmp(task_uuid, PERCH_DUMMY_SETUP_FAIL_UUID) == 0)
		return perch_error_set(err, PERCH_ERR,
				       "expected fail to setup workflow");
	wf = perch_dummy_workflow_new(task_uuid);
	if (wf == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");

	pthread_mutex_lock(&inst->lock);
	if (perch_dummy_find_workflow(inst, task_uuid) != NULL) {
		perch_dummy_workflow_unref(wf);
		pthread_mutex_unlock(&inst->lock);
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "workflow %s is already set up",
				       task_uuid);
	}
	wf->next = inst->workflows;
	inst->workflows = wf;
	wf->refs++; /* the list's; the first stays ours until the end */
	pthread_mutex_unlock(&inst->lock);

	if (inst->state_dir != NULL) {
		/* Held half done, when a test asks: the folder is there, the
		 * file that completes it is not. */
		pthread_mutex_lock(&wf->io_lock);
		st = perch_dummy_store_begin_workflow(inst, task_uuid, err);
		pthread_mutex_unlock(&wf->io_lock);
		if (st == PERCH_OK)
			st = hold_workflow(inst, ctx, config, PERCH_DUMMY_SETUP_HOLD,
					   "setup_workflow", task_uuid, err);
		pthread_mutex_lock(&wf->io_lock);
		if (st == PERCH_OK)
			st = perch_dummy_store_commit_workflow(inst, task_uuid, err);
		else if (st == PERCH_ERR_CANCELLED)
			(void)perch_dummy_store_remove_workflow(inst, task_uuid, NULL);
		pthread_mutex_unlock(&wf->io_lock);
	} else {
		st = hold_workflow(inst, ctx, config, PERCH_DUMMY_SETUP_HOLD,
				   "setup_workflow", task_uuid, err);
	}

	pthread_mutex_lock(&inst->lock);
	if (st != PERCH_OK &&
	    perch_dummy_find_workflow(inst, task_uuid) == wf) {
		unlink_workflow(inst, wf);
		wf->refs--; /* the list's; ours keeps it alive */
	}
	perch_dummy_workflow_unref(wf);
	pthread_mutex_unlock(&inst->lock);
	if (st == PERCH_OK)
		perch_logf(inst->host, PERCH_LOG_DEBUG,
			   "dummy: set up workflow %s", task_uuid);
	return st;
}

perch_status perch_dummy_start_step(perch_instance *inst, const perch_ctx *ctx,
				    const perch_step *step,
				    const char *task_uuid, perch_error *err)
{
	perch_dummy_workflow *wf;
	perch_dummy_step *st;
	perch_dummy_record rec;
	const char *expect, *hold;
	perch_status rc;
	bool removed;

	if (check_step(step, task_uuid, err) != PERCH_OK)
		return PERCH_ERR_INVALID_INPUT;
	hold = perch_map_get(&step->environment, PERCH_DUMMY_START_HOLD);
	if (hold != NULL) {
		char what[300];
		snprintf(what, sizeof what, "start_step of step '%s' (%s) of "
			 "workflow %s", step->name, step->uuid, task_uuid);
		rc = perch_dummy_hold(inst, ctx, hold, what, err);
		if (rc != PERCH_OK)
			return rc;
	}
	know_from_store(inst, task_uuid);
	/* SLEEP counts from here, after any hold. */
	rc = perch_dummy_record_from_step(inst, step, &rec, err);
	if (rc != PERCH_OK)
		return rc;

	pthread_mutex_lock(&inst->lock);
	wf = perch_dummy_find_workflow(inst, task_uuid);
	if (wf == NULL) {
		rc = perch_error_set(err, PERCH_ERR_NOT_FOUND,
				     "workflow %s not found (not set up, or "
				     "already destroyed)",
				     task_uuid);
		goto refuse;
	}
	st = perch_dummy_find_step(wf, step->uuid);
	if (st != NULL) {
		/* Woodpecker issue #3494: a step must never start twice. */
		rc = perch_error_set(
			err, PERCH_ERR_INVALID_INPUT,
			"step '%s' (%s) of workflow %s was already started "
			"(it is %s)",
			step->name, step->uuid, task_uuid,
			st->state == PERCH_DUMMY_DONE ? "done" : "started");
		goto refuse;
	}
	if (perch_dummy_parse_bool(perch_map_get(&step->environment,
						 ENV_START_FAIL))) {
		rc = perch_error_set(err, PERCH_ERR, "expected fail to start step");
		goto refuse;
	}
	expect = perch_map_get(&step->environment, ENV_EXPECT_TYPE);
	if (expect != NULL && strcmp(expect, step->type) != 0) {
		rc = perch_error_set(err, PERCH_ERR,
				     "expected step type '%s' but got '%s'",
				     expect, step->type);
		goto refuse;
	}
	st = perch_dummy_step_new(step->uuid, &rec);
	if (st == NULL) {
		rc = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto refuse;
	}
	st->next = wf->steps;
	wf->steps = st;
	st->refs++;
	wf->refs++;
	pthread_mutex_unlock(&inst->lock);

	if (inst->state_dir != NULL) {
		pthread_mutex_lock(&wf->io_lock);
		pthread_mutex_lock(&inst->lock);
		removed = st->removed;
		pthread_mutex_unlock(&inst->lock);
		if (!removed)
			rc = perch_dummy_store_put_step(inst, task_uuid,
							step->uuid, &st->rec,
							err);
		pthread_mutex_unlock(&wf->io_lock);
		if (rc != PERCH_OK) {
			pthread_mutex_lock(&inst->lock);
			unlink_step(wf, st);
			pthread_mutex_unlock(&inst->lock);
		}
	}
	unref_both(inst, wf, st);
	if (rc == PERCH_OK)
		perch_logf(inst->host, PERCH_LOG_DEBUG,
			   "dummy: started step '%s' (%s) of workflow %s",
			   step->name, step->uuid, task_uuid);
	return rc;
refuse:
	pthread_mutex_unlock(&inst->lock);
	perch_dummy_record_free(&rec);
	return rc;
}

/* Where the output after the first n lines begins. */
static size_t skip_lines(const char *log, size_t len, uint64_t n)
{
	size_t off = 0;

	while (n > 0 && off < len) {
		const char *nl = memchr(log + off, '\n', len - off);
		if (nl == NULL)
			return len;
		off = (size_t)(nl - log) + 1;
		n--;
	}
	return off;
}

perch_status perch_dummy_tail_step(perch_instance *inst, const perch_ctx *ctx,
				   const perch_step *step,
				   const char *task_uuid, int *fd,
				   perch_error *err)
{
	perch_dummy_workflow *wf;
	perch_dummy_step *st;
	perch_status rc;
	size_t off, n;
	char *copy;

	if (check_step(step, task_uuid, err) != PERCH_OK)
		return PERCH_ERR_INVALID_INPUT;
	pthread_mutex_lock(&inst->lock);
	rc = find_both(inst, step, task_uuid, &wf, &st, err);
	if (rc != PERCH_OK)
		goto out;
	if (st->state != PERCH_DUMMY_STARTED) {
		rc = perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				     "step '%s' (%s) of workflow %s already "
				     "ended: wait_step returned",
				     step->name, step->uuid, task_uuid);
		goto out;
	}
	if (perch_dummy_parse_bool(perch_map_get(&step->environment,
						 ENV_TAIL_FAIL))) {
		rc = perch_error_set(err, PERCH_ERR,
				     "expected fail to read stdout of step");
		goto out;
	}
	off = skip_lines(st->rec.log, st->rec.log_len, st->skip_lines);
	n = st->rec.log_len - off;
	copy = malloc(n + 1);
	if (copy == NULL) {
		rc = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	memcpy(copy, st->rec.log + off, n);
	pthread_mutex_unlock(&inst->lock);
	return perch_dummy_pipe_out(inst, copy, n, task_uuid, step->uuid, fd,
				    err);
out:
	pthread_mutex_unlock(&inst->lock);
	return rc;
}

typedef enum wait_end {
	WAIT_ENDED,     /* deadline passed, or destroyed */
	WAIT_CANCELLED, /* ctx */
	WAIT_FAILED,    /* poll failed; errno set */
} wait_end;

/* Sleeps until the deadline (or forever), the step's destruction (wake),
 * or ctx's cancellation, without holding any lock. */
static wait_end sleep_until(perch_instance *inst, const perch_ctx *ctx,
			    int mode, int64_t deadline_mono, int wake)
{
	const perch_host *host = inst->host;
	int cancel_fd = pp_cancel_fd(host, ctx);

	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = cancel_fd, .events = POLLIN},
			{.fd = wake, .events = POLLIN},
		};
		int timeout = -1;
		if (mode == PERCH_DUMMY_UNTIL_DEADLINE) {
			int64_t left = deadline_mono - pp_mono_ns();
			if (left <= 0)
				return WAIT_ENDED;
			left = (left + 999999) / 1000000;
			timeout = left > INT_MAX ? INT_MAX : (int)left;
		}
		if (host->ctx_cancelled(ctx))
			return WAIT_CANCELLED;
		if (poll(pfd, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			return WAIT_FAILED;
		}
		if (pfd[0].revents != 0)
			return WAIT_CANCELLED;
		if (pfd[1].revents != 0)
			return WAIT_ENDED;
	}
}

perch_status perch_dummy_wait_step(perch_instance *inst, const perch_ctx *ctx,
				   const perch_step *step,
				   const char *task_uuid, perch_state *state,
				   perch_error *err)
{
	perch_dummy_workflow *wf;
	perch_dummy_step *st;
	perch_status rc;
	wait_end end = WAIT_ENDED;
	int mode, wake = -1, e;
	int64_t deadline;
	bool removed;

	if (check_step(step, task_uuid, err) != PERCH_OK)
		return PERCH_ERR_INVALID_INPUT;
	pthread_mutex_lock(&inst->lock);
	rc = find_both(inst, step, task_uuid, &wf, &st, err);
	if (rc != PERCH_OK) {
		pthread_mutex_unlock(&inst->lock);
		return rc;
	}
	if (st->state != PERCH_DUMMY_STARTED || st->wake_fd >= 0) {
		pthread_mutex_unlock(&inst->lock);
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "step '%s' (%s) of workflow %s is not "
				       "running: it already ended or is waited "
				       "for",
				       step->name, step->uuid, task_uuid);
	}
	mode = st->rec.mode;
	if (mode == PERCH_DUMMY_BAD_SLEEP) {
		rc = perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				     "step '%s' (%s): SLEEP \"%s\" is not a "
				     "duration (write e.g. \"1s\" or \"250ms\")",
				     step->name, step->uuid, st->rec.bad_sleep);
		pthread_mutex_unlock(&inst->lock);
		return rc;
	}
	deadline = st->deadline_mono_ns;
	st->refs++;
	wf->refs++;
	if (!st->removed) {
		st->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (st->wake_fd < 0) {
			e = errno;
			perch_dummy_step_unref(st);
			perch_dummy_workflow_unref(wf);
			pthread_mutex_unlock(&inst->lock);
			return perch_error_set(err, PERCH_ERR_IO, "eventfd: %s",
					       strerror(e));
		}
		wake = st->wake_fd;
	}
	pthread_mutex_unlock(&inst->lock);

	if (wake >= 0)
		end = sleep_until(inst, ctx, mode, deadline, wake);
	e = errno;

	/* io_lock first: a cancelled step's record is rewritten under it,
	 * and destroy_step removes records under it. */
	pthread_mutex_lock(&wf->io_lock);
	pthread_mutex_lock(&inst->lock);
	if (st->wake_fd >= 0) {
		close(st->wake_fd);
		st->wake_fd = -1;
	}
	if (end != WAIT_FAILED)
		st->state = PERCH_DUMMY_DONE;
	if (end == WAIT_CANCELLED) {
		st->rec.mode = PERCH_DUMMY_UNTIL_DEADLINE;
		st->rec.deadline_real_ns = pp_real_ns();
		st->deadline_mono_ns = pp_mono_ns();
		st->rec.exit_code = PERCH_DUMMY_EXIT_CANCELLED;
		st->rec.oom_killed = false;
	}
	removed = st->removed;
	if (end == WAIT_ENDED)
		fill_state(state, st->rec.exit_code, st->rec.oom_killed);
	pthread_mutex_unlock(&inst->lock);
	if (end == WAIT_CANCELLED && inst->state_dir != NULL && !removed) {
		perch_error werr = {.struct_size = sizeof werr};
		if (perch_dummy_store_put_step(inst, task_uuid, step->uuid,
					       &st->rec, &werr) != PERCH_OK)
			perch_logf(inst->host, PERCH_LOG_WARN,
				   "dummy: recording the cancel of step %s: %s",
				   step->uuid, werr.message);
	}
	pthread_mutex_unlock(&wf->io_lock);
	unref_both(inst, wf, st);

	switch (end) {
	case WAIT_ENDED:
		return PERCH_OK;
	case WAIT_CANCELLED:
		fill_state(state, PERCH_DUMMY_EXIT_CANCELLED, false);
		return perch_error_set(err, PERCH_ERR_CANCELLED,
				       "step '%s' (%s) of workflow %s cancelled",
				       step->name, step->uuid, task_uuid);
	default:
		return perch_error_set(err, PERCH_ERR_IO, "poll: %s",
				       strerror(e));
	}
}

perch_status perch_dummy_destroy_step(perch_instance *inst,
				      const perch_ctx *ctx,
				      const perch_step *step,
				      const char *task_uuid, perch_error *err)
{
	perch_dummy_workflow *wf;
	perch_dummy_step *st;
	perch_status rc = PERCH_OK;

	/* A name that cannot exist names nothing to destroy. */
	if (step == NULL || !perch_dummy_valid_name(task_uuid) ||
	    !perch_dummy_valid_name(step->uuid))
		return PERCH_OK;
	pthread_mutex_lock(&inst->lock);
	perch_dummy_writers_stop(inst, task_uuid, step->uuid);
	wf = perch_dummy_find_workflow(inst, task_uuid);
	if (wf != NULL) {
		st = perch_dummy_find_step(wf, step->uuid);
		if (st != NULL)
			unlink_step(wf, st);
		wf->refs++;
	}
	pthread_mutex_unlock(&inst->lock);

	if (inst->state_dir != NULL) {
		if (wf != NULL)
			pthread_mutex_lock(&wf->io_lock);
		rc = perch_dummy_store_remove_step(inst, task_uuid, step->uuid,
						   err);
		if (wf != NULL)
			pthread_mutex_unlock(&wf->io_lock);
	}
	if (wf != NULL) {
		pthread_mutex_lock(&inst->lock);
		perch_dummy_workflow_unref(wf);
		pthread_mutex_unlock(&inst->lock);
	}
	return rc;
}

perch_status perch_dummy_destroy_workflow(perch_instance *inst,
					  const perch_ctx *ctx,
					  const perch_config *config,
					  const char *task_uuid,
					  perch_error *err)
{
	perch_dummy_workflow *wf;
	perch_status rc = PERCH_OK;

	if (!perch_dummy_valid_name(task_uuid))
		return PERCH_OK;
	pthread_mutex_lock(&inst->lock);
	perch_dummy_writers_stop(inst, task_uuid, NULL);
	wf = perch_dummy_find_workflow(inst, task_uuid);
	if (wf != NULL)
		unlink_workflow(inst, wf); /* its list reference is ours now */
	pthread_mutex_unlock(&inst->lock);

	/* Held with its steps stopped and its folder still there, when a
	 * test asks.  A cancelled hold still destroys. */
	{
		perch_error herr = {.struct_size = sizeof herr};
		(void)hold_workflow(inst, ctx, config, PERCH_DUMMY_DESTROY_HOLD,
				    "destroy_workflow", task_uuid, &herr);
	}
	if (inst->state_dir != NULL) {
		if (wf != NULL)
			pthread_mutex_lock(&wf->io_lock);
		rc = perch_dummy_store_remove_workflow(inst, task_uuid, err);
		if (wf != NULL)
			pthread_mutex_unlock(&wf->io_lock);
	}
	if (wf != NULL) {
		pthread_mutex_lock(&inst->lock);
		perch_dummy_workflow_unref(wf);
		pthread_mutex_unlock(&inst->lock);
	}
	if (rc == PERCH_OK)
		perch_logf(inst->host, PERCH_LOG_DEBUG,
			   "dummy: destroyed workflow %s", task_uuid);
	return rc;
}
