/*
 * harness.c - the child's side of a check: verdicts, the watchdog, the
 * plugin calls (each watched), workflows and steps built the way the host
 * builds them, tail readers and step runners that follow the host's
 * runtime order (start -> tail -> wait -> end of stream -> destroy).
 */
#include "config.h"

#include "conformance.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- verdicts ------------------------------------------------------- */

bool perch_cf_fail(perch_cf_verdict *v, const char *fmt, ...)
{
	if (v->result != PERCH_CF_FAIL) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(v->reason, sizeof v->reason, fmt, ap);
		va_end(ap);
		v->result = PERCH_CF_FAIL;
		/* One line: the report is one line per check. */
		for (char *p = v->reason; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	return false;
}

void perch_cf_skip_because(perch_cf_verdict *v, const char *fmt, ...)
{
	if (v->result == PERCH_CF_FAIL)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof v->reason, fmt, ap);
	va_end(ap);
	v->result = PERCH_CF_SKIP;
}

/* ---- watchdog ------------------------------------------------------- */

int perch_cf_watch_begin(perch_cf_run *run, int64_t bound_ms, const char *fmt, ...)
{
	for (int i = 0; i < PERCH_CF_WATCH_SLOTS; i++) {
		perch_cf_watch_slot *s = &run->shared->slots[i];
		int expected = 0;
		if (!__atomic_compare_exchange_n(&s->state, &expected, 1, false, __ATOMIC_ACQ_REL,
						 __ATOMIC_ACQUIRE))
			continue;
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->what, sizeof s->what, fmt, ap);
		va_end(ap);
		s->deadline_ms = perch_mono_ms() + bound_ms;
		/* Published last: the parent reads what and deadline only
		 * after it sees state 2. */
		__atomic_store_n(&s->state, 2, __ATOMIC_RELEASE);
		return i;
	}
	return -1;
}

void perch_cf_watch_end(perch_cf_run *run, int slot)
{
	if (slot >= 0)
		__atomic_store_n(&run->shared->slots[slot].state, 0, __ATOMIC_RELEASE);
}

static long secs(int64_t ms)
{
	return (long)((ms + 999) / 1000);
}

/* ---- contexts, errors ----------------------------------------------- */

perch_error perch_cf_error(void)
{
	perch_error e;
	memset(&e, 0, sizeof e);
	e.struct_size = sizeof e;
	return e;
}

perch_ctx *perch_cf_ctx(perch_cf_run *run)
{
	return perch_ctx_new(run->root);
}

perch_ctx *perch_cf_cleanup_ctx(perch_cf_run *run)
{
	return perch_ctx_new_timeout(run->root, run->opts->call_timeout_ms);
}

const char *perch_cf_why(perch_status st, const perch_error *err)
{
	static __thread char buf[PERCH_ERROR_MESSAGE_MAX + 32];
	if (err != NULL && err->message[0])
		snprintf(buf, sizeof buf, "%s: %s", perch_status_name(st), err->message);
	else
		snprintf(buf, sizeof buf, "%s (no message)", perch_status_name(st));
	return buf;
}

/* ---- workflows and steps -------------------------------------------- */

void perch_cf_wf_names(perch_cf_wf *wf)
{
	/* What Woodpecker's server sends: a network and a volume per task. */
	snprintf(wf->network, sizeof wf->network, "wp_%s_default", wf->task_uuid);
	snprintf(wf->volume, sizeof wf->volume, "wp_%s_default", wf->task_uuid);
	wf->config.network = wf->network;
	wf->config.volume = wf->volume;
}

perch_cf_wf *perch_cf_wf_new(perch_cf_run *run)
{
	perch_cf_wf *wf = perch_xcalloc(1, sizeof *wf);
	unsigned n = __atomic_add_fetch(&run->seq, 1, __ATOMIC_RELAXED);
	/* A path component and a container-name-safe string: the dummy keeps
	 * folders by task uuid, docker names things after it. */
	snprintf(wf->task_uuid, sizeof wf->task_uuid, "conformance-%s-%ld-%u", run->check,
		 (long)getpid(), n);
	perch_cf_wf_names(wf);
	wf->config.struct_size = sizeof wf->config;
	wf->stage.struct_size = sizeof wf->stage;
	wf->stage.steps = wf->step_ptrs;
	wf->stages[0] = &wf->stage;
	wf->config.stages = wf->stages;
	wf->config.n_stages = 0; /* a stage appears with its first step */
	return wf;
}

