/*
 * daemon_adopt.c - taking up workflows that another owner began: after a
 * restart (adopt_all), from a retired plugin version (handover), and
 * letting go of them at shutdown (leave_or_cancel).
 *
 * The plan for each step comes from two witnesses: the state directory
 * (did the step end, and how; did it start; how many log lines do we have)
 * and the backend's discovery (does it still have the step).  A step that
 * ended is DONE with its recorded result; one the backend still has is
 * RESUMEd from the lines we hold, so no line is lost or repeated; one that
 * we saw start but the backend no longer has is reported lost; the rest
 * run as usual.  A workflow killed inside setup_workflow (no step started,
 * setup not recorded as done) has what the backend made of it destroyed
 * and is set up anew.  One the backend no longer knows at all is lost only
 * if a step of it was running; otherwise (between two stages, inside
 * destroy_workflow) its plan goes on from the recorded results.  A backend
 * without discovery and resume cannot do this: what it left is destroyed
 * (its recorded processes stopped first) and the workflow is reported
 * lost, with why.
 */
#include "config.h"

#include "ctx.h"
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How long discovery may take. */
#define DISCOVER_MS (60 * 1000)
/* Between SIGTERM and SIGKILL for processes a lost workflow left. */
#define KILL_GRACE_MS 5000

/* ---- discovery ------------------------------------------------------------------ */

typedef struct found_wf {
	char *task;
	char **steps;
	size_t n_steps;
} found_wf;

typedef struct found {
	found_wf *wfs;
	size_t n;
	bool ok;     /* discovery succeeded */
	char *error;
} found;

static bool on_found(void *user, const perch_discovered_workflow *dw)
{
	found *f = user;
	if (dw == NULL || dw->task_uuid == NULL)
		return true;
	f->wfs = perch_xrealloc(f->wfs, (f->n + 1) * sizeof *f->wfs);
	found_wf *fw = &f->wfs[f->n++];
	memset(fw, 0, sizeof *fw);
	fw->task = perch_xstrdup(dw->task_uuid);
	size_t n = PERCH_HAS_FIELD(dw, perch_discovered_workflow, n_steps) ? dw->n_steps : 0;
	fw->steps = perch_xcalloc(n + 1, sizeof *fw->steps);
	for (size_t i = 0; i < n; i++) {
		const perch_discovered_step *s = dw->steps[i];
		if (s && s->uuid)
			fw->steps[fw->n_steps++] = perch_xstrdup(s->uuid);
	}
	return true;
}

static void found_free(found *f)
{
	for (size_t i = 0; i < f->n; i++) {
		for (size_t j = 0; j < f->wfs[i].n_steps; j++)
			free(f->wfs[i].steps[j]);
		free(f->wfs[i].steps);
		free(f->wfs[i].task);
	}
	free(f->wfs);
	free(f->error);
	memset(f, 0, sizeof *f);
}

/* Asks v what it still has.  Any thread (the call is). */
static void discover(perch_daemon *d, dversion *v, found *f)
{
	memset(f, 0, sizeof *f);
	if (v->p->discoverer == NULL) {
		f->error = perch_xasprintf("backend %s cannot discover workflows", v->name);
		return;
	}
	perch_ctx *ctx = perch_ctx_new_timeout(v->gen->app->root, DISCOVER_MS);
	perch_error e;
	memset(&e, 0, sizeof e);
	e.struct_size = sizeof e;
	perch_status st = v->p->discoverer->discover_workflows(v->p->inst, ctx, on_found, f, &e);
	perch_ctx_free(ctx);
	if (st != PERCH_OK) {
		f->error = perch_xasprintf("discovery on %s #%u failed: %s", v->name, v->number,
					   e.message[0] ? e.message : perch_status_name(st));
		perch_daemon_log(d, PERCH_LOG_ERROR, "%s", f->error);
		return;
	}
	f->ok = true;
}

static const found_wf *found_task(const found *f, const char *task)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->wfs[i].task, task) == 0)
			return &f->wfs[i];
	return NULL;
}

static bool found_step(const found_wf *fw, const char *uuid)
{
	for (size_t i = 0; fw && i < fw->n_steps; i++)
		if (strcmp(fw->steps[i], uuid) == 0)
			return true;
	return false;
}

/* ---- lost workflows --------------------------------------------------------------- */

