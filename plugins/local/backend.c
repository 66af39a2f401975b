/*
 * backend.c - the local backend's entry object: name, flags, availability,
 * load and unload.  The workflow and step calls live in steps.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>

static const char *const temp_dir_env[] = {
	"PERCH_BACKEND_LOCAL_TEMP_DIR",
	"WOODPECKER_BACKEND_LOCAL_TEMP_DIR",
	NULL,
};

static const char *const isolated_home_env[] = {
	"PERCH_BACKEND_LOCAL_ISOLATED_HOME",
	"WOODPECKER_BACKEND_LOCAL_ISOLATED_HOME",
	NULL,
};

static const char *const stop_timeout_env[] = {
	"PERCH_BACKEND_LOCAL_STOP_TIMEOUT",
	"WOODPECKER_BACKEND_LOCAL_STOP_TIMEOUT",
	NULL,
};

/* No declared default: "the system temporary directory" is decided at load
 * ($TMPDIR, else /tmp), like Go's os.TempDir(). */
static const perch_flag temp_dir_flag = {
	PERCH_FLAG_INIT,
	.kind = PERCH_FLAG_STRING,
	.name = PERCH_LOCAL_FLAG_TEMP_DIR,
	.env = temp_dir_env,
	.default_value = NULL,
	.usage = "set a different temp dir to clone workflows into "
		 "(default: $TMPDIR, else /tmp)",
};

static const perch_flag isolated_home_flag = {
	PERCH_FLAG_INIT,
	.kind = PERCH_FLAG_BOOL,
	.name = PERCH_LOCAL_FLAG_ISOLATED_HOME,
	.env = isolated_home_env,
	.default_value = "true",
	.usage = "set HOME and USERPROFILE to a per-workflow directory; if "
		 "false the host's HOME is kept and netrc is ignored",
};

static const perch_flag stop_timeout_flag = {
	PERCH_FLAG_INIT,
	.kind = PERCH_FLAG_DURATION,
	.name = PERCH_LOCAL_FLAG_STOP_TIMEOUT,
	.env = stop_timeout_env,
	.default_value = "10s",
	.usage = "time a stopped or cancelled step gets between SIGTERM and "
		 "SIGKILL",
};

static const perch_flag *const local_flags[] = {
	&temp_dir_flag,
	&isolated_home_flag,
	&stop_timeout_flag,
	NULL,
};

/* The local backend runs steps next to the host: inside a container that is
 * rarely what the operator wants, so auto-detection skips it there.  An
 * explicit choice of "local" is the host's business, not ours. */
static bool local_is_available(const perch_host *host, const perch_ctx *ctx,
			       perch_error *why)
{
	static const char *const vars[] = {"WOODPECKER_IN_CONTAINER",
					   "PERCH_IN_CONTAINER", NULL};

	for (size_t i = 0; vars[i] != NULL; i++)
		if (getenv(vars[i]) != NULL) {
			perch_error_set(why, PERCH_ERR_UNAVAILABLE,
					"running inside a container (%s is set)",
					vars[i]);
			return false;
		}
	return true;
}

