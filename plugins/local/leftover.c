/*
 * leftover.c - workflow folders that an earlier process left behind.
 *
 * A workflow's folder, <temp>/perch-local-XXXXXX, has a random name, so a
 * new instance (the host was killed and started again) could not find the
 * folder of a workflow it is asked to destroy.  setup_workflow therefore
 * writes an owner record into it, <base>/.perch-owner:
 *
 *     perch-local-owner 1
 *     <pid> <that process's start time, clock ticks after boot; -1: unknown>
 *     <the task uuid, up to the end of the file>
 *
 * and destroy_workflow of a workflow this instance does not know removes
 * every such folder whose record names the task, unless the process that
 * made it still runs (same pid, same start time, so that a reused pid does
 * not count): a live process's folder is its own business - another perch
 * that was given the same task uuid, or another instance of the plugin in
 * this very process.  Only folders of this user are looked at, and only
 * their owner record is read (never through a symbolic link).
 *
 * A step could write the record itself (local steps are not isolated from
 * anything); the worst it can do is have its own workflow's folder removed
 * early.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "local.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OWNER_FILE ".perch-owner"
#define OWNER_MAGIC "perch-local-owner 1\n"
#define FOLDER_PREFIX "perch-local-"
/* An owner record is never bigger (a task uuid of a few KiB at most). */
#define OWNER_MAX 16384

/* Field 22 of /proc/<pid>/stat (the start time), or -1 when the process
 * is gone, a zombie, or /proc cannot tell. */
static long long start_time(pid_t pid)
{
	char path[64], buf[1024];
	long long start = -1;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The command may hold spaces and parentheses: skip to the last ')'. */
	char *p = strrchr(buf, ')');
	if (p == NULL || p[1] != ' ' || p[2] == 'Z')
		return -1;
	p += 2;
	for (int field = 3; field < 22 && p != NULL; field++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p != NULL)
		start = strtoll(p, NULL, 10);
	return start;
}

int perch_local_owner_write(const char *base_dir, const char *task_uuid)
{
	char *path = pp_path_join(base_dir, OWNER_FILE);
	char why[256];
	pp_buf b = {0};
	int rc = -1, e = ENOMEM;

	pp_buf_printf(&b, "%s%ld %lld\n%s", OWNER_MAGIC, (long)getpid(),
		      start_time(getpid()), task_uuid);
	if (path != NULL && !b.oom) {
		rc = pp_write_file(path, b.data, b.len, 0600, false, why,
				   sizeof why);
		e = errno;
	}
	pp_buf_free(&b);
	free(path);
	errno = e;
	return rc;
}

/* Reads dir/.perch-owner and tells whether it names task_uuid and its
 * maker is gone. */
static bool is_leftover_of(int dir_fd, const char *task_uuid)
{
	char *buf = malloc(OWNER_MAX + 1);
	size_t len = 0;
	bool match = false;
	int fd;

	if (buf == NULL)
		return false;
	fd = openat(dir_fd, OWNER_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		for (;;) {
			ssize_t n = read(fd, buf + len, OWNER_MAX - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == OWNER_MAX)
				break;
		}
		close(fd);
	}
	buf[len] = '\0';
	if (fd >= 0 && len < OWNER_MAX &&
	    strncmp(buf, OWNER_MAGIC, strlen(OWNER_MAGIC)) == 0) {
		long pid = 0;
		long long start = -1;
		char *line = buf + strlen(OWNER_MAGIC);
		char *nl = strchr(line, '\n');
		size_t off = nl != NULL ? (size_t)(nl + 1 - buf) : len;
		size_t tl = strlen(task_uuid);
		if (nl != NULL && len - off == tl &&
		    memcmp(buf + off, task_uuid, tl) == 0 &&
		    sscanf(line, "%ld %lld", &pid, &start) == 2) {
			bool alive;
			if (start >= 0)
				alive = start_time((pid_t)pid) == start;
			else /* /proc could not tell when it was made */
				alive = pid > 0 && (kill((pid_t)pid, 0) == 0 ||
						    errno == EPERM);
			match = !alive;
		}
	}
	free(buf);
	return match;
}

perch_status perch_local_remove_leftovers(perch_instance *inst,
					  const char *task_uuid,
					  perch_error *err)
{
	perch_status rc = PERCH_OK;
	struct dirent *de;
	DIR *d;

	if (task_uuid == NULL || *task_uuid == '\0')
		return PERCH_OK;
	d = opendir(inst->temp_dir);
	if (d == NULL)
		return PERCH_OK; /* nothing can be there */
	while ((de = readdir(d)) != NULL) {
		struct stat sb;
		char why[512];
		char *path;
		bool gone;
		int fd;

		if (strncmp(de->d_name, FOLDER_PREFIX, strlen(FOLDER_PREFIX)) != 0)
			continue;
		fd = openat(dirfd(d), de->d_name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue; /* not a folder, or not ours to read */
		gone = fstat(fd, &sb) == 0 && sb.st_uid == geteuid() &&
		       is_leftover_of(fd, task_uuid);
		close(fd);
		if (!gone)
			continue;
		path = pp_path_join(inst->temp_dir, de->d_name);
		if (path == NULL) {
			rc = perch_error_set(err, PERCH_ERR_NO_MEMORY,
					     "out of memory");
			break;
		}
		if (pp_remove_tree(path, why, sizeof why) < 0) {
			if (rc == PERCH_OK)
				rc = perch_error_set(err, PERCH_ERR_IO,
						     "cannot remove the folder "
						     "%s that workflow %s left: %s",
						     path, task_uuid, why);
		} else {
			perch_logf(inst->host, PERCH_LOG_INFO,
				   "local: removed %s, left by workflow %s",
				   path, task_uuid);
		}
		free(path);
	}
	closedir(d);
	return rc;
}
