/*
 * script.c - the script a commands step runs.
 *
 * Woodpecker's local backend writes, per command, `echo <quoted "+ cmd">`
 * and then the command, and runs the lot with `<shell> -e -c`.  perch keeps
 * the shape and the quoting but prints with `printf '%s\n'`: dash's and
 * zsh's echo interpret backslashes, so `echo '+ printf "a\nb"'` would log a
 * line that is not the command.  For ordinary commands the log is the same.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <string.h>

static bool is_safe_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("_@%+=:,./-", c) != NULL;
}

void perch_local_shell_quote(perch_local_buf *b, const char *s)
{
	bool safe = *s != '\0';

	for (const char *p = s; *p && safe; p++)
		safe = is_safe_char(*p);
	if (safe) {
		perch_local_buf_puts(b, s);
		return;
	}
	perch_local_buf_puts(b, "'");
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			perch_local_buf_puts(b, "'\"'\"'");
		else
			perch_local_buf_add(b, p, 1);
	}
	perch_local_buf_puts(b, "'");
}

char *perch_local_script(const char *const *cmds, size_t n)
{
	perch_local_buf b = {0};

	for (size_t i = 0; i < n; i++) {
		perch_local_buf trace = {0};
		perch_local_buf_puts(&trace, "+ ");
		perch_local_buf_puts(&trace, cmds[i]);
		if (trace.oom) {
			perch_local_buf_free(&b);
			return NULL;
		}
		perch_local_buf_puts(&b, "printf '%s\\n' ");
		perch_local_shell_quote(&b, trace.data);
		perch_local_buf_puts(&b, "\n");
		perch_local_buf_puts(&b, cmds[i]);
		perch_local_buf_puts(&b, "\n");
		perch_local_buf_free(&trace);
	}
	return perch_local_buf_steal(&b);
}