perch_cf_step *perch_cf_wf_add(perch_cf_run *run, perch_cf_wf *wf, const char *name,
			       const perch_cf_behaviour *b)
{
	if (wf->n_steps == PERCH_CF_MAX_STEPS) {
		fprintf(stderr, "perch-conformance: internal error: too many steps\n");
		abort();
	}
	perch_cf_step *st = perch_xcalloc(1, sizeof *st);
	perch_step *s = &st->step;
	snprintf(st->name, sizeof st->name, "%s", name);
	snprintf(st->uuid, sizeof st->uuid, "%s-%zu", wf->task_uuid, wf->n_steps + 1);
	snprintf(st->image, sizeof st->image, "%s", run->opts->image);
	s->struct_size = sizeof *s;
	s->name = st->name;
	s->uuid = st->uuid;
	s->type = PERCH_STEP_COMMANDS;
	s->image = st->image;
	s->working_dir = "";
	s->workspace_base = "";
	s->failure = PERCH_FAILURE_FAIL;
	s->on_success = true;
	s->auth_config.username = "";
	s->auth_config.password = "";
	s->network_mode = "";
	s->backend_options = "";
	s->container_name_scheme = "";
	s->environment.items = st->env;
	s->commands.items = st->cmds;
	for (size_t i = 0; i < run->opts->n_env; i++) {
		st->env[i].key = run->opts->env_key[i];
		st->env[i].value = run->opts->env_value[i];
	}
	s->environment.len = run->opts->n_env;
	st->n_env_fixed = run->opts->n_env;
	if (b)
		run->profile->express(st, b);
	wf->steps[wf->n_steps] = st;
	wf->step_ptrs[wf->n_steps] = s;
	wf->n_steps++;
	wf->stage.n_steps = wf->n_steps;
	wf->config.n_stages = 1;
	return st;
}

void perch_cf_wf_free(perch_cf_wf *wf)
{
	if (wf == NULL)
		return;
	for (size_t i = 0; i < wf->n_steps; i++)
		free(wf->steps[i]);
	free(wf);
}

void perch_cf_step_add_cmd(perch_cf_step *st, const char *fmt, ...)
{
	size_t n = st->step.commands.len;
	if (n == PERCH_CF_MAX_CMDS)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->cmd_buf[n], sizeof st->cmd_buf[n], fmt, ap);
	va_end(ap);
	st->cmds[n] = st->cmd_buf[n];
	st->step.commands.len = n + 1;
}

void perch_cf_step_set_env(perch_cf_step *st, const char *key, const char *fmt, ...)
{
	size_t n = st->step.environment.len, i;
	/* Keys are unique in a perch_map: the profile overrides. */
	for (i = 0; i < n; i++)
		if (strcmp(st->env[i].key, key) == 0)
			break;
	if (i == PERCH_CF_MAX_ENV)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->env_buf[i], sizeof st->env_buf[i], fmt, ap);
	va_end(ap);
	st->env[i].key = key;
	st->env[i].value = st->env_buf[i];
	if (i == n)
		st->step.environment.len = n + 1;
}

/* ---- watched plugin calls ------------------------------------------ */

#define BOUND(run) ((run)->opts->call_timeout_ms)
#define ENTRY(run) ((run)->plugin->entry)
#define INST(run) ((run)->plugin->inst)

bool perch_cf_call_available(perch_cf_run *run, const perch_ctx *ctx, perch_error *why)
{
	int w = perch_cf_watch_begin(run, BOUND(run), "is_available did not return within %ld s",
				     secs(BOUND(run)));
	bool ok = ENTRY(run)->is_available(&run->plugin->table, ctx, why);
	perch_cf_watch_end(run, w);
	return ok;
}

int perch_cf_call_load(perch_cf_run *run, const perch_ctx *ctx, char **err)
{
	int w = perch_cf_watch_begin(run, BOUND(run), "load did not return within %ld s",
				     secs(BOUND(run)));
	int rc = perch_plugin_load(run->plugin, ctx, err);
	perch_cf_watch_end(run, w);
	return rc;
}

