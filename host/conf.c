/* conf.c - see conf.h. */
#include "config.h"

#include "conf.h"
#include "util.h"

#include <perch/flags.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *perch_conf_default_path(void)
{
	return PERCH_SYSCONFDIR "/perch/perch.conf";
}

char *perch_conf_where(const perch_conf *conf, const config_setting_t *s)
{
	return perch_xasprintf("%s:%u", conf->path ? conf->path : "<none>",
			       config_setting_source_line(s));
}

const char *perch_conf_type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64: return "an integer";
	case CONFIG_TYPE_FLOAT: return "a number";
	case CONFIG_TYPE_STRING: return "a string";
	case CONFIG_TYPE_BOOL: return "a boolean";
	case CONFIG_TYPE_ARRAY: return "an array";
	case CONFIG_TYPE_LIST: return "a list";
	case CONFIG_TYPE_GROUP: return "a group";
	default: return "a value";
	}
}

/* Reads a list/array of strings into *out.  A lone string is accepted as a
 * one-element list, since `plugin_path = "/x";` is an easy thing to write. */
static char *string_list(const perch_conf *conf, config_setting_t *s, char ***out,
			 size_t *n)
{
	if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		*out = perch_xcalloc(1, sizeof **out);
		(*out)[0] = perch_xstrdup(config_setting_get_string(s));
		*n = 1;
		return NULL;
	}
	if (!config_setting_is_aggregate(s) || config_setting_is_group(s)) {
		char *w = perch_conf_where(conf, s);
		char *e = perch_xasprintf("%s: %s: expected a list of strings, got %s", w,
					  config_setting_name(s), perch_conf_type_name(s));
		free(w);
		return e;
	}
	int len = config_setting_length(s);
	*out = perch_xcalloc((size_t)len + 1, sizeof **out);
	*n = 0;
	for (int i = 0; i < len; i++) {
		config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			char *w = perch_conf_where(conf, e);
			char *msg = perch_xasprintf("%s: %s[%d]: expected a string, got %s", w,
						    config_setting_name(s), i,
						    perch_conf_type_name(e));
			free(w);
			return msg;
		}
		(*out)[(*n)++] = perch_xstrdup(config_setting_get_string(e));
	}
	return NULL;
}

static char *bad_value(const perch_conf *conf, const config_setting_t *s, const char *want)
{
	char *w = perch_conf_where(conf, s);
	char *e = perch_xasprintf("%s: %s: expected %s, got %s", w, config_setting_name(s), want,
				  perch_conf_type_name(s));
	free(w);
	return e;
}

static char *bad_text(const perch_conf *conf, const config_setting_t *s, const char *why)
{
	char *w = perch_conf_where(conf, s);
	char *e = perch_xasprintf("%s: %s: %s", w, config_setting_name(s), why);
	free(w);
	return e;
}

static bool is_int(const config_setting_t *s)
{
	return config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64;
}

static char *get_path(const perch_conf *conf, config_setting_t *s, const char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return bad_value(conf, s, "a string");
	const char *v = config_setting_get_string(s);
	if (v[0] != '/')
		return bad_text(conf, s, "must be an absolute path");
	*out = v;
	return NULL;
}

static char *get_int(const perch_conf *conf, config_setting_t *s, int64_t min, int64_t *out)
{
	if (!is_int(s))
		return bad_value(conf, s, "an integer");
	long long v = config_setting_get_int64(s);
	if (v < min) {
		char why[64];
		snprintf(why, sizeof why, "must be at least %lld, got %lld", (long long)min, v);
		return bad_text(conf, s, why);
	}
	*out = v;
	return NULL;
}

static char *get_duration(const perch_conf *conf, config_setting_t *s, int64_t *out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING)
		return bad_value(conf, s, "a duration string such as \"30s\"");
	if (!perch_parse_duration(config_setting_get_string(s), out) || *out < 0)
		return bad_text(conf, s, "not a duration (for example 30s, 1m30s, 250ms)");
	return NULL;
}

/* The keys of perch daemon; NULL if name is not one of them, else "" or
 * the error. */
