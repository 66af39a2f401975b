/* main.c - the perch command: parse, dispatch, exit. */
#include "config.h"

#include "app.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
	/* A closed pipe on stdout is an error to report, not a reason to die
	 * silently: writes fail with EPIPE instead. */
	signal(SIGPIPE, SIG_IGN);
	/* A wide stage holds a pipe, a process handle and an eventfd per
	 * step: lift the soft descriptor limit to the hard one, as daemons
	 * do, so that 300 parallel steps do not hit the usual 1024. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	perch_app app;
	int rc = perch_app_init(&app, argc, argv);
	if (rc != PERCH_EXIT_OK) {
		perch_app_free(&app);
		return rc;
	}
	const char *cmd = app.command;
	if (perch_app_bool(&app, "version") || (cmd && strcmp(cmd, "version") == 0)) {
		printf("%s\n", PACKAGE_STRING);
		rc = PERCH_EXIT_OK;
	} else if (cmd == NULL) {
		perch_help_main(&app, app.help ? stdout : stderr);
		rc = app.help ? PERCH_EXIT_OK : PERCH_EXIT_USAGE;
	} else if (strcmp(cmd, "help") == 0) {
		if (app.n_args)
			perch_help_command(&app, app.args[0], stdout);
		else
			perch_help_main(&app, stdout);
		rc = PERCH_EXIT_OK;
	} else if (app.help) {
		perch_help_command(&app, cmd, stdout);
		rc = PERCH_EXIT_OK;
	} else if (strcmp(cmd, "backends") == 0) {
		rc = perch_cmd_backends(&app);
	} else if (strcmp(cmd, "run") == 0) {
		rc = perch_cmd_run(&app);
	} else if (strcmp(cmd, "daemon") == 0) {
		rc = perch_cmd_daemon(&app);
	} else if (perch_is_client_command(cmd)) {
		rc = perch_cmd_client(&app);
	} else {
		fprintf(stderr, "perch: unknown command \"%s\"\nTry 'perch --help'.\n", cmd);
		rc = PERCH_EXIT_USAGE;
	}
	perch_app_free(&app);
	return rc;
}
