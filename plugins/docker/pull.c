/*
 * pull.c - POST /images/create: pull an image, with the step's registry
 * credentials, and keep its progress as lines for the step's log (users
 * otherwise see "running, no logs" while a big image arrives).
 *
 * The engine answers 200 and then streams JSON messages; a failed pull is
 * an {"error": …} message inside that stream, so the stream is parsed, not
 * just the status.  Progress bars are left out: one line per layer and
 * status change, like `docker pull` without a terminal.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <stdlib.h>
#include <string.h>

#define MAX_IDS 64

typedef struct pull_state {
	pp_buf line;     /* the partial message */
	pp_buf raw;      /* the first bytes, for an error reply */
	pp_buf *prelude; /* where the lines go */
	bool truncated;
	char *error;               /* the first {"error": …} */
	char *ids[MAX_IDS];        /* layer ids and their last status */
	char *last[MAX_IDS];
	size_t n_ids;
} pull_state;

static void emit_line(pull_state *ps, const char *id, const char *status)
{
	pp_buf *p = ps->prelude;
	size_t before = p->len;

	if (ps->truncated)
		return;
	if (id != NULL && *id != '\0')
		pp_buf_printf(p, "%s: %s\n", id, status);
	else
		pp_buf_printf(p, "%s\n", status);
	if (p->len > PERCH_DOCKER_PRELUDE_MAX - 64) {
		p->len = before;
		if (p->data != NULL)
			p->data[before] = '\0';
		pp_buf_puts(p, "(pull output truncated)\n");
		ps->truncated = true;
	}
}

/* True when (id, status) differs from what id said last. */
static bool changed(pull_state *ps, const char *id, const char *status)
{
	size_t i;

	if (id == NULL || *id == '\0')
		return true;
	for (i = 0; i < ps->n_ids; i++)
		if (strcmp(ps->ids[i], id) == 0)
			break;
	if (i == ps->n_ids) {
		if (ps->n_ids == MAX_IDS)
			return true;
		ps->ids[i] = strdup(id);
		ps->last[i] = NULL;
		if (ps->ids[i] == NULL)
			return true;
		ps->n_ids++;
	}
	if (ps->last[i] != NULL && strcmp(ps->last[i], status) == 0)
		return false;
	free(ps->last[i]);
	ps->last[i] = strdup(status);
	return true;
}

static void on_message(pull_state *ps, const char *text)
{
	json_object *m = json_tokener_parse(text);
	const char *error, *status, *id;

	if (m == NULL)
		return;
	error = perch_docker_jstr(m, "error");
	status = perch_docker_jstr(m, "status");
	id = perch_docker_jstr(m, "id");
	if (error != NULL) {
		if (ps->error == NULL)
			ps->error = strdup(error);
	} else if (status != NULL && changed(ps, id, status)) {
		emit_line(ps, id, status);
	}
	json_object_put(m);
}

static bool on_data(void *user, const char *data, size_t n)
{
	pull_state *ps = user;

	if (ps->raw.len < 4096)
		pp_buf_add(&ps->raw, data, n);
	for (size_t i = 0; i < n; i++) {
		if (data[i] != '\n') {
			pp_buf_add(&ps->line, data + i, 1);
			continue;
		}
		if (ps->line.len > 0)
			on_message(ps, ps->line.data);
		ps->line.len = 0;
	}
	return !ps->line.oom;
}

/* image -> fromImage and tag.  "reg:5000/a/b" has no tag; "a/b:1" has;
 * "a@sha256:…" pulls by digest. */
static void split_ref(const char *image, char **repo, char **tag)
{
	const char *at = strchr(image, '@');
	const char *slash = strrchr(image, '/');
	const char *colon;

	if (at != NULL) {
		*repo = strndup(image, (size_t)(at - image));
		*tag = strdup(at + 1);
		return;
	}
	colon = strrchr(image, ':');
	if (colon != NULL && (slash == NULL || colon > slash)) {
		*repo = strndup(image, (size_t)(colon - image));
		*tag = strdup(colon + 1);
	} else {
		*repo = strdup(image);
		*tag = strdup("latest");
	}
}

static char *registry_auth(const perch_auth *auth)
{
	json_object *o;
	const char *s;
	char *b64;

	if (auth == NULL || auth->username == NULL || auth->password == NULL ||
	    auth->username[0] == '\0' || auth->password[0] == '\0')
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "username",
			       json_object_new_string(auth->username));
	json_object_object_add(o, "password",
			       json_object_new_string(auth->password));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	b64 = perch_docker_base64url(s, strlen(s));
	json_object_put(o);
	return b64;
}

perch_status perch_docker_pull(const perch_docker_client *c, const char *image,
			       const perch_auth *auth, int cancel_fd,
			       pp_buf *prelude, perch_error *err)
{
	pull_state ps = {.prelude = prelude};
	pp_buf path = {0};
	perch_docker_resp resp = {0};
	char *repo = NULL, *tag = NULL, *p = NULL, *auth_hdr = NULL;
	char what[512];
	perch_status st = PERCH_OK;

	snprintf(what, sizeof what, "pull image %s", image);
	split_ref(image, &repo, &tag);
	auth_hdr = registry_auth(auth);
	if (repo == NULL || tag == NULL) {
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	pp_buf_puts(&path, "/images/create?fromImage=");
	perch_docker_urlencode(&path, repo);
	pp_buf_puts(&path, "&tag=");
	perch_docker_urlencode(&path, tag);
	p = pp_buf_steal(&path);
	if (p == NULL) {
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto out;
	}
	pp_buf_printf(prelude, "Pulling %s\n", image);
	{
		perch_docker_req r = {
			.method = "POST",
			.path = p,
			.registry_auth = auth_hdr,
			.cancel_fd = {cancel_fd, -1},
			.on_data = on_data,
			.user = &ps,
		};
		bool ok = perch_docker_http(c, &r, &resp);
		if (!ok || resp.status != 200) {
			/* An error status comes with a small JSON body. */
			pp_buf_add(&resp.body, ps.raw.data, ps.raw.len);
			st = perch_docker_fail(c, &resp, err, what);
			goto out;
		}
	}
	if (ps.line.len > 0)
		on_message(&ps, ps.line.data);
	if (ps.error != NULL) {
		st = perch_error_set(err,
				     perch_docker_classify_message(0, ps.error),
				     "%s: %s", what, ps.error);
		pp_buf_printf(prelude, "pull failed: %s\n", ps.error);
	}
out:
	perch_docker_resp_free(&resp);
	pp_buf_free(&ps.line);
	pp_buf_free(&ps.raw);
	for (size_t i = 0; i < ps.n_ids; i++) {
		free(ps.ids[i]);
		free(ps.last[i]);
	}
	free(ps.error);
	free(repo);
	free(tag);
	free(p);
	free(auth_hdr);
	return st;
}
