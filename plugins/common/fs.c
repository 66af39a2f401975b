/*
 * fs.c - the file-system chores of the plugins: mkdir -p, whole-file
 * atomic writes (a temporary file and a rename, optionally durable), and
 * rm -rf that never follows a link out of the tree it removes.
 */
#define _GNU_SOURCE
#include "perchplugin.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pp_mkdirs(const char *path, mode_t mode)
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

int pp_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc, e;

	if (fd < 0)
		return -1;
	rc = fsync(fd);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* Fills why with "<what> <path>: <errno's words>" and returns -1 with errno
 * e. */
static int fail(char *why, size_t why_len, const char *what, const char *path,
		int e)
{
	if (why_len > 0)
		snprintf(why, why_len, "%s %s: %s", what, path, strerror(e));
	errno = e;
	return -1;
}

int pp_write_file(const char *path, const void *data, size_t len,
		  mode_t mode, bool durable, char *why, size_t why_len)
{
	const char *slash = strrchr(path, '/');
	const char *p = data;
	char *dir, *tmp;
	int fd, e, rc = 0;

	if (why_len > 0)
		why[0] = '\0';
	/* ".<name>.XXXXXX" in path's folder: same file system, so the rename
	 * is atomic. */
	dir = slash == NULL ? strdup(".")
			    : slash == path ? strdup("/")
					    : strndup(path, (size_t)(slash - path));
	tmp = pp_format("%s/.%s.XXXXXX", dir ? dir : "",
			slash != NULL ? slash + 1 : path);
	if (dir == NULL || tmp == NULL) {
		free(dir);
		free(tmp);
		return fail(why, why_len, "writing", path, ENOMEM);
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = fail(why, why_len, "creating", tmp, errno);
		goto out;
	}
	if (fchmod(fd, mode) < 0)
		goto fail_fd;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto fail_fd;
		p += w;
		len -= (size_t)w;
	}
	if (durable && fsync(fd) < 0)
		goto fail_fd;
	if (close(fd) < 0) {
		e = errno;
		unlink(tmp);
		rc = fail(why, why_len, "writing", tmp, e);
		goto out;
	}
	if (rename(tmp, path) < 0) {
		e = errno;
		unlink(tmp);
		rc = fail(why, why_len, "renaming to", path, e);
		goto out;
	}
	if (durable && pp_fsync_dir(dir) < 0)
		rc = fail(why, why_len, "syncing", dir, errno);
	goto out;
fail_fd:
	e = errno;
	close(fd);
	unlink(tmp);
	rc = fail(why, why_len, "writing", tmp, e);
out:
	e = errno;
	free(dir);
	free(tmp);
	errno = e;
	return rc;
}

/* ---- recursive removal ---- */

struct rm_ctx {
	dev_t dev; /* the file system of the root: never leave it */
	int err;   /* first errno */
	char *why;
	size_t why_len;
};

static void rm_fail(struct rm_ctx *rc, const char *what, const char *name)
{
	if (rc->err != 0)
		return;
	rc->err = errno ? errno : EIO;
	if (rc->why_len > 0)
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

int pp_remove_tree(const char *path, char *why, size_t why_len)
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
