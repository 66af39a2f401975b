/*
 * steps.c - the step table, and start_step, wait_step, destroy_step.
 *
 * start_step: resolve the container name, pull when asked (the progress
 * becomes the first lines of the step's log), create the container - or
 * take the one the worker made ahead from the very same body (worker.c) -
 * (pull and create again when the image is missing; a name held by a
 * container of this task queued for removal, or by a never-started one of
 * this step, is freed first), connect its other networks, start it, and
 * let the worker make the next stage's containers.  Every container
 * carries the step's labels, so a failure at any point leaves nothing
 * that destroy_step cannot find.
 *
 * wait_step: POST /containers/{id}/wait, aborted at once by the context's
 * cancel descriptor; then the exit code and OOMKilled from inspect.  A
 * broken connection while waiting is the engine going away: reported as
 * such (PERCH_ERR_UNAVAILABLE), never as an exit code.
 *
 * destroy_step: stop (with the stop timeout), kill if that failed, remove
 * with its anonymous volumes; what is already gone is not an error.  A
 * container that wait_step saw stop has nothing left to stop: its removal
 * is queued for the worker (worker.c) and destroy_step returns at once, so
 * that the next stage does not wait for it.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <stdlib.h>
#include <string.h>

/* ---- the table ---- */

static void step_free(perch_docker_step *s)
{
	if (s == NULL)
		return;
	free(s->task_uuid);
	free(s->step_uuid);
	free(s->name);
	free(s->container_id);
	free(s->prelude);
	free(s);
}

perch_docker_step *perch_docker_step_find(perch_instance *inst,
					  const char *task_uuid,
					  const char *step_uuid)
{
	for (perch_docker_step *s = inst->steps; s != NULL; s = s->next)
		if (strcmp(s->task_uuid, task_uuid) == 0 &&
		    strcmp(s->step_uuid, step_uuid) == 0)
			return s;
	return NULL;
}

perch_docker_step *perch_docker_step_add(perch_instance *inst,
					 const char *task_uuid,
					 const char *step_uuid,
					 const char *name,
					 const char *container_id,
					 const char *prelude,
					 perch_docker_follower **old)
{
	perch_docker_step *s = calloc(1, sizeof *s), **pp;

	*old = NULL;
	if (s == NULL)
		return NULL;
	s->task_uuid = strdup(task_uuid);
	s->step_uuid = strdup(step_uuid);
	s->name = strdup(name ? name : "");
	s->container_id = strdup(container_id);
	s->prelude = strdup(prelude ? prelude : "");
	if (!s->task_uuid || !s->step_uuid || !s->name || !s->container_id ||
	    !s->prelude) {
		step_free(s);
		return NULL;
	}
	for (pp = &inst->steps; *pp != NULL; pp = &(*pp)->next) {
		perch_docker_step *o = *pp;
		if (strcmp(o->task_uuid, task_uuid) == 0 &&
		    strcmp(o->step_uuid, step_uuid) == 0) {
			*pp = o->next;
			*old = o->follower;
			step_free(o);
			break;
		}
	}
	s->next = inst->steps;
	inst->steps = s;
	return s;
}

void perch_docker_steps_forget(perch_instance *inst, const char *task_uuid,
			       const char *step_uuid)
{
	perch_docker_step *gone = NULL, **pp;

	pthread_mutex_lock(&inst->lock);
	pp = &inst->steps;
	while (*pp != NULL) {
		perch_docker_step *s = *pp;
		if (strcmp(s->task_uuid, task_uuid) == 0 &&
		    (step_uuid == NULL || strcmp(s->step_uuid, step_uuid) == 0)) {
			*pp = s->next;
			s->next = gone;
			gone = s;
		} else {
			pp = &s->next;
		}
	}
	pthread_mutex_unlock(&inst->lock);
	while (gone != NULL) {
		perch_docker_step *s = gone;
		gone = s->next;
		perch_docker_follower_stop(s->follower);
		step_free(s);
	}
}

/* ---- engine helpers ---- */

static char *label_kv(const char *k, const char *v)
{
	pp_buf b = {0};
	pp_buf_printf(&b, "%s=%s", k, v);
	return pp_buf_steal(&b);
}