void perch_cf_call_unload(perch_cf_run *run)
{
	int w = perch_cf_watch_begin(run, BOUND(run), "unload did not return within %ld s",
				     secs(BOUND(run)));
	perch_plugin_unload(run->plugin);
	perch_cf_watch_end(run, w);
}

bool perch_cf_load(perch_cf_run *run, perch_cf_verdict *v)
{
	char *err = NULL;
	if (perch_cf_call_load(run, run->root, &err) != 0) {
		perch_cf_fail(v, "%s", err);
		free(err);
		return false;
	}
	return true;
}

perch_status perch_cf_call_setup(perch_cf_run *run, const perch_ctx *ctx, perch_cf_wf *wf,
				 perch_error *err)
{
	int w = perch_cf_watch_begin(run, BOUND(run),
				     "setup_workflow of %s did not return within %ld s", wf->task_uuid,
				     secs(BOUND(run)));
	perch_status st = ENTRY(run)->setup_workflow(INST(run), ctx, &wf->config, wf->task_uuid,
						     err);
	perch_cf_watch_end(run, w);
	return st;
}

perch_status perch_cf_call_start(perch_cf_run *run, const perch_ctx *ctx, perch_cf_wf *wf,
				 perch_cf_step *st, perch_error *err)
{
	int w = perch_cf_watch_begin(run, BOUND(run),
				     "start_step of step '%s' did not return within %ld s", st->name,
				     secs(BOUND(run)));
	perch_status rc = ENTRY(run)->start_step(INST(run), ctx, &st->step, wf->task_uuid, err);
	perch_cf_watch_end(run, w);
	return rc;
}

perch_status perch_cf_call_tail(perch_cf_run *run, const perch_ctx *ctx, perch_cf_wf *wf,
				perch_cf_step *st, int *fd, perch_error *err)
{
	int w = perch_cf_watch_begin(run, BOUND(run),
				     "tail_step of step '%s' did not return within %ld s", st->name,
				     secs(BOUND(run)));
	perch_status rc = ENTRY(run)->tail_step(INST(run), ctx, &st->step, wf->task_uuid, fd,
						err);
	perch_cf_watch_end(run, w);
	return rc;
}

perch_status perch_cf_call_wait(perch_cf_run *run, const perch_ctx *ctx, perch_cf_wf *wf,
				perch_cf_step *st, perch_state *state, perch_error *err)
{
	int w = perch_cf_watch_begin(run, BOUND(run),
				     "wait_step of step '%s' did not return within %ld s", st->name,
				     secs(BOUND(run)));
	perch_status rc = ENTRY(run)->wait_step(INST(run), ctx, &st->step, wf->task_uuid, state,
						err);
	perch_cf_watch_end(run, w);
	return rc;
}

perch_status perch_cf_call_destroy_step(perch_cf_run *run, perch_cf_wf *wf, perch_cf_step *st,
					perch_error *err)
{
	perch_ctx *ctx = perch_cf_cleanup_ctx(run);
	int w = perch_cf_watch_begin(run, BOUND(run) + 5000,
				     "destroy_step of step '%s' did not return within %ld s (its "
				     "cleanup context expired after %ld s)",
				     st->name, secs(BOUND(run) + 5000), secs(BOUND(run)));
	perch_status rc = ENTRY(run)->destroy_step(INST(run), ctx, &st->step, wf->task_uuid, err);
	perch_cf_watch_end(run, w);
	perch_ctx_free(ctx);
	return rc;
}

static perch_status destroy_workflow(perch_cf_run *run, const perch_config *config,
				     const char *task_uuid, perch_error *err)
{
	perch_ctx *ctx = perch_cf_cleanup_ctx(run);
	int w = perch_cf_watch_begin(run, BOUND(run) + 5000,
				     "destroy_workflow of %s did not return within %ld s (its cleanup "
				     "context expired after %ld s)",
				     task_uuid, secs(BOUND(run) + 5000), secs(BOUND(run)));
	perch_status rc = ENTRY(run)->destroy_workflow(INST(run), ctx, config, task_uuid, err);
	perch_cf_watch_end(run, w);
	perch_ctx_free(ctx);
	return rc;
}

