/*
 * store.c - the dummy's state directory.
 *
 * Layout:
 *   <state>/<task_uuid>/workflow           "perch-dummy-workflow 1"
 *   <state>/<task_uuid>/steps/<step_uuid>  a step record (below)
 *
 * A record is text, one "key value" per line, values escaped (%XX for '%',
 * control bytes and DEL) so that a value never spans lines:
 *   perch-dummy-step 1
 *   name <step name>
 *   type <step type>
 *   mode deadline|destroyed|bad-sleep
 *   deadline_unix_ns <CLOCK_REALTIME end>     (mode deadline)
 *   bad_sleep <raw SLEEP value>               (mode bad-sleep)
 *   exit_code <int32>
 *   oom_killed 0|1
 *   log <the whole output>
 * Readers ignore keys they do not know, so a newer plugin may add some and
 * an older one still adopts its steps.
 *
 * Every file is written whole and atomically (pp_write_file, durable): a
 * temporary "." file, fsync, rename, fsync of the folder.  A crash leaves
 * the old record or the new one, never half of one, and names starting
 * with '.' are not uuids.
 */
#define _GNU_SOURCE
#include "dummy.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WORKFLOW_FILE "workflow"
#define STEPS_DIR "steps"
#define WORKFLOW_MAGIC "perch-dummy-workflow 1\n"
#define STEP_MAGIC "perch-dummy-step 1"
#define MAX_NAME 200
/* A record bigger than this is not one of ours. */
#define MAX_RECORD (256u << 20)

bool perch_dummy_valid_name(const char *name)
{
	size_t n;

	if (name == NULL || name[0] == '\0' || name[0] == '.')
		return false;
	n = strlen(name);
	return n <= MAX_NAME && memchr(name, '/', n) == NULL;
}

/* ---- record text ---- */

static void add_escaped(pp_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%' || c < 0x20 || c == 0x7f) {
			char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
			pp_buf_add(b, s + start, i - start);
			pp_buf_add(b, esc, 3);
			start = i + 1;
		}
	}
	pp_buf_add(b, s + start, n - start);
}

static void add_field(pp_buf *b, const char *key, const char *value, size_t n)
{
	pp_buf_puts(b, key);
	pp_buf_add(b, " ", 1);
	add_escaped(b, value, n);
	pp_buf_add(b, "\n", 1);
}

static void add_int(pp_buf *b, const char *key, long long v)
{
	char num[32];
	snprintf(num, sizeof num, "%lld", v);
	add_field(b, key, num, strlen(num));
}

/* ---- paths and files ---- */

static char *path_of(const char *a, const char *b, const char *c,
		     const char *d)
{
	if (d != NULL)
		return pp_format("%s/%s/%s/%s", a, b, c, d);
	if (c != NULL)
		return pp_format("%s/%s/%s", a, b, c);
	return pp_format("%s/%s", a, b);
}

static perch_status oom(perch_error *err)
{
	return perch_error_set(err, PERCH_ERR_NO_MEMORY, "out of memory");
}

static perch_status io_error(perch_error *err, const char *what,
			     const char *path, int e)
{
	return perch_error_set(err, PERCH_ERR_IO, "%s %s: %s", what, path,
			       strerror(e));
}

/* dir/name := data, atomically and durably. */
static perch_status write_atomic(const char *dir, const char *name,
				 const char *data, size_t len, perch_error *err)
{
	char *path = path_of(dir, name, NULL, NULL);
	char why[PERCH_ERROR_MESSAGE_MAX];
	int rc;

	if (path == NULL)
		return oom(err);
	rc = pp_write_file(path, data, len, 0600, true, why, sizeof why);
	free(path);
	if (rc != 0)
		return perch_error_set(err, errno == ENOMEM ? PERCH_ERR_NO_MEMORY
							    : PERCH_ERR_IO,
				       "%s", why);
	return PERCH_OK;
}

/* Reads a whole regular file (not following a final symlink). */
static char *read_whole(const char *path, size_t *len, int *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat sb;
	char *buf;
	size_t off = 0;

	if (fd < 0) {
		*e = errno;
		return NULL;
	}
	if (fstat(fd, &sb) != 0) {
		*e = errno;
		close(fd);
		return NULL;
	}
	if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > MAX_RECORD) {
		*e = S_ISREG(sb.st_mode) ? EFBIG : EINVAL;
		close(fd);
		return NULL;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (buf == NULL) {
		*e = ENOMEM;
		close(fd);
		return NULL;
	}
	while (off < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)sb.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* shrank under us: parse what is there */
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	*len = off;
	return buf;
}

