/*
 * conf.h - perch.conf, read with libconfig.
 *
 * Which file: --config FILE, else $PERCH_CONFIG, else
 * $(sysconfdir)/perch/perch.conf; only the last may be absent.  Known keys:
 *
 *   backend     = "docker";            # or "auto-detect"
 *   plugin_path = [ "/opt/perch/plugins" ];
 *   auto_detect = [ "docker", "local" ];
 *   backends: { local: { stop_timeout = "20s"; }; };
 *
 * Every error - syntax, unknown key, wrong type - is one line naming
 * file:line.  Keys under backends.<name> are checked against the flags
 * that plugin declares (see flags.h); this file only parses and types the
 * top level.
 */
#ifndef PERCH_HOST_CONF_H
#define PERCH_HOST_CONF_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct perch_conf {
	char *path;          /* the file read, or NULL when none */
	config_t cfg;        /* valid when path != NULL */
	const char *backend; /* NULL when not set; points into cfg */
	char **plugin_path;  /* owned */
	size_t n_plugin_path;
	char **auto_detect;  /* owned */
	size_t n_auto_detect;
	config_setting_t *backends; /* the backends group, or NULL */
} perch_conf;

/* Picks the file (explicit may be NULL) and loads it.  Returns NULL with a
 * malloc'd one-line *err on failure.  Never NULL otherwise (an absent
 * default file yields an empty configuration).  Caller frees with
 * perch_conf_free. */
perch_conf *perch_conf_open(const char *explicit_path, char **err);
void perch_conf_free(perch_conf *conf);

/* The default path, $(sysconfdir)/perch/perch.conf. */
const char *perch_conf_default_path(void);

/* "file:line" of a setting, for messages (static buffer per call site is
 * not thread-safe: returns malloc'd). */
char *perch_conf_where(const perch_conf *conf, const config_setting_t *s);

/* The libconfig type name of a setting ("a string", "an integer" ...). */
const char *perch_conf_type_name(const config_setting_t *s);

#endif
