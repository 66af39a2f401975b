/*
 * check_resume.c - discover and resume in a fresh instance, the way a
 * restarted (or upgraded) host adopts the workflows a backend still runs.
 *
 * Instance 1 sets up a workflow with two steps: "ended" prints three lines
 * and exits 0 (its log is read to the end, as the host would have), and
 * "running" sleeps a little and exits 3 (started, never tailed: the host
 * went away right after start_step).  Instance 1 is unloaded.  Instance 2
 * must then discover the workflow with both steps, resume "ended" after
 * all but its last line (and deliver exactly that line), resume "running"
 * from the start and report exit code 3, and after destroy_workflow no
 * longer list the workflow.
 */
#include "config.h"

#include "conformance.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct seen {
	const char *task_uuid;
	const perch_cf_step *a, *b;
	bool found, has_a, has_b;
	char problem[256];
} seen;

__attribute__((format(printf, 2, 3))) static void note(seen *s, const char *fmt, ...)
{
	if (s->problem[0] == '\0') {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->problem, sizeof s->problem, fmt, ap);
		va_end(ap);
	}
}

static bool on_workflow(void *user, const perch_discovered_workflow *wf)
{
	seen *s = user;
	if (!PERCH_HAS_FIELD(wf, perch_discovered_workflow, n_steps)) {
		note(s, "a discovered workflow has struct_size too small for its v1 fields");
		return true;
	}
	if (wf->task_uuid == NULL || strcmp(wf->task_uuid, s->task_uuid) != 0)
		return true;
	s->found = true;
	for (size_t i = 0; i < wf->n_steps; i++) {
		const perch_discovered_step *st = wf->steps[i];
		if (st == NULL || !PERCH_HAS_FIELD(st, perch_discovered_step, container_id)) {
			note(s, "a discovered step of %s is NULL or has struct_size too small",
			     s->task_uuid);
			continue;
		}
		if (st->uuid == NULL || st->name == NULL) {
			note(s, "a discovered step of %s has no uuid or name", s->task_uuid);
			continue;
		}
		const perch_cf_step *match = strcmp(st->uuid, s->a->uuid) == 0   ? s->a
					 : strcmp(st->uuid, s->b->uuid) == 0 ? s->b
									     : NULL;
		if (match == NULL)
			continue;
		if (strcmp(st->name, match->name) != 0)
			note(s, "the discovered step %s carries a different name", st->uuid);
		if (match == s->a)
			s->has_a = true;
		else
			s->has_b = true;
	}
	return true;
}

/* Runs discover; fills s.  False (recorded) when the call fails. */
static bool discover(perch_cf_run *run, perch_cf_verdict *v, perch_cf_wf *wf, perch_cf_step *a,
		     perch_cf_step *b, seen *s)
{
	memset(s, 0, sizeof *s);
	s->task_uuid = wf->task_uuid;
	s->a = a;
	s->b = b;
	perch_ctx *ctx = perch_cf_ctx(run);
	perch_error err = perch_cf_error();
	int w = perch_cf_watch_begin(run, run->opts->call_timeout_ms,
				     "discover_workflows did not return within %ld s",
				     (long)(run->opts->call_timeout_ms / 1000));
	perch_status rc = run->plugin->discoverer->discover_workflows(run->plugin->inst, ctx,
								      on_workflow, s, &err);
	perch_cf_watch_end(run, w);
	perch_ctx_free(ctx);
	if (rc != PERCH_OK)
		return perch_cf_fail(v, "discover_workflows failed: %s", perch_cf_why(rc, &err));
	if (s->problem[0])
		return perch_cf_fail(v, "%s", s->problem);
	return true;
}

