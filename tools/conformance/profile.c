/*
 * profile.c - how a behaviour ("print hello, then exit 1") becomes a step a
 * given backend runs that way.
 *
 *   sh     commands for a POSIX shell: `printf`, `sleep`, `exit N`, and
 *          `kill -9 $$` for death by SIGKILL.  Fits every backend that runs
 *          a step's commands with a shell: local (whose image names the
 *          shell, default "sh"), docker (--image busybox), ...
 *   dummy  the dummy backend runs nothing: its step environment decides
 *          (SLEEP, STEP_EXIT_CODE, STEP_OOM_KILLED, STEP_START_FAIL), and
 *          its output lists the step's commands, so the same `echo` lines
 *          still show up in the log.
 */
#include "config.h"

#include "conformance.h"

#include <string.h>

static void sh_express(perch_cf_step *st, const perch_cf_behaviour *b)
{
	/* The line is printed in two halves, so that it shows up in the log
	 * only if the command ran: backends that echo each command before
	 * running it (local does, like Woodpecker) show the command's text,
	 * which does not hold the line itself. */
	for (size_t i = 0; i < sizeof b->say / sizeof *b->say && b->say[i]; i++) {
		int half = (int)strlen(b->say[i]) / 2;
		perch_cf_step_add_cmd(st, "printf '%%s%%s\\n' '%.*s' '%s'", half, b->say[i],
				      b->say[i] + half);
	}
	if (b->sleep_s > 0)
		perch_cf_step_add_cmd(st, "sleep %d", b->sleep_s);
	if (b->kill9)
		perch_cf_step_add_cmd(st, "kill -9 $$");
	else if (b->exit_code != 0)
		perch_cf_step_add_cmd(st, "exit %d", b->exit_code);
}

static void dummy_express(perch_cf_step *st, const perch_cf_behaviour *b)
{
	/* The dummy's log lists the commands: that is how it "prints". */
	for (size_t i = 0; i < sizeof b->say / sizeof *b->say && b->say[i]; i++)
		perch_cf_step_add_cmd(st, "echo %s", b->say[i]);
	if (b->sleep_s > 0)
		perch_cf_step_set_env(st, "SLEEP", "%ds", b->sleep_s);
	/* What a shell reports for a SIGKILL: 128 + 9. */
	perch_cf_step_set_env(st, "STEP_EXIT_CODE", "%d", b->kill9 ? 137 : b->exit_code);
}

static void dummy_start_fail(perch_cf_step *st)
{
	perch_cf_step_set_env(st, "STEP_START_FAIL", "true");
}

static const perch_cf_profile profiles[] = {
	{"sh", "steps are shell commands (echo, sleep, exit, kill -9 $$)", sh_express, NULL, NULL},
	{"dummy", "steps are the dummy backend's environment knobs (SLEEP, STEP_EXIT_CODE, "
		  "STEP_START_FAIL)",
	 dummy_express, "WorkflowSetupShouldFail", dummy_start_fail},
};

const perch_cf_profile *perch_cf_profile_find(const char *name)
{
	for (size_t i = 0; i < sizeof profiles / sizeof *profiles; i++)
		if (strcmp(profiles[i].name, name) == 0)
			return &profiles[i];
	return NULL;
}

const char *perch_cf_profile_names(void)
{
	return "sh, dummy";
}
