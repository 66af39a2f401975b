/*
 * fs.c - the file-system chores of the local backend: finding executables,
 * making directories, writing small private files, and removing a
 * workflow's temp dir without ever following a link out of it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *perch_local_path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if (n > 0 && dir[n - 1] == '/')
		return perch_local_printf("%s%s", dir, name);
	return perch_local_printf("%s/%s", dir, name);
}

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
				     : perch_local_path_join(base_dir, name);
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
			char *full = perch_local_printf("%.*s/%s", (int)n, p, name);
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

int perch_local_mkdirs(const char *path, mode_t mode)
{
	char *copy = strdup(path);
	struct stat st;
	char *p;

	if (copy == NULL) {
		errno = ENOMEM;
		return -1;
	}
	for (p = copy + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST) {
			int e = errno;
			free(copy);
			errno = e;
			return -1;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(copy);
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

int perch_local_write_file(const char *path, const char *data, mode_t mode)
{
	char *tmp = perch_local_printf("%s.XXXXXX", path);
	size_t len = strlen(data), off = 0;
	int fd, e;

	if (tmp == NULL) {
		errno = ENOMEM;
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		goto fail;
	if (fchmod(fd, mode) < 0)
		goto fail_fd;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail_fd;
		off += (size_t)w;
	}
	if (close(fd) < 0)
		goto fail_unlink;
	if (rename(tmp, path) < 0)
		goto fail_unlink;
	free(tmp);
	return 0;
fail_fd:
	e = errno;
	close(fd);
	errno = e;
fail_unlink:
	e = errno;
	unlink(tmp);
	errno = e;
fail:
	e = errno;
	free(tmp);
	errno = e;
	return -1;
}

/* ---- recursive removal ---------------------------------------------- */

struct rm_ctx {
	dev_t dev;      /* the file system of the root: never leave it */
	int err;        /* first errno */
	char *why;
	size_t why_len;
};

static void rm_fail(struct rm_ctx *rc, const char *what, const char *name)
{
	if (rc->err != 0)
		return;
	rc->err = errno ? errno : EIO;
	snprintf(rc->why, rc->why_len, "%s %s: %s", what, name,
		 strerror(rc->err));
}

/* Reads all names of the directory dfd (closing nothing of dfd). */
static char **list_dir(int dfd, size_t *n_out)
{
	int fd = dup(dfd);
	DIR *d;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;

	*n_out = 0;
	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return NULL;
	}
	rewinddir(d);
	while ((errno = 0, e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 32;
			char **v = realloc(names, c * sizeof *v);
			if (v == NULL)
				break;
			names = v;
			cap = c;
		}
		names[n] = strdup(e->d_name);
		if (names[n] == NULL)
			break;
		n++;
	}
	closedir(d);
	*n_out = n;
	if (names == NULL)
		names = calloc(1, sizeof *names);
	return names;
}

/* Removes every entry of the directory dfd.  Each level holds one fd:
 * names are read first and the DIR closed before descending. */
static void rm_children(struct rm_ctx *rc, int dfd)
{
	size_t n = 0;
	char **names = list_dir(dfd, &n);

	if (names == NULL) {
		rm_fail(rc, "cannot list", "directory");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = names[i];
		struct stat st;
		int cfd;

		if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
			continue;
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno != ENOENT)
				rm_fail(rc, "cannot stat", name);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			rm_fail(rc, "cannot remove", name);
			continue;
		}
		if (st.st_dev != rc->dev) {
			errno = EXDEV;
			rm_fail(rc, "not descending into mount point", name);
			continue;
		}
		/* A step may have left a directory without rwx for us. */
		if ((st.st_mode & S_IRWXU) != S_IRWXU)
			(void)fchmodat(dfd, name, (st.st_mode & 07777) | S_IRWXU,
				       0);
		cfd = openat(dfd, name,
			     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0) {
			rm_fail(rc, "cannot open", name);
			continue;
		}
		rm_children(rc, cfd);
		close(cfd);
		if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
			rm_fail(rc, "cannot remove", name);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int perch_local_remove_tree(const char *path, char *why, size_t why_len)
{
	struct rm_ctx rc = {.why = why, .why_len = why_len};
	struct stat st;
	int fd;

	if (why_len > 0)
		why[0] = '\0';
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		rm_fail(&rc, "cannot stat", path);
		errno = rc.err;
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) == 0)
			return 0;
		rm_fail(&rc, "cannot remove", path);
		errno = rc.err;
		return -1;
	}
	rc.dev = st.st_dev;
	if ((st.st_mode & S_IRWXU) != S_IRWXU)
		(void)chmod(path, (st.st_mode & 07777) | S_IRWXU);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		rm_fail(&rc, "cannot open", path);
		errno = rc.err;
		return -1;
	}
	rm_children(&rc, fd);
	close(fd);
	if (rmdir(path) < 0 && errno != ENOENT)
		rm_fail(&rc, "cannot remove", path);
	if (rc.err != 0) {
		errno = rc.err;
		return -1;
	}
	return 0;
}
