/*
 * fs.c - the paths of the local backend: finding executables, and telling
 * whether a path stays inside a folder.  Making, writing and removing
 * folders and files is plugins/common's (perchplugin.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Calls fn for each '/'-separated component of path; stops at true. */
static bool any_component(const char *path, bool (*fn)(const char *, size_t))
{
	const char *p = path;

	while (*p) {
		size_t n = strcspn(p, "/");
		if (n > 0 && fn(p, n))
			return true;
		p += n;
		while (*p == '/')
			p++;
	}
	return false;
}

static bool is_dotdot(const char *c, size_t n)
{
	return n == 2 && c[0] == '.' && c[1] == '.';
}

static bool is_dot_or_dotdot(const char *c, size_t n)
{
	return (n == 1 && c[0] == '.') || is_dotdot(c, n);
}

bool perch_local_path_climbs(const char *rel)
{
	return any_component(rel, is_dotdot);
}

bool perch_local_path_within(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (path[0] != '/' || dir[0] != '/' ||
	    any_component(path, is_dot_or_dotdot))
		return false;
	if (strncmp(path, dir, n) != 0)
		return false;
	return path[n] == '\0' || path[n] == '/';
}

static bool is_executable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       access(path, X_OK) == 0;
}

char *perch_local_which(const char *name, const char *path_env,
			const char *base_dir)
{
	const char *p;

	if (name == NULL || *name == '\0') {
		errno = ENOENT;
		return NULL;
	}
	if (strchr(name, '/') != NULL) {
		char *full = name[0] == '/' || base_dir == NULL
				     ? strdup(name)
				     : pp_path_join(base_dir, name);
		if (full == NULL) {
			errno = ENOMEM;
			return NULL;
		}
		if (is_executable_file(full))
			return full;
		free(full);
		errno = ENOENT;
		return NULL;
	}
	if (path_env == NULL)
		path_env = "/usr/local/bin:/usr/bin:/bin";
	for (p = path_env; *p;) {
		size_t n = strcspn(p, ":");
		/* Relative entries ("", ".") would search the host's current
		 * directory: skipped, as Go's LookPath refuses them too. */
		if (n > 0 && p[0] == '/') {
			char *full = pp_format("%.*s/%s", (int)n, p, name);
			if (full == NULL) {
				errno = ENOMEM;
				return NULL;
			}
			if (is_executable_file(full))
				return full;
			free(full);
		}
		p += n;
		if (*p == ':')
			p++;
	}
	errno = ENOENT;
	return NULL;
}
