/*
 * worker.c - the engine calls that need not hold up a workflow, made by
 * one thread per instance (started on first use) while the steps run.
 *
 * The host runs a workflow's stages one after the other: destroy_step of
 * stage k, then start_step of stage k+1, each waiting for the engine.  Two
 * of those calls need not wait:
 *
 *  - Removing a finished step's container.  Once wait_step has seen it
 *    stop there is nothing left to stop: removal only frees the engine's
 *    record, its name and its anonymous volumes.  destroy_step queues it
 *    here and returns.
 *
 *  - Creating the next stage's containers.  When a step of stage k has
 *    started, the steps of stage k+1 that will run if all goes well
 *    (on_success, an image, no pull: a pull's output belongs to its step's
 *    log) get their create bodies built from the workflow's config, and
 *    are created here while stage k runs.  Their start_step then finds
 *    the container "prepared" and only starts it - if the create body it
 *    would send is byte for byte the prepared one; otherwise the prepared
 *    container is removed and a new one made.  The thread keeps no pointer
 *    into the host's config: a handed-over workflow's may be gone.
 *
 * What stays guaranteed:
 *  - destroy_workflow first waits for the task's work here (perch_docker_
 *    worker_forget), then sweeps its containers, volumes and networks by
 *    label as before, prepared containers of skipped steps included: once
 *    it returns nothing is left;
 *  - a prepared container has never run: discovery does not report
 *    containers that were never started (discover.c), and a start_step
 *    that meets one under its name (left by an earlier process) removes it
 *    and creates the step's own (steps.c);
 *  - a create that meets the name of a container still queued for removal
 *    waits for the task's removals and tries again;
 *  - unload finishes the removals, drops the preparations not yet begun
 *    and joins the thread.
 * A failed removal or preparation is logged at debug level, never
 * reported: destroy_step has returned, and start_step creates the
 * container itself.
 *
 * Locking: every list here is guarded by inst->lock, which is never held
 * across an engine call.  The thread alone moves a preparation from QUEUED
 * to CREATING and on; only a QUEUED, READY or FAILED one is ever freed by
 * others.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <stdlib.h>
#include <string.h>

enum { PREP_QUEUED, PREP_CREATING, PREP_READY, PREP_FAILED };

/* A workflow set up here, with its config (host-owned, valid until
 * destroy_workflow returns). */
struct perch_docker_wf {
	perch_docker_wf *next;
	char *task_uuid;
	const perch_config *config;
	size_t next_stage; /* stages below this one are prepared or running */
};

/* A container made ahead of its step's start_step.  Only strings: the
 * thread never reads the host's config, which may be gone by the time it
 * gets to it (a workflow handed over to another instance). */
struct perch_docker_prep {
	perch_docker_prep *next;
	char *task_uuid, *step_uuid, *step_name;
	int state;         /* PREP_* */
	char *name, *body; /* what the container is created with */
	char *id;          /* READY: the container */
};

struct perch_docker_removal {
	perch_docker_removal *next;
	char *task_uuid;
	char *container_id;
};

static void removal_free(perch_docker_removal *r)
{
	if (r == NULL)
		return;
	free(r->task_uuid);
	free(r->container_id);
	free(r);
}

static void prep_free(perch_docker_prep *p)
{
	if (p == NULL)
		return;
	free(p->task_uuid);
	free(p->step_uuid);
	free(p->step_name);
	free(p->name);
	free(p->body);
	free(p->id);
	free(p);
}

void perch_docker_worker_init(perch_instance *inst)
{
	perch_docker_worker *w = &inst->worker;

	memset(w, 0, sizeof *w);
	pthread_cond_init(&w->cond, NULL);
	w->removals_tail = &w->removals;
}

/* ---- the thread ---- */

/* Creates p's container.  Called without the lock; p is CREATING, so
 * nobody else touches it. */
static void prepare(perch_instance *inst, perch_docker_prep *p)
{
	perch_error e = {.struct_size = sizeof e};
	char *id = NULL;
	long code = 0;
	perch_status st;

	st = perch_docker_create_container(inst, -1, p->name, p->body,
					   p->step_name, &id, &code, &e);
	if (st != PERCH_OK)
		perch_logf(inst->host, PERCH_LOG_DEBUG,
			   "docker: not prepared ahead (start_step creates "
			   "it): %s",
			   e.message);
	pthread_mutex_lock(&inst->lock);
	p->id = id;
	p->state = st == PERCH_OK ? PREP_READY : PREP_FAILED;
	pthread_cond_broadcast(&inst->worker.cond);
	pthread_mutex_unlock(&inst->lock);
}