/* ---- the state directory ---- */

char *perch_dummy_store_open(const char *dir, perch_error *err)
{
	char *abs;
	struct stat sb;
	int e = 0;

	/* A file in its place is said below, as "using". */
	if (pp_mkdirs(dir, 0700) != 0 &&
	    !(errno == ENOTDIR && stat(dir, &sb) == 0)) {
		io_error(err, "creating state dir", dir, errno);
		return NULL;
	}
	/* Absolute, so that a later chdir() of the host changes nothing. */
	abs = realpath(dir, NULL);
	if (abs == NULL) {
		io_error(err, "resolving state dir", dir, errno);
		return NULL;
	}
	if (stat(abs, &sb) != 0)
		e = errno;
	else if (!S_ISDIR(sb.st_mode))
		e = ENOTDIR;
	else if (access(abs, R_OK | W_OK | X_OK) != 0)
		e = errno;
	if (e != 0) {
		io_error(err, "using state dir", abs, e);
		free(abs);
		return NULL;
	}
	return abs;
}

perch_status perch_dummy_store_begin_workflow(perch_instance *inst,
					      const char *task_uuid,
					      perch_error *err)
{
	char *wdir = path_of(inst->state_dir, task_uuid, NULL, NULL);
	char *sdir = path_of(inst->state_dir, task_uuid, STEPS_DIR, NULL);
	perch_status st = PERCH_OK;

	if (wdir == NULL || sdir == NULL) {
		st = oom(err);
		goto out;
	}
	if (mkdir(wdir, 0700) != 0) {
		if (errno == EEXIST)
			st = perch_error_set(err, PERCH_ERR_INVALID_INPUT,
					     "workflow %s already exists in %s "
					     "(destroy it first)",
					     task_uuid, inst->state_dir);
		else
			st = io_error(err, "creating", wdir, errno);
		goto out;
	}
	if (mkdir(sdir, 0700) != 0) {
		st = io_error(err, "creating", sdir, errno);
		(void)pp_remove_tree(wdir, NULL, 0);
	}
out:
	free(wdir);
	free(sdir);
	return st;
}

perch_status perch_dummy_store_commit_workflow(perch_instance *inst,
					       const char *task_uuid,
					       perch_error *err)
{
	char *wdir = path_of(inst->state_dir, task_uuid, NULL, NULL);
	perch_status st;

	if (wdir == NULL)
		return oom(err);
	/* The workflow file last: its presence means "complete". */
	st = write_atomic(wdir, WORKFLOW_FILE, WORKFLOW_MAGIC,
			  strlen(WORKFLOW_MAGIC), err);
	if (st == PERCH_OK && pp_fsync_dir(inst->state_dir) != 0)
		st = io_error(err, "syncing", inst->state_dir, errno);
	if (st != PERCH_OK)
		(void)pp_remove_tree(wdir, NULL, 0);
	free(wdir);
	return st;
}

perch_status perch_dummy_store_remove_workflow(perch_instance *inst,
					       const char *task_uuid,
					       perch_error *err)
{
	char *wdir = path_of(inst->state_dir, task_uuid, NULL, NULL);
	perch_status st = PERCH_OK;

	if (wdir == NULL)
		return oom(err);
	if (pp_remove_tree(wdir, NULL, 0) != 0)
		st = io_error(err, "removing", wdir, errno);
	else if (pp_fsync_dir(inst->state_dir) != 0)
		st = io_error(err, "syncing", inst->state_dir, errno);
	free(wdir);
	return st;
}

bool perch_dummy_store_has_workflow(perch_instance *inst,
				    const char *task_uuid)
{
	char *p = path_of(inst->state_dir, task_uuid, WORKFLOW_FILE, NULL);
	bool ok = p != NULL && access(p, F_OK) == 0;

	free(p);
	return ok;
}

