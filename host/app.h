/*
 * app.h - one perch invocation: the config file, the flag registry with
 * every plugin's flags, the plugins, the root context, and the command.
 *
 * Start-up order matters and is fixed here: --config is found first (it
 * names plugin_path), then plugins are scanned (their flags join the command
 * line), then argv is parsed against the merged flags, then every value is
 * resolved (command line, environment, config file, default), then the
 * config file's backend settings are checked against the declared flags.
 */
#ifndef PERCH_HOST_APP_H
#define PERCH_HOST_APP_H

#include "conf.h"
#include "ctx.h"
#include "flags.h"
#include "loader.h"

/* Exit codes, shared by every command (README and perch run --help). */
enum {
	PERCH_EXIT_OK = 0,
	PERCH_EXIT_STEP_FAILED = 1,
	PERCH_EXIT_USAGE = 2,   /* bad input, usage, config */
	PERCH_EXIT_BACKEND = 3, /* backend or infrastructure error */
	PERCH_EXIT_CANCELLED = 130,
};

typedef struct perch_app {
	const char *argv0;
	perch_conf *conf;
	perch_cli *cli;
	perch_registry *reg;
	perch_ctx *root;     /* carries the CLI context */
	const char *command; /* NULL when none was given */
	char **args;         /* positional arguments after the command */
	size_t n_args;
	bool help;
	int argc;            /* as given to perch_app_init (the daemon re-reads */
	char **argv;         /* its configuration with them); not owned */
} perch_app;

/* Sets up everything above.  Returns PERCH_EXIT_OK or an exit code after
 * printing one line to stderr. */
int perch_app_init(perch_app *app, int argc, char **argv);
void perch_app_free(perch_app *app);

/* Resolved host flag values. */
const char *perch_app_string(const perch_app *app, const char *name);
bool perch_app_bool(const perch_app *app, const char *name);
int64_t perch_app_int(const perch_app *app, const char *name);
bool perch_app_is_set(const perch_app *app, const char *name);

/* Prints one refusal line per refused plugin (as warnings). */
void perch_app_warn_refused(const perch_app *app);

/* Help texts (help.c). */
void perch_help_main(const perch_app *app, FILE *out);
void perch_help_command(const perch_app *app, const char *command, FILE *out);

/* Commands. */
int perch_cmd_backends(perch_app *app);
int perch_cmd_run(perch_app *app);
/* perch daemon (daemon.c) and its clients (client.c): submit, ps, logs,
 * cancel, wait, status, reload. */
int perch_cmd_daemon(perch_app *app);
int perch_cmd_client(perch_app *app);
/* True if command is one of the client commands. */
bool perch_is_client_command(const char *command);

#endif
