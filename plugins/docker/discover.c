/*
 * discover.c - the workflow-discoverer and workflow-resumer capabilities.
 *
 * Discovery asks the engine, not memory: every container, volume and
 * network carrying this host id's label belongs to a workflow this host
 * (in this or an earlier life) ran.  Containers that were started give
 * the steps; one never started (made ahead by the worker, or left by a
 * start_step cut short), a volume or a network alone still names a
 * workflow, so that the host can destroy what it cannot resume.  Other host ids sharing
 * the engine are never returned.
 *
 * Resume attaches the step table to the running or exited container; from
 * then on tail_step and wait_step work as after start_step.  How the log
 * continues without repeating or losing output is explained in logs.c.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <stdlib.h>
#include <string.h>

typedef struct dstep {
	char *uuid, *name, *container_id;
} dstep;

typedef struct dwf {
	char *task;
	dstep *steps;
	size_t n;
} dwf;

typedef struct found {
	dwf *wfs;
	size_t n;
	bool oom;
} found;

static dwf *workflow(found *f, const char *task)
{
	dwf *nv;

	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->wfs[i].task, task) == 0)
			return &f->wfs[i];
	nv = realloc(f->wfs, (f->n + 1) * sizeof *nv);
	if (nv == NULL)
		return NULL;
	f->wfs = nv;
	memset(&nv[f->n], 0, sizeof nv[f->n]);
	nv[f->n].task = strdup(task);
	if (nv[f->n].task == NULL)
		return NULL;
	return &nv[f->n++];
}

static const char *label(json_object *o, const char *key)
{
	json_object *labels;
	if (!json_object_object_get_ex(o, "Labels", &labels))
		return NULL;
	return perch_docker_jstr(labels, key);
}

static bool on_container(void *user, json_object *c)
{
	found *f = user;
	const char *task = label(c, PERCH_DOCKER_LABEL_TASK);
	const char *uuid = label(c, PERCH_DOCKER_LABEL_STEP_UUID);
	const char *name = label(c, PERCH_DOCKER_LABEL_STEP_NAME);
	const char *id = perch_docker_jstr(c, "Id");
	const char *state;
	dwf *w;
	dstep *nv;

	if (task == NULL || uuid == NULL || id == NULL)
		return true;
	w = workflow(f, task);
	if (w == NULL)
		goto oom;
	/* Never started (prepared ahead, or its start_step did not get that
	 * far): not a step to resume - waiting for it would report an exit
	 * it never made.  The workflow still counts, so that it is
	 * destroyed. */
	state = perch_docker_jstr(c, "State");
	if (state != NULL && strcmp(state, "created") == 0)
		return true;
	nv = realloc(w->steps, (w->n + 1) * sizeof *nv);
	if (nv == NULL)
		goto oom;
	w->steps = nv;
	nv[w->n].uuid = strdup(uuid);
	nv[w->n].name = strdup(name ? name : "");
	nv[w->n].container_id = strdup(id);
	w->n++;
	if (!nv[w->n - 1].uuid || !nv[w->n - 1].name ||
	    !nv[w->n - 1].container_id)
		goto oom;
	return true;
oom:
	f->oom = true;
	return false;
}

static bool on_other(void *user, json_object *o)
{
	found *f = user;
	const char *task = label(o, PERCH_DOCKER_LABEL_TASK);

	if (task != NULL && workflow(f, task) == NULL) {
		f->oom = true;
		return false;
	}
	return true;
}

static void found_free(found *f)
{
	for (size_t i = 0; i < f->n; i++) {
		for (size_t j = 0; j < f->wfs[i].n; j++) {
			free(f->wfs[i].steps[j].uuid);
			free(f->wfs[i].steps[j].name);
			free(f->wfs[i].steps[j].container_id);
		}
		free(f->wfs[i].steps);
		free(f->wfs[i].task);
	}
	free(f->wfs);
}

static perch_status emit_one(const dwf *w, perch_discover_fn emit, void *user,
			     bool *more)
{
	perch_discovered_step *steps = calloc(w->n + 1, sizeof *steps);
	const perch_discovered_step **ptrs = calloc(w->n + 1, sizeof *ptrs);
	perch_discovered_workflow wf = {
		.struct_size = sizeof wf,
		.task_uuid = w->task,
		.n_steps = w->n,
	};

	if (steps == NULL || ptrs == NULL) {
		free(steps);
		free(ptrs);
		return PERCH_ERR_NO_MEMORY;
	}
	for (size_t i = 0; i < w->n; i++) {
		steps[i].struct_size = sizeof steps[i];
		steps[i].uuid = w->steps[i].uuid;
		steps[i].name = w->steps[i].name;
		steps[i].container_id = w->steps[i].container_id;
		ptrs[i] = &steps[i];
	}
	wf.steps = ptrs;
	*more = emit(user, &wf);
	free(steps);
	free(ptrs);
	return PERCH_OK;
}

static perch_status discover(perch_instance *inst, const perch_ctx *ctx,
			     perch_discover_fn emit, void *user,
			     perch_error *err)
{
	int cfd = pp_cancel_fd(inst->host, ctx);
	found f = {0};
	perch_status st;
	bool more = true;

	st = perch_docker_list(inst, cfd, "containers", NULL, 0, on_container,
			       &f, err);
	if (st == PERCH_OK && !f.oom)
		st = perch_docker_list(inst, cfd, "volumes", NULL, 0, on_other,
				       &f, err);
	if (st == PERCH_OK && !f.oom)
		st = perch_docker_list(inst, cfd, "networks", NULL, 0, on_other,
				       &f, err);
	if (st == PERCH_OK && f.oom)
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	for (size_t i = 0; st == PERCH_OK && more && i < f.n; i++)
		if ((st = emit_one(&f.wfs[i], emit, user, &more)) != PERCH_OK)
			perch_error_set(err, st, "out of memory");
	found_free(&f);
	return st;
}

static perch_status resume(perch_instance *inst, const perch_ctx *ctx,
			   const perch_step *step, const char *task_uuid,
			   const perch_resume_point *from, perch_error *err)
{
	static const perch_resume_point everything = {
		.struct_size = sizeof everything,
	};

	return perch_docker_step_attach(inst, pp_cancel_fd(inst->host, ctx),
					task_uuid, step->uuid, step->name,
					from != NULL ? from : &everything, err);
}

const perch_workflow_discoverer_v1 perch_docker_discoverer = {
	.struct_size = sizeof(perch_workflow_discoverer_v1),
	.discover_workflows = discover,
};

const perch_workflow_resumer_v1 perch_docker_resumer = {
	.struct_size = sizeof(perch_workflow_resumer_v1),
	.resume_step = resume,
};
