/*
 * broken.c - a backend that perch-conformance must fail: it simulates
 * steps from their environment like the dummy (SLEEP, STEP_EXIT_CODE,
 * STEP_START_FAIL, task WorkflowSetupShouldFail; run with --profile dummy)
 * and gets everything right
 * except five things, each of which one check must catch:
 *
 *   exports           it exports a helper besides perch_backend_v1
 *   load-without-cli  it fails with the wrong text ("no cli context")
 *   exit-codes        it reports every non-zero exit code as 1 (137 -> 1)
 *   destroy-twice     a second destroy_step of a step fails (not-found)
 *   cancel-wait       wait_step ignores cancellation: it returns only when
 *                     the step ends or is destroyed (the tool must give up
 *                     after its bound instead of hanging)
 *
 * Simplifications a real backend must not copy: step records are freed
 * only at unload, and all waits share one condition variable.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <perch/perch.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct rec {
	struct rec *next;
	char *task, *uuid; /* uuid NULL: a workflow record */
	int64_t deadline_ns; /* CLOCK_MONOTONIC */
	int32_t exit_code;
	bool destroyed; /* destroy_step ran */
	bool gone;      /* its workflow was destroyed: unknown from now on */
} rec;

struct perch_instance {
	pthread_mutex_t lock;
	pthread_cond_t changed; /* on CLOCK_MONOTONIC */
	rec *recs;
};

/* Defect (exports): visible although nothing needs it. */
__attribute__((visibility("default"))) int broken_helper_exported(void);
__attribute__((visibility("default"))) int broken_helper_exported(void)
{
	return 42;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static rec *find(perch_instance *inst, const char *task, const char *uuid)
{
	for (rec *r = inst->recs; r; r = r->next)
		if (!r->gone && strcmp(r->task, task) == 0 &&
		    (uuid ? r->uuid && strcmp(r->uuid, uuid) == 0 : r->uuid == NULL))
			return r;
	return NULL;
}

static rec *add(perch_instance *inst, const char *task, const char *uuid)
{
	rec *r = calloc(1, sizeof *r);
	if (r == NULL || (r->task = strdup(task)) == NULL ||
	    (uuid && (r->uuid = strdup(uuid)) == NULL)) {
		if (r)
			free(r->task);
		free(r);
		return NULL;
	}
	r->next = inst->recs;
	inst->recs = r;
	return r;
}

static bool broken_is_available(const perch_host *host, const perch_ctx *ctx, perch_error *why)
{
	return true;
}

static perch_status broken_load(const perch_host *host, const perch_ctx *ctx,
				perch_instance **out, perch_backend_info *info, perch_error *err)
{
	/* Defect (load-without-cli): not the seed's exact message. */
	if (host->ctx_value(ctx, PERCH_CTX_CLI_COMMAND) == NULL)
		return perch_error_set(err, PERCH_ERR_NO_CLI_CONTEXT, "no cli context");
	perch_instance *inst = calloc(1, sizeof *inst);
	if (inst == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&inst->changed, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&inst->lock, NULL);
	if (PERCH_HAS_FIELD(info, perch_backend_info, platform))
		snprintf(info->platform, sizeof info->platform, "broken");
	*out = inst;
	return PERCH_OK;
}

static void broken_unload(perch_instance *inst)
{
	while (inst->recs) {
		rec *r = inst->recs;
		inst->recs = r->next;
		free(r->task);
		free(r->uuid);
		free(r);
	}
	pthread_cond_destroy(&inst->changed);
	pthread_mutex_destroy(&inst->lock);
	free(inst);
}

static perch_status broken_setup(perch_instance *inst, const perch_ctx *ctx,
				 const perch_config *config, const char *task, perch_error *err)
{
	perch_status st = PERCH_OK;
	/* Like the dummy: the magic task uuid fails setup. */
	if (strcmp(task, "WorkflowSetupShouldFail") == 0)
		return perch_error_set(err, PERCH_ERR, "expected fail to setup workflow");
	pthread_mutex_lock(&inst->lock);
	if (find(inst, task, NULL))
		st = perch_error_set(err, PERCH_ERR_INVALID_INPUT, "workflow %s exists", task);
	else if (add(inst, task, NULL) == NULL)
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	pthread_mutex_unlock(&inst->lock);
	return st;
}

static perch_status broken_start(perch_instance *inst, const perch_ctx *ctx,
				 const perch_step *step, const char *task, perch_error *err)
{
	const char *sleep = perch_map_get(&step->environment, "SLEEP");
	const char *code = perch_map_get(&step->environment, "STEP_EXIT_CODE");
	const char *fail = perch_map_get(&step->environment, "STEP_START_FAIL");
	int64_t ms = 0;
	if (sleep && !perch_parse_duration(sleep, &ms))
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT, "bad SLEEP %s", sleep);
	if (fail && strcmp(fail, "true") == 0)
		return perch_error_set(err, PERCH_ERR, "expected fail to start step");
	perch_status st = PERCH_OK;
	pthread_mutex_lock(&inst->lock);
	rec *r = NULL;
	if (find(inst, task, NULL) == NULL)
		st = perch_error_set(err, PERCH_ERR_NOT_FOUND, "no workflow %s", task);
	else if (find(inst, task, step->uuid))
		st = perch_error_set(err, PERCH_ERR_INVALID_INPUT, "step %s started twice",
				     step->uuid);
	else if ((r = add(inst, task, step->uuid)) == NULL)
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	if (r) {
		r->deadline_ns = now_ns() + ms * 1000000;
		r->exit_code = code ? atoi(code) : 0;
	}
	pthread_mutex_unlock(&inst->lock);
	return st;
}

