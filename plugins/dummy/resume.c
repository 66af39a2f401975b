/*
 * resume.c - the dummy's discoverer and resumer capabilities.
 *
 * Discover reports every workflow of the state directory and every one this
 * instance holds in memory.  Resume re-attaches a step: from memory when
 * this instance knows it, else from its persisted record, so that a new
 * instance (a restarted host, or a newer plugin loaded beside the old one)
 * can tail and wait for steps an earlier instance started.  The dummy's
 * output is deterministic, so a resumed tail skips exactly the lines the
 * host already has: no line lost or repeated.
 */
#define _GNU_SOURCE
#include "dummy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- discover ---- */

typedef struct found_step {
	char *uuid;
	char *name;
	char *container_id;
} found_step;

typedef struct found_workflow {
	char *task_uuid;
	found_step *steps;
	size_t n_steps;
} found_workflow;

typedef struct found {
	found_workflow *wfs;
	size_t n;
	bool oom;
	const perch_host *host;
	const perch_ctx *ctx;
	bool cancelled;
} found;

static found_workflow *found_add_workflow(found *f, const char *task_uuid)
{
	found_workflow *p;
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->wfs[i].task_uuid, task_uuid) == 0)
			return &f->wfs[i];
	p = realloc(f->wfs, (f->n + 1) * sizeof *p);
	if (p == NULL)
		return NULL;
	f->wfs = p;
	p = &f->wfs[f->n];
	memset(p, 0, sizeof *p);
	p->task_uuid = strdup(task_uuid);
	if (p->task_uuid == NULL)
		return NULL;
	f->n++;
	return p;
}

static bool found_add_step(found_workflow *wf, const char *uuid,
			   const char *name)
{
	found_step *p;
	size_t i;

	for (i = 0; i < wf->n_steps; i++)
		if (strcmp(wf->steps[i].uuid, uuid) == 0)
			return true;
	p = realloc(wf->steps, (wf->n_steps + 1) * sizeof *p);
	if (p == NULL)
		return false;
	wf->steps = p;
	p = &wf->steps[wf->n_steps];
	p->uuid = strdup(uuid);
	p->name = strdup(name);
	p->container_id = NULL;
	if (p->uuid == NULL || p->name == NULL ||
	    asprintf(&p->container_id, "dummy-%s", uuid) < 0) {
		free(p->uuid);
		free(p->name);
		return false;
	}
	wf->n_steps++;
	return true;
}

static void found_free(found *f)
{
	size_t i, j;

	for (i = 0; i < f->n; i++) {
		for (j = 0; j < f->wfs[i].n_steps; j++) {
			free(f->wfs[i].steps[j].uuid);
			free(f->wfs[i].steps[j].name);
			free(f->wfs[i].steps[j].container_id);
		}
		free(f->wfs[i].steps);
		free(f->wfs[i].task_uuid);
	}
	free(f->wfs);
}

static bool visit_store(void *user, const char *task_uuid,
			const char *step_uuid, const char *step_name)
{
	found *f = user;
	found_workflow *wf;

	if (f->host->ctx_cancelled(f->ctx)) {
		f->cancelled = true;
		return false;
	}
	wf = found_add_workflow(f, task_uuid);
	if (wf == NULL || (step_uuid != NULL &&
			   !found_add_step(wf, step_uuid, step_name))) {
		f->oom = true;
		return false;
	}
	return true;
}

static void collect_memory(perch_instance *inst, found *f)
{
	perch_dummy_workflow *wf;
	perch_dummy_step *st;

	pthread_mutex_lock(&inst->lock);
	for (wf = inst->workflows; wf != NULL && !f->oom; wf = wf->next) {
		found_workflow *fw = found_add_workflow(f, wf->task_uuid);
		if (fw == NULL) {
			f->oom = true;
			break;
		}
		for (st = wf->steps; st != NULL; st = st->next)
			if (!found_add_step(fw, st->uuid, st->rec.name)) {
				f->oom = true;
				break;
			}
	}
	pthread_mutex_unlock(&inst->lock);
}

/* Emits one workflow; the structs live on this frame, as the emit
 * contract allows (the host copies). */
static bool emit_one(const found_workflow *fw, perch_discover_fn emit,
		     void *user, bool *oom)
{
	perch_discovered_step *steps = calloc(fw->n_steps + 1, sizeof *steps);
	const perch_discovered_step **ptrs =
		calloc(fw->n_steps + 1, sizeof *ptrs);
	perch_discovered_workflow dw;
	size_t i;
	bool go_on = false;

	if (steps == NULL || ptrs == NULL) {
		*oom = true;
		goto out;
	}
	for (i = 0; i < fw->n_steps; i++) {
		steps[i].struct_size = sizeof steps[i];
		steps[i].uuid = fw->steps[i].uuid;
		steps[i].name = fw->steps[i].name;
		steps[i].container_id = fw->steps[i].container_id;
		ptrs[i] = &steps[i];
	}
	memset(&dw, 0, sizeof dw);
	dw.struct_size = sizeof dw;
	dw.task_uuid = fw->task_uuid;
	dw.steps = ptrs;
	dw.n_steps = fw->n_steps;
	go_on = emit(user, &dw);
out:
	free(steps);
	free(ptrs);
	return go_on;
}

