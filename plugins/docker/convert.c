/*
 * convert.c - a step as the body of POST /containers/create.
 *
 * Follows Woodpecker's toConfig/toHostConfig field for field: image,
 * labels, working dir, environment (plus CI_SCRIPT and SHELL for commands),
 * entrypoint, user, volumes (the step's binds, then the configured ones,
 * without duplicates), tmpfs, devices, DNS, extra hosts, privileged,
 * AppArmor, network mode, exposed ports, the resource limits and the
 * json-file log driver, which keeps every line so that logs can be read
 * again after a restart.  It only builds JSON: no engine call here.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

perch_status perch_docker_step_opts_parse(const char *backend_options,
					  perch_docker_step_opts *o,
					  perch_error *err)
{
	json_object *all, *docker, *user;
	perch_status st = PERCH_OK;

	memset(o, 0, sizeof *o);
	if (backend_options == NULL || *backend_options == '\0')
		return PERCH_OK;
	all = json_tokener_parse(backend_options);
	if (all == NULL)
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "backend_options is not JSON");
	if (!json_object_object_get_ex(all, "docker", &docker) ||
	    json_object_is_type(docker, json_type_null))
		goto out;
	if (!json_object_is_type(docker, json_type_object)) {
		st = perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				     "backend_options.docker must be an object");
		goto out;
	}
	if (json_object_object_get_ex(docker, "user", &user) &&
	    !json_object_is_type(user, json_type_null)) {
		/* Woodpecker decodes weakly: 1000 means "1000". */
		if (json_object_is_type(user, json_type_string) ||
		    json_object_is_type(user, json_type_int)) {
			o->user = strdup(json_object_get_string(user));
			if (o->user == NULL)
				st = perch_error_set(err, PERCH_ERR_NO_MEMORY,
						     "out of memory");
		} else {
			st = perch_error_set(
				err, PERCH_ERR_INVALID_INPUT,
				"backend_options.docker.user must be a string "
				"such as \"1000:1000\"");
		}
	}
out:
	json_object_put(all);
	return st;
}

void perch_docker_step_opts_free(perch_docker_step_opts *o)
{
	free(o->user);
	memset(o, 0, sizeof *o);
}

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

perch_status perch_docker_container_name(const perch_step *step,
					 const char *task_uuid, char **out,
					 perch_error *err)
{
	const char *scheme = step->container_name_scheme;
	pp_buf b = {0};

	*out = NULL;
	if (scheme == NULL || *scheme == '\0' || strcmp(scheme, "default") == 0) {
		pp_buf_printf(&b, "wp_%s", step->uuid);
	} else if (strcmp(scheme, "readable") == 0) {
		/* The task keeps two workflows with equal step names apart. */
		const char *parts[2] = {task_uuid, step->name};
		pp_buf_puts(&b, "wp");
		for (int i = 0; i < 2; i++) {
			pp_buf_puts(&b, "_");
			for (const char *p = parts[i]; *p; p++)
				pp_buf_add(&b, name_char(*p) ? p : "-",
						     1);
		}
	} else {
		return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
				       "unknown container_name_scheme \"%s\" "
				       "(known: default, readable)",
				       scheme);
	}
	*out = pp_buf_steal(&b);
	if (*out == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	return PERCH_OK;
}

bool perch_docker_split_volume(const char *spec, char **src, char **dst,
			       char **mode)
{
	const char *parts[3] = {NULL, NULL, NULL};
	size_t lens[3] = {0, 0, 0};
	size_t n = 0;
	const char *p = spec;

	*src = *dst = *mode = NULL;
	if (spec == NULL || *spec == '\0')
		return false;
	for (;;) {
		const char *colon = strchr(p, ':');
		if (n == 3)
			return false;
		parts[n] = p;
		lens[n] = colon ? (size_t)(colon - p) : strlen(p);
		if (lens[n] == 0)
			return false;
		n++;
		if (colon == NULL)
			break;
		p = colon + 1;
	}
	if (n == 1) {
		if (parts[0][0] != '/')
			return false;
		*dst = strndup(parts[0], lens[0]);
		return *dst != NULL;
	}
	if (parts[1][0] != '/')
		return false;
	*src = strndup(parts[0], lens[0]);
	*dst = strndup(parts[1], lens[1]);
	if (n == 3)
		*mode = strndup(parts[2], lens[2]);
	if (*src == NULL || *dst == NULL || (n == 3 && *mode == NULL)) {
		free(*src), free(*dst), free(*mode);
		*src = *dst = *mode = NULL;
		return false;
	}
	return true;
}