static perch_status broken_tail(perch_instance *inst, const perch_ctx *ctx,
				const perch_step *step, const char *task, int *fd,
				perch_error *err)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return perch_error_set(err, PERCH_ERR_IO, "pipe: %s", strerror(errno));
	/* Like the dummy: the log lists the commands (a few bytes: fits). */
	for (size_t i = 0; i < step->commands.len; i++) {
		const char *c = step->commands.items[i];
		if (write(p[1], c, strlen(c)) < 0 || write(p[1], "\n", 1) < 0)
			break;
	}
	close(p[1]);
	*fd = p[0];
	return PERCH_OK;
}

static perch_status broken_wait(perch_instance *inst, const perch_ctx *ctx,
				const perch_step *step, const char *task, perch_state *state,
				perch_error *err)
{
	pthread_mutex_lock(&inst->lock);
	rec *r = find(inst, task, step->uuid);
	if (r == NULL) {
		pthread_mutex_unlock(&inst->lock);
		return perch_error_set(err, PERCH_ERR_NOT_FOUND, "no step %s", step->uuid);
	}
	/* Defect (cancel-wait): ctx is never looked at. */
	while (!r->gone && !r->destroyed && now_ns() < r->deadline_ns) {
		struct timespec ts = {r->deadline_ns / 1000000000, r->deadline_ns % 1000000000};
		pthread_cond_timedwait(&inst->changed, &inst->lock, &ts);
	}
	int32_t code = r->exit_code;
	pthread_mutex_unlock(&inst->lock);
	state->exited = true;
	/* Defect (exit-codes): every failure becomes 1. */
	state->exit_code = code != 0 ? 1 : 0;
	return PERCH_OK;
}

static perch_status broken_destroy_step(perch_instance *inst, const perch_ctx *ctx,
					const perch_step *step, const char *task,
					perch_error *err)
{
	perch_status st = PERCH_OK;
	pthread_mutex_lock(&inst->lock);
	rec *r = find(inst, task, step->uuid);
	/* Defect (destroy-twice): not idempotent. */
	if (r && r->destroyed)
		st = perch_error_set(err, PERCH_ERR_NOT_FOUND, "step %s is already destroyed",
				     step->uuid);
	else if (r)
		r->destroyed = true;
	pthread_cond_broadcast(&inst->changed);
	pthread_mutex_unlock(&inst->lock);
	return st;
}

static perch_status broken_destroy_workflow(perch_instance *inst, const perch_ctx *ctx,
					    const perch_config *config, const char *task,
					    perch_error *err)
{
	pthread_mutex_lock(&inst->lock);
	for (rec *r = inst->recs; r; r = r->next)
		if (strcmp(r->task, task) == 0)
			r->gone = true;
	pthread_cond_broadcast(&inst->changed);
	pthread_mutex_unlock(&inst->lock);
	return PERCH_OK;
}

PERCH_BACKEND_ENTRY = {
	PERCH_BACKEND_INIT,
	.priority = -1,
	.name = "broken",
	.version = "0.0.1",
	.description = "a conformance test fixture with five deliberate defects",
	.flags = NULL,
	.is_available = broken_is_available,
	.load = broken_load,
	.setup_workflow = broken_setup,
	.start_step = broken_start,
	.tail_step = broken_tail,
	.wait_step = broken_wait,
	.destroy_step = broken_destroy_step,
	.destroy_workflow = broken_destroy_workflow,
	.unload = broken_unload,
	.get_capability = NULL,
};