static void *worker_main(void *arg)
{
	perch_instance *inst = arg;
	perch_docker_worker *w = &inst->worker;

	pthread_mutex_lock(&inst->lock);
	for (;;) {
		perch_docker_prep *p = NULL;
		perch_docker_removal *r;

		/* Preparations first: a stage may be waiting for them. */
		for (p = w->stopping ? NULL : w->preps; p != NULL; p = p->next)
			if (p->state == PREP_QUEUED)
				break;
		if (p != NULL) {
			p->state = PREP_CREATING;
			pthread_mutex_unlock(&inst->lock);
			prepare(inst, p);
			pthread_mutex_lock(&inst->lock);
			continue;
		}
		if (w->removals != NULL) {
			perch_error e = {.struct_size = sizeof e};
			perch_status st;
			r = w->removals;
			w->removals = r->next;
			if (w->removals == NULL)
				w->removals_tail = &w->removals;
			w->removing = r;
			pthread_mutex_unlock(&inst->lock);
			/* No cancel descriptor: the context of the
			 * destroy_step that queued it is gone; the request
			 * timeout bounds the call. */
			st = perch_docker_delete_container(inst, r->container_id,
							   -1, &e);
			if (st != PERCH_OK)
				perch_logf(inst->host, PERCH_LOG_WARN,
					   "docker: removing the container of "
					   "a finished step failed (destroying "
					   "the workflow tries again): %s",
					   e.message);
			pthread_mutex_lock(&inst->lock);
			w->removing = NULL;
			removal_free(r);
			pthread_cond_broadcast(&w->cond);
			continue;
		}
		if (w->stopping)
			break;
		pthread_cond_wait(&w->cond, &inst->lock);
	}
	pthread_mutex_unlock(&inst->lock);
	return NULL;
}

/* Starts the thread if it is not running.  Caller holds inst->lock. */
static bool ensure_thread(perch_instance *inst)
{
	perch_docker_worker *w = &inst->worker;

	if (w->stopping)
		return false;
	if (!w->started)
		w->started = pp_thread_start(&w->thread, NULL, worker_main,
					     inst) == 0;
	return w->started;
}

/* ---- removals ---- */

bool perch_docker_worker_remove(perch_instance *inst, const char *task_uuid,
				const char *container_id)
{
	perch_docker_worker *w = &inst->worker;
	perch_docker_removal *r = calloc(1, sizeof *r);
	bool ok;

	if (r == NULL)
		return false;
	r->task_uuid = strdup(task_uuid);
	r->container_id = strdup(container_id);
	if (r->task_uuid == NULL || r->container_id == NULL) {
		removal_free(r);
		return false;
	}
	pthread_mutex_lock(&inst->lock);
	ok = ensure_thread(inst);
	if (ok) {
		*w->removals_tail = r;
		w->removals_tail = &r->next;
		r = NULL;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&inst->lock);
	removal_free(r);
	return ok;
}

/* A removal of task (NULL: any) is queued or running.  Caller holds
 * inst->lock. */
static bool removing(const perch_docker_worker *w, const char *task_uuid)
{
	if (w->removing != NULL &&
	    (task_uuid == NULL || strcmp(w->removing->task_uuid, task_uuid) == 0))
		return true;
	for (const perch_docker_removal *r = w->removals; r != NULL; r = r->next)
		if (task_uuid == NULL || strcmp(r->task_uuid, task_uuid) == 0)
			return true;
	return false;
}

bool perch_docker_worker_drain(perch_instance *inst, const char *task_uuid)
{
	perch_docker_worker *w = &inst->worker;
	bool waited = false;

	pthread_mutex_lock(&inst->lock);
	while (removing(w, task_uuid)) {
		waited = true;
		pthread_cond_wait(&w->cond, &inst->lock);
	}
	pthread_mutex_unlock(&inst->lock);
	return waited;
}

/* ---- preparations ---- */

