/*
 * check_steps.c - workflows and steps, one thing at a time: an empty
 * workflow, a step's whole life, exit codes, end of stream, and the
 * idempotence of cleanup (destroy twice, destroy before start, destroy of a
 * workflow that was never set up).
 */
#include "config.h"

#include "conformance.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Loads, sets up a new workflow; on failure records why and unloads. */
static perch_cf_wf *begin(perch_cf_run *run, perch_cf_verdict *v, perch_ctx **ctx)
{
	if (!perch_cf_load(run, v))
		return NULL;
	perch_cf_wf *wf = perch_cf_wf_new(run);
	*ctx = perch_cf_ctx(run);
	return wf;
}

static bool setup(perch_cf_run *run, perch_cf_verdict *v, const perch_ctx *ctx, perch_cf_wf *wf)
{
	perch_error err = perch_cf_error();
	perch_status st = perch_cf_call_setup(run, ctx, wf, &err);
	if (st != PERCH_OK)
		return perch_cf_fail(v, "setup_workflow failed: %s", perch_cf_why(st, &err));
	return true;
}

/* destroy_workflow (which must succeed), free, unload. */
static void end(perch_cf_run *run, perch_cf_verdict *v, perch_ctx *ctx, perch_cf_wf *wf)
{
	perch_error err = perch_cf_error();
	perch_status st = perch_cf_call_destroy_workflow(run, wf, &err);
	if (st != PERCH_OK)
		perch_cf_fail(v, "destroy_workflow failed: %s", perch_cf_why(st, &err));
	perch_cf_wf_free(wf);
	perch_ctx_free(ctx);
	perch_cf_call_unload(run);
}

static bool output_has(perch_cf_verdict *v, const perch_cf_step_run *sr, const char *line)
{
	if (sr->v.result == PERCH_CF_FAIL || strstr(sr->tail.buf ? sr->tail.buf : "", line))
		return true;
	return perch_cf_fail(v, "the log of step '%s' lacks \"%s\" (got %zu bytes: \"%.80s%s\")",
			     sr->st->name, line, sr->tail.len, sr->tail.buf ? sr->tail.buf : "",
			     sr->tail.len > 80 ? "..." : "");
}

/* Copies a runner's first failure into the check's verdict. */
static void merge(perch_cf_verdict *v, const perch_cf_step_run *sr)
{
	if (sr->v.result == PERCH_CF_FAIL)
		perch_cf_fail(v, "%s", sr->v.reason);
}

void perch_cf_check_workflow_empty(perch_cf_run *run, perch_cf_verdict *v)
{
	perch_ctx *ctx = NULL;
	perch_cf_wf *wf = begin(run, v, &ctx);
	if (wf == NULL)
		return;
	setup(run, v, ctx, wf);
	end(run, v, ctx, wf);
}

void perch_cf_check_step_lifecycle(perch_cf_run *run, perch_cf_verdict *v)
{
	perch_ctx *ctx = NULL;
	perch_cf_wf *wf = begin(run, v, &ctx);
	if (wf == NULL)
		return;
	perch_cf_behaviour hello = {.say = {"perch-conformance-hello"}};
	perch_cf_step *st = perch_cf_wf_add(run, wf, "hello", &hello);
	if (setup(run, v, ctx, wf)) {
		perch_cf_step_run sr;
		perch_cf_step_run_init(&sr, run, wf, st);
		perch_cf_step_run_sync(&sr);
		merge(v, &sr);
		perch_cf_expect_exit(v, st, sr.wait_status, &sr.state, 0);
		output_has(v, &sr, "perch-conformance-hello");
		perch_cf_step_run_free(&sr);
	}
	end(run, v, ctx, wf);
}

void perch_cf_check_exit_codes(perch_cf_run *run, perch_cf_verdict *v)
{
	perch_ctx *ctx = NULL;
	perch_cf_wf *wf = begin(run, v, &ctx);
	if (wf == NULL)
		return;
	static const struct {
		const char *name;
		perch_cf_behaviour b;
		int code;
	} cases[] = {
		{"exit-0", {.say = {"perch-conformance-zero"}, .exit_code = 0}, 0},
		{"exit-1", {.say = {"perch-conformance-one"}, .exit_code = 1}, 1},
		{"killed", {.say = {"perch-conformance-killed"}, .kill9 = true}, 137},
	};
	enum { N = sizeof cases / sizeof *cases };
	perch_cf_step *steps[N];
	for (size_t i = 0; i < N; i++)
		steps[i] = perch_cf_wf_add(run, wf, cases[i].name, &cases[i].b);
	if (setup(run, v, ctx, wf)) {
		/* One stage: its steps run in parallel, as the host runs them. */
		perch_cf_step_run sr[N];
		bool started[N];
		for (size_t i = 0; i < N; i++) {
			perch_cf_step_run_init(&sr[i], run, wf, steps[i]);
			started[i] = perch_cf_step_run_async(&sr[i]);
			if (!started[i])
				perch_cf_step_run_sync(&sr[i]);
		}
		for (size_t i = 0; i < N; i++) {
			if (started[i])
				perch_cf_step_run_join(&sr[i]);
			merge(v, &sr[i]);
			perch_cf_expect_exit(v, steps[i], sr[i].wait_status, &sr[i].state,
					     cases[i].code);
			output_has(v, &sr[i], cases[i].b.say[0]);
			perch_cf_step_run_free(&sr[i]);
		}
	}
	end(run, v, ctx, wf);
}