perch_status perch_cf_call_destroy_workflow(perch_cf_run *run, perch_cf_wf *wf, perch_error *err)
{
	return destroy_workflow(run, &wf->config, wf->task_uuid, err);
}

perch_status perch_cf_call_destroy_task(perch_cf_run *run, const char *task_uuid, perch_error *err)
{
	/* What the host passes after a setup that failed: the workflow's
	 * config, here one without steps. */
	perch_cf_wf wf;
	memset(&wf, 0, sizeof wf);
	snprintf(wf.task_uuid, sizeof wf.task_uuid, "%s", task_uuid);
	perch_cf_wf_names(&wf);
	wf.config.struct_size = sizeof wf.config;
	return destroy_workflow(run, &wf.config, task_uuid, err);
}

/* ---- tail readers ---------------------------------------------------- */

static void *tail_main(void *arg)
{
	perch_cf_tail *t = arg;
	char chunk[16384];
	for (;;) {
		ssize_t n = read(t->fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			t->read_errno = errno;
			return NULL;
		}
		if (n == 0)
			return NULL;
		size_t keep = (size_t)n;
		if (t->len + keep > PERCH_CF_TAIL_KEEP)
			keep = PERCH_CF_TAIL_KEEP - t->len;
		memcpy(t->buf + t->len, chunk, keep);
		t->len += keep;
		t->buf[t->len] = '\0';
	}
}

bool perch_cf_tail_start(perch_cf_tail *t, int fd)
{
	memset(t, 0, sizeof *t);
	t->fd = fd;
	t->buf = perch_xcalloc(1, PERCH_CF_TAIL_KEEP + 1);
	if (pthread_create(&t->thread, NULL, tail_main, t) != 0) {
		close(fd);
		t->fd = -1;
		return false;
	}
	t->started = true;
	return true;
}

void perch_cf_tail_finish(perch_cf_run *run, perch_cf_tail *t, int64_t bound_ms, const char *what)
{
	if (!t->started || t->joined)
		return;
	int w = perch_cf_watch_begin(run, bound_ms, "%s", what);
	pthread_join(t->thread, NULL);
	perch_cf_watch_end(run, w);
	t->joined = true;
	close(t->fd);
	t->fd = -1;
}

void perch_cf_tail_free(perch_cf_tail *t)
{
	free(t->buf);
	t->buf = NULL;
}

/* ---- step runners ---------------------------------------------------- */

void perch_cf_step_run_init(perch_cf_step_run *sr, perch_cf_run *run, perch_cf_wf *wf,
			    perch_cf_step *st)
{
	memset(sr, 0, sizeof *sr);
	sr->run = run;
	sr->wf = wf;
	sr->st = st;
	sr->state.struct_size = sizeof sr->state;
	sr->wait_status = -1;
}

void perch_cf_step_run_sync(perch_cf_step_run *sr)
{
	perch_cf_run *run = sr->run;
	perch_cf_verdict *v = &sr->v;
	const char *name = sr->st->name;
	perch_ctx *ctx = perch_cf_ctx(run);
	perch_error err = perch_cf_error();
	int fd = -1;

	perch_status st = perch_cf_call_start(run, ctx, sr->wf, sr->st, &err);
	if (st != PERCH_OK) {
		perch_cf_fail(v, "start_step of step '%s' failed: %s", name, perch_cf_why(st, &err));
		goto destroy;
	}
	err = perch_cf_error();
	st = perch_cf_call_tail(run, ctx, sr->wf, sr->st, &fd, &err);
	if (st != PERCH_OK || fd < 0) {
		if (st != PERCH_OK)
			perch_cf_fail(v, "tail_step of step '%s' failed: %s", name, perch_cf_why(st, &err));
		else
			perch_cf_fail(v, "tail_step of step '%s' returned ok but no descriptor", name);
		if (fd >= 0)
			close(fd);
		goto destroy;
	}
	int fl = fcntl(fd, F_GETFD);
	if (fl < 0) {
		perch_cf_fail(v, "tail_step of step '%s' returned %d, which is not an open descriptor",
			      name, fd);
		goto destroy;
	}
	if (!(fl & FD_CLOEXEC))
		perch_cf_fail(v, "the tail descriptor of step '%s' lacks O_CLOEXEC (every process the "
			      "host starts would inherit it)", name);
	if (!perch_cf_tail_start(&sr->tail, fd)) {
		perch_cf_fail(v, "internal error: cannot start a reader thread");
		goto destroy;
	}
	err = perch_cf_error();
	sr->wait_status = perch_cf_call_wait(run, ctx, sr->wf, sr->st, &sr->state, &err);
	if (sr->wait_status != PERCH_OK)
		perch_cf_fail(v, "wait_step of step '%s' failed: %s", name,
			      perch_cf_why(sr->wait_status, &err));
	char what[PERCH_CF_WHAT_MAX];
	snprintf(what, sizeof what,
		 "the tail of step '%s' did not reach end of stream within %ld s after wait_step "
		 "returned", name, secs(run->opts->call_timeout_ms));
	perch_cf_tail_finish(run, &sr->tail, run->opts->call_timeout_ms, what);
	if (sr->tail.read_errno)
		perch_cf_fail(v, "reading the tail of step '%s' failed: %s", name,
			      strerror(sr->tail.read_errno));
destroy:
	err = perch_cf_error();
	st = perch_cf_call_destroy_step(run, sr->wf, sr->st, &err);
	if (st != PERCH_OK)
		perch_cf_fail(v, "destroy_step of step '%s' failed: %s", name, perch_cf_why(st, &err));
	perch_ctx_free(ctx);
}