static long long proc_start(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	char *err = NULL;
	size_t len = 0;
	char *st = perch_read_file(path, &len, &err);
	free(err);
	if (st == NULL)
		return -1;
	long long start = -1;
	char *rp = strrchr(st, ')');
	if (rp) {
		int field = 3;
		char *save = NULL;
		for (char *f = strtok_r(rp + 1, " ", &save); f; f = strtok_r(NULL, " ", &save), field++)
			if (field == 22) {
				start = atoll(f);
				break;
			}
		/* A zombie is gone for our purpose. */
		if (rp[1] == ' ' && rp[2] == 'Z')
			start = -1;
	}
	free(st);
	return start;
}

/* Stops the processes that the steps of w still running were recorded
 * with (a backend that forked them on the step's thread: local), each
 * checked by its start time so that a reused pid is never hit. */
static size_t kill_leftovers(perch_daemon *d, dwf *w)
{
	pid_t pids[256], groups[256];
	long long starts[256];
	size_t n = 0;
	for (size_t i = 0; i < w->n_steps; i++) {
		perch_step_result res;
		bool started, done;
		char **procs = NULL;
		size_t n_procs = 0;
		perch_daemon_get_step(d, w->id, i, &res, &started, &done, &procs, &n_procs);
		for (size_t k = 0; k < n_procs; k++) {
			long long pid = 0, pgid = 0, start = 0;
			if (!done && n < 256 &&
			    sscanf(procs[k], "%lld:%lld:%lld", &pid, &pgid, &start) == 3 && pid > 1 &&
			    proc_start((pid_t)pid) == start) {
				pids[n] = (pid_t)pid;
				groups[n] = pgid == pid ? (pid_t)pgid : 0;
				starts[n] = start;
				n++;
			}
			free(procs[k]);
		}
		free(procs);
		free(res.error);
		free(res.skip_reason);
	}
	for (size_t i = 0; i < n; i++)
		kill(groups[i] ? -groups[i] : pids[i], SIGTERM);
	int64_t end = perch_mono_ms() + KILL_GRACE_MS;
	for (;;) {
		size_t alive = 0;
		for (size_t i = 0; i < n; i++)
			alive += proc_start(pids[i]) == starts[i];
		if (alive == 0 || perch_mono_ms() >= end)
			break;
		usleep(50 * 1000);
	}
	for (size_t i = 0; i < n; i++)
		if (proc_start(pids[i]) == starts[i])
			kill(groups[i] ? -groups[i] : pids[i], SIGKILL);
	if (n)
		perch_daemon_log(d, PERCH_LOG_INFO, "workflow %s: stopped %zu process%s its steps "
						    "left running", w->id, n, n == 1 ? "" : "es");
	return n;
}

static void destroy_on(perch_daemon *d, dversion *v, const perch_config *cfg, const char *task)
{
	if (v == NULL || !v->p->loaded)
		return;
	perch_config empty;
	memset(&empty, 0, sizeof empty);
	empty.struct_size = sizeof empty;
	perch_ctx *ctx = perch_ctx_new_timeout(v->gen->app->root, PERCH_DAEMON_CLEANUP_MS);
	perch_error e;
	memset(&e, 0, sizeof e);
	e.struct_size = sizeof e;
	perch_status st = v->p->entry->destroy_workflow(v->p->inst, ctx, cfg ? cfg : &empty, task, &e);
	perch_ctx_free(ctx);
	if (st != PERCH_OK)
		perch_daemon_log(d, PERCH_LOG_WARN, "workflow %s: destroy_workflow on %s #%u: %s",
				 task, v->name, v->number,
				 e.message[0] ? e.message : perch_status_name(st));
}

static void lose(perch_daemon *d, dwf *w, dversion *v, const char *why)
{
	/* The processes first: a step still running in its workspace would
	 * keep the backend from removing it (local). */
	kill_leftovers(d, w);
	destroy_on(d, v, w->wf ? &w->wf->config : NULL, w->id);
	perch_daemon_log(d, PERCH_LOG_WARN, "workflow %s lost: %s", w->id, why);
	perch_daemon_finish_unrun(d, w, "lost", why);
	pthread_mutex_lock(&d->lock);
	d->lost++;
	pthread_mutex_unlock(&d->lock);
}

/* ---- plans ------------------------------------------------------------------------ */