void perch_cf_check_tail_after_destroy(perch_cf_run *run, perch_cf_verdict *v)
{
	perch_ctx *ctx = NULL;
	perch_cf_wf *wf = begin(run, v, &ctx);
	if (wf == NULL)
		return;
	perch_cf_behaviour block = {.say = {"perch-conformance-blocking"}, .sleep_s = 30};
	perch_cf_step *st = perch_cf_wf_add(run, wf, "blocking", &block);
	if (!setup(run, v, ctx, wf))
		goto out;
	perch_error err = perch_cf_error();
	perch_status rc = perch_cf_call_start(run, ctx, wf, st, &err);
	if (rc != PERCH_OK) {
		perch_cf_fail(v, "start_step failed: %s", perch_cf_why(rc, &err));
		goto out;
	}
	int fd = -1;
	err = perch_cf_error();
	rc = perch_cf_call_tail(run, ctx, wf, st, &fd, &err);
	perch_cf_tail tail = {0};
	if (rc != PERCH_OK || fd < 0)
		perch_cf_fail(v, "tail_step failed: %s", perch_cf_why(rc, &err));
	else if (!perch_cf_tail_start(&tail, fd))
		perch_cf_fail(v, "internal error: cannot start a reader thread");
	perch_cf_pause_ms(300); /* let it run; nothing is asserted about time */
	/* The host destroys without waiting when it gives up on a step. */
	err = perch_cf_error();
	rc = perch_cf_call_destroy_step(run, wf, st, &err);
	if (rc != PERCH_OK)
		perch_cf_fail(v, "destroy_step of a running step failed: %s", perch_cf_why(rc, &err));
	char what[PERCH_CF_WHAT_MAX];
	snprintf(what, sizeof what,
		 "the tail of a running step did not reach end of stream within %ld s after "
		 "destroy_step (backend.h: it must, once the step is destroyed)",
		 (long)(run->opts->call_timeout_ms / 1000));
	perch_cf_tail_finish(run, &tail, run->opts->call_timeout_ms, what);
	perch_cf_tail_free(&tail);
out:
	end(run, v, ctx, wf);
}

void perch_cf_check_destroy_twice(perch_cf_run *run, perch_cf_verdict *v)
{
	perch_ctx *ctx = NULL;
	perch_cf_wf *wf = begin(run, v, &ctx);
	if (wf == NULL)
		return;
	perch_cf_behaviour ok = {.say = {"perch-conformance-twice"}};
	perch_cf_step *st = perch_cf_wf_add(run, wf, "twice", &ok);
	if (setup(run, v, ctx, wf)) {
		perch_cf_step_run sr;
		perch_cf_step_run_init(&sr, run, wf, st);
		perch_cf_step_run_sync(&sr); /* ends with the first destroy_step */
		merge(v, &sr);
		perch_cf_step_run_free(&sr);
		perch_error err = perch_cf_error();
		perch_status rc = perch_cf_call_destroy_step(run, wf, st, &err);
		if (rc != PERCH_OK)
			perch_cf_fail(v, "a second destroy_step of the same step failed: %s (it must be "
				      "idempotent)", perch_cf_why(rc, &err));
	}
	end(run, v, ctx, wf);
}

void perch_cf_check_destroy_before_start(perch_cf_run *run, perch_cf_verdict *v)
{
	perch_ctx *ctx = NULL;
	perch_cf_wf *wf = begin(run, v, &ctx);
	if (wf == NULL)
		return;
	perch_cf_behaviour ok = {.say = {"perch-conformance-never"}};
	perch_cf_step *never = perch_cf_wf_add(run, wf, "never-started", &ok);
	perch_cf_step *fails = NULL;
	if (run->profile->make_start_fail) {
		fails = perch_cf_wf_add(run, wf, "fails-to-start", &ok);
		run->profile->make_start_fail(fails);
	}
	if (!setup(run, v, ctx, wf))
		goto out;
	perch_error err = perch_cf_error();
	perch_status rc = perch_cf_call_destroy_step(run, wf, never, &err);
	if (rc != PERCH_OK)
		perch_cf_fail(v, "destroy_step of a step that never started failed: %s",
			      perch_cf_why(rc, &err));
	if (fails) {
		err = perch_cf_error();
		rc = perch_cf_call_start(run, ctx, wf, fails, &err);
		if (rc == PERCH_OK) {
			perch_cf_fail(v, "start_step of a step the %s profile makes fail succeeded",
				      run->profile->name);
		} else {
			err = perch_cf_error();
			rc = perch_cf_call_destroy_step(run, wf, fails, &err);
			if (rc != PERCH_OK)
				perch_cf_fail(v, "destroy_step of a step that failed to start failed: %s",
					      perch_cf_why(rc, &err));
		}
	}
out:
	end(run, v, ctx, wf);
}