perch_status perch_dummy_store_put_step(perch_instance *inst,
					const char *task_uuid,
					const char *step_uuid,
					const perch_dummy_record *rec,
					perch_error *err)
{
	char *sdir = path_of(inst->state_dir, task_uuid, STEPS_DIR, NULL);
	pp_buf b = {0};
	const char *mode;
	perch_status st;

	switch (rec->mode) {
	case PERCH_DUMMY_UNTIL_DESTROYED: mode = "destroyed"; break;
	case PERCH_DUMMY_BAD_SLEEP: mode = "bad-sleep"; break;
	default: mode = "deadline"; break;
	}
	pp_buf_puts(&b, STEP_MAGIC "\n");
	add_field(&b, "name", rec->name, strlen(rec->name));
	add_field(&b, "type", rec->type, strlen(rec->type));
	add_field(&b, "mode", mode, strlen(mode));
	if (rec->mode == PERCH_DUMMY_UNTIL_DEADLINE)
		add_int(&b, "deadline_unix_ns", rec->deadline_real_ns);
	if (rec->mode == PERCH_DUMMY_BAD_SLEEP)
		add_field(&b, "bad_sleep", rec->bad_sleep,
			   strlen(rec->bad_sleep));
	add_int(&b, "exit_code", rec->exit_code);
	add_int(&b, "oom_killed", rec->oom_killed ? 1 : 0);
	add_field(&b, "log", rec->log, rec->log_len);
	if (sdir == NULL || b.oom)
		st = oom(err);
	else
		st = write_atomic(sdir, step_uuid, b.data, b.len, err);
	pp_buf_free(&b);
	free(sdir);
	return st;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Unescapes s[0..n) into a malloc'd string; *out_len gets its length. */
static char *unescape(const char *s, size_t n, size_t *out_len)
{
	char *out = malloc(n + 1), *p = out;
	size_t i;

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			*p++ = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		} else {
			*p++ = s[i];
		}
	}
	*p = '\0';
	if (out_len != NULL)
		*out_len = (size_t)(p - out);
	return out;
}

