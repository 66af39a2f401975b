/*
 * workflow.c - setup_workflow and destroy_workflow.
 *
 * Setup creates the workflow's volume and its bridge network, both
 * labelled with the host id and the task, so that cleanup and discovery
 * find them by label.
 *
 * Setup also hands the config to the worker (worker.c), which creates
 * each next stage's containers ahead while a stage runs.
 *
 * Destroy waits for the worker's jobs of the task, then removes, by
 * label, every container of the task (steps, detached
 * steps and services alike, started here or by an earlier process), in
 * parallel since each may take the stop timeout; then the task's volumes
 * (retried while the engine still counts them in use, WP#6360) and
 * networks.  Only what carries this host's labels is removed: a volume or
 * network of the same name that perch did not create (the reason a setup
 * failed, say) is left alone.  Every error is remembered, the rest still
 * runs, and the first error is returned.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARALLEL 8
#define REMOVE_TRIES 6

static json_object *labels(perch_instance *inst, const char *task_uuid)
{
	json_object *l = json_object_new_object();
	json_object_object_add(l, PERCH_DOCKER_LABEL_HOST_ID,
			       json_object_new_string(inst->conf.host_id));
	json_object_object_add(l, PERCH_DOCKER_LABEL_TASK,
			       json_object_new_string(task_uuid));
	return l;
}

static perch_status create(perch_instance *inst, int cfd, const char *path,
			   json_object *body, const char *what,
			   perch_error *err)
{
	perch_docker_req r = {
		.method = "POST",
		.path = path,
		.body = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
		.cancel_fd = {cfd, -1},
		.timeout_ms = 120000,
	};
	perch_status st = perch_docker_call(&inst->client, &r, NULL, NULL, err,
					    what);
	json_object_put(body);
	return st;
}

perch_status perch_docker_setup_workflow(perch_instance *inst,
					 const perch_ctx *ctx,
					 const perch_config *config,
					 const char *task_uuid,
					 perch_error *err)
{
	int cfd = pp_cancel_fd(inst->host, ctx);
	char what[512];
	perch_status st;

	if (config->volume != NULL && config->volume[0] != '\0') {
		json_object *b = json_object_new_object();
		json_object_object_add(b, "Name",
				       json_object_new_string(config->volume));
		json_object_object_add(b, "Driver", json_object_new_string("local"));
		json_object_object_add(b, "Labels", labels(inst, task_uuid));
		snprintf(what, sizeof what, "create volume %s", config->volume);
		st = create(inst, cfd, "/volumes/create", b, what, err);
		if (st != PERCH_OK)
			return st;
	}
	if (config->network != NULL && config->network[0] != '\0') {
		json_object *b = json_object_new_object();
		json_object_object_add(b, "Name",
				       json_object_new_string(config->network));
		json_object_object_add(b, "Driver",
				       json_object_new_string(inst->windows ? "nat"
									    : "bridge"));
		json_object_object_add(b, "CheckDuplicate",
				       json_object_new_boolean(1));
		json_object_object_add(b, "EnableIPv6",
				       json_object_new_boolean(inst->conf.ipv6));
		json_object_object_add(b, "Labels", labels(inst, task_uuid));
		snprintf(what, sizeof what, "create network %s", config->network);
		st = create(inst, cfd, "/networks/create", b, what, err);
		if (st != PERCH_OK)
			return st;
	}
	perch_docker_worker_workflow(inst, task_uuid, config);
	return PERCH_OK;
}

/* ---- destroy ---- */

typedef struct sweep {
	perch_instance *inst;
	int cfd;
	char **ids;
	size_t n, next;
	pthread_mutex_t lock;
	perch_status st;
	perch_error err;
} sweep;

static bool collect(void *user, json_object *c)
{
	sweep *s = user;
	const char *id = perch_docker_jstr(c, "Id");
	char **nv;

	if (id == NULL)
		return true;
	nv = realloc(s->ids, (s->n + 1) * sizeof *nv);
	if (nv == NULL)
		return false;
	s->ids = nv;
	if ((nv[s->n] = strdup(id)) != NULL)
		s->n++;
	return true;
}

static void *sweeper(void *arg)
{
	sweep *s = arg;

	for (;;) {
		perch_error e = {.struct_size = sizeof e};
		perch_status st;
		size_t i;
		pthread_mutex_lock(&s->lock);
		i = s->next++;
		pthread_mutex_unlock(&s->lock);
		if (i >= s->n)
			return NULL;
		st = perch_docker_remove_container(s->inst, s->ids[i], s->cfd, &e);
		if (st != PERCH_OK) {
			pthread_mutex_lock(&s->lock);
			if (s->st == PERCH_OK) {
				s->st = st;
				s->err = e;
			}
			pthread_mutex_unlock(&s->lock);
		}
	}
}