static void mark(perch_daemon *d, dwf *w, size_t i, bool started, bool done)
{
	pthread_mutex_lock(&d->lock);
	if (started && !w->steps[i].started)
		w->steps_started++;
	if (done && !w->steps[i].done)
		w->steps_done++;
	w->steps[i].started |= started;
	w->steps[i].done |= done;
	pthread_mutex_unlock(&d->lock);
}

/* Fills proto's plan for w from the state directory and what v found;
 * skip_setup as given.  Returns the steps to resume. */
static size_t build_plan(perch_daemon *d, dwf *w, dversion *v, const found_wf *fw,
			 bool skip_setup, drun *proto)
{
	size_t n = w->n_steps, resumed = 0;
	memset(proto, 0, sizeof *proto);
	proto->resume = true;
	proto->plan_steps = perch_xcalloc(n + 1, sizeof *proto->plan_steps);
	proto->plan_prior = perch_xcalloc(n + 1, sizeof *proto->plan_prior);
	proto->plan_lines = perch_xcalloc(n + 1, sizeof *proto->plan_lines);
	proto->plan.skip_setup = skip_setup;
	for (size_t i = 0; i < n; i++) {
		perch_step_result res;
		bool started, done;
		perch_daemon_get_step(d, w->id, i, &res, &started, &done, NULL, NULL);
		const perch_step *step = w->steps[i].step;
		if (done) {
			proto->plan_steps[i] = PERCH_PLAN_DONE;
			proto->plan_prior[i] = res;
			mark(d, w, i, res.started, true);
			continue;
		}
		if (found_step(fw, step->uuid)) {
			proto->plan_steps[i] = PERCH_PLAN_RESUME;
			proto->plan_prior[i].started_ns = res.started_ns;
			proto->plan_lines[i] = perch_store_log_lines(d->store, w->id, i);
			mark(d, w, i, true, false);
			resumed++;
		} else if (started) {
			proto->plan_steps[i] = PERCH_PLAN_DONE;
			perch_step_result *p = &proto->plan_prior[i];
			p->started = true;
			p->started_ns = res.started_ns;
			p->finished_ns = perch_real_ns();
			p->failed = p->infra_error = true;
			p->log_lines = perch_store_log_lines(d->store, w->id, i);
			p->error = perch_xasprintf("the step was lost while it ran: backend %s "
						   "(#%u) no longer knows it", v->name, v->number);
			mark(d, w, i, true, true);
		}
		free(res.error);
		free(res.skip_reason);
	}
	return resumed;
}

/* ---- after a restart ------------------------------------------------------------------ */

/* What the state directory says of w's steps: one started (running, as far
 * as it knows: started and not ended), one started at all. */
static void step_records(perch_daemon *d, dwf *w, bool *running, bool *any_started)
{
	*running = *any_started = false;
	for (size_t i = 0; i < w->n_steps; i++) {
		perch_step_result res;
		bool started, done;
		perch_daemon_get_step(d, w->id, i, &res, &started, &done, NULL, NULL);
		*running |= started && !done;
		*any_started |= started;
		free(res.error);
		free(res.skip_reason);
	}
}

typedef struct disc {
	dversion *v;
	found f;
} disc;

static found *discovery_of(perch_daemon *d, disc **cache, size_t *n, dversion *v)
{
	for (size_t i = 0; i < *n; i++)
		if ((*cache)[i].v == v)
			return &(*cache)[i].f;
	*cache = perch_xrealloc(*cache, (*n + 1) * sizeof **cache);
	disc *e = &(*cache)[(*n)++];
	e->v = v;
	discover(d, v, &e->f);
	return &e->f;
}

static void add_orphan(perch_daemon *d, const char *task, const char *plugin)
{
	d->orphans = perch_xrealloc(d->orphans, (d->n_orphans + 1) * sizeof *d->orphans);
	d->orphan_plugins = perch_xrealloc(d->orphan_plugins,
					   (d->n_orphans + 1) * sizeof *d->orphan_plugins);
	d->orphans[d->n_orphans] = perch_xstrdup(task);
	d->orphan_plugins[d->n_orphans] = perch_xstrdup(plugin);
	d->n_orphans++;
}