void perch_cf_check_destroy_unknown_workflow(perch_cf_run *run, perch_cf_verdict *v)
{
	if (!perch_cf_load(run, v))
		return;
	char task[96];
	snprintf(task, sizeof task, "conformance-never-set-up-%ld", (long)getpid());
	perch_error err = perch_cf_error();
	perch_status rc = perch_cf_call_destroy_task(run, task, &err);
	if (rc != PERCH_OK && rc != PERCH_ERR_NOT_FOUND)
		perch_cf_fail(v, "destroy_workflow of a workflow that was never set up failed: %s (the "
			      "host calls it after every failed setup: nothing to clean is clean)",
			      perch_cf_why(rc, &err));
	const char *fail_uuid = run->profile->setup_fail_uuid;
	if (fail_uuid && v->result != PERCH_CF_FAIL) {
		/* The real failed-setup path, where the profile can force it. */
		perch_ctx *ctx = perch_cf_ctx(run);
		perch_cf_wf *wf = perch_cf_wf_new(run);
		snprintf(wf->task_uuid, sizeof wf->task_uuid, "%s", fail_uuid);
		perch_cf_wf_names(wf);
		err = perch_cf_error();
		rc = perch_cf_call_setup(run, ctx, wf, &err);
		if (rc == PERCH_OK)
			perch_cf_fail(v, "setup_workflow of task %s succeeded; the %s profile expects it "
				      "to fail", fail_uuid, run->profile->name);
		err = perch_cf_error();
		rc = perch_cf_call_destroy_workflow(run, wf, &err);
		if (rc != PERCH_OK)
			perch_cf_fail(v, "destroy_workflow after a failed setup_workflow failed: %s",
				      perch_cf_why(rc, &err));
		perch_cf_wf_free(wf);
		perch_ctx_free(ctx);
	}
	perch_cf_call_unload(run);
}

void perch_cf_check_missing_image(perch_cf_run *run, perch_cf_verdict *v)
{
	perch_ctx *ctx = NULL;
	perch_cf_wf *wf = begin(run, v, &ctx);
	if (wf == NULL)
		return;
	perch_cf_behaviour ok = {.say = {"perch-conformance-image"}};
	perch_cf_step *st = perch_cf_wf_add(run, wf, "missing-image", &ok);
	snprintf(st->image, sizeof st->image, "perch-conformance-no-such-image-%ld",
		 (long)getpid());
	if (!setup(run, v, ctx, wf))
		goto out;
	perch_error err = perch_cf_error();
	perch_status rc = perch_cf_call_start(run, ctx, wf, st, &err);
	if (rc != PERCH_OK) {
		/* The usual way: refused at start, with a reason, and with a code
		 * that makes it the step's failure (perch run exits 1), not an
		 * infrastructure error (exit 3): see is_infra in the runtime. */
		if (rc != PERCH_ERR_NOT_FOUND && rc != PERCH_ERR_INVALID_INPUT &&
		    rc != PERCH_ERR_UNSUPPORTED)
			perch_cf_fail(v, "start_step failed for the missing image with %s, which perch "
				      "counts as an infrastructure error; a missing image is the step's "
				      "failure: return not-found or invalid-input", perch_cf_why(rc, &err));
		else if (err.message[0] == '\0')
			perch_cf_fail(v, "start_step failed for the missing image %s but gave no "
				      "message", st->image);
		err = perch_cf_error();
		rc = perch_cf_call_destroy_step(run, wf, st, &err);
		if (rc != PERCH_OK)
			perch_cf_fail(v, "destroy_step of a step that failed to start failed: %s",
				      perch_cf_why(rc, &err));
		goto out;
	}
	/* Started after all: then it must end in failure. */
	int fd = -1;
	perch_cf_tail tail = {0};
	err = perch_cf_error();
	rc = perch_cf_call_tail(run, ctx, wf, st, &fd, &err);
	if (rc == PERCH_OK && fd >= 0)
		perch_cf_tail_start(&tail, fd);
	perch_state state = {.struct_size = sizeof state};
	err = perch_cf_error();
	rc = perch_cf_call_wait(run, ctx, wf, st, &state, &err);
	if (rc == PERCH_OK && state.exited && state.exit_code == 0 && !state.oom_killed)
		perch_cf_fail(v, "a step with the missing image %s started and succeeded", st->image);
	perch_cf_tail_finish(run, &tail, run->opts->call_timeout_ms,
			     "the tail of a step with a missing image did not reach end of stream");
	perch_cf_tail_free(&tail);
	err = perch_cf_error();
	rc = perch_cf_call_destroy_step(run, wf, st, &err);
	if (rc != PERCH_OK)
		perch_cf_fail(v, "destroy_step failed: %s", perch_cf_why(rc, &err));
out:
	end(run, v, ctx, wf);
}
