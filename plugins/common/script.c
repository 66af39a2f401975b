/*
 * script.c - the shell text that the local and docker backends generate
 * alike for a commands step: POSIX quoting and the trace line that puts
 * "+ <command>" into the log before each command runs.
 */
#define _GNU_SOURCE
#include "perchplugin.h"

#include <stdlib.h>
#include <string.h>

static bool safe_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("_@%+=:,./-", c) != NULL;
}

void pp_shell_quote(pp_buf *b, const char *s)
{
	bool safe = *s != '\0';

	for (const char *p = s; *p && safe; p++)
		safe = safe_char(*p);
	if (safe) {
		pp_buf_puts(b, s);
		return;
	}
	pp_buf_puts(b, "'");
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			pp_buf_puts(b, "'\"'\"'");
		else
			pp_buf_add(b, p, 1);
	}
	pp_buf_puts(b, "'");
}

void pp_script_command(pp_buf *b, const char *cmd)
{
	pp_buf trace = {0};
	char *t;

	pp_buf_puts(&trace, "+ ");
	pp_buf_puts(&trace, cmd);
	t = pp_buf_steal(&trace);
	if (t == NULL) {
		b->oom = true;
		return;
	}
	pp_buf_puts(b, "printf '%s\\n' ");
	pp_shell_quote(b, t);
	pp_buf_puts(b, "\n");
	pp_buf_puts(b, cmd);
	pp_buf_puts(b, "\n");
	free(t);
}