perch_status perch_docker_list(perch_instance *inst, int cancel_fd,
			       const char *kind, const char *const *labels,
			       size_t n_labels, perch_docker_object_fn fn,
			       void *user, perch_error *err)
{
	const char *all[8];
	char *own = label_kv(PERCH_DOCKER_LABEL_HOST_ID, inst->conf.host_id);
	pp_buf path = {0};
	json_object *reply = NULL, *list;
	char what[64];
	perch_status st;
	char *p;

	if (own == NULL || n_labels > 7) {
		free(own);
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	all[0] = own;
	for (size_t i = 0; i < n_labels; i++)
		all[i + 1] = labels[i];
	pp_buf_printf(&path, "/%s%s", kind,
				strcmp(kind, "containers") == 0
					? "/json?all=1&filters="
					: "?filters=");
	perch_docker_label_filter(&path, all, n_labels + 1);
	free(own);
	p = pp_buf_steal(&path);
	if (p == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	snprintf(what, sizeof what, "list %s", kind);
	{
		perch_docker_req r = {
			.method = "GET",
			.path = p,
			.cancel_fd = {cancel_fd, -1},
			.timeout_ms = 60000,
		};
		st = perch_docker_call(&inst->client, &r, &reply, NULL, err,
				       what);
	}
	free(p);
	if (st != PERCH_OK)
		return st;
	/* GET /volumes answers {"Volumes": [...]}; the others an array. */
	list = reply;
	if (json_object_is_type(reply, json_type_object) &&
	    !json_object_object_get_ex(reply, "Volumes", &list))
		list = NULL;
	if (json_object_is_type(list, json_type_array)) {
		size_t n = json_object_array_length(list);
		for (size_t i = 0; i < n; i++)
			if (!fn(user, json_object_array_get_idx(list, i)))
				break;
	}
	json_object_put(reply);
	return PERCH_OK;
}

perch_status perch_docker_remove_container(perch_instance *inst,
					   const char *id, int cancel_fd,
					   perch_error *err)
{
	const perch_docker_client *c = &inst->client;
	char tail[64], what[256];
	char *p;
	long code = 0;
	perch_status st;

	snprintf(what, sizeof what, "stop container %.64s", id);
	snprintf(tail, sizeof tail, "/stop?t=%lld",
		 (long long)inst->conf.stop_timeout_s);
	p = perch_docker_path("/containers/", id, tail);
	if (p == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	{
		perch_docker_req r = {
			.method = "POST",
			.path = p,
			.cancel_fd = {cancel_fd, -1},
			.timeout_ms = (inst->conf.stop_timeout_s + 60) * 1000,
		};
		st = perch_docker_call(c, &r, NULL, &code, err, what);
	}
	free(p);
	if (code == 404)
		return PERCH_OK; /* already gone */
	if (st == PERCH_ERR_CANCELLED || st == PERCH_ERR_UNAVAILABLE)
		return st;
	if (st != PERCH_OK && code != 304) {
		/* Stop failed (not "already stopped"): kill it outright. */
		snprintf(what, sizeof what, "kill container %.64s", id);
		p = perch_docker_path("/containers/", id, "/kill?signal=KILL");
		if (p == NULL)
			return perch_error_set(err, PERCH_ERR_NO_MEMORY,
					       "out of memory");
		perch_docker_req r = {
			.method = "POST",
			.path = p,
			.cancel_fd = {cancel_fd, -1},
			.timeout_ms = 60000,
		};
		st = perch_docker_call(c, &r, NULL, &code, err, what);
		free(p);
		if (code == 404)
			return PERCH_OK;
	}
	return perch_docker_delete_container(inst, id, cancel_fd, err);
}

perch_status perch_docker_delete_container(perch_instance *inst,
					   const char *id, int cancel_fd,
					   perch_error *err)
{
	char what[256];
	long code = 0;
	perch_status st;
	char *p;

	snprintf(what, sizeof what, "remove container %.64s", id);
	p = perch_docker_path("/containers/", id, "?v=1&force=1");
	if (p == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	{
		perch_docker_req r = {
			.method = "DELETE",
			.path = p,
			.cancel_fd = {cancel_fd, -1},
			.timeout_ms = 120000,
		};
		st = perch_docker_call(&inst->client, &r, NULL, &code, err,
				       what);
	}
	free(p);
	/* Gone, or someone else is removing it already (WP#4784). */
	if (st == PERCH_OK || code == 404 || (code == 409 && err != NULL &&
					      strstr(err->message, "in progress")))
		return PERCH_OK;
	return st;
}

typedef struct first_id {
	char *id;
} first_id;

static bool take_first(void *user, json_object *c)
{
	first_id *f = user;
	const char *id = perch_docker_jstr(c, "Id");
	if (id != NULL && f->id == NULL)
		f->id = strdup(id);
	return false;
}

perch_status perch_docker_step_container(perch_instance *inst, int cancel_fd,
					 const char *task_uuid,
					 const char *step_uuid, char **out,
					 perch_error *err)
{
	perch_docker_step *s;
	first_id f = {NULL};
	char *kv[2];
	perch_status st;

	*out = NULL;
	pthread_mutex_lock(&inst->lock);
	s = perch_docker_step_find(inst, task_uuid, step_uuid);
	if (s != NULL)
		*out = strdup(s->container_id);
	pthread_mutex_unlock(&inst->lock);
	if (*out != NULL)
		return PERCH_OK;
	kv[0] = label_kv(PERCH_DOCKER_LABEL_TASK, task_uuid);
	kv[1] = label_kv(PERCH_DOCKER_LABEL_STEP_UUID, step_uuid);
	if (kv[0] == NULL || kv[1] == NULL)
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	else
		st = perch_docker_list(inst, cancel_fd, "containers",
						  (const char *const *)kv, 2,
						  take_first, &f, err);
	free(kv[0]);
	free(kv[1]);
	if (st != PERCH_OK)
		return st;
	if (f.id == NULL)
		return perch_error_set(err, PERCH_ERR_NOT_FOUND,
				       "no container for step %s of task %s",
				       step_uuid, task_uuid);
	*out = f.id;
	return PERCH_OK;
}

/* ---- start ---- */

static bool image_missing(long code, const perch_error *err)
{
	return code == 404 && (strstr(err->message, "image") != NULL ||
			       strstr(err->message, "Image") != NULL);
}

perch_status perch_docker_create_text(perch_instance *inst,
				      const perch_step *step,
				      const char *task_uuid,
				      const char *prelude, char **out,
				      perch_error *err)
{
	perch_docker_create_in in = {
		.conf = &inst->conf,
		.task_uuid = task_uuid,
		.host_id = inst->conf.host_id,
		.prelude = prelude,
		.windows = inst->windows,
	};
	json_object *body = NULL;
	perch_status st;

	*out = NULL;
	st = perch_docker_create_body(&in, step, &body, err);
	if (st != PERCH_OK)
		return st;
	*out = strdup(json_object_to_json_string_ext(
		body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(body);
	if (*out == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	return PERCH_OK;
}

perch_status perch_docker_create_container(perch_instance *inst, int cancel_fd,
					   const char *name, const char *body,
					   const char *step_name, char **id,
					   long *code, perch_error *err)
{
	json_object *reply = NULL;
	pp_buf path = {0};
	char what[512];
	perch_status st;
	char *p;

	*id = NULL;
	*code = 0;
	pp_buf_puts(&path, "/containers/create?name=");
	perch_docker_urlencode(&path, name);
	p = pp_buf_steal(&path);
	if (p == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	snprintf(what, sizeof what, "create container %s for step %s", name,
		 step_name);
	{
		perch_docker_req r = {
			.method = "POST",
			.path = p,
			.body = body,
			.cancel_fd = {cancel_fd, -1},
			.timeout_ms = 120000,
		};
		st = perch_docker_call(&inst->client, &r, &reply, code, err,
				       what);
	}
	free(p);
	if (st == PERCH_OK) {
		const char *cid = perch_docker_jstr(reply, "Id");
		if (cid == NULL)
			st = perch_error_set(err, PERCH_ERR, "%s: no Id in the "
							     "engine's reply",
					     what);
		else if ((*id = strdup(cid)) == NULL)
			st = perch_error_set(err, PERCH_ERR_NO_MEMORY,
					     "out of memory");
	}
	json_object_put(reply);
	return st;
}

/* True when c (an inspect reply) is a container of this host's task and
 * step that never started: what a start_step or a preparation of an
 * earlier process left (worker.c).  Nothing else is ever taken away. */
static bool never_started_leftover(perch_instance *inst, json_object *c,
				   const char *task_uuid, const char *step_uuid)
{
	json_object *config, *labels, *state;
	const char *v;

	if (!json_object_object_get_ex(c, "Config", &config) ||
	    !json_object_object_get_ex(config, "Labels", &labels) ||
	    !json_object_object_get_ex(c, "State", &state))
		return false;
	v = perch_docker_jstr(labels, PERCH_DOCKER_LABEL_HOST_ID);
	if (v == NULL || strcmp(v, inst->conf.host_id) != 0)
		return false;
	v = perch_docker_jstr(labels, PERCH_DOCKER_LABEL_TASK);
	if (v == NULL || strcmp(v, task_uuid) != 0)
		return false;
	v = perch_docker_jstr(labels, PERCH_DOCKER_LABEL_STEP_UUID);
	if (v == NULL || strcmp(v, step_uuid) != 0)
		return false;
	v = perch_docker_jstr(state, "Status");
	return v != NULL && strcmp(v, "created") == 0;
}

/* The step's container name is in use (HTTP 409).  Frees it when that is
 * safe and returns true (create again): a container of this task still
 * queued for removal (it is waited for), or a never-started container of
 * this very step (removed).  Both may be there at once - after a restart
 * an earlier process's preparation holds the name while this instance
 * removes the previous step's container - so the name is looked at also
 * after a wait. */
static bool free_name(perch_instance *inst, int cfd, const char *task_uuid,
		      const perch_step *step, const char *name)
{
	json_object *c = NULL;
	bool leftover, drained;
	char *p;

	drained = perch_docker_worker_drain(inst, task_uuid);
	p = perch_docker_path("/containers/", name, "/json");
	if (p == NULL)
		return drained;
	{
		perch_docker_req r = {
			.method = "GET",
			.path = p,
			.cancel_fd = {cfd, -1},
			.timeout_ms = 60000,
		};
		if (perch_docker_call(&inst->client, &r, &c, NULL, NULL,
				      "inspect") != PERCH_OK)
			c = NULL;
	}
	free(p);
	leftover = c != NULL &&
		   never_started_leftover(inst, c, task_uuid, step->uuid);
	json_object_put(c);
	if (!leftover)
		return drained;
	return perch_docker_delete_container(inst, name, cfd, NULL) == PERCH_OK;
}

/* The step's container from the body start_step would send: the one the
 * worker prepared with that very body, else a new one. */
static perch_status create(perch_instance *inst, int cfd,
			   const perch_step *step, const char *task_uuid,
			   const char *name, const char *prelude, char **id,
			   long *code, perch_error *err)
{
	char *body = NULL;
	perch_status st;

	*id = NULL;
	*code = 0;
	st = perch_docker_create_text(inst, step, task_uuid, prelude, &body,
				      err);
	if (st != PERCH_OK)
		return st;
	if (prelude[0] == '\0')
		*id = perch_docker_worker_take(inst, task_uuid, step->uuid,
					       name, body);
	if (*id == NULL) {
		st = perch_docker_create_container(inst, cfd, name, body,
						   step->name, id, code, err);
		if (st != PERCH_OK && *code == 409 &&
		    free_name(inst, cfd, task_uuid, step, name))
			st = perch_docker_create_container(inst, cfd, name, body,
							   step->name, id,
							   code, err);
	}
	free(body);
	return st;
}

static perch_status connect_network(perch_instance *inst, int cfd,
				    const char *id, const char *net,
				    const perch_strv *aliases,
				    const char *step_name, perch_error *err)
{
	json_object *body = json_object_new_object();
	json_object *ep = json_object_new_object();
	json_object *al = json_object_new_array();
	char what[512];
	perch_status st;
	char *p = perch_docker_path("/networks/", net, "/connect");

	for (size_t i = 0; aliases != NULL && al != NULL && i < aliases->len; i++)
		json_object_array_add(al, json_object_new_string(aliases->items[i]));
	json_object_object_add(ep, "Aliases", al);
	json_object_object_add(body, "Container", json_object_new_string(id));
	json_object_object_add(body, "EndpointConfig", ep);
	snprintf(what, sizeof what, "connect step %s to network %s", step_name,
		 net);
	if (p == NULL) {
		json_object_put(body);
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	perch_docker_req r = {
		.method = "POST",
		.path = p,
		.body = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN),
		.cancel_fd = {cfd, -1},
		.timeout_ms = 60000,
	};
	st = perch_docker_call(&inst->client, &r, NULL, NULL, err, what);
	free(p);
	json_object_put(body);
	return st;
}

perch_status perch_docker_start_step(perch_instance *inst,
				     const perch_ctx *ctx,
				     const perch_step *step,
				     const char *task_uuid, perch_error *err)
{
	int cfd = pp_cancel_fd(inst->host, ctx);
	pp_buf prelude = {0};
	perch_docker_follower *old = NULL;
	char *name = NULL, *id = NULL, *pre = NULL;
	char what[512];
	long code = 0;
	perch_status st;

	if (step->image == NULL || step->image[0] == '\0')
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "step %s has no image", step->name);
	st = perch_docker_container_name(step, task_uuid, &name, err);
	if (st != PERCH_OK)
		return st;
	if (step->pull) {
		st = perch_docker_pull(&inst->client, step->image,
				       &step->auth_config, cfd, &prelude, err);
		if (st != PERCH_OK)
			goto out;
	}
	st = create(inst, cfd, step, task_uuid, name,
		    prelude.data ? prelude.data : "", &id, &code, err);
	if (st != PERCH_OK && image_missing(code, err)) {
		st = perch_docker_pull(&inst->client, step->image,
				       &step->auth_config, cfd, &prelude, err);
		if (st == PERCH_OK)
			st = create(inst, cfd, step, task_uuid, name,
				    prelude.data ? prelude.data : "", &id,
				    &code, err);
	}
	if (st != PERCH_OK)
		goto out;

	/* Record it now: from here on destroy_step has a container to stop. */
	pre = pp_buf_steal(&prelude);
	pthread_mutex_lock(&inst->lock);
	if (pre == NULL || perch_docker_step_add(inst, task_uuid, step->uuid,
						 step->name, id, pre,
						 &old) == NULL)
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	pthread_mutex_unlock(&inst->lock);
	perch_docker_follower_stop(old);
	if (st != PERCH_OK)
		goto out;

	if (step->network_mode[0] == '\0') {
		for (size_t i = 1; i < step->n_networks && st == PERCH_OK; i++)
			st = connect_network(inst, cfd, id, step->networks[i].name,
					     &step->networks[i].aliases,
					     step->name, err);
		if (st == PERCH_OK && inst->conf.network != NULL) {
			bool joined = false;
			for (size_t i = 0; i < step->n_networks; i++)
				joined |= strcmp(step->networks[i].name,
						 inst->conf.network) == 0;
			if (!joined && step->n_networks > 0)
				st = connect_network(inst, cfd, id,
						     inst->conf.network, NULL,
						     step->name, err);
		}
		if (st != PERCH_OK)
			goto out;
	}

	snprintf(what, sizeof what, "start container %s for step %s", name,
		 step->name);
	{
		char *p = perch_docker_path("/containers/", id, "/start");
		perch_docker_req r = {
			.method = "POST",
			.path = p,
			.cancel_fd = {cfd, -1},
			.timeout_ms = 120000,
		};
		if (p == NULL)
			st = perch_error_set(err, PERCH_ERR_NO_MEMORY,
					     "out of memory");
		else
			st = perch_docker_call(&inst->client, &r, NULL, &code,
					       err, what);
		free(p);
		if (st != PERCH_OK && code == 304)
			st = PERCH_OK; /* already started */
	}
	/* Running: the next stage's containers can be made meanwhile. */
	if (st == PERCH_OK)
		perch_docker_worker_prepare_after(inst, task_uuid, step);
out:
	pp_buf_free(&prelude);
	free(pre);
	free(name);
	free(id);
	return st;
}

/* ---- wait ---- */

perch_status perch_docker_wait_step(perch_instance *inst, const perch_ctx *ctx,
				    const perch_step *step,
				    const char *task_uuid, perch_state *state,
				    perch_error *err)
{
	int cfd = pp_cancel_fd(inst->host, ctx);
	json_object *reply = NULL, *st_obj = NULL, *errobj = NULL;
	char what[512];
	char *id = NULL, *p;
	perch_status st;

	if (PERCH_HAS_FIELD(inst->host, perch_host, ctx_cancelled) &&
	    inst->host->ctx_cancelled(ctx))
		return perch_error_set(err, PERCH_ERR_CANCELLED,
				       "wait for step %s: cancelled", step->name);
	st = perch_docker_step_container(inst, cfd, task_uuid, step->uuid, &id,
					 err);
	if (st != PERCH_OK)
		return st;
	snprintf(what, sizeof what, "wait for step %s (container %.12s)",
		 step->name, id);
	p = perch_docker_path("/containers/", id, "/wait");
	if (p == NULL) {
		free(id);
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	{
		perch_docker_req r = {
			.method = "POST",
			.path = p,
			.cancel_fd = {cfd, -1},
		};
		st = perch_docker_call(&inst->client, &r, &reply, NULL, err,
				       what);
	}
	free(p);
	if (st == PERCH_OK && json_object_object_get_ex(reply, "Error", &errobj) &&
	    json_object_is_type(errobj, json_type_object) &&
	    perch_docker_jstr(errobj, "Message") != NULL &&
	    perch_docker_jstr(errobj, "Message")[0] != '\0')
		st = perch_error_set(err, PERCH_ERR, "%s: %s", what,
				     perch_docker_jstr(errobj, "Message"));
	json_object_put(reply);
	reply = NULL;
	if (st != PERCH_OK)
		goto out;

	snprintf(what, sizeof what, "inspect step %s (container %.12s)",
		 step->name, id);
	p = perch_docker_path("/containers/", id, "/json");
	if (p == NULL) {
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	{
		/* On a new connection: an engine that is shutting down kills
		 * the container (the wait above ends with 137 on the old
		 * connection) but no longer accepts connections, and that
		 * must be reported as the engine going away, not as the
		 * step's exit code. */
		perch_docker_req r = {
			.method = "GET",
			.path = p,
			.cancel_fd = {cfd, -1},
			.timeout_ms = 60000,
			.fresh = true,
		};
		st = perch_docker_call(&inst->client, &r, &reply, NULL, err,
				       what);
	}
	free(p);
	if (st != PERCH_OK)
		goto out;
	if (!json_object_object_get_ex(reply, "State", &st_obj)) {
		st = perch_error_set(err, PERCH_ERR, "%s: no State", what);
		goto out;
	}
	if (PERCH_HAS_FIELD(state, perch_state, exit_code)) {
		int64_t code = perch_docker_jint(st_obj, "ExitCode", -1);
		/* Docker's 4294967295 (a uint32 -1) means no code. */
		state->exit_code = (code < INT32_MIN || code > INT32_MAX)
					   ? -1
					   : (int32_t)code;
	}
	if (PERCH_HAS_FIELD(state, perch_state, exited))
		state->exited = true;
	if (PERCH_HAS_FIELD(state, perch_state, oom_killed))
		state->oom_killed = perch_docker_jbool(st_obj, "OOMKilled");
	if (!perch_docker_jbool(st_obj, "Running")) {
		perch_docker_step *s;
		pthread_mutex_lock(&inst->lock);
		s = perch_docker_step_find(inst, task_uuid, step->uuid);
		if (s != NULL && strcmp(s->container_id, id) == 0)
			s->exited = true;
		pthread_mutex_unlock(&inst->lock);
	}
out:
	json_object_put(reply);
	free(id);
	return st;
}

/* ---- destroy ---- */

typedef struct ids {
	char **v;
	size_t n;
	bool oom;
} ids;

static bool collect_id(void *user, json_object *c)
{
	ids *l = user;
	const char *id = perch_docker_jstr(c, "Id");
	char **nv;

	if (id == NULL)
		return true;
	nv = realloc(l->v, (l->n + 1) * sizeof *nv);
	if (nv == NULL || (nv[l->n] = strdup(id)) == NULL) {
		if (nv != NULL)
			l->v = nv;
		l->oom = true;
		return false;
	}
	l->v = nv;
	l->n++;
	return true;
}

perch_status perch_docker_destroy_step(perch_instance *inst,
				       const perch_ctx *ctx,
				       const perch_step *step,
				       const char *task_uuid, perch_error *err)
{
	int cfd = pp_cancel_fd(inst->host, ctx);
	perch_docker_step *s;
	char *kv[2], *known = NULL;
	bool exited = false;
	ids l = {0};
	perch_status st;

	/* A step this instance started or attached: its container is known,
	 * no need to ask the engine for it. */
	pthread_mutex_lock(&inst->lock);
	s = perch_docker_step_find(inst, task_uuid, step->uuid);
	if (s != NULL) {
		known = strdup(s->container_id);
		exited = s->exited;
	}
	pthread_mutex_unlock(&inst->lock);
	if (known != NULL) {
		if (!exited || !perch_docker_worker_remove(inst, task_uuid, known))
			st = perch_docker_remove_container(inst, known, cfd, err);
		else
			st = PERCH_OK;
		free(known);
		perch_docker_steps_forget(inst, task_uuid, step->uuid);
		return st;
	}

	kv[0] = label_kv(PERCH_DOCKER_LABEL_TASK, task_uuid);
	kv[1] = label_kv(PERCH_DOCKER_LABEL_STEP_UUID, step->uuid);
	if (kv[0] == NULL || kv[1] == NULL)
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	else
		st = perch_docker_list(inst, cfd, "containers",
						  (const char *const *)kv, 2,
						  collect_id, &l, err);
	free(kv[0]);
	free(kv[1]);
	if (st == PERCH_OK && l.oom)
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	for (size_t i = 0; st == PERCH_OK && i < l.n; i++)
		st = perch_docker_remove_container(inst, l.v[i], cfd, err);
	for (size_t i = 0; i < l.n; i++)
		free(l.v[i]);
	free(l.v);
	/* The container is gone (or the engine is): the follower's stream
	 * has ended or never will; stop it either way. */
	perch_docker_steps_forget(inst, task_uuid, step->uuid);
	return st;
}

/* ---- attach (resume, or a tail this instance did not start) ---- */

perch_status perch_docker_step_attach(perch_instance *inst, int cancel_fd,
				      const char *task_uuid,
				      const char *step_uuid,
				      const char *step_name,
				      const perch_resume_point *skip,
				      perch_error *err)
{
	perch_docker_follower *old = NULL;
	json_object *c = NULL, *config, *labels;
	perch_docker_step *s;
	const char *prelude = NULL;
	char what[512];
	char *id = NULL, *p;
	bool known;
	perch_status st;

	pthread_mutex_lock(&inst->lock);
	known = perch_docker_step_find(inst, task_uuid, step_uuid) != NULL;
	pthread_mutex_unlock(&inst->lock);
	if (known && skip == NULL)
		return PERCH_OK;
	/* Ask the engine, not the cache: a resumed step may have been
	 * started by another process. */
	perch_docker_steps_forget(inst, task_uuid, step_uuid);
	st = perch_docker_step_container(inst, cancel_fd, task_uuid, step_uuid,
					 &id, err);
	if (st != PERCH_OK)
		return st;
	snprintf(what, sizeof what, "inspect container %.12s of step %s", id,
		 step_name);
	p = perch_docker_path("/containers/", id, "/json");
	if (p == NULL) {
		free(id);
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	{
		perch_docker_req r = {
			.method = "GET",
			.path = p,
			.cancel_fd = {cancel_fd, -1},
			.timeout_ms = 60000,
		};
		st = perch_docker_call(&inst->client, &r, &c, NULL, err, what);
	}
	free(p);
	if (st != PERCH_OK) {
		free(id);
		return st;
	}
	if (json_object_object_get_ex(c, "Config", &config) &&
	    json_object_object_get_ex(config, "Labels", &labels)) {
		prelude = perch_docker_jstr(labels, PERCH_DOCKER_LABEL_PRELUDE);
		if (step_name == NULL || *step_name == '\0')
			step_name = perch_docker_jstr(labels,
						      PERCH_DOCKER_LABEL_STEP_NAME);
	} else {
		config = NULL;
	}
	pthread_mutex_lock(&inst->lock);
	s = perch_docker_step_add(inst, task_uuid, step_uuid, step_name, id,
				  prelude, &old);
	if (s != NULL) {
		s->tty = perch_docker_jbool(config, "Tty");
		if (skip != NULL &&
		    PERCH_HAS_FIELD(skip, perch_resume_point, bytes_seen) &&
		    skip->bytes_seen > 0)
			s->skip_bytes = skip->bytes_seen;
		else if (skip != NULL &&
			 PERCH_HAS_FIELD(skip, perch_resume_point, lines_seen))
			s->skip_lines = skip->lines_seen;
	}
	pthread_mutex_unlock(&inst->lock);
	perch_docker_follower_stop(old);
	json_object_put(c);
	free(id);
	if (s == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	return PERCH_OK;
}