static void add_str(json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, json_object_new_string(v));
}

static json_object *strv_array(const perch_strv *v)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; a != NULL && i < v->len; i++)
		json_object_array_add(a, json_object_new_string(v->items[i]));
	return a;
}

static bool valid_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

static void add_label(json_object *labels, const char *k, const char *v)
{
	json_object_object_add(labels, k, json_object_new_string(v ? v : ""));
}

static json_object *labels_for(const perch_docker_create_in *in,
			       const perch_step *step)
{
	json_object *l = json_object_new_object();

	if (l == NULL)
		return NULL;
	for (size_t i = 0; i < step->workflow_labels.len; i++)
		add_label(l, step->workflow_labels.items[i].key,
			  step->workflow_labels.items[i].value);
	add_label(l, PERCH_DOCKER_LABEL_WP_UUID, step->uuid);
	add_label(l, PERCH_DOCKER_LABEL_WP_STEP, step->name);
	add_label(l, PERCH_DOCKER_LABEL_HOST_ID, in->host_id);
	add_label(l, PERCH_DOCKER_LABEL_TASK, in->task_uuid);
	add_label(l, PERCH_DOCKER_LABEL_STEP_UUID, step->uuid);
	add_label(l, PERCH_DOCKER_LABEL_STEP_NAME, step->name);
	add_label(l, PERCH_DOCKER_LABEL_STEP_TYPE, step->type);
	if (in->prelude != NULL && *in->prelude != '\0')
		add_label(l, PERCH_DOCKER_LABEL_PRELUDE, in->prelude);
	return l;
}

/* Env as "K=V", the step's first; with commands CI_SCRIPT and SHELL win. */
static perch_status env_for(const perch_step *step, json_object *env,
			    perch_error *err)
{
	bool script = step->commands.len > 0;

	for (size_t i = 0; i < step->environment.len; i++) {
		const perch_kv *kv = &step->environment.items[i];
		pp_buf b = {0};
		char *s;
		if (kv->key == NULL || kv->key[0] == '\0')
			continue;
		if (script && (strcmp(kv->key, "CI_SCRIPT") == 0 ||
			       strcmp(kv->key, "SHELL") == 0))
			continue;
		pp_buf_printf(&b, "%s=%s", kv->key,
					kv->value ? kv->value : "");
		s = pp_buf_steal(&b);
		if (s == NULL)
			return perch_error_set(err, PERCH_ERR_NO_MEMORY,
					       "out of memory");
		json_object_array_add(env, json_object_new_string(s));
		free(s);
	}
	if (script) {
		char *text = perch_docker_script(step->commands.items,
						 step->commands.len,
						 step->working_dir);
		char *b64 = text ? perch_docker_base64(text, strlen(text)) : NULL;
		pp_buf b = {0};
		char *s;
		free(text);
		if (b64 == NULL)
			return perch_error_set(err, PERCH_ERR_NO_MEMORY,
					       "out of memory");
		pp_buf_printf(&b, "CI_SCRIPT=%s", b64);
		free(b64);
		s = pp_buf_steal(&b);
		if (s == NULL)
			return perch_error_set(err, PERCH_ERR_NO_MEMORY,
					       "out of memory");
		json_object_array_add(env, json_object_new_string(s));
		free(s);
		json_object_array_add(env, json_object_new_string("SHELL=/bin/sh"));
	}
	return PERCH_OK;
}

/* Binds and anonymous volumes: the step's, then the configured ones. */
static perch_status volumes_for(const perch_docker_create_in *in,
				const perch_step *step, json_object *binds,
				json_object *vols, perch_error *err)
{
	size_t n = step->volumes.len + in->conf->n_volumes;

	for (size_t i = 0; i < n; i++) {
		const char *spec = i < step->volumes.len
					   ? step->volumes.items[i]
					   : in->conf->volumes[i - step->volumes.len];
		char *src, *dst, *mode;
		bool dup = false;

		for (size_t j = 0; j < i && !dup; j++) {
			const char *prev = j < step->volumes.len
						   ? step->volumes.items[j]
						   : in->conf->volumes[j - step->volumes.len];
			dup = strcmp(prev, spec) == 0;
		}
		if (dup || spec[0] == '\0')
			continue;
		if (!perch_docker_split_volume(spec, &src, &dst, &mode))
			return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
					       "invalid volume \"%s\": want "
					       "src:/dst[:mode] or /dst",
					       spec);
		json_object_object_add(vols, dst, json_object_new_object());
		if (src != NULL)
			json_object_array_add(binds, json_object_new_string(spec));
		free(src), free(dst), free(mode);
	}
	return PERCH_OK;
}

