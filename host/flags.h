/*
 * flags.h - the flag registry: perch's own flags and every plugin's, merged
 * into one command line, and the resolution of their values.
 *
 * A value resolves from the first of: the command line, the flag's
 * environment variables (first set wins), the config file, the default.
 * Each resolved value remembers where it came from, so that a bad value is
 * reported as e.g.
 *   invalid value "ten" for --backend-docker-stop-timeout (from environment
 *   variable WOODPECKER_BACKEND_DOCKER_STOP_TIMEOUT): not an integer
 *
 * The resolved registry is the perch_cli that plugins read through the CLI
 * context (perch/host.h).  It is built on the control thread and read-only
 * afterwards, so lookups need no lock.
 */
#ifndef PERCH_HOST_FLAGS_H
#define PERCH_HOST_FLAGS_H

#include <perch/perch.h>

#include "conf.h"

typedef enum perch_flag_source {
	PERCH_SRC_NONE = 0, /* unset, no default */
	PERCH_SRC_DEFAULT,
	PERCH_SRC_CONFIG,
	PERCH_SRC_ENV,
	PERCH_SRC_CLI,
} perch_flag_source;

typedef struct perch_flagdef {
	/* declaration (copied: the registry outlives nothing it points to) */
	char *name;
	uint32_t kind;
	char **env;
	size_t n_env;
	char *default_value;
	char *usage;
	char *owner;      /* "perch" or the plugin's name */
	char *owner_path; /* the plugin file, or NULL for perch */
	char *config_key; /* libconfig path: "backend", "backends.docker.stop_timeout" */
	/* resolution */
	char *arg;        /* raw command-line value, NULL if not given */
	perch_flag_source source;
	char *where;      /* human description of the source */
	char *str;        /* string value (kind STRING, and textual form of all) */
	bool b;
	int64_t i;        /* INT; DURATION in milliseconds */
	char **list;      /* STRING_LIST */
	size_t n_list;
} perch_flagdef;

struct perch_cli {
	perch_flagdef *defs;
	size_t n;
};

perch_cli *perch_cli_new(void);
void perch_cli_free(perch_cli *cli);

/* Adds perch's own flag (config key = config_key, top level). */
void perch_cli_add_host(perch_cli *cli, const perch_flag *flag, const char *config_key);

/* Checks a plugin's flag declarations and adds them all, or none.  Refused:
 * a malformed flag (no name, bad kind, name not "backend-<plugin>-...", a
 * default that does not parse), a name declared twice, or a name another
 * plugin already declared - the message names both plugins and paths.
 * Returns 0, or -1 with a malloc'd one-line *err. */
int perch_cli_add_plugin(perch_cli *cli, const char *plugin, const char *path,
			 const perch_flag *const *flags, char **err);

/* Removes every flag a plugin added (when it is refused later). */
void perch_cli_remove_owner(perch_cli *cli, const char *owner);

perch_flagdef *perch_cli_find(const perch_cli *cli, const char *name);

/* Records a command-line value (name without the leading dashes). */
int perch_cli_set_arg(perch_cli *cli, const char *name, const char *value, char **err);

/* Resolves every flag.  conf may be NULL.  Returns 0, or -1 with *err. */
int perch_cli_resolve(perch_cli *cli, const perch_conf *conf, char **err);

/* Checks that every key under backends.<name> in conf names a flag of that
 * plugin, with the right libconfig type.  Unknown plugin names are errors
 * too: a typo must not silently drop a setting. */
int perch_cli_check_conf(const perch_cli *cli, const perch_conf *conf, char **err);

/* The config key of a plugin flag: backend-docker-stop-timeout of plugin
 * docker -> "stop_timeout" (malloc'd), or NULL if the name lacks the prefix. */
char *perch_flag_config_key(const char *plugin, const char *flag_name);

/* Parses text as kind into def's typed fields.  Returns NULL or a malloc'd
 * reason ("not an integer"). */
char *perch_flag_parse(perch_flagdef *def, const char *text);

const char *perch_flag_kind_name(uint32_t kind);

#endif
