/*
 * check_concurrency.c - one instance serving several callers at once: two
 * workflows with the same step names in parallel, a blocked wait_step that
 * is cancelled, and a detached step stopped by destroy_workflow while its
 * wait_step is in flight (the host's order for services).
 */
#include "config.h"

#include "conformance.h"

#include <stdio.h>
#include <string.h>

/* ---- parallel-workflows --------------------------------------------- */

typedef struct wf_thread {
	perch_cf_run *run;
	const char *marker;
	perch_cf_wf *wf;
	perch_cf_step *st;
	perch_cf_step_run sr;
	perch_cf_verdict v;
	pthread_t thread;
} wf_thread;

static void *wf_thread_main(void *arg)
{
	wf_thread *t = arg;
	perch_cf_run *run = t->run;
	perch_ctx *ctx = perch_cf_ctx(run);
	perch_error err = perch_cf_error();
	perch_status rc = perch_cf_call_setup(run, ctx, t->wf, &err);
	if (rc != PERCH_OK) {
		perch_cf_fail(&t->v, "setup_workflow of %s failed: %s", t->wf->task_uuid,
			      perch_cf_why(rc, &err));
	} else {
		perch_cf_step_run_sync(&t->sr);
		if (t->sr.v.result == PERCH_CF_FAIL)
			perch_cf_fail(&t->v, "workflow %s: %s", t->wf->task_uuid, t->sr.v.reason);
	}
	err = perch_cf_error();
	rc = perch_cf_call_destroy_workflow(run, t->wf, &err);
	if (rc != PERCH_OK)
		perch_cf_fail(&t->v, "destroy_workflow of %s failed: %s", t->wf->task_uuid,
			      perch_cf_why(rc, &err));
	perch_ctx_free(ctx);
	return NULL;
}

void perch_cf_check_parallel_workflows(perch_cf_run *run, perch_cf_verdict *v)
{
	if (!perch_cf_load(run, v))
		return;
	static const char *const markers[2] = {"perch-conformance-workflow-a",
					       "perch-conformance-workflow-b"};
	wf_thread t[2];
	memset(t, 0, sizeof t);
	for (int i = 0; i < 2; i++) {
		t[i].run = run;
		t[i].marker = markers[i];
		t[i].wf = perch_cf_wf_new(run);
		perch_cf_behaviour b = {.say = {markers[i]}, .sleep_s = 1};
		/* Same step name in both: backends must key steps by workflow. */
		t[i].st = perch_cf_wf_add(run, t[i].wf, "build", &b);
		perch_cf_step_run_init(&t[i].sr, run, t[i].wf, t[i].st);
	}
	bool started[2];
	for (int i = 0; i < 2; i++) {
		started[i] = pthread_create(&t[i].thread, NULL, wf_thread_main, &t[i]) == 0;
		if (!started[i])
			wf_thread_main(&t[i]);
	}
	for (int i = 0; i < 2; i++) {
		if (started[i])
			pthread_join(t[i].thread, NULL); /* every call inside is watched */
		if (t[i].v.result == PERCH_CF_FAIL)
			perch_cf_fail(v, "%s", t[i].v.reason);
		perch_cf_expect_exit(v, t[i].st, t[i].sr.wait_status, &t[i].sr.state, 0);
		const char *out = t[i].sr.tail.buf ? t[i].sr.tail.buf : "";
		if (t[i].v.result != PERCH_CF_FAIL && !strstr(out, t[i].marker))
			perch_cf_fail(v, "the log of step 'build' of workflow %s lacks its own line \"%s\"",
				      t[i].wf->task_uuid, t[i].marker);
		if (strstr(out, markers[1 - i]))
			perch_cf_fail(v, "the log of step 'build' of workflow %s holds \"%s\", a line of "
				      "the other workflow's step of the same name", t[i].wf->task_uuid,
				      markers[1 - i]);
		perch_cf_step_run_free(&t[i].sr);
		perch_cf_wf_free(t[i].wf);
	}
	perch_cf_call_unload(run);
}

/* ---- cancel-wait ----------------------------------------------------- */

/* Starts a blocking step and its tail reader; false (recorded) on failure. */
static bool start_blocking(perch_cf_run *run, perch_cf_verdict *v, const perch_ctx *ctx,
			   perch_cf_wf *wf, perch_cf_step *st, perch_cf_tail *tail)
{
	perch_error err = perch_cf_error();
	perch_status rc = perch_cf_call_setup(run, ctx, wf, &err);
	if (rc != PERCH_OK)
		return perch_cf_fail(v, "setup_workflow failed: %s", perch_cf_why(rc, &err));
	err = perch_cf_error();
	rc = perch_cf_call_start(run, ctx, wf, st, &err);
	if (rc != PERCH_OK)
		return perch_cf_fail(v, "start_step failed: %s", perch_cf_why(rc, &err));
	int fd = -1;
	err = perch_cf_error();
	rc = perch_cf_call_tail(run, ctx, wf, st, &fd, &err);
	if (rc != PERCH_OK || fd < 0)
		return perch_cf_fail(v, "tail_step failed: %s", perch_cf_why(rc, &err));
	if (!perch_cf_tail_start(tail, fd))
		return perch_cf_fail(v, "internal error: cannot start a reader thread");
	return true;
}