/* "<os>/<arch>" in Go's names: linux/amd64, linux/arm64. */
static void platform_of(char *out, size_t len)
{
	static const struct {
		const char *machine, *goarch;
	} arches[] = {
		{"x86_64", "amd64"},   {"amd64", "amd64"},     {"aarch64", "arm64"},
		{"arm64", "arm64"},    {"i386", "386"},        {"i486", "386"},
		{"i586", "386"},       {"i686", "386"},        {"armv6l", "arm"},
		{"armv7l", "arm"},     {"armv8l", "arm"},      {"ppc64le", "ppc64le"},
		{"ppc64", "ppc64"},    {"s390x", "s390x"},     {"riscv64", "riscv64"},
		{"mips64", "mips64"},  {"loongarch64", "loong64"},
	};
	struct utsname u;
	const char *arch;
	char os[sizeof u.sysname];

	if (uname(&u) < 0) {
		snprintf(out, len, "linux/unknown");
		return;
	}
	snprintf(os, sizeof os, "%s", u.sysname);
	for (char *p = os; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	arch = u.machine;
	for (size_t i = 0; i < sizeof arches / sizeof arches[0]; i++)
		if (strcmp(u.machine, arches[i].machine) == 0) {
			arch = arches[i].goarch;
			break;
		}
	/* Bounded so that the two always fit PERCH_PLATFORM_MAX. */
	snprintf(out, len, "%.20s/%.40s", os, arch);
}

/* Reads the flags through the CLI context.  Without one (a bare load, as
 * in tests), or for a flag that is not set, the defaults apply. */
static perch_status read_flags(perch_instance *inst, const perch_ctx *ctx,
			       const char **temp_dir, perch_error *err)
{
	const perch_host *host = inst->host;
	const perch_cli *cli = NULL;

	*temp_dir = NULL;
	inst->isolated_home = true;
	inst->stop_timeout_ms = PERCH_LOCAL_DEFAULT_STOP_TIMEOUT_MS;
	if (perch_ctx_cli(host, ctx, &cli, NULL) != PERCH_OK)
		return PERCH_OK;
	if (host->cli_is_set(cli, PERCH_LOCAL_FLAG_TEMP_DIR))
		*temp_dir = host->cli_string(cli, PERCH_LOCAL_FLAG_TEMP_DIR);
	if (host->cli_is_set(cli, PERCH_LOCAL_FLAG_ISOLATED_HOME))
		inst->isolated_home =
			host->cli_bool(cli, PERCH_LOCAL_FLAG_ISOLATED_HOME);
	if (host->cli_is_set(cli, PERCH_LOCAL_FLAG_STOP_TIMEOUT)) {
		inst->stop_timeout_ms =
			host->cli_duration_ms(cli, PERCH_LOCAL_FLAG_STOP_TIMEOUT);
		if (inst->stop_timeout_ms < 0)
			return perch_error_set(err, PERCH_ERR_INVALID_INPUT,
					       "%s must not be negative",
					       PERCH_LOCAL_FLAG_STOP_TIMEOUT);
	}
	return PERCH_OK;
}

static void local_unload(perch_instance *inst);

static perch_status local_load(const perch_host *host, const perch_ctx *ctx,
			       perch_instance **instance,
			       perch_backend_info *info, perch_error *err)
{
	perch_instance *inst;
	const char *temp_dir;
	char resolved[PATH_MAX];
	struct stat stb;
	perch_status rc;

	*instance = NULL;
	/* cli_is_set is the newest host call this plugin needs. */
	if (!PERCH_HAS_FIELD(host, perch_host, cli_is_set))
		return perch_error_set(err, PERCH_ERR_UNSUPPORTED,
				       "host table too old for the local backend");
	inst = calloc(1, sizeof *inst);
	if (inst == NULL)
		return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
	inst->host = host;
	pthread_mutex_init(&inst->lock, NULL);
	rc = read_flags(inst, ctx, &temp_dir, err);
	if (rc != PERCH_OK)
		goto fail;
	if (temp_dir == NULL || *temp_dir == '\0')
		temp_dir = getenv("TMPDIR");
	if (temp_dir == NULL || *temp_dir == '\0')
		temp_dir = "/tmp";
	/* Absolute and resolved: CI_WORKSPACE and HOME must not depend on
	 * the host's current directory. */
	if (realpath(temp_dir, resolved) == NULL || stat(resolved, &stb) < 0 ||
	    (!S_ISDIR(stb.st_mode) && (errno = ENOTDIR))) {
		rc = perch_error_set(err, PERCH_ERR_INVALID_INPUT, "%s %s: %s",
				     PERCH_LOCAL_FLAG_TEMP_DIR, temp_dir,
				     strerror(errno));
		goto fail;
	}
	inst->temp_dir = strdup(resolved);
	if (inst->temp_dir == NULL) {
		rc = perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
		goto fail;
	}
	if (PERCH_HAS_FIELD(info, perch_backend_info, platform))
		platform_of(info->platform, sizeof info->platform);
	perch_logf(host, PERCH_LOG_DEBUG,
		   "local: temp dir %s, isolated home %s, stop timeout %lld ms",
		   inst->temp_dir, inst->isolated_home ? "on" : "off",
		   (long long)inst->stop_timeout_ms);
	*instance = inst;
	return PERCH_OK;
fail:
	local_unload(inst);
	return rc;
}

/* No call is in flight.  Workflows the host forgot are destroyed (their
 * processes stopped, their directories removed) rather than leaked. */
static void local_unload(perch_instance *inst)
{
	if (inst == NULL)
		return;
	perch_local_destroy_all(inst);
	perch_local_registry_clear(inst);
	pthread_mutex_destroy(&inst->lock);
	free(inst->temp_dir);
	free(inst);
}

static const void *local_get_capability(perch_instance *inst, const char *id)
{
	/* Host processes cannot be adopted by a restarted host. */
	return NULL;
}

PERCH_BACKEND_ENTRY = {
	PERCH_BACKEND_INIT,
	.priority = 10,
	.name = PERCH_LOCAL_NAME,
	.version = "1.0.0",
	.description = "runs steps as processes on this host (no isolation)",
	.flags = local_flags,
	.is_available = local_is_available,
	.load = local_load,
	.setup_workflow = perch_local_setup_workflow,
	.start_step = perch_local_start_step,
	.tail_step = perch_local_tail_step,
	.wait_step = perch_local_wait_step,
	.destroy_step = perch_local_destroy_step,
	.destroy_workflow = perch_local_destroy_workflow,
	.unload = local_unload,
	.get_capability = local_get_capability,
};