/* Resumes st, tails it to the end, waits.  Output in *tail (caller frees). */
static bool resume_run(perch_cf_run *run, perch_cf_verdict *v, perch_cf_wf *wf, perch_cf_step *st,
		       const perch_resume_point *from, perch_cf_tail *tail, perch_state *state)
{
	perch_ctx *ctx = perch_cf_ctx(run);
	perch_error err = perch_cf_error();
	bool ok = false;
	int w = perch_cf_watch_begin(run, run->opts->call_timeout_ms,
				     "resume_step of step '%s' did not return within %ld s", st->name,
				     (long)(run->opts->call_timeout_ms / 1000));
	perch_status rc = run->plugin->resumer->resume_step(run->plugin->inst, ctx, &st->step,
							    wf->task_uuid, from, &err);
	perch_cf_watch_end(run, w);
	if (rc != PERCH_OK) {
		perch_cf_fail(v, "a fresh instance could not resume step '%s': %s", st->name,
			      perch_cf_why(rc, &err));
		goto out;
	}
	int fd = -1;
	err = perch_cf_error();
	rc = perch_cf_call_tail(run, ctx, wf, st, &fd, &err);
	if (rc != PERCH_OK || fd < 0) {
		perch_cf_fail(v, "tail_step after resume_step of step '%s' failed: %s", st->name,
			      perch_cf_why(rc, &err));
		goto out;
	}
	if (!perch_cf_tail_start(tail, fd)) {
		perch_cf_fail(v, "internal error: cannot start a reader thread");
		goto out;
	}
	err = perch_cf_error();
	rc = perch_cf_call_wait(run, ctx, wf, st, state, &err);
	char what[PERCH_CF_WHAT_MAX];
	snprintf(what, sizeof what,
		 "the tail of resumed step '%s' did not reach end of stream within %ld s after "
		 "wait_step returned", st->name, (long)(run->opts->call_timeout_ms / 1000));
	perch_cf_tail_finish(run, tail, run->opts->call_timeout_ms, what);
	if (rc != PERCH_OK) {
		perch_cf_fail(v, "wait_step of resumed step '%s' failed: %s", st->name,
			      perch_cf_why(rc, &err));
		goto out;
	}
	ok = true;
out:
	perch_ctx_free(ctx);
	return ok;
}

/* Where the output after its first n lines begins. */
static size_t after_lines(const char *s, size_t len, size_t n)
{
	size_t off = 0;
	while (n > 0 && off < len) {
		const char *nl = memchr(s + off, '\n', len - off);
		if (nl == NULL)
			return len;
		off = (size_t)(nl - s) + 1;
		n--;
	}
	return off;
}

