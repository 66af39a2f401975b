/*
 * script.c - Woodpecker's CI_SCRIPT convention for commands steps.
 *
 * The commands become one POSIX script, base64-encoded into the CI_SCRIPT
 * variable; the entrypoint decodes it and runs it with `/bin/sh -e`, so a
 * failing command ends the step with its exit code.  The script first
 * writes $HOME/.netrc from the CI_NETRC_* variables (and unsets them and
 * CI_SCRIPT, so that the commands cannot read the credentials back from
 * the environment), then enters the working directory.
 *
 * Each command is preceded by a trace line "+ <command>".  Woodpecker
 * writes it with `echo + <quoted>`; perch uses printf instead, as its
 * local backend does (pp_script_command, shared with it): busybox's echo
 * interprets backslashes.  For ordinary commands the log is the same.
 */
#define _GNU_SOURCE
#include "docker.h"

#include <stdlib.h>
#include <string.h>

const char *const perch_docker_script_entrypoint[3] = {
	"/bin/sh",
	"-c",
	"echo $CI_SCRIPT | base64 -d | /bin/sh -e",
};

static char *encode(const void *data, size_t n, const char *alphabet)
{
	const unsigned char *p = data;
	size_t out_len = 4 * ((n + 2) / 3);
	char *out = malloc(out_len + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t left = n - i;
		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		*o++ = alphabet[(v >> 18) & 63];
		*o++ = alphabet[(v >> 12) & 63];
		*o++ = left > 1 ? alphabet[(v >> 6) & 63] : '=';
		*o++ = left > 2 ? alphabet[v & 63] : '=';
	}
	*o = '\0';
	return out;
}

char *perch_docker_base64(const void *data, size_t n)
{
	return encode(data, n,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789+/");
}

char *perch_docker_base64url(const void *data, size_t n)
{
	return encode(data, n,
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		      "0123456789-_");
}

/* The work dir goes between double quotes, so $, `, " and \ are escaped:
 * the folder is used as named, never expanded. */
static void dquote(pp_buf *b, const char *s)
{
	pp_buf_puts(b, "\"");
	for (; *s; s++) {
		if (strchr("$`\"\\", *s) != NULL)
			pp_buf_puts(b, "\\");
		pp_buf_add(b, s, 1);
	}
	pp_buf_puts(b, "\"");
}

char *perch_docker_script(const char *const *cmds, size_t n,
			  const char *work_dir)
{
	pp_buf b = {0};

	pp_buf_puts(&b,
			      "\n"
			      "if [ -n \"$CI_NETRC_MACHINE\" ]; then\n"
			      "cat <<EOF > $HOME/.netrc\n"
			      "machine $CI_NETRC_MACHINE\n"
			      "login $CI_NETRC_USERNAME\n"
			      "password $CI_NETRC_PASSWORD\n"
			      "EOF\n"
			      "chmod 0600 $HOME/.netrc\n"
			      "fi\n"
			      "unset CI_NETRC_USERNAME\n"
			      "unset CI_NETRC_PASSWORD\n"
			      "unset CI_SCRIPT\n");
	if (work_dir != NULL && *work_dir != '\0') {
		pp_buf_puts(&b, "mkdir -p ");
		dquote(&b, work_dir);
		pp_buf_puts(&b, "\ncd ");
		dquote(&b, work_dir);
		pp_buf_puts(&b, "\n");
	}
	for (size_t i = 0; i < n; i++) {
		pp_buf_puts(&b, "\n");
		pp_script_command(&b, cmds[i]);
	}
	return pp_buf_steal(&b);
}
