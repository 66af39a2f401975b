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
 * writes it with `echo + <quoted>`; perch uses `printf '%s\n'` instead, as
 * its local backend does: dash's and busybox's echo interpret backslashes,
 * so echo would log `printf "a\nb"` as two lines.  For ordinary commands
 * the log is the same.
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

static bool safe_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("_@%+=:,./-", c) != NULL;
}

void perch_docker_shell_quote(perch_docker_buf *b, const char *s)
{
	bool safe = *s != '\0';

	for (const char *p = s; *p && safe; p++)
		safe = safe_char(*p);
	if (safe) {
		perch_docker_buf_puts(b, s);
		return;
	}
	perch_docker_buf_puts(b, "'");
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			perch_docker_buf_puts(b, "'\"'\"'");
		else
			perch_docker_buf_add(b, p, 1);
	}
	perch_docker_buf_puts(b, "'");
}

/* The work dir goes between double quotes, so $, `, " and \ are escaped:
 * the folder is used as named, never expanded. */
static void dquote(perch_docker_buf *b, const char *s)
{
	perch_docker_buf_puts(b, "\"");
	for (; *s; s++) {
		if (strchr("$`\"\\", *s) != NULL)
			perch_docker_buf_puts(b, "\\");
		perch_docker_buf_add(b, s, 1);
	}
	perch_docker_buf_puts(b, "\"");
}

char *perch_docker_script(const char *const *cmds, size_t n,
			  const char *work_dir)
{
	perch_docker_buf b = {0};

	perch_docker_buf_puts(&b,
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
		perch_docker_buf_puts(&b, "mkdir -p ");
		dquote(&b, work_dir);
		perch_docker_buf_puts(&b, "\ncd ");
		dquote(&b, work_dir);
		perch_docker_buf_puts(&b, "\n");
	}
	for (size_t i = 0; i < n; i++) {
		perch_docker_buf trace = {0};
		char *t;
		perch_docker_buf_puts(&trace, "+ ");
		perch_docker_buf_puts(&trace, cmds[i]);
		t = perch_docker_buf_steal(&trace);
		if (t == NULL) {
			perch_docker_buf_free(&b);
			return NULL;
		}
		perch_docker_buf_puts(&b, "\nprintf '%s\\n' ");
		perch_docker_shell_quote(&b, t);
		free(t);
		perch_docker_buf_puts(&b, "\n");
		perch_docker_buf_puts(&b, cmds[i]);
		perch_docker_buf_puts(&b, "\n");
	}
	return perch_docker_buf_steal(&b);
}