void perch_daemon_adopt_all(perch_daemon *d, dwf **ws, size_t n)
{
	int64_t t0 = perch_mono_ms();
	disc *cache = NULL;
	size_t n_cache = 0;
	for (size_t i = 0; i < n; i++) {
		dwf *w = ws[i];
		pthread_mutex_lock(&d->lock);
		dversion *v = w->plugin ? perch_daemon_current(d, w->plugin) : NULL;
		pthread_mutex_unlock(&d->lock);
		char *why = NULL;
		if (w->plugin == NULL) {
			/* It never got a backend (killed while starting). */
			pthread_mutex_lock(&d->lock);
			w->state = DWF_QUEUED;
			d->n_running--;
			d->n_queued++;
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		if (v == NULL) {
			why = perch_xasprintf("perch restarted while it ran and backend %s is no "
					      "longer installed", w->plugin);
			lose(d, w, NULL, why);
		} else if (!v->available) {
			why = perch_xasprintf("perch restarted while it ran and backend %s is not "
					      "available: %s", w->plugin, v->unavailable_why);
			lose(d, w, NULL, why);
		} else if (!v->can_adopt) {
			why = perch_xasprintf("perch restarted while it ran, and backend %s cannot "
					      "resume workflows (it offers no %s and %s); what it "
					      "left was destroyed", v->name,
					      PERCH_CAP_WORKFLOW_DISCOVERER, PERCH_CAP_WORKFLOW_RESUMER);
			lose(d, w, v, why);
		} else {
			found *f = discovery_of(d, &cache, &n_cache, v);
			const found_wf *fw = f->ok ? found_task(f, w->id) : NULL;
			bool running, any_started;
			step_records(d, w, &running, &any_started);
			/* Killed during setup_workflow (or before the state
			 * directory heard that it returned): what the backend
			 * made of the setup may be half of it (a volume
			 * without its network).  No step ran yet, so nothing
			 * is lost by destroying it and setting up anew. */
			bool fresh = !w->setup_done && !any_started;
			if (!f->ok) {
				why = perch_xasprintf("perch restarted while it ran and %s", f->error);
				lose(d, w, v, why);
			} else if (fw == NULL && w->setup_done && running) {
				/* A step ran and the backend has nothing of
				 * the workflow any more.  (With no step
				 * running - between two stages, or while
				 * destroy_workflow ran - the plan below goes
				 * on: the results are in the state directory,
				 * and what the backend no longer has is what
				 * it was about to remove.) */
				why = perch_xasprintf("perch restarted while it ran and backend %s no "
						      "longer knows the workflow", v->name);
				lose(d, w, v, why);
			} else {
				drun proto;
				if (fresh) {
					perch_daemon_log(d, PERCH_LOG_INFO, "workflow %s: perch "
							 "stopped inside its setup; what %s "
							 "made of it is destroyed and it is set "
							 "up anew", w->id, v->name);
					destroy_on(d, v, &w->wf->config, w->id);
				}
				size_t resumed = build_plan(d, w, v, fresh ? NULL : fw,
							    !fresh && (w->setup_done || fw != NULL),
							    &proto);
				pthread_mutex_lock(&d->lock);
				w->adopted = true;
				d->adopted++;
				d->adopted_steps += resumed;
				if (!perch_daemon_start_run(d, w, v, &proto))
					w->fail_reason = perch_xstrdup("cannot start a thread for it");
				pthread_mutex_unlock(&d->lock);
				perch_daemon_log(d, PERCH_LOG_INFO, "workflow %s adopted on %s #%u: %zu "
								    "step%s resumed", w->id, v->name,
						 v->number, resumed, resumed == 1 ? "" : "s");
			}
		}
		free(why);
	}
	/* What the backends still have that no adopted workflow is: ask
	 * every backend that can tell. */
	for (;;) {
		dversion *ask = NULL;
		pthread_mutex_lock(&d->lock);
		for (dversion *v = d->versions; v && !ask; v = v->next) {
			if (v->retired || !v->available || !v->can_adopt)
				continue;
			bool asked = false;
			for (size_t c = 0; c < n_cache; c++)
				asked |= cache[c].v == v;
			if (!asked)
				ask = v;
		}
		pthread_mutex_unlock(&d->lock);
		if (ask == NULL)
			break;
		discovery_of(d, &cache, &n_cache, ask);
	}
	for (size_t c = 0; c < n_cache; c++) {
		found *f = &cache[c].f;
		for (size_t i = 0; f->ok && i < f->n; i++) {
			const char *task = f->wfs[i].task;
			bool ambiguous;
			pthread_mutex_lock(&d->lock);
			dwf *w = perch_daemon_find(d, task, &ambiguous);
			bool known = w && strcmp(w->id, task) == 0;
			bool live = known && w->state == DWF_RUNNING && w->run;
			pthread_mutex_unlock(&d->lock);
			if (live)
				continue;
			if (known) {
				/* Ended (or lost) by our records: its leftovers go now. */
				destroy_on(d, cache[c].v, NULL, task);
				continue;
			}
			add_orphan(d, task, cache[c].v->name);
			perch_daemon_log(d, PERCH_LOG_WARN, "backend %s has workflow %s, which the "
							    "state directory does not know; it is "
							    "destroyed in %lld s unless claimed",
					 cache[c].v->name, task, (long long)d->adopt_grace_ms / 1000);
		}
		found_free(f);
	}
	free(cache);
	if (d->n_orphans)
		d->orphan_deadline_ms = perch_mono_ms() + d->adopt_grace_ms;
	d->adopt_ms = perch_mono_ms() - t0;
	if (n)
		perch_daemon_log(d, PERCH_LOG_INFO, "adoption: %zu workflow%s (%zu step%s resumed), "
						    "%zu lost, in %lld ms", d->adopted,
				 d->adopted == 1 ? "" : "s", d->adopted_steps,
				 d->adopted_steps == 1 ? "" : "s", d->lost, (long long)d->adopt_ms);
}

void perch_daemon_sweep_orphans(perch_daemon *d)
{
	disc *cache = NULL;
	size_t n_cache = 0;
	for (size_t i = 0; i < d->n_orphans; i++) {
		pthread_mutex_lock(&d->lock);
		dversion *v = perch_daemon_current(d, d->orphan_plugins[i]);
		bool ambiguous;
		dwf *w = perch_daemon_find(d, d->orphans[i], &ambiguous);
		bool known = w && strcmp(w->id, d->orphans[i]) == 0;
		pthread_mutex_unlock(&d->lock);
		if (v && !known && v->p->discoverer) {
			found *f = discovery_of(d, &cache, &n_cache, v);
			if (f->ok && found_task(f, d->orphans[i])) {
				perch_daemon_log(d, PERCH_LOG_WARN, "destroying workflow %s on %s: "
								    "unknown to the state directory "
								    "after adopt_grace", d->orphans[i],
						 v->name);
				destroy_on(d, v, NULL, d->orphans[i]);
			}
		}
		free(d->orphans[i]);
		free(d->orphan_plugins[i]);
	}
	for (size_t c = 0; c < n_cache; c++)
		found_free(&cache[c].f);
	free(cache);
	free(d->orphans);
	free(d->orphan_plugins);
	d->orphans = d->orphan_plugins = NULL;
	d->n_orphans = 0;
	d->orphan_deadline_ms = 0;
}

/* ---- hand-over ---------------------------------------------------------------------- */

typedef struct cand {
	dwf *w;
	drun *old;
	dversion *to;
} cand;

void perch_daemon_handover(perch_daemon *d, perch_buf *report)
{
	cand *c = NULL;
	size_t n = 0;
	pthread_mutex_lock(&d->lock);
	for (dwf *w = d->wfs; w; w = w->next) {
		drun *r = w->run;
		if (w->state != DWF_RUNNING || r == NULL || !r->v->retired || r->superseded ||
		    r->returned)
			continue;
		dversion *to = perch_daemon_current(d, r->v->name);
		if (to == NULL || to == r->v || !to->available || !to->can_adopt)
			continue;
		c = perch_xrealloc(c, (n + 1) * sizeof *c);
		c[n++] = (cand){.w = w, .old = r, .to = to};
		w->readers++; /* stays while we work on it */
	}
	pthread_mutex_unlock(&d->lock);
	if (n == 0)
		return;
	/* Let go everywhere first (each waits for its starts in flight), then
	 * ask the new versions once what runs. */
	for (size_t i = 0; i < n; i++) {
		perch_run_abandon(c[i].old->ctl);
		pthread_mutex_lock(&d->lock);
		bool ended = c[i].old->finalizing;
		if (!ended)
			c[i].old->superseded = true;
		pthread_mutex_unlock(&d->lock);
		if (ended) {
			c[i].w = NULL; /* it finished on its own meanwhile */
			continue;
		}
		pthread_mutex_lock(&c[i].w->io_lock);
		c[i].w->writer = NULL;
		pthread_mutex_unlock(&c[i].w->io_lock);
	}
	disc *cache = NULL;
	size_t n_cache = 0;
	for (size_t i = 0; i < n; i++) {
		dwf *w = c[i].w;
		if (w == NULL)
			continue;
		found *f = discovery_of(d, &cache, &n_cache, c[i].to);
		drun proto;
		const found_wf *fw = f->ok ? found_task(f, w->id) : NULL;
		size_t resumed = build_plan(d, w, c[i].to, fw, w->setup_done || fw != NULL, &proto);
		unsigned from = c[i].old->v->number;
		if (resumed == 0) {
			/* Caught between two stages: no step runs that the new
			 * version could take up, and a new instance may not know
			 * a workflow it did not set up (the dummy without a state
			 * directory does not).  The old version, which does,
			 * carries on from the same plan. */
			pthread_mutex_lock(&d->lock);
			if (!perch_daemon_start_run(d, w, c[i].old->v, &proto))
				w->fail_reason = perch_xstrdup("cannot start a thread for it");
			pthread_mutex_unlock(&d->lock);
			perch_daemon_log(d, PERCH_LOG_INFO, "workflow %s stays on %s #%u: no step "
							    "was running to hand over", w->id,
					 c[i].to->name, from);
			continue;
		}
		pthread_mutex_lock(&d->lock);
		w->handovers++;
		if (!perch_daemon_start_run(d, w, c[i].to, &proto))
			w->fail_reason = perch_xstrdup("cannot start a thread for the hand-over");
		pthread_mutex_unlock(&d->lock);
		perch_daemon_log(d, PERCH_LOG_INFO, "workflow %s handed over from %s #%u to #%u "
						    "(%zu step%s resumed)", w->id, c[i].to->name, from,
				 c[i].to->number, resumed, resumed == 1 ? "" : "s");
		if (report) {
			if (report->len)
				perch_buf_putc(report, ',');
			perch_buf_printf(report, "{\"id\":\"%s\",\"from\":%u,\"to\":%u,\"resumed\":%zu}",
					 w->id, from, c[i].to->number, resumed);
		}
	}
	for (size_t i = 0; i < n_cache; i++)
		found_free(&cache[i].f);
	free(cache);
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < n; i++)
		if (c[i].w)
			c[i].w->readers--;
		else
			c[i].old->w->readers--;
	pthread_mutex_unlock(&d->lock);
	free(c);
}

