/* runtime.c - see runtime.h. */
#include "config.h"

#include "ctx.h"
#include "logpipe.h"
#include "runtime.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define DEFAULT_STACK (512 * 1024)
#define LOG_STACK (256 * 1024)

struct run;

/* A plugin call in flight, as the watchdog sees it.  All under run->lock. */
struct call {
	const char *name;    /* "wait_step", ...; NULL: no call in flight */
	bool wf;             /* made with the workflow's context */
	int64_t deadline_ms; /* its own context's deadline (cleanup calls) */
	bool in_ctl;         /* made inside a ctl_enter section */
	bool stuck;          /* given up on: its thread is no longer ours */
};

/* setup_workflow and destroy_workflow, made on a thread of their own so
 * that the run's thread can give up on them. */
struct wcall {
	struct run *run;
	struct call call;
	perch_ctx *ctx;
	bool setup;          /* setup_workflow, else destroy_workflow */
	bool done;           /* under run->lock */
	perch_status st;
	perch_error e;
	pthread_t thread;
};

struct step_run {
	struct run *run;
	perch_step_result *res;
	const perch_step *step;
	size_t index;        /* in workflow order */
	perch_step_plan plan;
	uint64_t lines_base; /* RESUME: log lines the host already has */
	struct step_run **deps;
	size_t n_deps;
	/* scheduling, under run->lock */
	bool launched;
	bool released; /* the stage may move on: ended, or a detached step started */
	bool ended;    /* the step is over (result final) */
	bool thread_started;
	pthread_t thread;
	/* log reading */
	int fd;
	int stop_fd; /* eventfd: stop reading, the stream lingered too long */
	perch_logstream *ls;
	pthread_t log_thread;
	bool log_thread_started;
	atomic_llong last_read_ms;
	bool log_done; /* under run->lock */
	/* The plugin call in flight on the step's thread, for the watchdog
	 * (under run->lock; see "stuck calls" below). */
	struct call call;
	bool finished; /* step_main is done with everything: join it */
};

struct run {
	const perch_run_opts *o;
	perch_run_result *out;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct step_run *steps;
	size_t n;
	bool failed;          /* a non-ignored failure happened (earlier stages) */
	size_t running;       /* step threads not yet released (under lock) */
	bool self_cancelled;  /* failure: cancel cancelled the workflow */
	atomic_bool ending;   /* destroy_workflow has begun: services are being stopped */
	atomic_bool cleanup_failed; /* a destroy call failed: something may be left */
	perch_run_control *ctl; /* may be NULL */
	/* The watchdog's clock (run thread only): when it first saw the
	 * workflow cancelled, cleanup cut short (a second signal), and
	 * destroy_workflow return; 0: not yet. */
	int64_t wf_cancel_ms, cut_ms, ended_ms;
	size_t n_stuck;       /* calls given up on (under lock) */
	struct wcall setup, teardown;
};

/* ---- abandoning ------------------------------------------------------------ */

struct perch_run_control {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool abandoned;
	unsigned busy; /* calls and hooks in flight that abandon must wait for */
};

perch_run_control *perch_run_control_new(void)
{
	perch_run_control *c = perch_xcalloc(1, sizeof *c);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	return c;
}