static perch_docker_wf *find_wf(perch_docker_worker *w, const char *task_uuid)
{
	for (perch_docker_wf *f = w->wfs; f != NULL; f = f->next)
		if (strcmp(f->task_uuid, task_uuid) == 0)
			return f;
	return NULL;
}

void perch_docker_worker_workflow(perch_instance *inst, const char *task_uuid,
				  const perch_config *config)
{
	perch_docker_worker *w = &inst->worker;
	perch_docker_wf *f;

	if (config == NULL || !PERCH_HAS_FIELD(config, perch_config, n_stages) ||
	    config->n_stages < 2)
		return; /* nothing would ever be prepared */
	f = calloc(1, sizeof *f);
	if (f == NULL || (f->task_uuid = strdup(task_uuid)) == NULL) {
		free(f);
		return; /* no preparation: steps are created as they start */
	}
	f->config = config;
	pthread_mutex_lock(&inst->lock);
	if (find_wf(w, task_uuid) == NULL) {
		f->next = w->wfs;
		w->wfs = f;
		f = NULL;
	}
	pthread_mutex_unlock(&inst->lock);
	if (f != NULL) { /* set up twice: the first config stays */
		free(f->task_uuid);
		free(f);
	}
}

/* Worth making ahead: it will run unless something fails, and its
 * container does not depend on anything start_step does first. */
static bool preparable(const perch_step *s)
{
	return s != NULL && s->uuid != NULL && s->uuid[0] != '\0' &&
	       s->image != NULL && s->image[0] != '\0' && !s->pull &&
	       s->on_success;
}

/* A QUEUED preparation of step (its name and create body made now, on
 * the caller's thread, while the config is surely valid), or NULL when
 * the step cannot be prepared (no memory, a field Docker refuses: its
 * start_step will say so). */
static perch_docker_prep *prep_new(perch_instance *inst, const char *task_uuid,
				   const perch_step *s)
{
	perch_docker_prep *p = calloc(1, sizeof *p);

	if (p == NULL)
		return NULL;
	p->state = PREP_QUEUED;
	p->task_uuid = strdup(task_uuid);
	p->step_uuid = strdup(s->uuid);
	p->step_name = strdup(s->name ? s->name : "");
	if (p->task_uuid == NULL || p->step_uuid == NULL ||
	    p->step_name == NULL ||
	    perch_docker_container_name(s, task_uuid, &p->name, NULL) !=
		    PERCH_OK ||
	    perch_docker_create_text(inst, s, task_uuid, "", &p->body, NULL) !=
		    PERCH_OK) {
		prep_free(p);
		return NULL;
	}
	return p;
}

/* The stage of config that holds the step called uuid, or n_stages. */
static size_t stage_of(const perch_config *c, const char *uuid)
{
	for (size_t k = 0; k < c->n_stages; k++)
		for (size_t j = 0; c->stages[k] != NULL &&
				   j < c->stages[k]->n_steps;
		     j++) {
			const perch_step *s = c->stages[k]->steps[j];
			if (s != NULL && s->uuid != NULL &&
			    strcmp(s->uuid, uuid) == 0)
				return k;
		}
	return c->n_stages;
}

void perch_docker_worker_prepare_after(perch_instance *inst,
				       const char *task_uuid,
				       const perch_step *step)
{
	perch_docker_worker *w = &inst->worker;
	perch_docker_prep *queued = NULL, **tail = &queued;
	const perch_stage *next = NULL;
	perch_docker_wf *f;
	size_t k;

	if (step->uuid == NULL || step->uuid[0] == '\0')
		return;
	/* Claim the next stage under the lock (once per stage, however many
	 * of this stage's steps start); build its bodies outside it. */
	pthread_mutex_lock(&inst->lock);
	f = find_wf(w, task_uuid);
	k = f != NULL ? stage_of(f->config, step->uuid) : 0;
	if (f != NULL && k + 1 < f->config->n_stages && f->next_stage <= k + 1) {
		f->next_stage = k + 2;
		next = f->config->stages[k + 1];
	}
	pthread_mutex_unlock(&inst->lock);
	if (next == NULL)
		return;
	for (size_t j = 0; j < next->n_steps; j++) {
		perch_docker_prep *p;
		if (!preparable(next->steps[j]))
			continue;
		p = prep_new(inst, task_uuid, next->steps[j]);
		if (p == NULL)
			continue; /* created as it starts */
		*tail = p;
		tail = &p->next;
	}
	pthread_mutex_lock(&inst->lock);
	if (queued != NULL && ensure_thread(inst)) {
		*tail = w->preps;
		w->preps = queued;
		queued = NULL;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&inst->lock);
	while (queued != NULL) {
		perch_docker_prep *p = queued;
		queued = p->next;
		prep_free(p);
	}
}

