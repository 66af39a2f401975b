/*
 * script.c - the script a commands step runs.
 *
 * Woodpecker's local backend writes, per command, `echo <quoted "+ cmd">`
 * and then the command, and runs the lot with `<shell> -e -c`.  perch keeps
 * the shape and the quoting but prints the trace line with printf (see
 * pp_script_command, shared with the docker backend).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

char *perch_local_script(const char *const *cmds, size_t n)
{
	pp_buf b = {0};

	for (size_t i = 0; i < n; i++)
		pp_script_command(&b, cmds[i]);
	return pp_buf_steal(&b);
}
