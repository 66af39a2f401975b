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
		"  daemon               run as a long-lived host with a control socket\n"
		"  submit WORKFLOW.json hand a workflow to the daemon [--follow]\n"
		"  ps [--json]          the daemon's running, queued and recent workflows\n"
		"  logs ID [--follow]   a workflow's step logs\n"
		"  wait ID              wait for a workflow; exit as perch run would have\n"
		"  cancel ID            cancel a queued or running workflow\n"
		"  status [--json]      the daemon: backends, versions, capabilities, queue\n"
		"  reload               re-read the config and plugins (as SIGHUP does)\n"
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
	} else if (strcmp(command, "daemon") == 0) {
		static const char *const opts[] = {"config", "socket", "backend", "log-level"};
		fprintf(out,
			"Usage: perch daemon [--config FILE] [--socket PATH]\n"
			"\n"
			"Runs perch as a long-lived host.  Clients (perch submit, ps, logs, wait,\n"
			"cancel, status, reload) talk to it over a unix socket (mode 0660) with the\n"
			"JSON-lines protocol of docs/daemon-protocol.md.  Every accepted workflow is\n"
			"kept in the state directory (config, step progress, logs, result), so that\n"
			"a restarted daemon adopts what was running: steps of backends that can\n"
			"discover and resume are taken up again; the others are cleaned up and\n"
			"reported lost, with the reason.\n"
			"\n"
			"SIGHUP or perch reload re-reads the config (a broken one is refused and the\n"
			"old stays) and the plugin folders: a changed plugin file is loaded as a new\n"
			"version beside the old one; new workflows use it at once, running ones stay\n"
			"on theirs (or, with swap = \"adopt\", are handed over when the new version\n"
			"can resume), and an old version is unloaded when its last workflow ends.\n"
			"SIGTERM stops accepting, lets running workflows finish for\n"
			"shutdown_timeout, then leaves them for adoption or cancels them; a second\n"
			"signal cancels at once.\n"
			"\n"
			"Config keys: control_socket (default /run/perch/perch.sock), state_dir\n"
			"(/var/lib/perch), max_workflows (4), max_queue (100), shutdown_timeout\n"
			"(\"1m\"), retention (1000 workflows, or an age such as \"168h\"), swap\n"
			"(\"finish\" or \"adopt\"), adopt_grace (\"5m\").\n"
			"\n"
			"Options:\n");
		print_owned(app, opts, sizeof opts / sizeof *opts, out);
	} else if (perch_is_client_command(command)) {
		static const char *const opts[] = {"socket", "config", "follow", "json", "timeout",
						   "backend"};
		fprintf(out,
			"Usage: perch submit WORKFLOW.json [--follow] [--backend NAME] [--timeout D]\n"
			"       perch ps [--json]\n"
			"       perch logs ID [--follow]\n"
			"       perch wait ID\n"
			"       perch cancel ID\n"
			"       perch status [--json]\n"
			"       perch reload\n"
			"\n"
			"Talk to a running perch daemon through its control socket: --socket, else\n"
			"$PERCH_SOCKET, else control_socket in the config, else\n"
			"/run/perch/perch.sock.  submit prints the new workflow's id as the last word\n"
			"of its last line.  An id may be shortened to a unique prefix.\n"
			"\n"
			"Options:\n");
		print_owned(app, opts, sizeof opts / sizeof *opts, out);
		fprintf(out,
			"\n"
			"Exit codes: wait, submit --follow and logs --follow exit as perch run would\n"
			"have for the workflow (0 success, 1 a step failed, 3 error or lost, 130\n"
			"cancelled); otherwise 0; 2 for bad input (unknown id, malformed workflow);\n"
			"3 when the daemon cannot be reached or refuses (queue full, shutting down).\n");
	} else {
		perch_help_main(app, out);
	}
}