void perch_daemon_release_old(perch_daemon *d, dwf *w, dversion *v)
{
	destroy_on(d, v, &w->wf->config, w->id);
}

/* ---- shutdown ------------------------------------------------------------------------- */

void perch_daemon_leave_or_cancel(perch_daemon *d)
{
	drun **leave = NULL;
	size_t n = 0;
	pthread_mutex_lock(&d->lock);
	for (dwf *w = d->wfs; w; w = w->next) {
		drun *r = w->run;
		if (w->state != DWF_RUNNING || r == NULL || r->superseded || r->finalizing)
			continue;
		if (r->v->can_adopt) {
			leave = perch_xrealloc(leave, (n + 1) * sizeof *leave);
			leave[n++] = r;
		} else {
			perch_daemon_log(d, PERCH_LOG_INFO, "shutdown: cancelling workflow %s (backend "
							    "%s cannot hand it to the next daemon)",
					 w->id, r->v->name);
			perch_ctx_cancel(r->wf_ctx);
		}
	}
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n; i++) {
		drun *r = leave[i];
		perch_run_abandon(r->ctl);
		pthread_mutex_lock(&d->lock);
		bool ended = r->finalizing;
		if (!ended) {
			r->superseded = r->left = true;
			r->w->run = NULL;
			d->n_running--;
		}
		pthread_mutex_unlock(&d->lock);
		if (ended)
			continue;
		pthread_mutex_lock(&r->w->io_lock);
		r->w->writer = NULL;
		pthread_mutex_unlock(&r->w->io_lock);
		perch_daemon_log(d, PERCH_LOG_INFO, "shutdown: leaving workflow %s running on %s for "
						    "the next daemon to adopt", r->w->id, r->v->name);
	}
	free(leave);
	pthread_mutex_lock(&d->lock);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}
