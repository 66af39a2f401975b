/* state.c - see state.h. */
#include "config.h"

#include "state.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct perch_store {
	char *dir;
	char *workflows;
	char *plugins;
	int lock_fd;
};

static char *errno_text(const char *what, const char *path)
{
	return perch_xasprintf("%s %s: %s", what, path, strerror(errno));
}

/* mkdir -p with mode for every folder made. */
static int make_dirs(const char *path, int mode, char **err)
{
	char *copy = perch_xstrdup(path);
	for (char *p = copy + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(copy, (mode_t)mode) != 0 && errno != EEXIST) {
			*err = errno_text("cannot create", copy);
			free(copy);
			return -1;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(copy);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
		*err = perch_xasprintf("%s is not a directory", path);
		return -1;
	}
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

/* rm -rf, without following symbolic links. */
static void remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode)) {
		DIR *d = opendir(path);
		if (d) {
			struct dirent *de;
			while ((de = readdir(d)) != NULL) {
				if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
					continue;
				char *sub = perch_xasprintf("%s/%s", path, de->d_name);
				remove_tree(sub);
				free(sub);
			}
			closedir(d);
		}
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* Removes what interrupted writes left: .tmp-* and .trash-* folders, *.tmp
 * files. */
static void sweep(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, ".tmp-", 5) == 0 || strncmp(de->d_name, ".trash-", 7) == 0) {
			char *p = perch_xasprintf("%s/%s", dir, de->d_name);
			remove_tree(p);
			free(p);
		}
	}
	closedir(d);
}

perch_store *perch_store_open(const char *dir, char **err)
{
	if (make_dirs(dir, 0700, err) != 0)
		return NULL;
	perch_store *s = perch_xcalloc(1, sizeof *s);
	s->dir = perch_xstrdup(dir);
	s->workflows = perch_xasprintf("%s/workflows", dir);
	s->plugins = perch_xasprintf("%s/plugins", dir);
	s->lock_fd = -1;
	char *lock = perch_xasprintf("%s/lock", dir);
	s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (s->lock_fd < 0) {
		*err = errno_text("cannot open", lock);
		free(lock);
		perch_store_close(s);
		return NULL;
	}
	if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		char pid[32] = "";
		ssize_t n = pread(s->lock_fd, pid, sizeof pid - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		*err = errno == EWOULDBLOCK
			       ? perch_xasprintf("state directory %s is in use by another perch "
						 "daemon (pid %s)", dir, *pid ? pid : "unknown")
			       : errno_text("cannot lock", lock);
		free(lock);
		perch_store_close(s);
		return NULL;
	}
	free(lock);
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(s->lock_fd, 0) != 0 || pwrite(s->lock_fd, pid, (size_t)n, 0) != n) {
		/* the pid is only a courtesy for the next one's message */
	}
	if (make_dirs(s->workflows, 0700, err) != 0 || make_dirs(s->plugins, 0700, err) != 0) {
		perch_store_close(s);
		return NULL;
	}
	sweep(s->workflows);
	return s;
}

void perch_store_close(perch_store *s)
{
	if (s == NULL)
		return;
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	free(s->dir);
	free(s->workflows);
	free(s->plugins);
	free(s);
}

const char *perch_store_dir(const perch_store *s) { return s->dir; }
const char *perch_store_plugin_dir(const perch_store *s) { return s->plugins; }

int perch_store_write_atomic(const char *dir, const char *name, const void *data, size_t len,
			     int mode, char **err)
{
	char *path = perch_xasprintf("%s/%s", dir, name);
	char *tmp = perch_xasprintf("%s.tmp", path);
	int rc = -1;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0) {
		*err = errno_text("cannot create", tmp);
		goto out;
	}
	if (perch_write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		*err = errno_text("cannot write", tmp);
		close(fd);
		unlink(tmp);
		goto out;
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		*err = errno_text("cannot replace", path);
		unlink(tmp);
		goto out;
	}
	/* The rename is durable once the folder is. */
	char *slash = strrchr(path, '/');
	*slash = '\0';
	if (fsync_dir(path) != 0) {
		*err = errno_text("cannot sync", path);
		goto out;
	}
	rc = 0;
out:
	free(tmp);
	free(path);
	return rc;
}

/* Ids are ours (ULIDs), but records come from disk: refuse anything that
 * is not a plain name. */
static bool valid_id(const char *id)
{
	if (id == NULL || *id == '\0' || *id == '.' || strlen(id) > 100)
		return false;
	for (const char *p = id; *p; p++)
		if (*p == '/')
			return false;
	return true;
}

