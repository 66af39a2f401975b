/*
 * backend.c - the docker backend's entry object: is_available, load,
 * unload and capability lookup.  The step calls live in steps.c, logs.c
 * and workflow.c.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Woodpecker: available when a host is configured, or when the default
 * socket exists.  perch also asks the socket: a stale socket file of a
 * stopped engine does not make docker the auto-detected backend. */
static bool docker_is_available(const perch_host *host, const perch_ctx *ctx,
				perch_error *why)
{
	const perch_cli *cli = NULL;
	perch_docker_client c;
	struct stat sb;
	bool ok;

	if (PERCH_HAS_FIELD(host, perch_host, cli_is_set) &&
	    perch_ctx_cli(host, ctx, &cli, NULL) == PERCH_OK) {
		const char *h = host->cli_string(cli, "backend-docker-host");
		if (h != NULL && *h != '\0')
			return true;
	}
	if (stat(PERCH_DOCKER_DEFAULT_SOCKET, &sb) != 0) {
		perch_error_set(why, PERCH_ERR_UNAVAILABLE,
				"no docker socket at %s",
				PERCH_DOCKER_DEFAULT_SOCKET);
		return false;
	}
	/* Reference-counted by libcurl; before the client, whose connection
	 * pool is libcurl's. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		perch_error_set(why, PERCH_ERR, "libcurl failed to initialise");
		return false;
	}
	if (perch_docker_client_init(&c, NULL, NULL, true, why) != PERCH_OK) {
		perch_docker_client_free(&c);
		curl_global_cleanup();
		return false;
	}
	ok = perch_docker_ping(&c, -1);
	if (!ok)
		perch_error_set(why, PERCH_ERR_UNAVAILABLE,
				"the docker engine at %s does not answer /_ping",
				c.display);
	perch_docker_client_free(&c);
	curl_global_cleanup();
	return ok;
}

static const char *normalize_arch(const char *a)
{
	if (a == NULL)
		return "unknown";
	if (strcmp(a, "x86_64") == 0)
		return "amd64";
	if (strcmp(a, "aarch64") == 0)
		return "arm64";
	return a;
}

/* An OS or architecture name as the engine reports one ("linux",
 * "amd64", "arm"): short, and nothing a platform string cannot hold. */
static bool platform_part_ok(const char *p)
{
	size_t n = 0;

	for (; p[n] != '\0'; n++)
		if (n >= 24 || !(isalnum((unsigned char)p[n]) || strchr("_.-", p[n])))
			return false;
	return n > 0;
}

/* GET /info: the platform for BackendInfo. */
static perch_status engine_info(perch_instance *inst, int cfd, char *platform,
				size_t size, perch_error *err)
{
	perch_docker_req r = {
		.method = "GET",
		.path = "/info",
		.cancel_fd = {cfd, -1},
		.timeout_ms = 60000,
	};
	json_object *info = NULL;
	const char *os, *arch;
	perch_status st;

	st = perch_docker_call(&inst->client, &r, &info, NULL, err,
			       "docker info");
	if (st != PERCH_OK)
		return st;
	os = perch_docker_jstr(info, "OSType");
	arch = normalize_arch(perch_docker_jstr(info, "Architecture"));
	if (os == NULL)
		os = "linux";
	/* Not echoed: an engine's odd answer could break the one-line error. */
	if (!platform_part_ok(os) || !platform_part_ok(arch)) {
		st = perch_error_set(err, PERCH_ERR_UNAVAILABLE,
				     "docker info: the engine at %s reports an %s "
				     "that is not a platform name",
				     inst->client.display,
				     platform_part_ok(os) ? "Architecture" : "OSType");
		json_object_put(info);
		return st;
	}
	inst->windows = strcmp(os, "windows") == 0;
	snprintf(platform, size, "%s/%s", os, arch);
	json_object_put(info);
	return PERCH_OK;
}

static void instance_free(perch_instance *inst)
{
	perch_docker_worker_stop(inst); /* uses the client: first */
	perch_docker_conf_free(&inst->conf);
	perch_docker_client_free(&inst->client);
	pthread_mutex_destroy(&inst->lock);
	free(inst);
	curl_global_cleanup();
}

static perch_status docker_load(const perch_host *host, const perch_ctx *ctx,
				perch_instance **instance,
				perch_backend_info *info, perch_error *err)
{
	const perch_cli *cli = NULL;
	perch_instance *inst;
	char version[64], platform[PERCH_PLATFORM_MAX];
	perch_status st;
	int cfd;

	*instance = NULL;
	if (!PERCH_HAS_FIELD(host, perch_host, cli_is_set))
		return perch_error_set(err, PERCH_ERR_UNSUPPORTED,
				       "host table too old for the docker "
				       "backend");
	st = perch_ctx_cli(host, ctx, &cli, err);
	if (st != PERCH_OK)
		return st;
	/* Reference-counted by libcurl; balanced in instance_free. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return perch_error_set(err, PERCH_ERR, "libcurl failed to "
						       "initialise");
	inst = calloc(1, sizeof *inst);
	if (inst == NULL) {
		curl_global_cleanup();
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	inst->host = host;
	pthread_mutex_init(&inst->lock, NULL);
	perch_docker_worker_init(inst);
	st = perch_docker_conf_read(host, cli, &inst->conf, err);
	if (st == PERCH_OK)
		st = perch_docker_client_init(&inst->client, inst->conf.host,
					      inst->conf.cert_path,
					      inst->conf.tls_verify, err);
	cfd = pp_cancel_fd(inst->host, ctx);
	if (st == PERCH_OK)
		st = perch_docker_negotiate(&inst->client,
					    inst->conf.api_version, cfd,
					    version, sizeof version, err);
	if (st == PERCH_OK)
		st = engine_info(inst, cfd, platform, sizeof platform, err);
	if (st != PERCH_OK) {
		instance_free(inst);
		return st;
	}
	if (PERCH_HAS_FIELD(info, perch_backend_info, platform))
		snprintf(info->platform, sizeof info->platform, "%s", platform);
	perch_logf(host, PERCH_LOG_INFO,
		   "docker: engine %s at %s, API %s, platform %s, host id %s",
		   version, inst->client.display, inst->client.api, platform,
		   inst->conf.host_id);
	*instance = inst;
	return PERCH_OK;
}

/* No call is in flight: stop the followers that are left, finish the
 * removals destroy_step queued, free it all.  Other containers stay: they
 * are what the next instance discovers (or, prepared and never started,
 * what it replaces). */
static void docker_unload(perch_instance *inst)
{
	if (inst == NULL)
		return;
	for (;;) {
		char *task;
		pthread_mutex_lock(&inst->lock);
		task = inst->steps ? strdup(inst->steps->task_uuid) : NULL;
		pthread_mutex_unlock(&inst->lock);
		if (task == NULL)
			break;
		perch_docker_steps_forget(inst, task, NULL);
		free(task);
	}
	instance_free(inst);
}

static const void *docker_get_capability(perch_instance *inst, const char *id)
{
	if (id == NULL)
		return NULL;
	if (strcmp(id, PERCH_CAP_WORKFLOW_DISCOVERER) == 0)
		return &perch_docker_discoverer;
	if (strcmp(id, PERCH_CAP_WORKFLOW_RESUMER) == 0)
		return &perch_docker_resumer;
	return NULL;
}

PERCH_BACKEND_ENTRY = {
	PERCH_BACKEND_INIT,
	.priority = 100,
	.name = "docker",
	.version = "1.0.0",
	.description = "runs each step in a Docker (or Podman) container "
		       "through the Engine API",
	.flags = perch_docker_flags,
	.is_available = docker_is_available,
	.load = docker_load,
	.setup_workflow = perch_docker_setup_workflow,
	.start_step = perch_docker_start_step,
	.tail_step = perch_docker_tail_step,
	.wait_step = perch_docker_wait_step,
	.destroy_step = perch_docker_destroy_step,
	.destroy_workflow = perch_docker_destroy_workflow,
	.unload = docker_unload,
	.get_capability = docker_get_capability,
};