static void *step_run_main(void *arg)
{
	perch_cf_step_run_sync(arg);
	return NULL;
}

bool perch_cf_step_run_async(perch_cf_step_run *sr)
{
	return pthread_create(&sr->thread, NULL, step_run_main, sr) == 0;
}

void perch_cf_step_run_join(perch_cf_step_run *sr)
{
	/* Every call inside is watched already. */
	pthread_join(sr->thread, NULL);
}

void perch_cf_step_run_free(perch_cf_step_run *sr)
{
	if (sr->tail.started && !sr->tail.joined) {
		/* Only reached when the step run gave up early. */
		perch_cf_tail_finish(sr->run, &sr->tail, sr->run->opts->call_timeout_ms,
				     "a tail descriptor did not reach end of stream after the step "
				     "was destroyed");
	}
	perch_cf_tail_free(&sr->tail);
}

/* ---- async waits ----------------------------------------------------- */

static void *async_wait_main(void *arg)
{
	perch_cf_async_wait *aw = arg;
	aw->status = perch_cf_call_wait(aw->run, aw->ctx, aw->wf, aw->st, &aw->state, &aw->err);
	return NULL;
}

bool perch_cf_async_wait_start(perch_cf_async_wait *aw, perch_cf_run *run, const perch_ctx *ctx,
			       perch_cf_wf *wf, perch_cf_step *st)
{
	memset(aw, 0, sizeof *aw);
	aw->run = run;
	aw->ctx = ctx;
	aw->wf = wf;
	aw->st = st;
	aw->state.struct_size = sizeof aw->state;
	aw->err = perch_cf_error();
	aw->status = -1;
	aw->started = pthread_create(&aw->thread, NULL, async_wait_main, aw) == 0;
	return aw->started;
}

void perch_cf_async_wait_join(perch_cf_async_wait *aw, int64_t bound_ms, const char *what)
{
	if (!aw->started)
		return;
	int w = perch_cf_watch_begin(aw->run, bound_ms, "%s", what);
	pthread_join(aw->thread, NULL);
	perch_cf_watch_end(aw->run, w);
	aw->started = false;
}

/* ---- small things ---------------------------------------------------- */

bool perch_cf_expect_exit(perch_cf_verdict *v, const perch_cf_step *st, perch_status wait_status,
			  const perch_state *state, int code)
{
	if (wait_status != PERCH_OK)
		return false; /* reported by the runner */
	if (!state->exited)
		return perch_cf_fail(v, "step '%s' (expected exit code %d): wait_step returned ok but "
				     "state.exited is false", st->name, code);
	if (state->oom_killed)
		return perch_cf_fail(v, "step '%s' (expected exit code %d) was reported OOM-killed",
				     st->name, code);
	if (state->exit_code != code)
		return perch_cf_fail(v, "step '%s' reported exit code %d, expected %d", st->name,
				     state->exit_code, code);
	return true;
}

void perch_cf_pause_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}