int perch_store_create(perch_store *s, const char *id, const char *workflow, size_t workflow_len,
		       const char *meta, char **err)
{
	if (!valid_id(id)) {
		*err = perch_xasprintf("invalid workflow id \"%s\"", id ? id : "");
		return -1;
	}
	char *tmp = perch_xasprintf("%s/.tmp-%s", s->workflows, id);
	char *final = perch_xasprintf("%s/%s", s->workflows, id);
	char *steps = perch_xasprintf("%s/steps", tmp);
	int rc = -1;
	struct stat st;
	if (lstat(final, &st) == 0) {
		*err = perch_xasprintf("workflow %s exists already", id);
		goto out;
	}
	remove_tree(tmp);
	if (mkdir(tmp, 0700) != 0 || mkdir(steps, 0700) != 0) {
		*err = errno_text("cannot create", tmp);
		goto fail;
	}
	if (perch_store_write_atomic(tmp, "workflow.json", workflow, workflow_len, 0600, err) != 0 ||
	    perch_store_write_atomic(tmp, "meta.json", meta, strlen(meta), 0600, err) != 0)
		goto fail;
	if (fsync_dir(steps) != 0 || rename(tmp, final) != 0) {
		*err = errno_text("cannot create", final);
		goto fail;
	}
	if (fsync_dir(s->workflows) != 0) {
		*err = errno_text("cannot sync", s->workflows);
		goto out;
	}
	rc = 0;
	goto out;
fail:
	remove_tree(tmp);
out:
	free(steps);
	free(tmp);
	free(final);
	return rc;
}

int perch_store_put(perch_store *s, const char *id, const char *rel, const char *text, char **err)
{
	char *path = perch_xasprintf("%s/%s/%s", s->workflows, id, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	int rc = perch_store_write_atomic(path, slash + 1, text, strlen(text), 0600, err);
	free(path);
	return rc;
}

char *perch_store_get(perch_store *s, const char *id, const char *rel, size_t *len, char **err)
{
	char *path = perch_xasprintf("%s/%s/%s", s->workflows, id, rel);
	char *e = NULL;
	size_t n = 0;
	char *data = perch_read_file(path, &n, &e);
	free(path);
	if (data == NULL) {
		if (err)
			*err = e;
		else
			free(e);
		return NULL;
	}
	if (len)
		*len = n;
	return data;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **perch_store_list(perch_store *s, size_t *n)
{
	*n = 0;
	char **ids = NULL;
	DIR *d = opendir(s->workflows);
	if (d == NULL)
		return NULL;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!valid_id(de->d_name))
			continue;
		ids = perch_xrealloc(ids, (*n + 1) * sizeof *ids);
		ids[(*n)++] = perch_xstrdup(de->d_name);
	}
	closedir(d);
	if (*n > 1)
		qsort(ids, *n, sizeof *ids, cmp_str);
	return ids;
}

void perch_store_free_list(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int perch_store_remove(perch_store *s, const char *id, char **err)
{
	if (!valid_id(id))
		return 0;
	char *path = perch_xasprintf("%s/%s", s->workflows, id);
	char *trash = perch_xasprintf("%s/.trash-%s", s->workflows, id);
	int rc = 0;
	if (rename(path, trash) != 0) {
		if (errno != ENOENT) {
			*err = errno_text("cannot remove", path);
			rc = -1;
		}
	} else {
		remove_tree(trash);
		fsync_dir(s->workflows);
	}
	free(path);
	free(trash);
	return rc;
}

char *perch_store_log_path(const perch_store *s, const char *id, size_t index)
{
	return perch_xasprintf("%s/%s/steps/%zu.log", s->workflows, id, index);
}

/* Counts the complete lines of fd and returns where the last one ends. */
static off_t count_lines(int fd, uint64_t *lines)
{
	char buf[65536];
	off_t off = 0, end = 0;
	*lines = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof buf, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n') {
				(*lines)++;
				end = off + i + 1;
			}
		off += n;
	}
	return end;
}

int perch_store_open_log(perch_store *s, const char *id, size_t index, uint64_t *lines,
			 char **err)
{
	char *path = perch_store_log_path(s, id, index);
	int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = errno_text("cannot open", path);
		free(path);
		return -1;
	}
	off_t end = count_lines(fd, lines);
	struct stat st;
	if (fstat(fd, &st) == 0 && st.st_size > end && ftruncate(fd, end) != 0) {
		*err = errno_text("cannot cut the partial last line of", path);
		close(fd);
		free(path);
		return -1;
	}
	free(path);
	return fd;
}

uint64_t perch_store_log_lines(perch_store *s, const char *id, size_t index)
{
	char *path = perch_store_log_path(s, id, index);
	uint64_t lines = 0;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		off_t end = count_lines(fd, &lines);
		struct stat st;
		if (fstat(fd, &st) == 0 && st.st_size > end && ftruncate(fd, end) != 0) {
			/* the partial line stays; it is never counted */
		}
		close(fd);
	}
	free(path);
	return lines;
}

bool perch_store_parse_line(const char *buf, size_t n, perch_store_line *out)
{
	size_t i = 0;
	int64_t v = 0;
	bool neg = false;
	if (i < n && buf[i] == '-') {
		neg = true;
		i++;
	}
	size_t digits = i;
	while (i < n && buf[i] >= '0' && buf[i] <= '9' && i - digits < 18)
		v = v * 10 + (buf[i++] - '0');
	if (i == digits || i >= n || buf[i] != ' ')
		return false;
	out->elapsed_ms = neg ? -v : v;
	out->data = buf + i + 1;
	out->len = n - i - 1;
	return true;
}
