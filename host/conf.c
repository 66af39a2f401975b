/* conf.c - see conf.h. */
#include "config.h"

#include "conf.h"
#include "util.h"

#include <errno.h>
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
		} else {
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
