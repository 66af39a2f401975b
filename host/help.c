/* help.c - `perch --help` and `perch COMMAND --help`. */
#include "config.h"

#include "app.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static void print_flag(const perch_flagdef *d, FILE *out)
{
	perch_buf b = {0};
	perch_buf_printf(&b, "  --%s", d->name);
	if (d->kind != PERCH_FLAG_BOOL)
		perch_buf_printf(&b, " %s", d->kind == PERCH_FLAG_DURATION ? "DURATION"
					    : d->kind == PERCH_FLAG_INT    ? "N"
					    : d->kind == PERCH_FLAG_STRING_LIST ? "A,B,..."
									       : "VALUE");
	fprintf(out, "%-44s %s\n", b.data, d->usage);
	perch_buf_free(&b);
	if (d->default_value && *d->default_value)
		fprintf(out, "%-44s default: %s\n", "", d->default_value);
	if (d->n_env) {
		perch_buf e = {0};
		for (size_t i = 0; i < d->n_env; i++)
			perch_buf_printf(&e, "%s$%s", i ? ", " : "", d->env[i]);
		fprintf(out, "%-44s env: %s\n", "", e.data);
		perch_buf_free(&e);
	}
	if (d->config_key && strcmp(d->owner, "perch") != 0)
		fprintf(out, "%-44s config: %s\n", "", d->config_key);
}

static void print_owned(const perch_app *app, const char *const *names, size_t n, FILE *out)
{
	for (size_t i = 0; i < n; i++) {
		const perch_flagdef *d = perch_cli_find(app->cli, names[i]);
		if (d)
			print_flag(d, out);
	}
}

static void print_backend_flags(const perch_app *app, FILE *out)
{
	for (size_t p = 0; p < app->reg->n; p++) {
		const perch_plugin *pl = app->reg->plugins[p];
		fprintf(out, "\nBackend %s (%s %s)%s%s:\n", pl->name, pl->path, pl->entry->version,
			pl->entry->description ? " - " : "",
			pl->entry->description ? pl->entry->description : "");
		bool any = false;
		for (size_t i = 0; i < app->cli->n; i++)
			if (strcmp(app->cli->defs[i].owner, pl->name) == 0) {
				print_flag(&app->cli->defs[i], out);
				any = true;
			}
		if (!any)
			fprintf(out, "  (no options)\n");
	}
	if (app->reg->n == 0)
		fprintf(out, "\nNo backend plugins were found (see 'perch backends').\n");
}

void perch_help_main(const perch_app *app, FILE *out)
{
	static const char *const global[] = {"config", "backend", "log-level", "help", "version"};
	fprintf(out,
		"Usage: perch [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"perch runs CI workflows (Woodpecker's workflow JSON) through backend plugins.\n"
		"\n"
		"Commands:\n"
		"  run WORKFLOW.json    run a workflow to its end ('-' reads standard input)\n"
		"  backends [--json]    list the backend plugins found, and the files refused\n"
		"  help [COMMAND]       show help\n"
		"  version              show the version\n"
		"\n"
		"Options:\n");
	print_owned(app, global, sizeof global / sizeof *global, out);
	fprintf(out,
		"\n"
		"Every option can also come from its environment variables and, for backend\n"
		"options, from the config file (backends.<backend>.<key>); the command line\n"
		"wins, then the environment, then the config file, then the default.\n");
	print_backend_flags(app, out);
}

void perch_help_command(const perch_app *app, const char *command, FILE *out)
{
	if (strcmp(command, "run") == 0) {
		static const char *const opts[] = {"timeout", "result", "log-format", "logs-dir",
						   "task-uuid", "max-parallel", "backend", "config"};
		fprintf(out,
			"Usage: perch run [OPTIONS] WORKFLOW.json\n"
			"\n"
			"Runs a workflow: setup, each stage in order with its steps in parallel,\n"
			"then cleanup.  WORKFLOW.json is the JSON Woodpecker's server sends its\n"
			"agents; '-' reads it from standard input.  Step logs go to standard\n"
			"output as [step:L<line>:<seconds>s] text; perch's own messages go to\n"
			"standard error.  SIGINT or SIGTERM cancels; a second one cuts the\n"
			"cleanup short.\n"
			"\n"
			"Options:\n");
		print_owned(app, opts, sizeof opts / sizeof *opts, out);
		fprintf(out,
			"\n"
			"Exit codes:\n"
			"  0    every step succeeded (or its failure was ignored)\n"
			"  1    a step failed\n"
			"  2    bad input: workflow JSON, usage, config file\n"
			"  3    a backend or infrastructure error\n"
			"  130  cancelled (signal or --timeout)\n");
		print_backend_flags(app, out);
	} else if (strcmp(command, "backends") == 0) {
		fprintf(out,
			"Usage: perch backends [--json]\n"
			"\n"
			"Lists every backend plugin found in the plugin path (config plugin_path,\n"
			"then $PERCH_PLUGIN_PATH, then the installed folder): name, version, ABI,\n"
			"file, availability (and why not), platform, capabilities and flags, and\n"
			"every file that was refused with the reason.  Exit 0 when the listing\n"
			"could be made.\n"
			"\n"
			"Options:\n"
			"  --json    print a JSON array instead of text\n");
	} else {
		perch_help_main(app, out);
	}
}