void perch_run_control_free(perch_run_control *c)
{
	if (c == NULL)
		return;
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

void perch_run_abandon(perch_run_control *c)
{
	pthread_mutex_lock(&c->lock);
	c->abandoned = true;
	while (c->busy > 0)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
}

bool perch_run_abandoned(const perch_run_control *c)
{
	if (c == NULL)
		return false;
	pthread_mutex_lock((pthread_mutex_t *)&c->lock);
	bool a = c->abandoned;
	pthread_mutex_unlock((pthread_mutex_t *)&c->lock);
	return a;
}

/* Enters a section that abandon waits for; false (and nothing entered) once
 * the run is abandoned. */
static bool ctl_enter(perch_run_control *c)
{
	if (c == NULL)
		return true;
	pthread_mutex_lock(&c->lock);
	bool ok = !c->abandoned;
	if (ok)
		c->busy++;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static void ctl_leave(perch_run_control *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	if (--c->busy == 0)
		pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static bool abandoned(const struct run *r) { return perch_run_abandoned(r->ctl); }

const char *perch_run_status_name(perch_run_status s)
{
	switch (s) {
	case PERCH_RUN_SUCCESS: return "success";
	case PERCH_RUN_FAILURE: return "failure";
	case PERCH_RUN_KILLED: return "killed";
	case PERCH_RUN_ERROR: return "error";
	}
	return "error";
}

__attribute__((format(printf, 3, 4))) static void say(const struct run *r, int level,
						       const char *fmt, ...)
{
	if (level > r->o->log_level)
		return;
	perch_buf b = {0};
	va_list ap;
	perch_buf_puts(&b, "perch: ");
	if (r->o->log_tag)
		perch_buf_printf(&b, "%s: ", r->o->log_tag);
	va_start(ap, fmt);
	perch_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* Secrets may appear in a plugin's error text: mask what we print. */
	size_t n = 0;
	char *masked = perch_masker_mask(r->o->masker, b.data, b.len, &n);
	perch_buf_free(&b);
	masked = perch_xrealloc(masked, n + 2);
	masked[n++] = '\n';
	perch_write_all(2, masked, n); /* one write: lines never interleave */
	free(masked);
}

static perch_error new_error(void)
{
	perch_error e;
	memset(&e, 0, sizeof e);
	e.struct_size = sizeof e;
	return e;
}

static char *error_text(const perch_error *e, perch_status st)
{
	if (e->message[0])
		return perch_xstrndup(e->message, strnlen(e->message, sizeof e->message));
	return perch_xasprintf("%s (status %d)", perch_status_name(st), st);
}

/* The step's own fault (bad input, missing image or shell) fails the step;
 * anything else is the infrastructure's. */
static bool is_infra(perch_status st)
{
	return !(st == PERCH_ERR_INVALID_INPUT || st == PERCH_ERR_NOT_FOUND ||
		 st == PERCH_ERR_UNSUPPORTED);
}

static bool wf_cancelled(const struct run *r) { return perch_ctx_cancelled(r->o->wf_ctx); }

static perch_ctx *cleanup_ctx(const struct run *r)
{
	return perch_ctx_new_timeout(r->o->cleanup_parent, r->o->cleanup_timeout_ms);
}

/* ---- stuck calls ---------------------------------------------------------- */
/*
 * A plugin must return promptly once a call's context is cancelled
 * (backend.h).  One that does not would wedge the run for good: a thread
 * cannot be killed.  So the run's thread watches every plugin call in
 * flight and gives up on one that is overdue: PERCH_CALL_GRACE_MS after the
 * workflow was cancelled or the call's context passed its deadline, or
 * PERCH_CALL_CUT_MS after cleanup was cut short (a second signal).
 *
 * Giving up means: one line names the call; the step (or the setup or
 * teardown) ends with an error; the run goes on without the thread; and the
 * thread, should the call ever return, exits touching nothing but the run's
 * lock.  What the call may still be using is never freed: the run's own
 * memory is kept, the plugin is pinned (never unloaded), and
 * out->abandoned_calls tells the caller to keep the workflow and contexts.
 */

/* Marks a plugin call in flight (on the thread about to make it). */
static void call_begin(struct run *r, struct call *c, const char *name, bool wf,
		       const perch_ctx *ctx, bool in_ctl)
{
	pthread_mutex_lock(&r->lock);
	c->name = name;
	c->wf = wf;
	c->deadline_ms = perch_ctx_deadline_ms(ctx);
	c->in_ctl = in_ctl;
	pthread_mutex_unlock(&r->lock);
}

/* The call returned.  False: the watchdog gave up on it meanwhile, and the
 * calling thread must return at once, touching nothing. */
static bool call_end(struct run *r, struct call *c)
{
	pthread_mutex_lock(&r->lock);
	bool stuck = c->stuck;
	if (!stuck)
		c->name = NULL;
	pthread_mutex_unlock(&r->lock);
	return !stuck;
}

/* When the watchdog gives up on call c (INT64_MAX: not yet foreseeable),
 * and why: "<grace> after <what>".  Run thread, r->lock held.  A call made
 * with the workflow's context counts from the cancellation the run saw
 * (a --timeout is one), a cleanup call from its own deadline. */
static int64_t overdue_at(const struct run *r, const struct call *c, int64_t *grace,
			  const char **what)
{
	int64_t at = INT64_MAX, t;
	*grace = 0;
	*what = "";
	if (!c->wf && c->deadline_ms != INT64_MAX &&
	    (t = c->deadline_ms + PERCH_CALL_GRACE_MS) < at)
		at = t, *grace = PERCH_CALL_GRACE_MS, *what = "its cleanup deadline";
	if (c->wf && r->wf_cancel_ms && (t = r->wf_cancel_ms + PERCH_CALL_GRACE_MS) < at)
		at = t, *grace = PERCH_CALL_GRACE_MS, *what = "the workflow was cancelled";
	if (c->wf && r->ended_ms &&
	    (t = r->ended_ms + r->o->cleanup_timeout_ms + PERCH_CALL_GRACE_MS) < at)
		at = t, *grace = r->o->cleanup_timeout_ms + PERCH_CALL_GRACE_MS,
		*what = "destroy_workflow stopped the step";
	if (r->cut_ms && (t = r->cut_ms + PERCH_CALL_CUT_MS) < at)
		at = t, *grace = PERCH_CALL_CUT_MS, *what = "cleanup was cut short";
	return at;
}

/* The run's thread notes when cancellation happened.  r->lock held. */
static void watch_clock(struct run *r)
{
	int64_t now = perch_mono_ms();
	if (!r->wf_cancel_ms && perch_ctx_cancelled(r->o->wf_ctx))
		r->wf_cancel_ms = now;
	if (!r->cut_ms && r->o->cleanup_parent && perch_ctx_cancelled(r->o->cleanup_parent))
		r->cut_ms = now;
}

/* Waits on r->cond (r->lock held) for at most ms. */
static void cond_wait_ms(struct run *r, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_cond_timedwait(&r->cond, &r->lock, &ts);
}

/* One watchdog tick: long while nothing is cancelled (a call can only be
 * overdue through a deadline then), short once something is, so that the
 * grace periods hold to a tenth of a second. */
static void tick_wait(struct run *r)
{
	int64_t ms = r->wf_cancel_ms || r->cut_ms || r->ended_ms ? 100 : 1000;
	/* A --timeout is a cancellation the run can see coming. */
	int64_t until = perch_ctx_deadline_ms(r->o->wf_ctx) - perch_mono_ms();
	if (until >= 0 && until < ms)
		ms = until + 1;
	cond_wait_ms(r, ms);
}

/* ---- logs ---------------------------------------------------------------- */

static int64_t log_clock(void *arg)
{
	struct step_run *s = arg;
	int64_t now = perch_mono_ms();
	atomic_store(&s->last_read_ms, now);
	return now;
}

static void *log_main(void *arg)
{
	struct step_run *s = arg;
	char *err = NULL;
	if (perch_logstream_pump_fd(s->ls, s->fd, s->stop_fd, log_clock, s, &err) < 0) {
		say(s->run, PERCH_LOG_WARN, "step \"%s\": reading its log failed: %s",
		    s->step->name, err);
		free(err);
	}
	/* The output may end long before the step does: let the sinks have
	 * it now rather than when the step ends. */
	perch_logstream_flush(s->ls, perch_mono_ms());
	pthread_mutex_lock(&s->run->lock);
	s->log_done = true;
	pthread_cond_broadcast(&s->run->cond);
	pthread_mutex_unlock(&s->run->lock);
	return NULL;
}

static bool start_log(struct step_run *s, int64_t start_ms)
{
	char *err = NULL;
	s->ls = perch_logstream_new(s->run->o->masker, s->step->name, s->step->uuid,
				    start_ms, s->run->o->sinks, s->run->o->n_sinks, &err);
	if (s->ls == NULL) {
		say(s->run, PERCH_LOG_ERROR, "step \"%s\": %s", s->step->name, err);
		s->res->error = err;
		s->res->infra_error = true;
		return false;
	}
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	atomic_store(&s->last_read_ms, perch_mono_ms());
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, LOG_STACK);
	s->log_thread_started = s->stop_fd >= 0 &&
				pthread_create(&s->log_thread, &attr, log_main, s) == 0;
	pthread_attr_destroy(&attr);
	if (!s->log_thread_started) {
		/* Without a reader the step could block on a full pipe: fail
		 * it as an infrastructure error rather than hang. */
		s->res->error = perch_xstrdup("cannot start a log reader thread");
		s->res->infra_error = true;
		return false;
	}
	return true;
}

/* How long finish_log reads a step's stream after the step ended. */
enum log_budget {
	LOG_UNTIL_SILENT, /* to its end, unless silent for PERCH_LOG_LINGER_MS */
	LOG_LINGER,       /* at most PERCH_LOG_LINGER_MS in all */
	LOG_NOW,          /* stop at once (the step was given up on) */
};

/* After the step ended: wait for end of stream, but close a stream that
 * stays silent for PERCH_LOG_LINGER_MS.  A cancelled step has not ended in
 * the backend (destroy_step, which comes after this, ends it), so its
 * stream may never fall silent: it gets LOG_LINGER. */
static void finish_log(struct step_run *s, enum log_budget budget)
{
	struct run *r = s->run;
	if (s->log_thread_started) {
		int64_t now = perch_mono_ms();
		int64_t cut_at = budget == LOG_NOW      ? now
				 : budget == LOG_LINGER ? now + PERCH_LOG_LINGER_MS
							: INT64_MAX;
		pthread_mutex_lock(&r->lock);
		bool stopped = false;
		while (!s->log_done) {
			now = perch_mono_ms();
			int64_t idle = now - atomic_load(&s->last_read_ms);
			if (!stopped && (idle >= PERCH_LOG_LINGER_MS || now >= cut_at)) {
				uint64_t one = 1;
				if (write(s->stop_fd, &one, sizeof one) < 0) {
					/* eventfd write cannot fail here */
				}
				stopped = true;
				if (budget == LOG_LINGER)
					say(r, PERCH_LOG_DEBUG,
					    "step \"%s\": stopped reading its log %d ms after it "
					    "was cancelled (destroy_step ends the rest)",
					    s->step->name, PERCH_LOG_LINGER_MS);
				else if (budget == LOG_UNTIL_SILENT)
					say(r, PERCH_LOG_WARN,
					    "step \"%s\": its log stayed open %d ms after the step "
					    "ended (a background process still holds it); closed it",
					    s->step->name, PERCH_LOG_LINGER_MS);
			}
			cond_wait_ms(r, 100);
		}
		pthread_mutex_unlock(&r->lock);
		pthread_join(s->log_thread, NULL);
		s->log_thread_started = false;
	}
	if (s->ls) {
		char *err = NULL;
		if (perch_logstream_finish(s->ls, perch_mono_ms(), &err) != 0) {
			say(r, PERCH_LOG_WARN, "step \"%s\": %s", s->step->name, err);
			free(err);
		}
		s->res->log_lines = s->lines_base + perch_logstream_lines(s->ls);
		perch_logstream_free(s->ls);
		s->ls = NULL;
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	if (s->stop_fd >= 0) {
		close(s->stop_fd);
		s->stop_fd = -1;
	}
}

/* ---- one step ------------------------------------------------------------ */

static void release(struct step_run *s, bool ended)
{
	pthread_mutex_lock(&s->run->lock);
	if (!s->released)
		s->run->running--;
	s->released = true;
	if (ended)
		s->ended = true;
	pthread_cond_broadcast(&s->run->cond);
	pthread_mutex_unlock(&s->run->lock);
}

/* False: the call got stuck and was given up on (return at once). */
static bool destroy_step(struct step_run *s)
{
	struct run *r = s->run;
	const perch_backend *be = r->o->plugin->entry;
	perch_ctx *ctx = cleanup_ctx(r);
	perch_error e = new_error();
	call_begin(r, &s->call, "destroy_step", false, ctx, false);
	perch_status st = be->destroy_step(r->o->plugin->inst, ctx, s->step, r->o->task_uuid, &e);
	if (!call_end(r, &s->call))
		return false; /* ctx too stays: the call may still use it */
	if (st != PERCH_OK) {
		char *msg = error_text(&e, st);
		say(r, PERCH_LOG_ERROR, "step \"%s\": destroy_step failed: %s", s->step->name, msg);
		free(msg);
		atomic_store(&r->cleanup_failed, true);
	}
	perch_ctx_free(ctx);
	return true;
}

static void judge(struct step_run *s)
{
	perch_step_result *res = s->res;
	/* A step that ended because of cancellation was killed, not failed;
	 * a service stopped because the workflow ended did what it should. */
	bool stopped = s->step->detach && res->started && atomic_load(&s->run->ending);
	bool failed = !res->cancelled && !stopped &&
		      (res->oom_killed || (res->exited && res->exit_code != 0) || res->error != NULL);
	res->failed = failed;
	if (stopped) {
		say(s->run, PERCH_LOG_DEBUG, "step \"%s\" (detached) stopped at the end of the "
			    "workflow", s->step->name);
		return;
	}
	const char *why = NULL;
	char buf[64];
	if (res->oom_killed)
		why = "killed: out of memory";
	else if (res->exited && res->exit_code != 0)
		snprintf(buf, sizeof buf, "exit code %d", res->exit_code), why = buf;
	else if (res->error)
		why = res->error;
	if (res->cancelled)
		say(s->run, PERCH_LOG_INFO, "step \"%s\" cancelled%s%s", s->step->name,
		    why ? ": " : "", why ? why : "");
	else if (failed)
		/* A backend's failure is an error to the operator; a step's
		 * own non-zero exit is ordinary output of a CI run. */
		say(s->run, res->infra_error ? PERCH_LOG_ERROR : PERCH_LOG_INFO,
		    "step \"%s\" failed: %s%s", s->step->name, why,
		    strcmp(s->step->failure, PERCH_FAILURE_IGNORE) == 0 ? " (ignored)" : "");
}

/* Runs one step; false if a plugin call of it got stuck and was given up
 * on: then nothing of the run may be touched any more. */
static bool step_body(struct step_run *s)
{
	struct run *r = s->run;
	const perch_plugin *p = r->o->plugin;
	const perch_backend *be = p->entry;
	perch_step_result *res = s->res;
	perch_error e = new_error();

	const perch_run_hooks *hooks = r->o->hooks;
	bool resume = s->plan == PERCH_PLAN_RESUME;
	int64_t start_ms = perch_mono_ms();
	perch_status st;
	if (!ctl_enter(r->ctl)) {
		/* Abandoned before it began: leave it to whoever takes over. */
		res->cancelled = true;
		res->skip_reason = perch_xstrdup("the workflow was handed over");
		res->skipped = !resume;
		release(s, true);
		return true;
	}
	if (resume) {
		/* Log times continue from the step's first start. */
		int64_t first = r->o->plan->prior[s->index].started_ns;
		int64_t now = perch_real_ns();
		res->started_ns = first > 0 ? first : now;
		if (first > 0 && now > first)
			start_ms -= (now - first) / 1000000;
		res->resumed = true;
		perch_resume_point from;
		memset(&from, 0, sizeof from);
		from.struct_size = sizeof from;
		from.lines_seen = s->lines_base;
		if (p->resumer == NULL) {
			st = PERCH_ERR_UNSUPPORTED;
			perch_error_set(&e, st, "backend %s cannot resume steps (no %s)",
					p->name, PERCH_CAP_WORKFLOW_RESUMER);
		} else {
			call_begin(r, &s->call, "resume_step", true, r->o->wf_ctx, true);
			st = p->resumer->resume_step(p->inst, r->o->wf_ctx, s->step,
						     r->o->task_uuid, &from, &e);
			if (!call_end(r, &s->call))
				return false;
		}
	} else {
		res->started_ns = perch_real_ns();
		call_begin(r, &s->call, "start_step", true, r->o->wf_ctx, true);
		st = be->start_step(p->inst, r->o->wf_ctx, s->step, r->o->task_uuid, &e);
		if (!call_end(r, &s->call))
			return false;
	}
	if (st == PERCH_OK) {
		res->started = true;
		if (hooks && hooks->step_started)
			hooks->step_started(hooks->arg, s->index, res);
	}
	ctl_leave(r->ctl);
	if (st != PERCH_OK) {
		res->error = resume ? perch_xasprintf("resuming the step failed: %s",
						      e.message[0] ? e.message
								   : perch_status_name(st))
				    : error_text(&e, st);
		res->cancelled = wf_cancelled(r) || st == PERCH_ERR_CANCELLED;
		/* A step that cannot be taken up again was lost by the
		 * infrastructure, whatever the reason. */
		res->infra_error = !res->cancelled && (resume || is_infra(st));
		goto destroy;
	}
	e = new_error();
	int fd = -1;
	call_begin(r, &s->call, "tail_step", true, r->o->wf_ctx, false);
	st = be->tail_step(p->inst, r->o->wf_ctx, s->step, r->o->task_uuid, &fd, &e);
	if (!call_end(r, &s->call))
		return false; /* fd, if any, is lost with the thread */
	if (st != PERCH_OK || fd < 0) {
		res->error = st != PERCH_OK ? error_text(&e, st)
					    : perch_xstrdup("tail_step returned no descriptor");
		res->cancelled = wf_cancelled(r) || st == PERCH_ERR_CANCELLED;
		res->infra_error = !res->cancelled;
		if (fd >= 0)
			close(fd);
		goto destroy;
	}
	s->fd = fd;
	if (!start_log(s, start_ms))
		goto destroy;
	if (s->step->detach)
		release(s, false); /* a started service lets the stage move on */

	perch_state state;
	memset(&state, 0, sizeof state);
	state.struct_size = sizeof state;
	e = new_error();
	call_begin(r, &s->call, "wait_step", true, r->o->wf_ctx, false);
	st = be->wait_step(p->inst, r->o->wf_ctx, s->step, r->o->task_uuid, &state, &e);
	if (!call_end(r, &s->call))
		return false;
	if (st == PERCH_OK) {
		res->exited = state.exited;
		res->exit_code = state.exit_code;
		res->oom_killed = state.oom_killed;
		if (!state.exited && !state.oom_killed && wf_cancelled(r))
			res->cancelled = true;
	} else if (st == PERCH_ERR_CANCELLED || wf_cancelled(r)) {
		res->cancelled = true;
		res->exited = state.exited;
		res->exit_code = state.exit_code;
		if (e.message[0])
			res->error = error_text(&e, st);
	} else {
		res->error = error_text(&e, st);
		res->infra_error = is_infra(st);
	}
	if (wf_cancelled(r) && !s->step->detach)
		res->cancelled = true;

destroy:
	finish_log(s, res->cancelled && !res->exited ? LOG_LINGER : LOG_UNTIL_SILENT);
	res->finished_ns = perch_real_ns();
	if (!ctl_enter(r->ctl)) {
		/* Handed over: the step stays in the backend for the new owner,
		 * who also reports its result. */
		res->cancelled = true;
		release(s, true);
		return true;
	}
	judge(s);
	if (hooks && hooks->step_finished)
		hooks->step_finished(hooks->arg, s->index, res);
	ctl_leave(r->ctl);
	if (!destroy_step(s))
		return false;
	if (res->failed && strcmp(s->step->failure, PERCH_FAILURE_CANCEL) == 0 &&
	    !s->step->detach) {
		say(r, PERCH_LOG_INFO, "step \"%s\" has failure: cancel; cancelling the workflow",
		    s->step->name);
		pthread_mutex_lock(&r->lock);
		r->self_cancelled = true;
		pthread_mutex_unlock(&r->lock);
		perch_ctx_cancel(r->o->wf_ctx);
	}
	release(s, true);
	return true;
}

static void *step_main(void *arg)
{
	struct step_run *s = arg;
	struct run *r = s->run;
	if (!step_body(s))
		return NULL; /* given up on: r may be in any state but its lock */
	pthread_mutex_lock(&r->lock);
	s->finished = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* The watchdog gave up on the call s was in (name): end the step without
 * it.  Run thread, r->lock not held. */
static void give_up_step(struct step_run *s, const char *name, int64_t grace, const char *what)
{
	struct run *r = s->run;
	perch_step_result *res = s->res;
	perch_plugin_pin(r->o->plugin);
	pthread_detach(s->thread);
	s->thread_started = false;
	say(r, PERCH_LOG_ERROR, "step \"%s\": the backend's %s call did not return %g s after "
	    "%s; gave up on it (plugin %s stays loaded)", s->step->name, name,
	    (double)grace / 1000, what, r->o->plugin->name);
	if (s->call.in_ctl)
		ctl_leave(r->ctl); /* the stuck thread cannot */
	/* The step may still run in the backend, and a destroy_step cannot
	 * follow a call that never returned: count it as left behind. */
	atomic_store(&r->cleanup_failed, true);
	if (strcmp(name, "destroy_step") == 0) {
		release(s, true); /* judged and reported before destroy_step */
		return;
	}
	if (res->error == NULL)
		res->error = perch_xasprintf("the backend's %s call never returned", name);
	res->cancelled = wf_cancelled(r);
	res->infra_error = !res->cancelled;
	finish_log(s, LOG_NOW);
	res->finished_ns = perch_real_ns();
	if (ctl_enter(r->ctl)) {
		judge(s);
		const perch_run_hooks *hooks = r->o->hooks;
		if (hooks && hooks->step_finished)
			hooks->step_finished(hooks->arg, s->index, res);
		ctl_leave(r->ctl);
	}
	release(s, true);
}

/* Gives up on the steps' overdue calls.  Run thread, r->lock held (dropped
 * while a step is given up on). */
static void watchdog(struct run *r)
{
	watch_clock(r);
	int64_t now = perch_mono_ms();
	for (size_t i = 0; i < r->n; i++) {
		struct step_run *s = &r->steps[i];
		const char *what;
		int64_t grace;
		if (s->call.name == NULL || s->call.stuck ||
		    now < overdue_at(r, &s->call, &grace, &what))
			continue;
		s->call.stuck = true;
		r->n_stuck++;
		const char *name = s->call.name;
		pthread_mutex_unlock(&r->lock);
		give_up_step(s, name, grace, what);
		pthread_mutex_lock(&r->lock);
	}
}

static void *wcall_main(void *arg)
{
	struct wcall *c = arg;
	struct run *r = c->run;
	const perch_plugin *p = r->o->plugin;
	perch_error e = new_error();
	perch_status st =
		c->setup ? p->entry->setup_workflow(p->inst, c->ctx, &r->o->wf->config,
						    r->o->task_uuid, &e)
			 : p->entry->destroy_workflow(p->inst, c->ctx, &r->o->wf->config,
						      r->o->task_uuid, &e);
	pthread_mutex_lock(&r->lock);
	if (!c->call.stuck) {
		c->st = st;
		c->e = e;
		c->done = true;
		c->call.name = NULL;
		pthread_cond_broadcast(&r->cond);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

/* setup_workflow (setup) or destroy_workflow with ctx, made on a thread of
 * its own while this (the run's) thread keeps the watchdog going. */
static perch_status workflow_call(struct run *r, struct wcall *c, bool setup, perch_ctx *ctx,
				  perch_error *e)
{
	*c = (struct wcall){.run = r, .ctx = ctx, .setup = setup};
	c->call.name = setup ? "setup_workflow" : "destroy_workflow";
	c->call.wf = setup;
	c->call.deadline_ms = perch_ctx_deadline_ms(ctx);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, r->o->thread_stack ? r->o->thread_stack : DEFAULT_STACK);
	bool threaded = pthread_create(&c->thread, &attr, wcall_main, c) == 0;
	pthread_attr_destroy(&attr);
	if (!threaded) {
		wcall_main(c); /* no thread to spare: make the call unguarded */
		*e = c->e;
		return c->st;
	}
	const char *what = "";
	int64_t grace = 0;
	pthread_mutex_lock(&r->lock);
	while (!c->done) {
		tick_wait(r);
		watchdog(r);
		if (!c->done && perch_mono_ms() >= overdue_at(r, &c->call, &grace, &what)) {
			c->call.stuck = true;
			r->n_stuck++;
			break;
		}
	}
	bool stuck = c->call.stuck;
	pthread_mutex_unlock(&r->lock);
	if (!stuck) {
		pthread_join(c->thread, NULL);
		*e = c->e;
		return c->st;
	}
	pthread_detach(c->thread);
	perch_plugin_pin(r->o->plugin);
	atomic_store(&r->cleanup_failed, true);
	say(r, PERCH_LOG_ERROR, "the backend's %s call did not return %g s after %s; gave up "
	    "on it (plugin %s stays loaded)", c->call.name, (double)grace / 1000, what,
	    r->o->plugin->name);
	return perch_error_set(e, PERCH_ERR_TIMEOUT, "the backend's %s call never returned",
			       c->call.name);
}

/* ---- stages -------------------------------------------------------------- */

/* Detached steps fail the workflow only if they never started. */
static bool counts_as_failure(const perch_step_result *res)
{
	return res->failed && (!res->step->detach || !res->started) &&
	       strcmp(res->step->failure, PERCH_FAILURE_IGNORE) != 0;
}

static void skip(struct step_run *s, char *reason, bool cancelled)
{
	s->res->skipped = true;
	s->res->cancelled = cancelled;
	s->res->skip_reason = reason;
	s->launched = s->released = s->ended = true;
	if (!cancelled)
		say(s->run, PERCH_LOG_INFO, "step \"%s\" skipped: %s", s->step->name, reason);
}

/* Starts a step's thread.  Called with r->lock held. */
static void launch(struct run *r, struct step_run *s)
{
	s->launched = true;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, r->o->thread_stack ? r->o->thread_stack : DEFAULT_STACK);
	int rc = pthread_create(&s->thread, &attr, step_main, s);
	if (rc == 0) {
		s->thread_started = true;
		r->running++;
	} else {
		s->res->error = perch_xasprintf("cannot start a thread: %s", strerror(rc));
		s->res->infra_error = s->res->failed = true;
		s->released = s->ended = true;
	}
	pthread_attr_destroy(&attr);
}

/* Launches what can start; returns false when every step is released.
 * Called with r->lock held. */
static bool schedule(struct run *r, struct step_run *first, size_t n, bool failed_before)
{
	bool progress = true, pending = false;
	while (progress) {
		progress = false;
		pending = false;
		for (size_t i = 0; i < n; i++) {
			struct step_run *s = &first[i];
			if (!s->released)
				pending = true;
			if (s->launched)
				continue;
			if (s->plan == PERCH_PLAN_RESUME && !abandoned(r)) {
				/* Already running in the backend: take it up now,
				 * whatever the rules and the cap say. */
				progress = true;
				launch(r, s);
				continue;
			}
			bool deps_ended = true, dep_failed = false;
			for (size_t d = 0; d < s->n_deps; d++) {
				if (!s->deps[d]->ended)
					deps_ended = false;
				else if (counts_as_failure(s->deps[d]->res))
					dep_failed = true;
			}
			if (!deps_ended)
				continue;
			progress = true;
			bool failed = failed_before || dep_failed;
			bool at_cap = r->o->max_parallel && r->running >= r->o->max_parallel;
			bool gone = abandoned(r);
			if (at_cap && !wf_cancelled(r) && !gone) {
				progress = false; /* a slot frees up on release */
				pending = true;
				break;
			}
			if (gone) {
				s->launched = s->released = s->ended = true;
				s->res->skipped = s->plan != PERCH_PLAN_RESUME;
				s->res->cancelled = true;
				s->res->skip_reason = perch_xstrdup("the workflow was handed over");
			} else if (wf_cancelled(r)) {
				skip(s, perch_xstrdup("the workflow was cancelled"), true);
			} else if (failed && !s->step->on_failure) {
				skip(s, perch_xstrdup(dep_failed ? "a step it depends on failed and "
								   "on_failure is false"
								 : "an earlier step failed and "
								   "on_failure is false"),
				     false);
			} else if (!failed && !s->step->on_success) {
				skip(s, perch_xstrdup("on_success is false"), false);
			} else {
				launch(r, s);
			}
		}
	}
	return pending;
}

static void run_stage(struct run *r, struct step_run *first, size_t n)
{
	pthread_mutex_lock(&r->lock);
	bool failed_before = r->failed;
	while (schedule(r, first, n, failed_before)) {
		tick_wait(r);
		watchdog(r);
	}
	pthread_mutex_unlock(&r->lock);
	/* Blocking steps are over; join their threads.  Detached ones run on. */
	for (size_t i = 0; i < n; i++) {
		struct step_run *s = &first[i];
		if (s->thread_started && !s->step->detach) {
			pthread_join(s->thread, NULL);
			s->thread_started = false;
		}
		if (counts_as_failure(s->res))
			r->failed = true;
	}
}

static void link_deps(struct run *r, size_t first, size_t n)
{
	for (size_t i = first; i < first + n; i++) {
		struct step_run *s = &r->steps[i];
		const perch_strv *deps = &s->step->depends_on;
		if (deps->len == 0)
			continue;
		s->deps = perch_xcalloc(deps->len, sizeof *s->deps);
		for (size_t d = 0; d < deps->len; d++)
			for (size_t j = first; j < first + n; j++)
				if (strcmp(r->steps[j].step->name, deps->items[d]) == 0) {
					/* The parser refused unknown names and cycles. */
					s->deps[s->n_deps++] = &r->steps[j];
					break;
				}
	}
}

/* Applies the plan to one step before the run begins. */
static void take_plan(struct run *r, struct step_run *s)
{
	const perch_run_plan *plan = r->o->plan;
	s->plan = plan->steps ? plan->steps[s->index] : PERCH_PLAN_RUN;
	if (s->plan == PERCH_PLAN_RESUME && plan->lines_seen)
		s->lines_base = plan->lines_seen[s->index];
	if (s->plan != PERCH_PLAN_DONE)
		return;
	const perch_step_result *prior = &plan->prior[s->index];
	perch_step_result *res = s->res;
	const perch_step *step = res->step;
	size_t stage = res->stage;
	*res = *prior;
	res->step = step;
	res->stage = stage;
	res->error = prior->error ? perch_xstrdup(prior->error) : NULL;
	res->skip_reason = prior->skip_reason ? perch_xstrdup(prior->skip_reason) : NULL;
	s->launched = s->released = s->ended = true;
	/* A failure: cancel that happened before keeps cancelling. */
	if (res->failed && !step->detach && strcmp(step->failure, PERCH_FAILURE_CANCEL) == 0 &&
	    !r->self_cancelled) {
		r->self_cancelled = true;
		perch_ctx_cancel(r->o->wf_ctx);
	}
}

static void destroy_workflow(struct run *r)
{
	perch_ctx *ctx = cleanup_ctx(r);
	perch_error e = new_error();
	perch_status st = workflow_call(r, &r->teardown, false, ctx, &e);
	if (r->teardown.call.stuck)
		return; /* already said; ctx stays: the call may still use it */
	if (st != PERCH_OK) {
		char *msg = error_text(&e, st);
		say(r, PERCH_LOG_ERROR, "destroy_workflow failed: %s", msg);
		free(msg);
		atomic_store(&r->cleanup_failed, true);
	}
	perch_ctx_free(ctx);
}

void perch_runtime_run(const perch_run_opts *o, perch_run_result *out)
{
	const perch_config *cfg = &o->wf->config;
	/* On the heap: a thread given up on may still take its lock after
	 * this returns (see "stuck calls"), so then it is never freed. */
	struct run *r = perch_xcalloc(1, sizeof *r);
	r->o = o;
	r->out = out;
	r->ctl = o->control;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_t cattr;
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &cattr);
	pthread_condattr_destroy(&cattr);
	memset(out, 0, sizeof *out);
	out->started_ns = perch_real_ns();

	for (size_t i = 0; i < cfg->n_stages; i++)
		r->n += cfg->stages[i]->n_steps;
	out->steps = perch_xcalloc(r->n, sizeof *out->steps);
	out->n_steps = r->n;
	r->steps = perch_xcalloc(r->n, sizeof *r->steps);
	size_t k = 0;
	for (size_t i = 0; i < cfg->n_stages; i++) {
		size_t first = k;
		for (size_t j = 0; j < cfg->stages[i]->n_steps; j++, k++) {
			r->steps[k] = (struct step_run){.run = r, .res = &out->steps[k],
						       .step = cfg->stages[i]->steps[j],
						       .index = k, .fd = -1, .stop_fd = -1};
			out->steps[k].step = cfg->stages[i]->steps[j];
			out->steps[k].stage = i;
			if (o->plan)
				take_plan(r, &r->steps[k]);
		}
		link_deps(r, first, k - first);
	}

	perch_error e = new_error();
	perch_status st = PERCH_OK;
	bool gone = false;
	if (o->plan == NULL || !o->plan->skip_setup) {
		if (ctl_enter(r->ctl)) {
			st = workflow_call(r, &r->setup, true, o->wf_ctx, &e);
			if (st == PERCH_OK && o->hooks && o->hooks->setup_done)
				o->hooks->setup_done(o->hooks->arg);
			ctl_leave(r->ctl);
		} else {
			gone = true;
		}
	}
	bool setup_ok = st == PERCH_OK;
	if (gone) {
		for (size_t i = 0; i < r->n; i++)
			if (!r->steps[i].launched)
				skip(&r->steps[i], perch_xstrdup("the workflow was handed over"), true);
	} else if (!setup_ok) {
		out->error = perch_xasprintf("setup_workflow failed: %s", e.message[0] ? e.message
									 : perch_status_name(st));
		say(r, PERCH_LOG_ERROR, "%s", out->error);
		for (size_t i = 0; i < r->n; i++)
			if (!r->steps[i].launched) /* DONE steps keep their result */
				skip(&r->steps[i], perch_xstrdup("workflow setup failed"), true);
	} else {
		k = 0;
		for (size_t i = 0; i < cfg->n_stages; i++) {
			run_stage(r, &r->steps[k], cfg->stages[i]->n_steps);
			k += cfg->stages[i]->n_steps;
		}
	}

	/* Exactly once, also after a failed setup; it stops detached steps.
	 * An abandoned run leaves the workflow to its new owner, and its
	 * detached steps' waits return when that owner destroys it. */
	atomic_store(&r->ending, true);
	out->abandoned = gone || abandoned(r);
	if (!out->abandoned) {
		destroy_workflow(r);
		r->ended_ms = perch_mono_ms();
	}
	/* The detached steps' waits return now that destroy_workflow stopped
	 * them (or, abandoned, when the new owner does); the watchdog gives
	 * up on those that do not. */
	pthread_mutex_lock(&r->lock);
	for (;;) {
		bool waiting = false;
		for (size_t i = 0; i < r->n; i++)
			if (r->steps[i].thread_started && !r->steps[i].finished)
				waiting = true;
		if (!waiting)
			break;
		tick_wait(r);
		watchdog(r);
	}
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		if (r->steps[i].thread_started)
			pthread_join(r->steps[i].thread, NULL);
		free(r->steps[i].deps);
		r->steps[i].deps = NULL;
	}

	bool infra = !setup_ok, failure = false;
	for (size_t i = 0; i < r->n; i++) {
		const perch_step_result *res = &out->steps[i];
		if (!counts_as_failure(res))
			continue;
		if (res->infra_error)
			infra = true;
		else
			failure = true;
	}
	bool killed = perch_ctx_cancelled(o->wf_ctx) && !r->self_cancelled;
	out->status = killed    ? PERCH_RUN_KILLED
		      : infra   ? PERCH_RUN_ERROR
		      : failure ? PERCH_RUN_FAILURE
				: PERCH_RUN_SUCCESS;
	if (r->self_cancelled && out->status == PERCH_RUN_SUCCESS)
		out->status = PERCH_RUN_FAILURE;
	/* A failed cleanup may have left something behind: a backend error
	 * (exit 3) even when every step passed.  A failed step keeps its
	 * status; the cleanup error was printed either way. */
	if (atomic_load(&r->cleanup_failed) && out->status == PERCH_RUN_SUCCESS)
		out->status = PERCH_RUN_ERROR;
	out->finished_ns = perch_real_ns();
	pthread_mutex_lock(&r->lock);
	out->abandoned_calls = r->n_stuck;
	pthread_mutex_unlock(&r->lock);
	if (out->abandoned_calls > 0)
		return; /* r and its steps stay: a stuck thread may still lock r->lock */
	free(r->steps);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

void perch_run_result_free(perch_run_result *r)
{
	for (size_t i = 0; i < r->n_steps; i++) {
		free(r->steps[i].error);
		free(r->steps[i].skip_reason);
	}
	free(r->steps);
	free(r->error);
	memset(r, 0, sizeof *r);
}
