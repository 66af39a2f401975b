/* app.c - see app.h. */
#include "config.h"

#include "app.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const env_config[] = {"PERCH_CONFIG", NULL};
static const char *const env_backend[] = {"PERCH_BACKEND", "WOODPECKER_BACKEND", NULL};
static const char *const env_log_level[] = {"PERCH_LOG_LEVEL", NULL};
static const char *const env_socket[] = {"PERCH_SOCKET", NULL};

/* perch's own flags.  owner is the command they belong to ("perch" for
 * global ones); config is their top-level config-file key, if any. */
static const struct host_flag {
	perch_flag flag;
	const char *owner;
	const char *config;
} host_flags[] = {
	{{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "config", env_config, NULL,
	  "read this config file (default " PERCH_SYSCONFDIR "/perch/perch.conf)"}, "perch", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "backend", env_backend, "auto-detect",
	  "the backend to use: a plugin name or auto-detect"}, "perch", "backend"},
	{{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "log-level", env_log_level, "info",
	  "perch's own messages: error, warn, info or debug"}, "perch", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_BOOL, "help", NULL, NULL, "show help and exit"}, "perch", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_BOOL, "version", NULL, NULL, "show the version and exit"},
	 "perch", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_BOOL, "json", NULL, NULL, "print JSON"},
	 "backends,ps,status", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_DURATION, "timeout", NULL, NULL,
	  "cancel the workflow after this long (for example 30m)"}, "run,submit", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "result", NULL, NULL,
	  "write the result as JSON to this file"}, "run", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "log-format", NULL, "text",
	  "step logs on standard output: text, json or none"}, "run", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "logs-dir", NULL, NULL,
	  "also write each step's log to a file in this folder"}, "run", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "task-uuid", NULL, NULL,
	  "the workflow's task id given to the backend (default: a new ULID)"}, "run", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_INT, "max-parallel", NULL, "1000",
	  "at most this many steps of a stage run at once"}, "run", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "socket", env_socket, NULL,
	  "the daemon's control socket (default: control_socket in the config, else "
	  "/run/perch/perch.sock)"}, "daemon,submit,ps,logs,cancel,wait,status,reload", NULL},
	{{PERCH_FLAG_INIT, PERCH_FLAG_BOOL, "follow", NULL, NULL,
	  "stream the logs until the workflow ends, then exit like perch wait"},
	 "submit,logs", NULL},
};

static const char *owner_of(const char *name)
{
	for (size_t i = 0; i < sizeof host_flags / sizeof *host_flags; i++)
		if (strcmp(host_flags[i].flag.name, name) == 0)
			return host_flags[i].owner;
	return "backend";
}

/* --config must be known before anything else: it names plugin_path. */
static const char *prescan_config(int argc, char **argv)
{
	const char *path = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			path = argv[i] + 9;
	}
	return path;
}

/* The command, as far as it can be told before plugins are scanned (their
 * flags are unknown yet, so only perch's own options are skipped). */
static const char *prescan_command(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return i + 1 < argc ? argv[i + 1] : NULL;
		if (a[0] != '-' || strcmp(a, "-") == 0)
			return a;
		if (a[1] != '-' || strchr(a, '=') != NULL)
			continue;
		for (size_t k = 0; k < sizeof host_flags / sizeof *host_flags; k++)
			if (strcmp(host_flags[k].flag.name, a + 2) == 0 &&
			    host_flags[k].flag.kind != PERCH_FLAG_BOOL)
				i++; /* its value */
	}
	return NULL;
}

static int usage_error(const perch_app *app, char *msg)
{
	fprintf(stderr, "perch: %s\n", msg);
	if (app->command)
		fprintf(stderr, "Try 'perch %s --help'.\n", app->command);
	else
		fprintf(stderr, "Try 'perch --help'.\n");
	free(msg);
	return PERCH_EXIT_USAGE;
}

static void add_arg(perch_app *app, const char *a)
{
	app->args = perch_xrealloc(app->args, (app->n_args + 1) * sizeof *app->args);
	app->args[app->n_args++] = perch_xstrdup(a);
}

static int parse_argv(perch_app *app, int argc, char **argv)
{
	bool only_args = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_args || a[0] != '-' || strcmp(a, "-") == 0) {
			if (app->command == NULL && !only_args)
				app->command = a;
			else
				add_arg(app, a);
			continue;
		}
		if (strcmp(a, "--") == 0) {
			only_args = true;
			continue;
		}
		if (strcmp(a, "-h") == 0) {
			app->help = true;
			continue;
		}
		if (a[1] != '-')
			return usage_error(app, perch_xasprintf("unknown option %s", a));
		char *name = perch_xstrdup(a + 2);
		char *eq = strchr(name, '=');
		const char *value = NULL;
		if (eq) {
			*eq = '\0';
			value = eq + 1;
		}
		perch_flagdef *d = perch_cli_find(app->cli, name);
		if (d == NULL) {
			int rc = usage_error(app, perch_xasprintf("unknown option --%s", name));
			free(name);
			return rc;
		}
		if (value == NULL) {
			if (d->kind == PERCH_FLAG_BOOL) {
				value = "true";
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				int rc = usage_error(app, perch_xasprintf("option --%s needs a value",
									  name));
				free(name);
				return rc;
			}
		}
		char *err = NULL;
		perch_cli_set_arg(app->cli, name, value, &err);
		free(err);
		free(name);
	}
	return PERCH_EXIT_OK;
}