static perch_status dummy_discover(perch_instance *inst, const perch_ctx *ctx,
				   perch_discover_fn emit, void *user,
				   perch_error *err)
{
	found f = {.host = inst->host, .ctx = ctx};
	perch_status rc = PERCH_OK;
	size_t i;

	if (inst->state_dir != NULL)
		rc = perch_dummy_store_list(inst, visit_store, &f, err);
	if (rc == PERCH_OK && !f.oom && !f.cancelled)
		collect_memory(inst, &f);
	for (i = 0; rc == PERCH_OK && !f.oom && !f.cancelled && i < f.n; i++) {
		if (inst->host->ctx_cancelled(ctx)) {
			f.cancelled = true;
			break;
		}
		if (!emit_one(&f.wfs[i], emit, user, &f.oom))
			break;
	}
	found_free(&f);
	if (rc != PERCH_OK)
		return rc;
	if (f.oom)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	if (f.cancelled)
		return perch_error_set(err, PERCH_ERR_CANCELLED,
				       "discovery cancelled");
	return PERCH_OK;
}

const perch_workflow_discoverer_v1 perch_dummy_discoverer = {
	.struct_size = sizeof(perch_workflow_discoverer_v1),
	.discover_workflows = dummy_discover,
};

/* ---- resume ---- */

static perch_status dummy_resume(perch_instance *inst, const perch_ctx *ctx,
				 const perch_step *step, const char *task_uuid,
				 const perch_resume_point *from,
				 perch_error *err)
{
	perch_dummy_workflow *wf, *new_wf = NULL;
	perch_dummy_step *st, *new_st = NULL;
	perch_dummy_record rec;
	uint64_t skip = 0;
	perch_status rc;

	if (!perch_dummy_valid_name(task_uuid) || step == NULL ||
	    !perch_dummy_valid_name(step->uuid))
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "invalid task uuid \"%s\" or step uuid "
				       "\"%s\"",
				       task_uuid ? task_uuid : "(null)",
				       step && step->uuid ? step->uuid
							  : "(null)");
	if (PERCH_HAS_FIELD(from, perch_resume_point, lines_seen))
		skip = from->lines_seen;

	/* Known to this instance: re-attach in place. */
	pthread_mutex_lock(&inst->lock);
	wf = perch_dummy_find_workflow(inst, task_uuid);
	st = wf != NULL ? perch_dummy_find_step(wf, step->uuid) : NULL;
	if (st != NULL && st->wake_fd < 0) {
		st->state = PERCH_DUMMY_STARTED;
		st->skip_lines = skip;
	}
	pthread_mutex_unlock(&inst->lock);
	if (st != NULL)
		return PERCH_OK;

	if (inst->state_dir == NULL)
		return wf != NULL
			       ? perch_error_set(err, PERCH_ERR_NOT_FOUND,
						 "step '%s' (%s) of workflow %s "
						 "not found",
						 step->name, step->uuid,
						 task_uuid)
			       : perch_error_set(err, PERCH_ERR_NOT_FOUND,
						 "workflow %s not found",
						 task_uuid);
	if (wf == NULL && !perch_dummy_store_has_workflow(inst, task_uuid))
		return perch_error_set(err, PERCH_ERR_NOT_FOUND,
				       "workflow %s not found in %s", task_uuid,
				       inst->state_dir);
	rc = perch_dummy_store_get_step(inst, task_uuid, step->uuid, &rec, err);
	if (rc != PERCH_OK)
		return rc;
	new_wf = perch_dummy_workflow_new(task_uuid);
	new_st = perch_dummy_step_new(step->uuid, &rec);
	if (new_wf == NULL || new_st == NULL) {
		perch_dummy_record_free(&rec);
		rc = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto out;
	}

	/* Link what is still missing; a concurrent resume may have won. */
	pthread_mutex_lock(&inst->lock);
	wf = perch_dummy_find_workflow(inst, task_uuid);
	if (wf == NULL) {
		wf = new_wf;
		new_wf = NULL;
		wf->next = inst->workflows;
		inst->workflows = wf;
	}
	st = perch_dummy_find_step(wf, step->uuid);
	if (st == NULL) {
		st = new_st;
		new_st = NULL;
		st->next = wf->steps;
		wf->steps = st;
	}
	if (st->wake_fd < 0) {
		st->state = PERCH_DUMMY_STARTED;
		st->skip_lines = skip;
	}
	pthread_mutex_unlock(&inst->lock);
	perch_logf(inst->host, PERCH_LOG_DEBUG,
		   "dummy: resumed step '%s' (%s) of workflow %s after %llu "
		   "lines",
		   step->name, step->uuid, task_uuid,
		   (unsigned long long)skip);
	rc = PERCH_OK;
out:
	pthread_mutex_lock(&inst->lock);
	perch_dummy_step_unref(new_st);
	perch_dummy_workflow_unref(new_wf);
	pthread_mutex_unlock(&inst->lock);
	return rc;
}

const perch_workflow_resumer_v1 perch_dummy_resumer = {
	.struct_size = sizeof(perch_workflow_resumer_v1),
	.resume_step = dummy_resume,
};
