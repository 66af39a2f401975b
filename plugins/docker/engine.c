/*
 * engine.c - engine calls with JSON replies, version negotiation, label
 * filters and the json-c accessors the rest of the backend uses.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <stdlib.h>
#include <string.h>

const char *perch_docker_jstr(json_object *o, const char *key)
{
	json_object *v;
	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int64_t perch_docker_jint(json_object *o, const char *key, int64_t def)
{
	json_object *v;
	if (o == NULL || !json_object_object_get_ex(o, key, &v) ||
	    !(json_object_is_type(v, json_type_int) ||
	      json_object_is_type(v, json_type_double)))
		return def;
	return json_object_get_int64(v);
}

bool perch_docker_jbool(json_object *o, const char *key)
{
	json_object *v;
	return o != NULL && json_object_object_get_ex(o, key, &v) &&
	       json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

perch_status perch_docker_call(const perch_docker_client *c,
			       const perch_docker_req *r, json_object **out,
			       long *http_status, perch_error *err,
			       const char *what)
{
	perch_docker_resp resp = {0};
	perch_status st;
	bool ok = perch_docker_http(c, r, &resp);

	if (out != NULL)
		*out = NULL;
	if (http_status != NULL)
		*http_status = ok ? resp.status : 0;
	if (!ok || resp.status < 200 || resp.status > 299) {
		st = perch_docker_fail(c, &resp, err, what);
		perch_docker_resp_free(&resp);
		return st;
	}
	if (out != NULL && resp.body.len > 0) {
		enum json_tokener_error jerr = json_tokener_success;
		*out = json_tokener_parse_verbose(resp.body.data, &jerr);
		if (*out == NULL) {
			perch_docker_resp_free(&resp);
			return perch_error_set(
				err, PERCH_ERR, "%s: the engine's reply is not "
						"JSON: %s",
				what, json_tokener_error_desc(jerr));
		}
	}
	perch_docker_resp_free(&resp);
	return PERCH_OK;
}

bool perch_docker_ping(const perch_docker_client *c, int cancel_fd)
{
	perch_docker_req r = {
		.method = "GET",
		.path = "/_ping",
		.unversioned = true,
		.cancel_fd = {cancel_fd, -1},
		.timeout_ms = 3000,
	};
	perch_docker_resp resp = {0};
	bool ok = perch_docker_http(c, &r, &resp) && resp.status == 200;
	perch_docker_resp_free(&resp);
	return ok;
}

/* Up to three digits at *p into *n; the end, or NULL when there are none
 * or more. */
static const char *version_part(const char *p, long *n)
{
	int digits = 0;

	for (*n = 0; *p >= '0' && *p <= '9'; p++) {
		if (++digits > 3)
			return NULL;
		*n = *n * 10 + (*p - '0');
	}
	return digits > 0 ? p : NULL;
}

/* "1.41" (or "v1.41") -> 1041; 0 when it is not a version.  Strictly
 * digits, a dot, digits: the engine's text goes into every request path
 * (strtol would take blanks, signs and overflowing numbers). */
static long version_key(const char *v)
{
	long major, minor;

	if (v == NULL)
		return 0;
	if (*v == 'v')
		v++;
	v = version_part(v, &major);
	if (v == NULL || *v != '.')
		return 0;
	v = version_part(v + 1, &minor);
	if (v == NULL || *v != '\0')
		return 0;
	return major * 1000 + minor;
}

perch_status perch_docker_negotiate(perch_docker_client *c,
				    const char *api_version, int cancel_fd,
				    char *server_version, size_t sv_size,
				    perch_error *err)
{
	perch_docker_req r = {
		.method = "GET",
		.path = "/version",
		.unversioned = true,
		.cancel_fd = {cancel_fd, -1},
		.timeout_ms = 30000,
	};
	json_object *v = NULL;
	const char *srv, *srv_min;
	long have, want;
	perch_status st;

	st = perch_docker_call(c, &r, &v, NULL, err, "docker version");
	if (st != PERCH_OK)
		return st;
	snprintf(server_version, sv_size, "%s",
		 perch_docker_jstr(v, "Version") ? perch_docker_jstr(v, "Version")
						 : "unknown");
	srv = perch_docker_jstr(v, "ApiVersion");
	srv_min = perch_docker_jstr(v, "MinAPIVersion");
	if (api_version != NULL && *api_version != '\0') {
		if (version_key(api_version) == 0) {
			json_object_put(v);
			return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
					       "invalid docker API version "
					       "\"%s\" (want e.g. 1.41)",
					       api_version);
		}
		snprintf(c->api, sizeof c->api, "%s",
			 api_version[0] == 'v' ? api_version + 1 : api_version);
		json_object_put(v);
		return PERCH_OK;
	}
	have = version_key(srv);
	if (have == 0) {
		json_object_put(v);
		return perch_error_set(err, PERCH_ERR_UNAVAILABLE,
				       "the docker engine at %s reports no "
				       "API version",
				       c->display);
	}
	if (have < version_key(PERCH_DOCKER_API_MIN)) {
		st = perch_error_set(err, PERCH_ERR_UNAVAILABLE,
				     "the docker engine at %s speaks API %s; "
				     "perch needs %s or newer (Docker 20.10+)",
				     c->display, srv, PERCH_DOCKER_API_MIN);
		json_object_put(v);
		return st;
	}
	want = version_key(PERCH_DOCKER_API_MAX);
	if (have < want)
		snprintf(c->api, sizeof c->api, "%s", srv[0] == 'v' ? srv + 1 : srv);
	else
		snprintf(c->api, sizeof c->api, "%s", PERCH_DOCKER_API_MAX);
	if (srv_min != NULL && version_key(srv_min) > version_key(c->api)) {
		st = perch_error_set(err, PERCH_ERR_UNAVAILABLE,
				     "the docker engine at %s needs API %s or "
				     "newer; perch speaks up to %s (set "
				     "--backend-docker-api-version to force one)",
				     c->display, srv_min, PERCH_DOCKER_API_MAX);
		json_object_put(v);
		return st;
	}
	json_object_put(v);
	return PERCH_OK;
}

void perch_docker_label_filter(pp_buf *b, const char *const *kv,
			       size_t n)
{
	json_object *f = json_object_new_object();
	json_object *labels = json_object_new_array();

	if (f == NULL || labels == NULL) {
		json_object_put(f);
		json_object_put(labels);
		b->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++)
		json_object_array_add(labels, json_object_new_string(kv[i]));
	json_object_object_add(f, "label", labels);
	perch_docker_urlencode(
		b, json_object_to_json_string_ext(f, JSON_C_TO_STRING_PLAIN));
	json_object_put(f);
}