static perch_status devices_for(const perch_step *step, json_object *devs,
				perch_error *err)
{
	for (size_t i = 0; i < step->devices.len; i++) {
		const char *spec = step->devices.items[i];
		char *src, *dst, *mode;
		json_object *d;
		bool ok = perch_docker_split_volume(spec, &src, &dst, &mode);

		if (!ok)
			return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
					       "invalid device \"%s\": want "
					       "/host[:/container[:perms]]",
					       spec);
		d = json_object_new_object();
		add_str(d, "PathOnHost", src ? src : dst);
		add_str(d, "PathInContainer", dst);
		add_str(d, "CgroupPermissions", mode ? mode : "rwm");
		json_object_array_add(devs, d);
		free(src), free(dst), free(mode);
	}
	return PERCH_OK;
}

static void add_int(json_object *o, const char *key, int64_t v)
{
	if (v != 0)
		json_object_object_add(o, key, json_object_new_int64(v));
}

perch_status perch_docker_create_body(const perch_docker_create_in *in,
				      const perch_step *step,
				      json_object **out, perch_error *err)
{
	const perch_docker_conf *conf = in->conf;
	perch_docker_step_opts opts;
	json_object *c, *hc, *env, *binds, *vols, *devs, *tmpfs, *hosts;
	const char *net_mode = NULL;
	perch_status st;

	*out = NULL;
	st = perch_docker_step_opts_parse(step->backend_options, &opts, err);
	if (st != PERCH_OK)
		return st;
	c = json_object_new_object();
	hc = json_object_new_object();
	env = json_object_new_array();
	binds = json_object_new_array();
	vols = json_object_new_object();
	devs = json_object_new_array();
	tmpfs = json_object_new_object();
	hosts = json_object_new_array();
	if (!c || !hc || !env || !binds || !vols || !devs || !tmpfs || !hosts) {
		st = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}

	add_str(c, "Image", step->image);
	json_object_object_add(c, "Labels", labels_for(in, step));
	json_object_object_add(c, "AttachStdout", json_object_new_boolean(1));
	json_object_object_add(c, "AttachStderr", json_object_new_boolean(1));
	if ((st = env_for(step, env, err)) != PERCH_OK)
		goto fail;
	json_object_object_add(c, "Env", env);
	env = NULL;
	if (step->commands.len > 0) {
		perch_strv ep = {perch_docker_script_entrypoint, 3};
		json_object_object_add(c, "Entrypoint", strv_array(&ep));
		/* The script enters working_dir itself (creating it first). */
		if (step->workspace_base[0] != '\0')
			add_str(c, "WorkingDir", step->workspace_base);
	} else if (step->working_dir[0] != '\0') {
		add_str(c, "WorkingDir", step->working_dir);
	}
	if (step->entrypoint.len > 0)
		json_object_object_add(c, "Entrypoint",
				       strv_array(&step->entrypoint));
	if (opts.user != NULL && opts.user[0] != '\0')
		add_str(c, "User", opts.user);
	if (step->n_ports > 0) {
		json_object *ports = json_object_new_object();
		for (size_t i = 0; i < step->n_ports; i++) {
			char key[64];
			const char *proto = step->ports[i].protocol;
			snprintf(key, sizeof key, "%u/%s",
				 (unsigned)step->ports[i].number,
				 proto && *proto ? proto : "tcp");
			json_object_object_add(ports, key,
					       json_object_new_object());
		}
		json_object_object_add(c, "ExposedPorts", ports);
	}

	/* Host config. */
	if ((st = volumes_for(in, step, binds, vols, err)) != PERCH_OK)
		goto fail;
	if ((st = devices_for(step, devs, err)) != PERCH_OK)
		goto fail;
	for (size_t i = 0; i < step->tmpfs.len; i++) {
		const char *t = step->tmpfs.items[i];
		const char *colon = strchr(t, ':');
		char *path = strndup(t, colon ? (size_t)(colon - t) : strlen(t));
		if (path == NULL || path[0] != '/') {
			st = path == NULL ? perch_error_set(err, PERCH_ERR_NO_MEMORY,
							    "out of memory")
					  : perch_error_set(err, PERCH_ERR_INVALID_INPUT,
							    "invalid tmpfs \"%s\": "
							    "want /path[:options]",
							    t);
			free(path);
			goto fail;
		}
		add_str(tmpfs, path, colon ? colon + 1 : "");
		free(path);
	}
	for (size_t i = 0; i < step->n_extra_hosts; i++) {
		pp_buf b = {0};
		char *s;
		pp_buf_printf(&b, "%s:%s", step->extra_hosts[i].name,
					step->extra_hosts[i].ip);
		s = pp_buf_steal(&b);
		if (s == NULL) {
			st = perch_error_set(err, PERCH_ERR_NO_MEMORY,
					     "out of memory");
			goto fail;
		}
		json_object_array_add(hosts, json_object_new_string(s));
		free(s);
	}
	for (size_t i = 0; i < step->dns.len; i++)
		if (!valid_ip(step->dns.items[i])) {
			st = perch_error_set(err, PERCH_ERR_INVALID_INPUT,
					     "invalid dns server \"%s\": not an "
					     "IP address",
					     step->dns.items[i]);
			goto fail;
		}
	json_object_object_add(c, "Volumes", vols);
	vols = NULL;
	json_object_object_add(hc, "Binds", binds);
	binds = NULL;
	json_object_object_add(hc, "Devices", devs);
	devs = NULL;
	json_object_object_add(hc, "Tmpfs", tmpfs);
	tmpfs = NULL;
	json_object_object_add(hc, "ExtraHosts", hosts);
	hosts = NULL;
	if (step->dns.len > 0)
		json_object_object_add(hc, "Dns", strv_array(&step->dns));
	if (step->dns_search.len > 0)
		json_object_object_add(hc, "DnsSearch",
				       strv_array(&step->dns_search));
	json_object_object_add(hc, "Privileged",
			       json_object_new_boolean(step->privileged));
	if (conf->apparmor_profile != NULL) {
		json_object *so = json_object_new_array();
		pp_buf b = {0};
		char *s;
		pp_buf_printf(&b, "apparmor=%s", conf->apparmor_profile);
		s = pp_buf_steal(&b);
		json_object_array_add(so, json_object_new_string(s ? s : ""));
		free(s);
		json_object_object_add(hc, "SecurityOpt", so);
	}
	add_int(hc, "Memory", conf->limit_mem);
	add_int(hc, "MemorySwap", conf->limit_mem_swap);
	add_int(hc, "ShmSize", conf->limit_shm_size);
	add_int(hc, "CpuQuota", conf->limit_cpu_quota);
	add_int(hc, "CpuShares", conf->limit_cpu_shares);
	if (conf->limit_cpu_set != NULL)
		add_str(hc, "CpusetCpus", conf->limit_cpu_set);
	{
		json_object *lc = json_object_new_object();
		add_str(lc, "Type", "json-file");
		json_object_object_add(lc, "Config", json_object_new_object());
		json_object_object_add(hc, "LogConfig", lc);
	}

	/* Networks: the mode, or the first network (with its aliases) at
	 * create; steps.c connects the rest after. */
	if (step->network_mode[0] != '\0') {
		net_mode = step->network_mode;
	} else if (step->n_networks > 0) {
		json_object *nc = json_object_new_object();
		json_object *eps = json_object_new_object();
		json_object *ep = json_object_new_object();
		net_mode = step->networks[0].name;
		json_object_object_add(ep, "Aliases",
				       strv_array(&step->networks[0].aliases));
		json_object_object_add(eps, net_mode, ep);
		json_object_object_add(nc, "EndpointsConfig", eps);
		json_object_object_add(c, "NetworkingConfig", nc);
	} else if (conf->network != NULL) {
		net_mode = conf->network;
	}
	if (net_mode != NULL)
		add_str(hc, "NetworkMode", net_mode);
	json_object_object_add(c, "HostConfig", hc);
	perch_docker_step_opts_free(&opts);
	*out = c;
	return PERCH_OK;
fail:
	perch_docker_step_opts_free(&opts);
	json_object_put(c);
	json_object_put(hc);
	json_object_put(env);
	json_object_put(binds);
	json_object_put(vols);
	json_object_put(devs);
	json_object_put(tmpfs);
	json_object_put(hosts);
	return st;
}