char *perch_docker_worker_take(perch_instance *inst, const char *task_uuid,
			       const char *step_uuid, const char *name,
			       const char *body)
{
	perch_docker_worker *w = &inst->worker;
	perch_docker_prep **pp, *p = NULL;
	char *id = NULL, *stale = NULL;

	pthread_mutex_lock(&inst->lock);
	for (;;) {
		for (pp = &w->preps; (p = *pp) != NULL; pp = &p->next)
			if (strcmp(p->task_uuid, task_uuid) == 0 &&
			    strcmp(p->step_uuid, step_uuid) == 0)
				break;
		if (p == NULL || p->state != PREP_CREATING)
			break;
		/* Almost made: cheaper to wait than to make another. */
		pthread_cond_wait(&w->cond, &inst->lock);
	}
	if (p != NULL) {
		*pp = p->next;
		if (p->state == PREP_READY) {
			if (strcmp(p->name, name) == 0 &&
			    strcmp(p->body, body) == 0)
				id = p->id;
			else
				stale = p->id; /* the step changed: not this */
			p->id = NULL;
		}
	}
	pthread_mutex_unlock(&inst->lock);
	if (stale != NULL && !perch_docker_worker_remove(inst, task_uuid, stale))
		(void)perch_docker_delete_container(inst, stale, -1, NULL);
	free(stale);
	prep_free(p);
	return id;
}

void perch_docker_worker_forget(perch_instance *inst, const char *task_uuid)
{
	perch_docker_worker *w = &inst->worker;
	perch_docker_prep *gone = NULL, **pp;
	perch_docker_wf **fp;

	pthread_mutex_lock(&inst->lock);
	for (fp = &w->wfs; *fp != NULL; fp = &(*fp)->next)
		if (strcmp((*fp)->task_uuid, task_uuid) == 0) {
			perch_docker_wf *f = *fp;
			*fp = f->next;
			free(f->task_uuid);
			free(f);
			break;
		}
	for (;;) {
		bool creating = false;
		pp = &w->preps;
		while (*pp != NULL) {
			perch_docker_prep *p = *pp;
			if (strcmp(p->task_uuid, task_uuid) != 0) {
				pp = &p->next;
			} else if (p->state == PREP_CREATING) {
				creating = true;
				pp = &p->next;
			} else {
				*pp = p->next;
				p->next = gone;
				gone = p;
			}
		}
		if (!creating && !removing(w, task_uuid))
			break;
		pthread_cond_wait(&w->cond, &inst->lock);
	}
	pthread_mutex_unlock(&inst->lock);
	/* Their containers carry the task's labels: the caller's sweep
	 * removes them. */
	while (gone != NULL) {
		perch_docker_prep *p = gone;
		gone = p->next;
		prep_free(p);
	}
}

void perch_docker_worker_stop(perch_instance *inst)
{
	perch_docker_worker *w = &inst->worker;

	pthread_mutex_lock(&inst->lock);
	w->stopping = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&inst->lock);
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
	/* Left: preparations not begun, and records.  Prepared containers
	 * of workflows not destroyed stay in the engine, labelled, for
	 * whoever destroys or takes over the workflow. */
	while (w->preps != NULL) {
		perch_docker_prep *p = w->preps;
		w->preps = p->next;
		prep_free(p);
	}
	while (w->wfs != NULL) {
		perch_docker_wf *f = w->wfs;
		w->wfs = f->next;
		free(f->task_uuid);
		free(f);
	}
	while (w->removals != NULL) { /* only when the thread never ran */
		perch_docker_removal *r = w->removals;
		w->removals = r->next;
		removal_free(r);
	}
	w->removals_tail = &w->removals;
	pthread_cond_destroy(&w->cond);
}
