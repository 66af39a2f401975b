/*
 * env.c - the environment a local step runs with, and its .netrc.
 *
 * Precedence, as in Woodpecker (woodpecker-backends.md 7.8): the host's
 * environment < the step's environment (minus the variables the backend
 * owns) < HOME/USERPROFILE (isolated home) < CI_WORKSPACE.  Woodpecker drops
 * the owned variables silently; perch drops them too but says so, because a
 * silently ignored HOME=... is a riddle for the pipeline's author.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Variables a step may not set (Woodpecker's notAllowedEnvVarOverwrites). */
static const char *const owned_vars[] = {
	"CI_NETRC_MACHINE", "CI_NETRC_USERNAME", "CI_NETRC_PASSWORD",
	"CI_SCRIPT",        "HOME",              "SHELL",
	"CI_WORKSPACE",     NULL,
};

static bool is_owned(const char *key)
{
	for (size_t i = 0; owned_vars[i] != NULL; i++)
		if (strcmp(owned_vars[i], key) == 0)
			return true;
	return false;
}

/* Owned variables that arrive by design, not as a user's override, and so
 * are replaced without a warning: the server sends CI_NETRC_* so that the
 * backend writes .netrc from them, and Woodpecker's compiler puts
 * CI_WORKSPACE (the container path) into every step. */
static bool is_expected(const char *key)
{
	return strncmp(key, "CI_NETRC_", 9) == 0 ||
	       strcmp(key, "CI_WORKSPACE") == 0;
}

static char **env_find(const perch_local_strv *env, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < env->n; i++)
		if (strncmp(env->v[i], key, klen) == 0 && env->v[i][klen] == '=')
			return &env->v[i];
	return NULL;
}

const char *perch_local_env_get(const perch_local_strv *env, const char *key)
{
	char **slot = env_find(env, key);

	return slot != NULL ? *slot + strlen(key) + 1 : NULL;
}

static void env_set(perch_local_strv *env, const char *key, const char *value)
{
	char **slot = env_find(env, key);
	char *kv = pp_format("%s=%s", key, value);

	if (slot == NULL) {
		perch_local_strv_take(env, kv);
	} else if (kv == NULL) {
		env->oom = true;
	} else {
		free(*slot);
		*slot = kv;
	}
}

perch_status perch_local_env_build(perch_instance *inst,
				   const perch_local_workflow *wf,
				   const perch_step *step,
				   perch_local_strv *out, perch_error *err)
{
	pp_buf dropped = {0};

	/* The host's environment as of now, like Go's os.Environ(). */
	for (char **e = environ; e != NULL && *e != NULL; e++)
		if (strchr(*e, '=') != NULL)
			perch_local_strv_push(out, *e);
	for (size_t i = 0; i < step->environment.len; i++) {
		const char *key = step->environment.items[i].key;
		const char *value = step->environment.items[i].value;
		if (key == NULL || *key == '\0' || strchr(key, '=') != NULL)
			continue;
		if (is_owned(key)) {
			if (!is_expected(key))
				pp_buf_printf(&dropped, "%s%s",
						       dropped.len ? ", " : "",
						       key);
			continue;
		}
		env_set(out, key, value != NULL ? value : "");
	}
	if (inst->isolated_home) {
		env_set(out, "HOME", wf->home_dir);
		env_set(out, "USERPROFILE", wf->home_dir);
	}
	env_set(out, "CI_WORKSPACE", wf->workspace_dir);
	if (out->oom || dropped.oom) {
		pp_buf_free(&dropped);
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	}
	if (dropped.len > 0)
		perch_logf(inst->host, PERCH_LOG_WARN,
			   "step \"%s\": ignoring %s from the step's environment: "
			   "the local backend sets these itself",
			   step->name, dropped.data);
	pp_buf_free(&dropped);
	return PERCH_OK;
}

int perch_local_netrc_write(const perch_local_workflow *wf,
			    const perch_step *step)
{
	const char *machine = perch_map_get(&step->environment,
					    "CI_NETRC_MACHINE");
	const char *login = perch_map_get(&step->environment,
					  "CI_NETRC_USERNAME");
	const char *password = perch_map_get(&step->environment,
					     "CI_NETRC_PASSWORD");
	char *path, *text;
	int rc, e;

	path = pp_path_join(wf->home_dir, ".netrc");
	/* Woodpecker's template, leading newline included. */
	text = pp_format("\nmachine %s\nlogin %s\npassword %s\n",
				  machine ? machine : "", login ? login : "",
				  password ? password : "");
	if (path == NULL || text == NULL) {
		free(path);
		free(text);
		errno = ENOMEM;
		return -1;
	}
	rc = pp_write_file(path, text, strlen(text), 0600, false, NULL, 0);
	e = errno;
	/* The password must not linger in freed memory longer than needed. */
	explicit_bzero(text, strlen(text));
	free(text);
	free(path);
	errno = e;
	return rc;
}

void perch_local_netrc_remove(const perch_local_workflow *wf)
{
	char *path = pp_path_join(wf->home_dir, ".netrc");

	if (path != NULL)
		(void)unlink(path);
	free(path);
}