static bool parse_ll(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	if (*s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Parses a record; returns false (rec freed) when it is not one. */
static bool parse_record(char *text, size_t len, perch_dummy_record *rec,
			 const char **why)
{
	char *line = text, *end = text + len;
	bool have_mode = false, have_deadline = false, have_code = false,
	     have_oom = false;
	long long v;

	memset(rec, 0, sizeof *rec);
	*why = "not a dummy step record";
	if (strncmp(text, STEP_MAGIC "\n", sizeof STEP_MAGIC) != 0)
		return false;
	line += sizeof STEP_MAGIC;
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		char *sp, *val;
		size_t vlen;
		if (nl == NULL) {
			*why = "truncated";
			goto bad;
		}
		*nl = '\0';
		sp = strchr(line, ' ');
		if (sp == NULL) {
			*why = "a line without a value";
			goto bad;
		}
		*sp = '\0';
		val = unescape(sp + 1, (size_t)(nl - sp - 1), &vlen);
		if (val == NULL) {
			*why = "out of memory";
			goto bad;
		}
#define TAKE(field)                                                           \
	do {                                                                   \
		free(rec->field);                                              \
		rec->field = val;                                              \
		val = NULL;                                                    \
	} while (0)
		if (strcmp(line, "name") == 0) {
			TAKE(name);
		} else if (strcmp(line, "type") == 0) {
			TAKE(type);
		} else if (strcmp(line, "bad_sleep") == 0) {
			TAKE(bad_sleep);
		} else if (strcmp(line, "log") == 0) {
			TAKE(log);
			rec->log_len = vlen;
		} else if (strcmp(line, "mode") == 0) {
			have_mode = true;
			if (strcmp(val, "deadline") == 0)
				rec->mode = PERCH_DUMMY_UNTIL_DEADLINE;
			else if (strcmp(val, "destroyed") == 0)
				rec->mode = PERCH_DUMMY_UNTIL_DESTROYED;
			else if (strcmp(val, "bad-sleep") == 0)
				rec->mode = PERCH_DUMMY_BAD_SLEEP;
			else
				have_mode = false;
		} else if (strcmp(line, "deadline_unix_ns") == 0) {
			have_deadline = parse_ll(val, INT64_MIN, INT64_MAX, &v);
			rec->deadline_real_ns = (int64_t)v;
		} else if (strcmp(line, "exit_code") == 0) {
			have_code = parse_ll(val, INT32_MIN, INT32_MAX, &v);
			rec->exit_code = (int32_t)v;
		} else if (strcmp(line, "oom_killed") == 0) {
			have_oom = parse_ll(val, 0, 1, &v);
			rec->oom_killed = v == 1;
		}
#undef TAKE
		free(val); /* unknown keys: a newer writer's */
		line = nl + 1;
	}
	*why = "a field is missing or malformed";
	if (rec->name == NULL || rec->type == NULL || rec->log == NULL ||
	    !have_mode || !have_code || !have_oom)
		goto bad;
	if (rec->mode == PERCH_DUMMY_UNTIL_DEADLINE && !have_deadline)
		goto bad;
	if (rec->mode == PERCH_DUMMY_BAD_SLEEP && rec->bad_sleep == NULL)
		goto bad;
	return true;
bad:
	perch_dummy_record_free(rec);
	return false;
}

perch_status perch_dummy_store_get_step(perch_instance *inst,
					const char *task_uuid,
					const char *step_uuid,
					perch_dummy_record *rec,
					perch_error *err)
{
	char *path = path_of(inst->state_dir, task_uuid, STEPS_DIR, step_uuid);
	char *text;
	size_t len = 0;
	int e = 0;
	const char *why;
	perch_status st = PERCH_OK;

	memset(rec, 0, sizeof *rec);
	if (path == NULL)
		return oom(err);
	text = read_whole(path, &len, &e);
	if (text == NULL) {
		if (e == ENOENT)
			st = perch_error_set(err, PERCH_ERR_NOT_FOUND,
					     "step %s of workflow %s not found "
					     "in %s",
					     step_uuid, task_uuid,
					     inst->state_dir);
		else
			st = io_error(err, "reading", path, e);
	} else if (!parse_record(text, len, rec, &why)) {
		st = perch_error_set(err, PERCH_ERR_IO, "%s: corrupt record: %s",
				     path, why);
	}
	free(text);
	free(path);
	return st;
}

perch_status perch_dummy_store_remove_step(perch_instance *inst,
					   const char *task_uuid,
					   const char *step_uuid,
					   perch_error *err)
{
	char *sdir = path_of(inst->state_dir, task_uuid, STEPS_DIR, NULL);
	char *path = path_of(inst->state_dir, task_uuid, STEPS_DIR, step_uuid);
	perch_status st = PERCH_OK;

	if (sdir == NULL || path == NULL) {
		st = oom(err);
	} else if (unlink(path) == 0) {
		if (pp_fsync_dir(sdir) != 0)
			st = io_error(err, "syncing", sdir, errno);
	} else if (errno != ENOENT && errno != ENOTDIR) {
		st = io_error(err, "removing", path, errno);
	}
	free(sdir);
	free(path);
	return st;
}

/* Visits the step records of one workflow. */
static bool list_steps(perch_instance *inst, const char *task_uuid,
		       perch_dummy_store_visit_fn fn, void *user)
{
	char *sdir = path_of(inst->state_dir, task_uuid, STEPS_DIR, NULL);
	DIR *d = sdir != NULL ? opendir(sdir) : NULL;
	struct dirent *de;
	bool go_on = true;

	while (d != NULL && go_on && (de = readdir(d)) != NULL) {
		perch_dummy_record rec;
		perch_error err = {.struct_size = sizeof err};
		if (!perch_dummy_valid_name(de->d_name))
			continue; /* ".", "..", our temporaries */
		if (perch_dummy_store_get_step(inst, task_uuid, de->d_name, &rec,
					       &err) != PERCH_OK) {
			perch_logf(inst->host, PERCH_LOG_WARN,
				   "dummy: skipping a step: %s", err.message);
			continue;
		}
		go_on = fn(user, task_uuid, de->d_name, rec.name);
		perch_dummy_record_free(&rec);
	}
	if (d != NULL)
		closedir(d);
	free(sdir);
	return go_on;
}

perch_status perch_dummy_store_list(perch_instance *inst,
				    perch_dummy_store_visit_fn fn, void *user,
				    perch_error *err)
{
	DIR *d = opendir(inst->state_dir);
	struct dirent *de;
	bool go_on = true;

	if (d == NULL)
		return io_error(err, "reading", inst->state_dir, errno);
	while (go_on && (de = readdir(d)) != NULL) {
		if (!perch_dummy_valid_name(de->d_name) ||
		    !perch_dummy_store_has_workflow(inst, de->d_name))
			continue; /* not ours, or a setup that never finished */
		go_on = fn(user, de->d_name, NULL, NULL) &&
			list_steps(inst, de->d_name, fn, user);
	}
	closedir(d);
	return PERCH_OK;
}