void perch_cf_check_cancel_wait(perch_cf_run *run, perch_cf_verdict *v)
{
	if (!perch_cf_load(run, v))
		return;
	perch_cf_wf *wf = perch_cf_wf_new(run);
	perch_cf_behaviour block = {.say = {"perch-conformance-cancel"}, .sleep_s = 30};
	perch_cf_step *st = perch_cf_wf_add(run, wf, "cancelled", &block);
	perch_ctx *ctx = perch_cf_ctx(run);
	perch_cf_tail tail = {0};
	char what[PERCH_CF_WHAT_MAX];
	if (start_blocking(run, v, ctx, wf, st, &tail)) {
		perch_cf_async_wait aw;
		if (!perch_cf_async_wait_start(&aw, run, ctx, wf, st)) {
			perch_cf_fail(v, "internal error: cannot start a thread");
		} else {
			perch_cf_pause_ms(300); /* likely blocked by now; not asserted */
			perch_ctx_cancel(ctx);
			snprintf(what, sizeof what,
				 "wait_step did not return within %ld s of the cancellation of its "
				 "context (backend.h: it must return cancelled promptly)",
				 (long)(run->opts->cancel_timeout_ms / 1000));
			perch_cf_async_wait_join(&aw, run->opts->cancel_timeout_ms, what);
			if (aw.status != PERCH_ERR_CANCELLED)
				perch_cf_fail(v, "wait_step of a step that sleeps 30 s returned %s when its "
					      "context was cancelled; expected cancelled",
					      perch_cf_why(aw.status, &aw.err));
		}
		/* The host then destroys the step on a fresh cleanup context. */
		perch_error err = perch_cf_error();
		perch_status rc = perch_cf_call_destroy_step(run, wf, st, &err);
		if (rc != PERCH_OK)
			perch_cf_fail(v, "destroy_step after the cancellation failed: %s",
				      perch_cf_why(rc, &err));
		snprintf(what, sizeof what,
			 "the tail of the cancelled step did not reach end of stream within %ld s "
			 "after destroy_step", (long)(run->opts->call_timeout_ms / 1000));
		perch_cf_tail_finish(run, &tail, run->opts->call_timeout_ms, what);
	}
	perch_cf_tail_free(&tail);
	perch_error err = perch_cf_error();
	perch_status rc = perch_cf_call_destroy_workflow(run, wf, &err);
	if (rc != PERCH_OK)
		perch_cf_fail(v, "destroy_workflow failed: %s", perch_cf_why(rc, &err));
	perch_cf_wf_free(wf);
	perch_ctx_free(ctx);
	perch_cf_call_unload(run);
}

/* ---- detached-step ---------------------------------------------------- */

void perch_cf_check_detached_step(perch_cf_run *run, perch_cf_verdict *v)
{
	if (!perch_cf_load(run, v))
		return;
	perch_cf_wf *wf = perch_cf_wf_new(run);
	perch_cf_behaviour block = {.say = {"perch-conformance-service"}, .sleep_s = 30};
	perch_cf_step *st = perch_cf_wf_add(run, wf, "service", &block);
	st->step.type = PERCH_STEP_SERVICE;
	st->step.detach = true;
	perch_ctx *ctx = perch_cf_ctx(run);
	perch_cf_tail tail = {0};
	char what[PERCH_CF_WHAT_MAX];
	bool destroyed = false;
	if (start_blocking(run, v, ctx, wf, st, &tail)) {
		perch_cf_async_wait aw;
		bool waiting = perch_cf_async_wait_start(&aw, run, ctx, wf, st);
		if (!waiting)
			perch_cf_fail(v, "internal error: cannot start a thread");
		perch_cf_pause_ms(300);
		/* The host's order for a service: destroy_workflow while its
		 * wait_step is in flight; the wait returns; then destroy_step. */
		perch_error err = perch_cf_error();
		perch_status rc = perch_cf_call_destroy_workflow(run, wf, &err);
		destroyed = true;
		if (rc != PERCH_OK)
			perch_cf_fail(v, "destroy_workflow with a detached step running failed: %s",
				      perch_cf_why(rc, &err));
		if (waiting) {
			snprintf(what, sizeof what,
				 "wait_step of a detached step did not return within %ld s after "
				 "destroy_workflow (which must stop what still runs)",
				 (long)(run->opts->call_timeout_ms / 1000));
			perch_cf_async_wait_join(&aw, run->opts->call_timeout_ms, what);
		}
		snprintf(what, sizeof what,
			 "the tail of a detached step did not reach end of stream within %ld s "
			 "after destroy_workflow", (long)(run->opts->call_timeout_ms / 1000));
		perch_cf_tail_finish(run, &tail, run->opts->call_timeout_ms, what);
		err = perch_cf_error();
		rc = perch_cf_call_destroy_step(run, wf, st, &err);
		if (rc != PERCH_OK)
			perch_cf_fail(v, "destroy_step of a detached step after destroy_workflow failed: "
				      "%s (the host destroys services after their workflow)",
				      perch_cf_why(rc, &err));
	}
	perch_cf_tail_free(&tail);
	if (!destroyed) {
		perch_error err = perch_cf_error();
		perch_status rc = perch_cf_call_destroy_workflow(run, wf, &err);
		if (rc != PERCH_OK)
			perch_cf_fail(v, "destroy_workflow failed: %s", perch_cf_why(rc, &err));
	}
	perch_cf_wf_free(wf);
	perch_ctx_free(ctx);
	perch_cf_call_unload(run);
}