static size_t count_lines(const char *s, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

void perch_cf_check_discover_resume(perch_cf_run *run, perch_cf_verdict *v)
{
	if (!perch_cf_load(run, v))
		return;
	if (run->plugin->discoverer == NULL && run->plugin->resumer == NULL) {
		perch_cf_skip_because(v, "the plugin offers neither %s nor %s",
				      PERCH_CAP_WORKFLOW_DISCOVERER, PERCH_CAP_WORKFLOW_RESUMER);
		perch_cf_call_unload(run);
		return;
	}
	perch_cf_wf *wf = perch_cf_wf_new(run);
	perch_cf_behaviour ended_b = {.say = {"perch-conformance-line-1", "perch-conformance-line-2",
					  "perch-conformance-line-3"}};
	perch_cf_behaviour running_b = {.say = {"perch-conformance-running"},
				    .sleep_s = 2,
				    .exit_code = 3};
	perch_cf_step *a = perch_cf_wf_add(run, wf, "ended", &ended_b);
	perch_cf_step *b = perch_cf_wf_add(run, wf, "running", &running_b);
	perch_ctx *ctx = perch_cf_ctx(run);
	perch_cf_tail first = {0}, again = {0}, tail_b = {0};
	perch_state state_a = {.struct_size = sizeof state_a};
	perch_state state_b = {.struct_size = sizeof state_b};
	perch_error err = perch_cf_error();
	perch_status rc;
	bool set_up = false;
	seen s;

	/* ---- instance 1 ---- */
	rc = perch_cf_call_setup(run, ctx, wf, &err);
	if (rc != PERCH_OK) {
		perch_cf_fail(v, "setup_workflow failed: %s", perch_cf_why(rc, &err));
		goto out;
	}
	set_up = true;
	err = perch_cf_error();
	rc = perch_cf_call_start(run, ctx, wf, a, &err);
	int fd = -1;
	if (rc == PERCH_OK) {
		err = perch_cf_error();
		rc = perch_cf_call_tail(run, ctx, wf, a, &fd, &err);
	}
	if (rc != PERCH_OK || fd < 0) {
		perch_cf_fail(v, "starting and tailing step 'ended' failed: %s", perch_cf_why(rc, &err));
		goto out;
	}
	if (!perch_cf_tail_start(&first, fd)) {
		perch_cf_fail(v, "internal error: cannot start a reader thread");
		goto out;
	}
	perch_cf_tail_finish(run, &first, run->opts->call_timeout_ms,
			     "the tail of step 'ended' (which prints three lines and exits) did not "
			     "reach end of stream");
	err = perch_cf_error();
	rc = perch_cf_call_start(run, ctx, wf, b, &err);
	if (rc != PERCH_OK) {
		perch_cf_fail(v, "start_step of step 'running' failed: %s", perch_cf_why(rc, &err));
		goto out;
	}
	/* The host goes away: instance 1 is unloaded with both steps alive. */
	perch_cf_call_unload(run);

	/* ---- instance 2 ---- */
	char *lerr = NULL;
	if (perch_cf_call_load(run, run->root, &lerr) != 0) {
		perch_cf_fail(v, "loading a fresh instance failed: %s", lerr);
		free(lerr);
		set_up = false; /* no instance to destroy it with */
		goto out;
	}
	if (run->plugin->discoverer) {
		if (!discover(run, v, wf, a, b, &s))
			goto out;
		if (!s.found) {
			perch_cf_fail(v, "a fresh instance did not discover workflow %s that the previous "
				      "instance set up (does the backend need a flag to keep state, such "
				      "as --flag backend-dummy-state-dir=DIR?)", wf->task_uuid);
			goto out;
		}
		if (!s.has_a || !s.has_b) {
			perch_cf_fail(v, "a fresh instance discovered workflow %s without its step '%s'",
				      wf->task_uuid, s.has_a ? "running" : "ended");
			goto out;
		}
	}
	if (run->plugin->resumer) {
		/* "ended": the host has all but the last line. */
		size_t lines = count_lines(first.buf, first.len);
		size_t keep = lines > 0 ? lines - 1 : 0;
		size_t off = after_lines(first.buf, first.len, keep);
		perch_resume_point from = {
			.struct_size = sizeof from,
			.bytes_seen = off,
			.lines_seen = keep,
			.last_output_unix_ns = perch_real_ns(),
		};
		if (!resume_run(run, v, wf, a, &from, &again, &state_a))
			goto out;
		perch_cf_expect_exit(v, a, PERCH_OK, &state_a, 0);
		const char *want = first.buf + off;
		if (v->result != PERCH_CF_FAIL && strcmp(again.buf, want) != 0) {
			if (first.len && strcmp(again.buf, first.buf) == 0)
				perch_cf_fail(v, "the resumed tail of step 'ended' repeated the %zu lines "
					      "the host already had (resume point: lines_seen %zu, "
					      "bytes_seen %zu)", keep, keep, off);
			else
				perch_cf_fail(v, "the resumed tail of step 'ended' delivered \"%.60s\" "
					      "(%zu bytes); expected what follows the resume point: "
					      "\"%.60s\" (%zu bytes)", again.buf, again.len, want,
					      strlen(want));
		}
		err = perch_cf_error();
		rc = perch_cf_call_destroy_step(run, wf, a, &err);
		if (rc != PERCH_OK)
			perch_cf_fail(v, "destroy_step of resumed step 'ended' failed: %s",
				      perch_cf_why(rc, &err));
		/* "running": the host has nothing of it. */
		if (resume_run(run, v, wf, b, NULL, &tail_b, &state_b)) {
			perch_cf_expect_exit(v, b, PERCH_OK, &state_b, 3);
			if (v->result != PERCH_CF_FAIL &&
			    !strstr(tail_b.buf, running_b.say[0]))
				perch_cf_fail(v, "the resumed tail of step 'running' lacks \"%s\"",
					      running_b.say[0]);
		}
		err = perch_cf_error();
		rc = perch_cf_call_destroy_step(run, wf, b, &err);
		if (rc != PERCH_OK)
			perch_cf_fail(v, "destroy_step of resumed step 'running' failed: %s",
				      perch_cf_why(rc, &err));
	}
	err = perch_cf_error();
	rc = perch_cf_call_destroy_workflow(run, wf, &err);
	set_up = false;
	if (rc != PERCH_OK)
		perch_cf_fail(v, "destroy_workflow in the fresh instance failed: %s",
			      perch_cf_why(rc, &err));
	if (run->plugin->discoverer && v->result != PERCH_CF_FAIL && discover(run, v, wf, a, b, &s) &&
	    s.found)
		perch_cf_fail(v, "after destroy_workflow, discover_workflows still lists %s "
			      "(destroy_workflow must remove everything so the task uuid can be reused)",
			      wf->task_uuid);
out:
	if (set_up && run->plugin->loaded) {
		err = perch_cf_error();
		perch_cf_call_destroy_workflow(run, wf, &err);
	}
	perch_cf_tail_free(&first);
	perch_cf_tail_free(&again);
	perch_cf_tail_free(&tail_b);
	perch_cf_wf_free(wf);
	perch_ctx_free(ctx);
	if (run->plugin->loaded)
		perch_cf_call_unload(run);
}