static void remove_all(sweep *s)
{
	pthread_t t[MAX_PARALLEL];
	size_t n = s->n < MAX_PARALLEL ? s->n : MAX_PARALLEL, started = 0;

	for (size_t i = 1; i < n; i++)
		if (pp_thread_start(&t[started], NULL, sweeper, s) == 0)
			started++;
	sweeper(s); /* this thread works too, so one always does */
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
}

typedef struct names {
	char **v;
	size_t n;
} names;

static bool collect_name(void *user, json_object *o)
{
	names *l = user;
	const char *name = perch_docker_jstr(o, "Name");
	char **nv;

	if (name == NULL)
		return true;
	nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (nv == NULL)
		return false;
	l->v = nv;
	if ((nv[l->n] = strdup(name)) != NULL)
		l->n++;
	return true;
}

/* Copies a failure into err unless an earlier one is there already. */
static void keep(perch_status *first, perch_error *err, perch_status st,
		 const perch_error *e)
{
	if (st == PERCH_OK || *first != PERCH_OK)
		return;
	*first = st;
	if (err != NULL)
		perch_error_set(err, st, "%s", e->message);
}

/* DELETE, retried while the engine says the thing is still in use (a
 * container that just went away may still hold it for a moment). */
static perch_status remove_named(perch_instance *inst, int cfd,
				 const char *kind, const char *name,
				 perch_error *err)
{
	char what[512];
	int delay_ms = 250;
	perch_status st = PERCH_OK;

	snprintf(what, sizeof what, "remove %s %s",
		 strcmp(kind, "volumes") == 0 ? "volume" : "network", name);
	for (int attempt = 0; attempt < REMOVE_TRIES; attempt++) {
		char *p = perch_docker_path(strcmp(kind, "volumes") == 0
						    ? "/volumes/"
						    : "/networks/",
					    name,
					    strcmp(kind, "volumes") == 0
						    ? "?force=1"
						    : "");
		long code = 0;
		if (p == NULL)
			return perch_error_set(err, PERCH_ERR_NO_MEMORY,
					       "out of memory");
		perch_docker_req r = {
			.method = "DELETE",
			.path = p,
			.cancel_fd = {cfd, -1},
			.timeout_ms = 60000,
		};
		st = perch_docker_call(&inst->client, &r, NULL, &code, err, what);
		free(p);
		if (st == PERCH_OK || code == 404)
			return PERCH_OK;
		if (code != 409 && !(err && (strstr(err->message, "in use") ||
					     strstr(err->message, "active endpoints"))))
			return st;
		if (attempt + 1 < REMOVE_TRIES) {
			struct pollfd pf = {.fd = cfd, .events = POLLIN};
			if (poll(&pf, cfd >= 0 ? 1 : 0, delay_ms) > 0)
				return perch_error_set(err, PERCH_ERR_CANCELLED,
						       "%s: cancelled", what);
			delay_ms *= 2;
		}
	}
	return st;
}

perch_status perch_docker_destroy_workflow(perch_instance *inst,
					   const perch_ctx *ctx,
					   const perch_config *config,
					   const char *task_uuid,
					   perch_error *err)
{
	int cfd = pp_cancel_fd(inst->host, ctx);
	perch_status first = PERCH_OK, st;
	perch_error e = {.struct_size = sizeof e};
	sweep s = {.inst = inst, .cfd = cfd};
	pp_buf b = {0};
	char *kv;

	pp_buf_printf(&b, "%s=%s", PERCH_DOCKER_LABEL_TASK, task_uuid);
	kv = pp_buf_steal(&b);
	if (kv == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	/* The worker's jobs first: the sweep below then finds what they did
	 * not remove, and the prepared containers of steps never started. */
	perch_docker_worker_forget(inst, task_uuid);
	pthread_mutex_init(&s.lock, NULL);
	st = perch_docker_list(inst, cfd, "containers", (const char *const *)&kv,
			       1, collect, &s, &e);
	keep(&first, err, st, &e);
	if (st == PERCH_OK) {
		remove_all(&s);
		keep(&first, err, s.st, &s.err);
	}
	for (size_t i = 0; i < s.n; i++)
		free(s.ids[i]);
	free(s.ids);
	pthread_mutex_destroy(&s.lock);
	perch_docker_steps_forget(inst, task_uuid, NULL);

	for (int k = 0; k < 2; k++) {
		const char *kind = k == 0 ? "volumes" : "networks";
		names l = {0};
		st = perch_docker_list(inst, cfd, kind, (const char *const *)&kv,
				       1, collect_name, &l, &e);
		keep(&first, err, st, &e);
		for (size_t i = 0; i < l.n; i++) {
			st = remove_named(inst, cfd, kind, l.v[i], &e);
			keep(&first, err, st, &e);
			free(l.v[i]);
		}
		free(l.v);
	}
	free(kv);
	(void)config; /* what to remove is found by label, not by name */
	return first;
}