/* True if command is in owner, a comma-separated list of commands. */
static bool owner_has(const char *owner, const char *command)
{
	size_t n = strlen(command);
	for (const char *p = owner; *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == n && strncmp(p, command, n) == 0)
			return true;
		if (end == NULL)
			break;
		p = end + 1;
	}
	return false;
}

/* Options of one command may not be used with another. */
static int check_option_owners(perch_app *app)
{
	for (size_t i = 0; i < app->cli->n; i++) {
		const perch_flagdef *d = &app->cli->defs[i];
		if (d->arg == NULL || strcmp(d->owner, "perch") != 0)
			continue;
		const char *owner = owner_of(d->name);
		if (strcmp(owner, "perch") == 0)
			continue;
		if (app->command == NULL || !owner_has(owner, app->command)) {
			if (strchr(owner, ',') == NULL)
				return usage_error(app, perch_xasprintf("option --%s belongs to "
									"'perch %s'", d->name, owner));
			perch_buf b = {0};
			for (const char *p = owner; *p; p++)
				if (*p == ',')
					perch_buf_puts(&b, "', 'perch ");
				else
					perch_buf_putc(&b, *p);
			int rc = usage_error(app, perch_xasprintf("option --%s belongs to 'perch %s'",
								  d->name, b.data));
			perch_buf_free(&b);
			return rc;
		}
	}
	return PERCH_EXIT_OK;
}

static int parse_log_level(const char *s)
{
	if (s == NULL || strcmp(s, "info") == 0)
		return PERCH_LOG_INFO;
	if (strcmp(s, "error") == 0)
		return PERCH_LOG_ERROR;
	if (strcmp(s, "warn") == 0 || strcmp(s, "warning") == 0)
		return PERCH_LOG_WARN;
	if (strcmp(s, "debug") == 0)
		return PERCH_LOG_DEBUG;
	return -1;
}

int perch_app_init(perch_app *app, int argc, char **argv)
{
	memset(app, 0, sizeof *app);
	app->argv0 = argc > 0 ? argv[0] : "perch";
	app->argc = argc;
	app->argv = argv;
	app->cli = perch_cli_new();
	for (size_t i = 0; i < sizeof host_flags / sizeof *host_flags; i++)
		perch_cli_add_host(app->cli, &host_flags[i].flag, host_flags[i].config);

	char *err = NULL;
	app->conf = perch_conf_open(prescan_config(argc, argv), &err);
	if (app->conf == NULL) {
		fprintf(stderr, "perch: %s\n", err);
		free(err);
		return PERCH_EXIT_USAGE;
	}
	app->reg = perch_registry_new(app->cli);
	/* A client of the daemon only needs the daemon's address: it loads no
	 * plugin, takes no backend option, and does not stop at a config whose
	 * backend settings name a plugin that is not installed here. */
	const char *early = prescan_command(argc, argv);
	bool client = early && perch_is_client_command(early);
	if (!client) {
		perch_registry_default_dirs(app->reg, app->conf);
		perch_registry_scan(app->reg);
	}

	int rc = parse_argv(app, argc, argv);
	if (rc != PERCH_EXIT_OK)
		return rc;
	if (perch_cli_resolve(app->cli, app->conf, &err) != 0 ||
	    (!client && perch_cli_check_conf(app->cli, app->conf, &err) != 0)) {
		fprintf(stderr, "perch: %s\n", err);
		free(err);
		return PERCH_EXIT_USAGE;
	}
	if (perch_app_bool(app, "help"))
		app->help = true;
	int level = parse_log_level(perch_app_string(app, "log-level"));
	if (level < 0)
		return usage_error(app, perch_xasprintf("invalid value \"%s\" for --log-level: want "
							"error, warn, info or debug",
							perch_app_string(app, "log-level")));
	app->reg->log_level = level;
	rc = check_option_owners(app);
	if (rc != PERCH_EXIT_OK)
		return rc;
	app->root = perch_ctx_new(NULL);
	perch_ctx_set_value(app->root, PERCH_CTX_CLI_COMMAND, app->cli);
	return PERCH_EXIT_OK;
}

void perch_app_free(perch_app *app)
{
	/* Plugins go first: their unload may still log through the table. */
	perch_registry_free(app->reg);
	perch_ctx_free(app->root);
	perch_cli_free(app->cli);
	perch_conf_free(app->conf);
	for (size_t i = 0; i < app->n_args; i++)
		free(app->args[i]);
	free(app->args);
	memset(app, 0, sizeof *app);
}

const char *perch_app_string(const perch_app *app, const char *name)
{
	const perch_flagdef *d = perch_cli_find(app->cli, name);
	return d && d->source != PERCH_SRC_NONE ? d->str : NULL;
}

bool perch_app_bool(const perch_app *app, const char *name)
{
	const perch_flagdef *d = perch_cli_find(app->cli, name);
	return d && d->source != PERCH_SRC_NONE && d->b;
}

int64_t perch_app_int(const perch_app *app, const char *name)
{
	const perch_flagdef *d = perch_cli_find(app->cli, name);
	return d && d->source != PERCH_SRC_NONE ? d->i : 0;
}

bool perch_app_is_set(const perch_app *app, const char *name)
{
	const perch_flagdef *d = perch_cli_find(app->cli, name);
	return d && d->source > PERCH_SRC_DEFAULT;
}

void perch_app_warn_refused(const perch_app *app)
{
	for (size_t i = 0; i < app->reg->n_refused; i++)
		fprintf(stderr, "perch: warning: refused plugin %s: %s\n",
			app->reg->refused[i]->path, app->reg->refused[i]->error);
}