static char *check_daemon_key(perch_conf *conf, config_setting_t *s, const char *name)
{
	if (strcmp(name, "control_socket") == 0)
		return get_path(conf, s, &conf->control_socket);
	if (strcmp(name, "state_dir") == 0)
		return get_path(conf, s, &conf->state_dir);
	if (strcmp(name, "max_workflows") == 0)
		return get_int(conf, s, 1, &conf->max_workflows);
	if (strcmp(name, "max_queue") == 0)
		return get_int(conf, s, 0, &conf->max_queue);
	if (strcmp(name, "shutdown_timeout") == 0)
		return get_duration(conf, s, &conf->shutdown_timeout_ms);
	if (strcmp(name, "adopt_grace") == 0)
		return get_duration(conf, s, &conf->adopt_grace_ms);
	if (strcmp(name, "retention") == 0) {
		if (is_int(s))
			return get_int(conf, s, 0, &conf->retention_count);
		if (config_setting_type(s) == CONFIG_TYPE_STRING)
			return get_duration(conf, s, &conf->retention_ms);
		return bad_value(conf, s, "a count (integer) or an age (duration string)");
	}
	if (strcmp(name, "swap") == 0) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return bad_value(conf, s, "a string");
		const char *v = config_setting_get_string(s);
		if (strcmp(v, "finish") != 0 && strcmp(v, "adopt") != 0) {
			char *why = perch_xasprintf("must be \"finish\" or \"adopt\", got \"%s\"", v);
			char *e = bad_text(conf, s, why);
			free(why);
			return e;
		}
		conf->swap = v;
		return NULL;
	}
	return perch_xstrdup("");
}

static char *check_top(perch_conf *conf)
{
	config_setting_t *root = config_root_setting(&conf->cfg);
	int len = config_setting_length(root);
	for (int i = 0; i < len; i++) {
		config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		char *err = NULL;
		if (strcmp(name, "backend") == 0) {
			if (config_setting_type(s) != CONFIG_TYPE_STRING) {
				char *w = perch_conf_where(conf, s);
				err = perch_xasprintf("%s: backend: expected a string, got %s", w,
						      perch_conf_type_name(s));
				free(w);
			} else {
				conf->backend = config_setting_get_string(s);
			}
		} else if (strcmp(name, "plugin_path") == 0) {
			err = string_list(conf, s, &conf->plugin_path, &conf->n_plugin_path);
		} else if (strcmp(name, "auto_detect") == 0) {
			err = string_list(conf, s, &conf->auto_detect, &conf->n_auto_detect);
		} else if (strcmp(name, "backends") == 0) {
			if (!config_setting_is_group(s)) {
				char *w = perch_conf_where(conf, s);
				err = perch_xasprintf("%s: backends: expected a group, got %s", w,
						      perch_conf_type_name(s));
				free(w);
			} else {
				conf->backends = s;
			}
		} else if ((err = check_daemon_key(conf, s, name)) == NULL || *err != '\0') {
			/* a daemon key: valid, or err says why not */
		} else {
			free(err);
			char *w = perch_conf_where(conf, s);
			err = perch_xasprintf("%s: unknown key \"%s\" (known: backend, "
					      "plugin_path, auto_detect, backends)", w, name);
			free(w);
		}
		if (err)
			return err;
	}
	return NULL;
}

perch_conf *perch_conf_open(const char *explicit_path, char **err)
{
	perch_conf *conf = perch_xcalloc(1, sizeof *conf);
	conf->max_workflows = conf->max_queue = conf->shutdown_timeout_ms = -1;
	conf->retention_count = conf->retention_ms = conf->adopt_grace_ms = -1;
	const char *path = explicit_path;
	bool optional = false;
	if (path == NULL || *path == '\0')
		path = getenv("PERCH_CONFIG");
	if (path == NULL || *path == '\0') {
		path = perch_conf_default_path();
		optional = true;
	}
	struct stat st;
	if (stat(path, &st) != 0) {
		if (optional && errno == ENOENT)
			return conf;
		*err = perch_xasprintf("%s: cannot read config file: %s", path, strerror(errno));
		perch_conf_free(conf);
		return NULL;
	}
	if (S_ISDIR(st.st_mode)) {
		*err = perch_xasprintf("%s: cannot read config file: is a directory", path);
		perch_conf_free(conf);
		return NULL;
	}
	conf->path = perch_xstrdup(path);
	config_init(&conf->cfg);
	if (config_read_file(&conf->cfg, path) != CONFIG_TRUE) {
		if (config_error_type(&conf->cfg) == CONFIG_ERR_FILE_IO)
			*err = perch_xasprintf("%s: cannot read config file: %s", path,
					       strerror(errno ? errno : EIO));
		else
			*err = perch_xasprintf("%s:%d: %s",
					       config_error_file(&conf->cfg)
						       ? config_error_file(&conf->cfg)
						       : path,
					       config_error_line(&conf->cfg),
					       config_error_text(&conf->cfg));
		perch_conf_free(conf);
		return NULL;
	}
	char *e = check_top(conf);
	if (e) {
		*err = e;
		perch_conf_free(conf);
		return NULL;
	}
	return conf;
}

void perch_conf_free(perch_conf *conf)
{
	if (conf == NULL)
		return;
	if (conf->path)
		config_destroy(&conf->cfg);
	for (size_t i = 0; i < conf->n_plugin_path; i++)
		free(conf->plugin_path[i]);
	free(conf->plugin_path);
	for (size_t i = 0; i < conf->n_auto_detect; i++)
		free(conf->auto_detect[i]);
	free(conf->auto_detect);
	free(conf->path);
	free(conf);
}
