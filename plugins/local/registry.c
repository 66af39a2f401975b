/*
 * registry.c - the workflow and step records of a local instance.
 *
 * Records are reference counted so that a call blocked on a step (wait_step
 * of a detached step, above all) keeps its record alive while
 * destroy_workflow, on another thread, unlinks and stops it.  Every counter
 * is guarded by inst->lock.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *perch_local_step_key(const perch_step *step)
{
	if (step->uuid != NULL && step->uuid[0] != '\0')
		return step->uuid;
	return step->name != NULL ? step->name : "";
}

perch_local_workflow *perch_local_workflow_get(perch_instance *inst,
					       const char *task_uuid)
{
	perch_local_workflow *wf;

	pthread_mutex_lock(&inst->lock);
	for (wf = inst->workflows; wf != NULL; wf = wf->next)
		if (strcmp(wf->task_uuid, task_uuid) == 0)
			break;
	if (wf != NULL)
		wf->refs++;
	pthread_mutex_unlock(&inst->lock);
	return wf;
}

perch_local_step *perch_local_step_get(perch_instance *inst,
				       perch_local_workflow *wf,
				       const char *key)
{
	perch_local_step *st;

	pthread_mutex_lock(&inst->lock);
	for (st = wf->steps; st != NULL; st = st->next)
		if (strcmp(st->key, key) == 0)
			break;
	if (st != NULL)
		st->refs++;
	pthread_mutex_unlock(&inst->lock);
	return st;
}

void perch_local_workflow_unref_locked(perch_local_workflow *wf)
{
	if (wf == NULL || --wf->refs > 0)
		return;
	pthread_mutex_destroy(&wf->netrc_lock);
	free(wf->task_uuid);
	free(wf->base_dir);
	free(wf->home_dir);
	free(wf->workspace_dir);
	free(wf);
}

void perch_local_workflow_unref(perch_instance *inst, perch_local_workflow *wf)
{
	pthread_mutex_lock(&inst->lock);
	perch_local_workflow_unref_locked(wf);
	pthread_mutex_unlock(&inst->lock);
}

void perch_local_step_unref_locked(perch_local_step *st)
{
	if (st == NULL || --st->refs > 0)
		return;
	/* A leader that was never reaped (stuck in the kernel even after
	 * SIGKILL) stays a zombie: nothing safe is left to do about it. */
	if (st->proc.pidfd >= 0)
		close(st->proc.pidfd);
	if (st->log_fd >= 0)
		close(st->log_fd);
	perch_local_workflow_unref_locked(st->wf);
	free(st->key);
	free(st->name);
	free(st);
}

void perch_local_step_unref(perch_instance *inst, perch_local_step *st)
{
	pthread_mutex_lock(&inst->lock);
	perch_local_step_unref_locked(st);
	pthread_mutex_unlock(&inst->lock);
}

perch_local_step *perch_local_step_new(perch_instance *inst,
				       perch_local_workflow *wf,
				       const perch_step *step)
{
	perch_local_step *st = calloc(1, sizeof *st);

	if (st == NULL)
		return NULL;
	st->key = strdup(perch_local_step_key(step));
	st->name = strdup(step->name != NULL && step->name[0] != '\0'
				  ? step->name
				  : perch_local_step_key(step));
	if (st->key == NULL || st->name == NULL) {
		free(st->key);
		free(st->name);
		free(st);
		return NULL;
	}
	st->refs = 1;
	st->proc.pid = -1;
	st->proc.pidfd = -1;
	st->log_fd = -1;
	pthread_mutex_lock(&inst->lock);
	wf->refs++;
	st->wf = wf;
	pthread_mutex_unlock(&inst->lock);
	return st;
}

void perch_local_registry_clear(perch_instance *inst)
{
	pthread_mutex_lock(&inst->lock);
	while (inst->workflows != NULL) {
		perch_local_workflow *wf = inst->workflows;
		inst->workflows = wf->next;
		while (wf->steps != NULL) {
			perch_local_step *st = wf->steps;
			wf->steps = st->next;
			perch_local_step_unref_locked(st);
		}
		perch_local_workflow_unref_locked(wf);
	}
	while (inst->shells != NULL) {
		perch_local_shell *sh = inst->shells;
		inst->shells = sh->next;
		free(sh->path);
		free(sh);
	}
	pthread_mutex_unlock(&inst->lock);
}
