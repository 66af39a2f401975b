/*
 * backend.c - the dummy backend's entry object: name, flags, load, unload
 * and capability lookup.  The step calls live in steps.c.
 */
#define _GNU_SOURCE
#include "dummy.h"

#include <stdlib.h>
#include <string.h>

#define STATE_DIR_FLAG "backend-dummy-state-dir"

static const char *const state_dir_env[] = {
	"PERCH_BACKEND_DUMMY_STATE_DIR",
	NULL,
};

/* Empty by default: workflows live in memory only and a restart loses
 * them, as in Woodpecker.  With a folder, they survive the host. */
static const perch_flag state_dir_flag = {
	PERCH_FLAG_INIT,
	.kind = PERCH_FLAG_STRING,
	.name = STATE_DIR_FLAG,
	.env = state_dir_env,
	.default_value = "",
	.usage = "folder where the dummy backend keeps its simulated workflows "
		 "so that a new host can adopt them (empty: memory only)",
};

static const perch_flag *const dummy_flags[] = {
	&state_dir_flag,
	NULL,
};

static bool dummy_is_available(const perch_host *host, const perch_ctx *ctx,
			       perch_error *why)
{
	return true;
}

/* Reads the state-dir flag.  No CLI context is not an error here: the
 * dummy then simply keeps everything in memory (tests load it bare). */
static perch_status read_state_dir(const perch_host *host, const perch_ctx *ctx,
				   char **out, perch_error *err)
{
	const perch_cli *cli = NULL;
	const char *dir;

	*out = NULL;
	if (!PERCH_HAS_FIELD(host, perch_host, cli_string) ||
	    perch_ctx_cli(host, ctx, &cli, NULL) != PERCH_OK)
		return PERCH_OK;
	dir = host->cli_string(cli, STATE_DIR_FLAG);
	if (dir == NULL || *dir == '\0')
		return PERCH_OK;
	*out = perch_dummy_store_open(dir, err);
	return *out != NULL ? PERCH_OK : PERCH_ERR_IO;
}

static perch_status dummy_load(const perch_host *host, const perch_ctx *ctx,
			       perch_instance **instance,
			       perch_backend_info *info, perch_error *err)
{
	perch_instance *inst;
	perch_status st;

	*instance = NULL;
	/* ctx_value is the newest host call this plugin needs. */
	if (!PERCH_HAS_FIELD(host, perch_host, ctx_value))
		return perch_error_set(err, PERCH_ERR_UNSUPPORTED,
				       "host table too old for the dummy backend");
	inst = calloc(1, sizeof *inst);
	if (inst == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	inst->host = host;
	st = read_state_dir(host, ctx, &inst->state_dir, err);
	if (st != PERCH_OK) {
		free(inst);
		return st;
	}
	pthread_mutex_init(&inst->lock, NULL);
	if (PERCH_HAS_FIELD(info, perch_backend_info, platform))
		snprintf(info->platform, sizeof info->platform, "%s", "dummy");
	if (inst->state_dir != NULL)
		perch_logf(host, PERCH_LOG_INFO, "dummy: keeping state in %s",
			   inst->state_dir);
	*instance = inst;
	return PERCH_OK;
}

/* No call is in flight, so every reference left is a list's own.  The
 * state directory stays: it is what the next instance adopts. */
static void dummy_unload(perch_instance *inst)
{
	if (inst == NULL)
		return;
	perch_dummy_writers_shutdown(inst);
	pthread_mutex_lock(&inst->lock);
	while (inst->workflows != NULL) {
		perch_dummy_workflow *wf = inst->workflows;
		inst->workflows = wf->next;
		while (wf->steps != NULL) {
			perch_dummy_step *st = wf->steps;
			wf->steps = st->next;
			perch_dummy_step_unref(st);
		}
		perch_dummy_workflow_unref(wf);
	}
	pthread_mutex_unlock(&inst->lock);
	pthread_mutex_destroy(&inst->lock);
	free(inst->state_dir);
	free(inst);
}

static const void *dummy_get_capability(perch_instance *inst, const char *id)
{
	if (id == NULL)
		return NULL;
	if (strcmp(id, PERCH_CAP_WORKFLOW_DISCOVERER) == 0)
		return &perch_dummy_discoverer;
	if (strcmp(id, PERCH_CAP_WORKFLOW_RESUMER) == 0)
		return &perch_dummy_resumer;
	return NULL;
}

PERCH_BACKEND_ENTRY = {
	PERCH_BACKEND_INIT,
	.priority = 0,
	.name = "dummy",
	.version = "1.0.0",
	.description = "Woodpecker's test backend: simulates steps from their "
		       "environment, runs nothing",
	.flags = dummy_flags,
	.is_available = dummy_is_available,
	.load = dummy_load,
	.setup_workflow = perch_dummy_setup_workflow,
	.start_step = perch_dummy_start_step,
	.tail_step = perch_dummy_tail_step,
	.wait_step = perch_dummy_wait_step,
	.destroy_step = perch_dummy_destroy_step,
	.destroy_workflow = perch_dummy_destroy_workflow,
	.unload = dummy_unload,
	.get_capability = dummy_get_capability,
};
