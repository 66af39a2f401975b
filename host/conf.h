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
 * and those of `perch daemon` (docs/daemon-protocol.md); each is unset
 * (NULL or -1) unless the file has it, and the daemon picks the default:
 *
 *   control_socket   = "/run/perch/perch.sock";  # absolute path
 *   state_dir        = "/var/lib/perch";         # absolute path
 *   max_workflows    = 4;        # >= 1: workflows running at once
 *   max_queue        = 100;      # >= 0: accepted workflows waiting
 *   shutdown_timeout = "1m";     # SIGTERM: how long running ones may finish
 *   retention        = 1000;     # finished workflows kept: a count ...
 *   retention        = "168h";   # ... or an age
 *   swap             = "finish"; # or "adopt": hand running workflows over
 *   adopt_grace      = "5m";     # unknown leftovers are destroyed after it
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
#include <stdint.h>

typedef struct perch_conf {
	char *path;          /* the file read, or NULL when none */
	config_t cfg;        /* valid when path != NULL */
	const char *backend; /* NULL when not set; points into cfg */
	char **plugin_path;  /* owned */
	size_t n_plugin_path;
	char **auto_detect;  /* owned */
	size_t n_auto_detect;
	config_setting_t *backends; /* the backends group, or NULL */
	/* perch daemon; strings point into cfg */
	const char *control_socket;  /* NULL: not set */
	const char *state_dir;       /* NULL: not set */
	int64_t max_workflows;       /* -1: not set */
	int64_t max_queue;           /* -1: not set */
	int64_t shutdown_timeout_ms; /* -1: not set */
	int64_t retention_count;     /* -1: not set (or retention is an age) */
	int64_t retention_ms;        /* -1: not set (or retention is a count) */
	const char *swap;            /* NULL, "finish" or "adopt" */
	int64_t adopt_grace_ms;      /* -1: not set */
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
