/* logsink_dir.c - the logs-directory sink: one file per step.  See
 * logsink.h. */
#include "config.h"

#include "logsink.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* Bigger than the terminal sinks' batches: this sink is the benchmark's hot
 * path and nobody watches it live. */
#define DIR_BATCH_BYTES (256 * 1024)
/* Leaves room for "-<uuid>-<n>.log" within NAME_MAX (255). */
#define STEM_MAX 200

typedef struct dir_sink {
	perch_logsink base;
	char *path;
	int dirfd;
	pthread_mutex_t lock; /* guards names */
	char **names;         /* file names handed out, in order */
	size_t n_names, cap_names;
} dir_sink;

typedef struct dir_step {
	dir_sink *sink;
	int fd;
	char *file; /* name inside the directory */
	perch_buf out;
	int err;
} dir_step;

char *perch_logsink_file_stem(const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return perch_xstrdup("step");
	if (n > STEM_MAX) {
		n = STEM_MAX;
		/* Do not cut a UTF-8 sequence in two. */
		while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
			n--;
	}
	char *s = perch_xstrndup(name, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			s[i] = '_';
	}
	return s;
}

static bool name_taken(const dir_sink *sink, const char *file)
{
	for (size_t i = 0; i < sink->n_names; i++)
		if (strcmp(sink->names[i], file) == 0)
			return true;
	return false;
}

/* A file name no earlier step of this sink got; the caller holds the lock. */
static char *pick_name(dir_sink *sink, const char *name, const char *uuid)
{
	char *stem = perch_logsink_file_stem(name);
	char *file = perch_xasprintf("%s.log", stem);
	if (name_taken(sink, file) && uuid[0] != '\0') {
		char *u = perch_logsink_file_stem(uuid);
		free(file);
		file = perch_xasprintf("%s-%.40s.log", stem, u);
		char *with_uuid = perch_xasprintf("%s-%.40s", stem, u);
		free(stem);
		stem = with_uuid;
		free(u);
	}
	for (unsigned k = 2; name_taken(sink, file); k++) {
		free(file);
		file = perch_xasprintf("%s-%u.log", stem, k);
	}
	free(stem);
	if (sink->n_names == sink->cap_names) {
		sink->cap_names = sink->cap_names ? 2 * sink->cap_names : 16;
		sink->names = perch_xrealloc(sink->names, sink->cap_names * sizeof *sink->names);
	}
	sink->names[sink->n_names++] = perch_xstrdup(file);
	return file;
}

static void *dir_attach(perch_logsink *base, const char *name, const char *uuid, char **err)
{
	dir_sink *sink = (dir_sink *)base;
	pthread_mutex_lock(&sink->lock);
	char *file = pick_name(sink, name, uuid);
	pthread_mutex_unlock(&sink->lock);
	int fd = openat(sink->dirfd, file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
	if (fd < 0) {
		*err = perch_xasprintf("logs dir %s/%s: %s", sink->path, file, strerror(errno));
		free(file);
		return NULL;
	}
	dir_step *st = perch_xcalloc(1, sizeof *st);
	st->sink = sink;
	st->fd = fd;
	st->file = file;
	perch_buf_reserve(&st->out, DIR_BATCH_BYTES + 4096);
	return st;
}

static int dir_flush(void *step, char **err)
{
	dir_step *st = step;
	if (st->err == 0 && st->out.len > 0 && perch_write_all(st->fd, st->out.data, st->out.len) < 0)
		st->err = errno ? errno : EIO;
	st->out.len = 0;
	if (st->err) {
		*err = perch_xasprintf("logs dir %s/%s: %s", st->sink->path, st->file,
				       strerror(st->err));
		return -1;
	}
	return 0;
}

static void dir_write(void *step, const perch_log_line *l)
{
	dir_step *st = step;
	if (st->err)
		return;
	perch_buf_reserve(&st->out, l->len + 1);
	char *p = st->out.data + st->out.len;
	if (l->len)
		memcpy(p, l->data, l->len);
	p[l->len] = '\n';
	st->out.len += l->len + 1;
	if (st->out.len >= DIR_BATCH_BYTES) {
		char *e = NULL;
		if (dir_flush(st, &e) < 0)
			free(e); /* remembered in st->err */
	}
}

static int dir_detach(void *step, char **err)
{
	dir_step *st = step;
	int rc = dir_flush(st, err);
	if (close(st->fd) < 0 && rc == 0 && errno != EINTR) {
		/* NFS and friends report write errors on close. */
		*err = perch_xasprintf("logs dir %s/%s: %s", st->sink->path, st->file,
				       strerror(errno));
		rc = -1;
	}
	perch_buf_free(&st->out);
	free(st->file);
	free(st);
	return rc;
}

static void dir_destroy(perch_logsink *base)
{
	dir_sink *sink = (dir_sink *)base;
	for (size_t i = 0; i < sink->n_names; i++)
		free(sink->names[i]);
	free(sink->names);
	close(sink->dirfd);
	pthread_mutex_destroy(&sink->lock);
	free(sink->path);
	free(sink);
}

static const perch_logsink_ops dir_ops = {
	.attach = dir_attach,
	.write = dir_write,
	.flush = dir_flush,
	.detach = dir_detach,
	.destroy = dir_destroy,
};

/* mkdir -p.  0, or -1 and *err set. */
static int make_dirs(const char *dir, char **err)
{
	char *p = perch_xstrdup(dir);
	size_t n = strlen(p);
	/* Each prefix that ends before a '/', then the whole path. */
	for (size_t i = 1; i <= n; i++) {
		if (i < n && p[i] != '/')
			continue;
		if (i < n && p[i - 1] == '/')
			continue; /* "a//b" */
		char save = p[i];
		p[i] = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			*err = i == n ? perch_xasprintf("logs dir %s: %s", dir, strerror(errno))
				      : perch_xasprintf("logs dir %s: cannot create %s: %s", dir, p,
							strerror(errno));
			free(p);
			return -1;
		}
		p[i] = save;
	}
	free(p);
	return 0;
}

perch_logsink *perch_logsink_dir_new(const char *dir, char **err)
{
	struct stat sb;
	if (dir[0] == '\0') {
		*err = perch_xstrdup("logs dir: empty path");
		return NULL;
	}
	if (stat(dir, &sb) < 0) {
		if (errno != ENOENT) {
			*err = perch_xasprintf("logs dir %s: %s", dir, strerror(errno));
			return NULL;
		}
		if (make_dirs(dir, err) < 0)
			return NULL;
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		*err = errno == ENOTDIR ? perch_xasprintf("logs dir %s: not a directory", dir)
					: perch_xasprintf("logs dir %s: %s", dir, strerror(errno));
		return NULL;
	}
	/* Fail now, with one message, rather than once per step later. */
	if (faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		*err = perch_xasprintf("logs dir %s: %s", dir, strerror(errno));
		close(fd);
		return NULL;
	}
	dir_sink *sink = perch_xcalloc(1, sizeof *sink);
	sink->base.ops = &dir_ops;
	sink->path = perch_xstrdup(dir);
	sink->dirfd = fd;
	pthread_mutex_init(&sink->lock, NULL);
	return &sink->base;
}
