/*
 * daemon_wf.c - the daemon's workflows: records in the state directory,
 * the queue, runs (one runner thread each), progress hooks and the log
 * sink that persists every line.
 *
 * A workflow is acknowledged once its folder exists (perch_store_create
 * fsyncs it): everything a client was told survives a crash.  From then on
 * each transition rewrites meta.json, each step start and end its
 * steps/<i>.json, and every log batch is appended to steps/<i>.log; the
 * result goes to result.json before anyone is told the workflow ended.
 */
#include "config.h"

#include "ctx.h"
#include "daemon.h"
#include "logpipe.h"
#include "mask.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A step's log batch is written once it is this big (or on flush). */
#define LOG_BATCH (64 * 1024)

/* ---- small helpers --------------------------------------------------------- */

void perch_json_strn(perch_buf *b, const char *s, size_t n)
{
	perch_buf_reserve(b, 6 * n + 3);
	b->data[b->len++] = '"';
	b->len += perch_json_escape(b->data + b->len, s, n);
	b->data[b->len++] = '"';
	b->data[b->len] = '\0';
}

void perch_json_str(perch_buf *b, const char *s)
{
	if (s == NULL)
		perch_buf_puts(b, "null");
	else
		perch_json_strn(b, s, strlen(s));
}

static const char *state_name(dwf_state s)
{
	switch (s) {
	case DWF_QUEUED: return "queued";
	case DWF_RUNNING: return "running";
	case DWF_FINISHED: return "finished";
	}
	return "finished";
}

int perch_daemon_exit_code(const char *status)
{
	if (status == NULL)
		return PERCH_EXIT_BACKEND;
	if (strcmp(status, "success") == 0)
		return PERCH_EXIT_OK;
	if (strcmp(status, "failure") == 0)
		return PERCH_EXIT_STEP_FAILED;
	if (strcmp(status, "killed") == 0)
		return PERCH_EXIT_CANCELLED;
	return PERCH_EXIT_BACKEND; /* error, lost */
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static bool jbool(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static json_object *parse_json(const char *text, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = json_tokener_parse_ex(tok, text, (int)len);
	if (o && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* ---- records ----------------------------------------------------------------- */

/* meta.json of w.  Under d->lock. */
static char *meta_json(const dwf *w)
{
	perch_buf b = {0};
	perch_buf_puts(&b, "{\"id\":");
	perch_json_str(&b, w->id);
	perch_buf_printf(&b, ",\"seq\":%llu,\"state\":\"%s\",\"status\":", (unsigned long long)w->seq,
			 state_name(w->state));
	perch_json_str(&b, w->status);
	perch_buf_puts(&b, ",\"error\":");
	perch_json_str(&b, w->error);
	perch_buf_puts(&b, ",\"backend\":");
	perch_json_str(&b, w->backend_req);
	perch_buf_puts(&b, ",\"plugin\":");
	perch_json_str(&b, w->plugin);
	perch_buf_puts(&b, ",\"plugin_version\":");
	perch_json_str(&b, w->plugin_version);
	perch_buf_printf(&b, ",\"version_number\":%u,\"submitted_ns\":%lld,\"started_ns\":%lld,"
			     "\"finished_ns\":%lld,\"deadline_ns\":%lld,\"setup_done\":%s,"
			     "\"cancelled\":%s,\"adopted\":%s,\"handovers\":%u}\n",
			 w->version_number, (long long)w->submitted_ns, (long long)w->started_ns,
			 (long long)w->finished_ns, (long long)w->deadline_ns,
			 w->setup_done ? "true" : "false", w->cancelled ? "true" : "false",
			 w->adopted ? "true" : "false", w->handovers);
	return perch_buf_steal(&b);
}

/* Writes meta.json; caller holds w->io_lock (not d->lock). */
static void put_meta_io(perch_daemon *d, dwf *w)
{
	pthread_mutex_lock(&d->lock);
	char *text = meta_json(w);
	pthread_mutex_unlock(&d->lock);
	char *err = NULL;
	if (perch_store_put(d->store, w->id, "meta.json", text, &err) != 0) {
		perch_daemon_log(d, PERCH_LOG_ERROR, "workflow %s: %s", w->id, err);
		free(err);
	}
	free(text);
}

void perch_daemon_put_meta(perch_daemon *d, dwf *w)
{
	pthread_mutex_lock(&w->io_lock);
	put_meta_io(d, w);
	pthread_mutex_unlock(&w->io_lock);
}

static void step_result_fields(perch_buf *b, const perch_step_result *r)
{
	perch_buf_printf(b, ",\"finished_ns\":%lld,\"exited\":%s,\"exit_code\":%d,"
			    "\"oom_killed\":%s,\"skipped\":%s,\"cancelled\":%s,\"failed\":%s,"
			    "\"infra_error\":%s,\"log_lines\":%llu,\"resumed\":%s,\"error\":",
			 (long long)r->finished_ns, r->exited ? "true" : "false", r->exit_code,
			 r->oom_killed ? "true" : "false", r->skipped ? "true" : "false",
			 r->cancelled ? "true" : "false", r->failed ? "true" : "false",
			 r->infra_error ? "true" : "false", (unsigned long long)r->log_lines,
			 r->resumed ? "true" : "false");
	perch_json_str(b, r->error);
	perch_buf_puts(b, ",\"skip_reason\":");
	perch_json_str(b, r->skip_reason);
}

bool perch_daemon_get_step(perch_daemon *d, const char *id, size_t i, perch_step_result *res,
			   bool *started, bool *done, char ***procs, size_t *n_procs)
{
	char rel[64];
	snprintf(rel, sizeof rel, "steps/%zu.json", i);
	size_t len = 0;
	char *text = perch_store_get(d->store, id, rel, &len, NULL);
	memset(res, 0, sizeof *res);
	*started = *done = false;
	if (procs) {
		*procs = NULL;
		*n_procs = 0;
	}
	if (text == NULL)
		return false;
	json_object *o = parse_json(text, len);
	free(text);
	if (o == NULL) {
		perch_daemon_log(d, PERCH_LOG_WARN, "workflow %s: %s is corrupt; ignoring it", id,
				 rel);
		return false;
	}
	*started = jbool(o, "started");
	*done = jbool(o, "done");
	res->started = *started;
	res->started_ns = jint(o, "started_ns");
	res->finished_ns = jint(o, "finished_ns");
	res->exited = jbool(o, "exited");
	res->exit_code = (int32_t)jint(o, "exit_code");
	res->oom_killed = jbool(o, "oom_killed");
	res->skipped = jbool(o, "skipped");
	res->cancelled = jbool(o, "cancelled");
	res->failed = jbool(o, "failed");
	res->infra_error = jbool(o, "infra_error");
	res->log_lines = (uint64_t)jint(o, "log_lines");
	res->resumed = jbool(o, "resumed");
	const char *e = jstr(o, "error");
	res->error = e ? perch_xstrdup(e) : NULL;
	e = jstr(o, "skip_reason");
	res->skip_reason = e ? perch_xstrdup(e) : NULL;
	json_object *arr;
	if (procs && json_object_object_get_ex(o, "procs", &arr) &&
	    json_object_is_type(arr, json_type_array)) {
		size_t n = json_object_array_length(arr);
		*procs = perch_xcalloc(n + 1, sizeof **procs);
		for (size_t k = 0; k < n; k++) {
			const char *p = json_object_get_string(json_object_array_get_idx(arr, k));
			if (p)
				(*procs)[(*n_procs)++] = perch_xstrdup(p);
		}
	}
	json_object_put(o);
	return true;
}

/* ---- processes a step started (for lost workflows, see daemon_adopt.c) -- */

/* Appends "pid:pgid:starttime" of each child process of the calling
 * thread: a plugin that forks on the step's thread (local does) started
 * exactly these for the step. */
static void own_children(perch_buf *b)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)syscall(SYS_gettid));
	char *err = NULL;
	size_t len = 0;
	char *list = perch_read_file(path, &len, &err);
	free(err);
	if (list == NULL || len == 0) {
		free(list);
		return; /* none, or no CONFIG_PROC_CHILDREN: nothing to record */
	}
	bool first = true;
	char *save = NULL;
	for (char *t = strtok_r(list, " \n", &save); t; t = strtok_r(NULL, " \n", &save)) {
		char stat_path[64];
		snprintf(stat_path, sizeof stat_path, "/proc/%s/stat", t);
		err = NULL;
		char *st = perch_read_file(stat_path, &len, &err);
		free(err);
		if (st == NULL)
			continue;
		/* Fields after the command's closing parenthesis: state (3),
		 * ppid, pgrp (5) ... starttime (22). */
		char *rp = strrchr(st, ')');
		long long pgid = 0, start = 0;
		if (rp) {
			int field = 3;
			char *s2 = NULL;
			for (char *f = strtok_r(rp + 1, " ", &s2); f;
			     f = strtok_r(NULL, " ", &s2), field++) {
				if (field == 5)
					pgid = atoll(f);
				if (field == 22) {
					start = atoll(f);
					break;
				}
			}
		}
		free(st);
		if (start == 0)
			continue;
		perch_buf_printf(b, "%s\"%s:%lld:%lld\"", first ? "" : ",", t, pgid, start);
		first = false;
	}
	free(list);
}

/* ---- runs: hooks --------------------------------------------------------------- */

static void hook_setup_done(void *arg)
{
	drun *r = arg;
	dwf *w = r->w;
	pthread_mutex_lock(&w->io_lock);
	if (w->writer == r) {
		pthread_mutex_lock(&r->d->lock);
		w->setup_done = true;
		pthread_mutex_unlock(&r->d->lock);
		put_meta_io(r->d, w);
	}
	pthread_mutex_unlock(&w->io_lock);
}

static void put_step(perch_daemon *d, dwf *w, size_t index, const char *text)
{
	char rel[64], *err = NULL;
	snprintf(rel, sizeof rel, "steps/%zu.json", index);
	if (perch_store_put(d->store, w->id, rel, text, &err) != 0) {
		perch_daemon_log(d, PERCH_LOG_ERROR, "workflow %s: %s", w->id, err);
		free(err);
	}
}

static void hook_step_started(void *arg, size_t index, const perch_step_result *res)
{
	drun *r = arg;
	dwf *w = r->w;
	perch_buf b = {0};
	if (!res->resumed) {
		perch_buf_printf(&b, "{\"started\":true,\"done\":false,\"started_ns\":%lld,"
				     "\"procs\":[", (long long)res->started_ns);
		own_children(&b);
		perch_buf_puts(&b, "]}\n");
	}
	pthread_mutex_lock(&w->io_lock);
	if (w->writer == r) {
		/* A resumed step's record from its first start stands (and
		 * 100 resumed steps need not wait for 200 fsyncs). */
		if (!res->resumed)
			put_step(r->d, w, index, b.data);
		pthread_mutex_lock(&r->d->lock);
		if (!w->steps[index].started)
			w->steps_started++;
		if (res->resumed)
			w->steps_resumed++;
		w->steps[index].started = true;
		pthread_mutex_unlock(&r->d->lock);
	}
	pthread_mutex_unlock(&w->io_lock);
	perch_buf_free(&b);
}

static void hook_step_finished(void *arg, size_t index, const perch_step_result *res)
{
	drun *r = arg;
	dwf *w = r->w;
	perch_buf b = {0};
	perch_buf_printf(&b, "{\"started\":%s,\"done\":true,\"started_ns\":%lld",
			 res->started ? "true" : "false", (long long)res->started_ns);
	step_result_fields(&b, res);
	perch_buf_puts(&b, "}\n");
	pthread_mutex_lock(&w->io_lock);
	if (w->writer == r) {
		put_step(r->d, w, index, b.data);
		pthread_mutex_lock(&r->d->lock);
		if (!w->steps[index].done)
			w->steps_done++;
		w->steps[index].done = true;
		pthread_mutex_unlock(&r->d->lock);
	}
	pthread_mutex_unlock(&w->io_lock);
	perch_buf_free(&b);
}

/* ---- runs: the log sink ---------------------------------------------------------- */

typedef struct dsink {
	perch_logsink base;
	drun *run;
} dsink;

typedef struct dsink_step {
	dsink *sink;
	int fd;
	perch_buf buf;
	bool failed;
} dsink_step;

static void *dsink_attach(perch_logsink *sink, const char *step_name, const char *step_uuid,
			  char **err)
{
	dsink *s = (dsink *)sink;
	dwf *w = s->run->w;
	size_t index = w->n_steps;
	for (size_t i = 0; i < w->n_steps; i++)
		if (strcmp(w->steps[i].step->uuid, step_uuid) == 0) {
			index = i;
			break;
		}
	if (index == w->n_steps) {
		*err = perch_xasprintf("step \"%s\" is not part of workflow %s", step_name, w->id);
		return NULL;
	}
	uint64_t lines = 0;
	int fd = perch_store_open_log(s->run->d->store, w->id, index, &lines, err);
	if (fd < 0)
		return NULL;
	dsink_step *st = perch_xcalloc(1, sizeof *st);
	st->sink = s;
	st->fd = fd;
	return st;
}

static int dsink_flush(void *step, char **err)
{
	dsink_step *st = step;
	if (st->buf.len == 0) {
		if (!st->failed)
			return 0;
		*err = perch_xstrdup("writing the log failed earlier");
		return -1;
	}
	drun *r = st->sink->run;
	dwf *w = r->w;
	int rc = 0;
	pthread_mutex_lock(&w->io_lock);
	/* Only the workflow's current run writes: an abandoned one's lines
	 * are re-sent to its successor from the resume point. */
	if (w->writer == r && !st->failed &&
	    perch_write_all(st->fd, st->buf.data, st->buf.len) != 0) {
		st->failed = true;
		*err = perch_xasprintf("workflow %s: writing a log: %s", w->id, strerror(errno));
		rc = -1;
	}
	pthread_mutex_unlock(&w->io_lock);
	st->buf.len = 0;
	pthread_mutex_lock(&r->d->lock);
	pthread_cond_broadcast(&r->d->cond);
	pthread_mutex_unlock(&r->d->lock);
	return rc;
}

static void dsink_write(void *step, const perch_log_line *line)
{
	dsink_step *st = step;
	char num[24];
	size_t n;
	if (line->elapsed_ms < 0) {
		num[0] = '0';
		n = 1;
	} else {
		n = perch_fmt_u64(num, (uint64_t)line->elapsed_ms);
	}
	num[n++] = ' ';
	/* A '\n' inside a line cannot happen (the stream splits on it). */
	perch_buf_append(&st->buf, num, n);
	perch_buf_append(&st->buf, line->data, line->len);
	perch_buf_putc(&st->buf, '\n');
	if (st->buf.len >= LOG_BATCH) {
		char *err = NULL;
		if (dsink_flush(st, &err) != 0)
			free(err);
	}
}

static int dsink_detach(void *step, char **err)
{
	dsink_step *st = step;
	int rc = dsink_flush(st, err);
	close(st->fd);
	perch_buf_free(&st->buf);
	free(st);
	return rc;
}

static void dsink_destroy(perch_logsink *sink) { free(sink); }

static const perch_logsink_ops dsink_ops = {
	.attach = dsink_attach,
	.write = dsink_write,
	.flush = dsink_flush,
	.detach = dsink_detach,
	.destroy = dsink_destroy,
};

/* ---- results ---------------------------------------------------------------- */

/* result.json: the runtime's result plus the daemon's fields; status
 * overrides the runtime's (NULL: keep it). */
static char *result_json(const dwf *w, const perch_run_result *res, const char *status)
{
	char *base = perch_run_result_json(res, w->id);
	json_object *o = parse_json(base, strlen(base));
	free(base);
	if (o == NULL)
		o = json_object_new_object();
	if (status == NULL)
		status = perch_run_status_name(res->status);
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "id", json_object_new_string(w->id));
	json_object *steps;
	if (json_object_object_get_ex(o, "steps", &steps) &&
	    json_object_is_type(steps, json_type_array))
		for (size_t i = 0; i < res->n_steps && i < json_object_array_length(steps); i++)
			json_object_object_add(json_object_array_get_idx(steps, i), "resumed",
					       json_object_new_boolean(res->steps[i].resumed));
	if (w->started_ns)
		json_object_object_add(o, "started", json_object_new_int64(w->started_ns / 1000000000));
	json_object_object_add(o, "plugin", w->plugin ? json_object_new_string(w->plugin) : NULL);
	json_object_object_add(o, "plugin_version",
			       w->plugin_version ? json_object_new_string(w->plugin_version) : NULL);
	json_object_object_add(o, "version_number", json_object_new_int64(w->version_number));
	json_object_object_add(o, "adopted", json_object_new_boolean(w->adopted));
	json_object_object_add(o, "handovers", json_object_new_int64(w->handovers));
	json_object_object_add(o, "exit_code", json_object_new_int(perch_daemon_exit_code(status)));
	char *text = perch_xasprintf("%s\n", json_object_to_json_string_ext(
							  o, JSON_C_TO_STRING_PRETTY |
								     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return text;
}

static void put_result(perch_daemon *d, dwf *w, const char *text)
{
	char *err = NULL;
	if (perch_store_put(d->store, w->id, "result.json", text, &err) != 0) {
		perch_daemon_log(d, PERCH_LOG_ERROR, "workflow %s: %s", w->id, err);
		free(err);
	}
}

void perch_daemon_finish_unrun(perch_daemon *d, dwf *w, const char *status, const char *error)
{
	pthread_mutex_lock(&d->lock);
	if (w->state != DWF_FINISHED) {
		if (w->state == DWF_QUEUED)
			d->n_queued--;
		else
			d->n_running--;
		w->state = DWF_FINISHED;
		free(w->status);
		w->status = perch_xstrdup(status);
		free(w->error);
		w->error = error ? perch_xstrdup(error) : NULL;
		w->finished_ns = perch_real_ns();
	}
	perch_workflow *doc = w->wf;
	pthread_mutex_unlock(&d->lock);
	/* A result like a run's: every step with what is known of it. */
	perch_workflow *own = NULL;
	if (doc == NULL)
		doc = own = perch_daemon_load_document(d, w->id, NULL);
	perch_run_result res;
	memset(&res, 0, sizeof res);
	res.status = strcmp(status, "killed") == 0 ? PERCH_RUN_KILLED : PERCH_RUN_ERROR;
	res.error = w->error;
	res.started_ns = w->started_ns ? w->started_ns : w->submitted_ns;
	res.finished_ns = w->finished_ns;
	size_t n = 0;
	for (size_t i = 0; doc && i < doc->config.n_stages; i++)
		n += doc->config.stages[i]->n_steps;
	res.steps = perch_xcalloc(n + 1, sizeof *res.steps);
	size_t k = 0;
	for (size_t i = 0; doc && i < doc->config.n_stages; i++)
		for (size_t j = 0; j < doc->config.stages[i]->n_steps; j++, k++) {
			bool started, done;
			perch_step_result *s = &res.steps[k];
			perch_daemon_get_step(d, w->id, k, s, &started, &done, NULL, NULL);
			s->step = doc->config.stages[i]->steps[j];
			s->stage = i;
			if (!done) {
				s->skipped = !started;
				s->cancelled = true;
				free(s->skip_reason);
				s->skip_reason = perch_xstrdup(error ? error : status);
			}
		}
	res.n_steps = n;
	char *text = result_json(w, &res, status);
	res.error = NULL; /* w's */
	perch_run_result_free(&res);
	perch_workflow_free(own);

	pthread_mutex_lock(&w->io_lock);
	put_result(d, w, text);
	put_meta_io(d, w);
	pthread_mutex_unlock(&w->io_lock);
	free(text);
	perch_workflow *free_wf = NULL;
	dstep *free_steps = NULL;
	pthread_mutex_lock(&d->lock);
	if (w->holders == 0) {
		/* No run will need the document again. */
		free_wf = w->wf;
		free_steps = w->steps;
		w->wf = NULL;
		w->steps = NULL;
	}
	perch_daemon_schedule(d);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	free(free_steps);
	perch_workflow_free(free_wf);
}

/* ---- runs: the runner thread ----------------------------------------------------- */

/* After a hand-over the versions the workflow ran on before still track
 * it (their runs wait): tell them to let go, which ends those waits. */
static void release_old_versions(perch_daemon *d, drun *r)
{
	for (;;) {
		dversion *old = NULL;
		pthread_mutex_lock(&d->lock);
		for (drun *o = d->runs; o; o = o->next)
			if (o->w == r->w && o != r && o->superseded && !o->returned &&
			    !o->released_old && o->v != r->v) {
				old = o->v;
				o->released_old = true;
				old->refs++; /* stays loaded during the call */
				break;
			}
		pthread_mutex_unlock(&d->lock);
		if (old == NULL)
			break;
		perch_daemon_release_old(d, r->w, old);
		pthread_mutex_lock(&d->lock);
		old->refs--;
		pthread_mutex_unlock(&d->lock);
		perch_daemon_wake(d);
	}
}

static void *runner_main(void *arg)
{
	drun *r = arg;
	perch_daemon *d = r->d;
	dwf *w = r->w;
	dversion *v = r->v;

	pthread_mutex_lock(&w->io_lock);
	w->writer = r;
	pthread_mutex_unlock(&w->io_lock);
	perch_daemon_put_meta(d, w);

	dsink *sink = perch_xcalloc(1, sizeof *sink);
	sink->base.ops = &dsink_ops;
	sink->run = r;
	perch_logsink *sinks[1] = {&sink->base};
	perch_masker *masker = perch_masker_new(w->wf->config.secrets, w->wf->config.n_secrets);
	perch_run_hooks hooks = {
		.arg = r,
		.setup_done = hook_setup_done,
		.step_started = hook_step_started,
		.step_finished = hook_step_finished,
	};
	char tag[64];
	snprintf(tag, sizeof tag, "workflow %s", w->id);
	perch_run_opts opts = {
		.plugin = v->p,
		.wf = w->wf,
		.task_uuid = w->id,
		.wf_ctx = r->wf_ctx,
		.cleanup_parent = r->cleanup,
		.cleanup_timeout_ms = PERCH_DAEMON_CLEANUP_MS,
		.sinks = sinks,
		.n_sinks = 1,
		.masker = masker,
		.log_level = d->log_level,
		.max_parallel = 1000, /* perch run's default */
		.hooks = &hooks,
		.plan = r->resume ? &r->plan : NULL,
		.control = r->ctl,
		.log_tag = tag,
	};
	perch_runtime_run(&opts, &r->result);
	perch_logsink_free(&sink->base);
	perch_masker_free(masker);

	pthread_mutex_lock(&d->lock);
	r->returned = true;
	if (!r->result.abandoned && !r->superseded && w->run == r)
		r->finalizing = true;
	pthread_mutex_unlock(&d->lock);

	if (r->finalizing) {
		const char *status = perch_run_status_name(r->result.status);
		char *text = result_json(w, &r->result, NULL);
		pthread_mutex_lock(&w->io_lock);
		put_result(d, w, text);
		pthread_mutex_lock(&d->lock);
		w->state = DWF_FINISHED;
		free(w->status);
		w->status = perch_xstrdup(status);
		free(w->error);
		w->error = r->result.error ? perch_xstrdup(r->result.error) : NULL;
		w->finished_ns = perch_real_ns();
		pthread_mutex_unlock(&d->lock);
		put_meta_io(d, w);
		w->writer = NULL;
		pthread_mutex_unlock(&w->io_lock);
		free(text);
		perch_daemon_log(d, PERCH_LOG_INFO, "workflow %s %s on %s %s #%u%s%s", w->id, status,
				 v->name, v->p->entry->version, v->number,
				 r->result.error ? ": " : "", r->result.error ? r->result.error : "");
		release_old_versions(d, r);
		pthread_mutex_lock(&d->lock);
		w->run = NULL;
		d->n_running--;
		perch_daemon_schedule(d);
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
	}

	pthread_mutex_lock(&d->lock);
	r->done = true;
	pthread_mutex_unlock(&d->lock);
	perch_daemon_wake(d);
	return NULL;
}

bool perch_daemon_start_run(perch_daemon *d, dwf *w, dversion *v, drun *proto)
{
	drun *r = perch_xcalloc(1, sizeof *r);
	if (proto) {
		*r = *proto;
		r->plan.steps = r->plan_steps;
		r->plan.prior = r->plan_prior;
		r->plan.lines_seen = r->plan_lines;
	}
	r->d = d;
	r->w = w;
	r->v = v;
	r->ctl = perch_run_control_new();
	/* Every call's context carries the CLI context of the generation the
	 * version was loaded with (plugins may read flags per call). */
	perch_ctx *root = v->gen->app->root;
	int64_t left = 0;
	if (w->deadline_ns) {
		left = (w->deadline_ns - perch_real_ns()) / 1000000;
		if (left <= 0)
			left = 1;
	}
	r->wf_ctx = left ? perch_ctx_new_timeout(root, left) : perch_ctx_new(root);
	r->cleanup = perch_ctx_new(root);
	if (w->cancelled)
		perch_ctx_cancel(r->wf_ctx);
	/* What ps and the submit reply show from now on. */
	if (!r->resume || w->started_ns == 0)
		w->started_ns = perch_real_ns();
	free(w->plugin);
	free(w->plugin_version);
	w->plugin = perch_xstrdup(v->name);
	w->plugin_version = perch_xstrdup(v->p->entry->version);
	w->version_number = v->number;
	r->next = d->runs;
	d->runs = r;
	v->refs++;
	v->served++;
	w->holders++;
	w->run = r;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = pthread_create(&r->thread, &attr, runner_main, r);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		perch_daemon_log(d, PERCH_LOG_ERROR, "workflow %s: cannot start a thread: %s", w->id,
				 strerror(rc));
		r->done = true;
		r->returned = true;
		w->run = NULL;
		return false;
	}
	r->thread_started = true;
	return true;
}

static void run_free(drun *r)
{
	/* A call given up on may still use the contexts: they stay. */
	if (r->result.abandoned_calls == 0) {
		perch_ctx_free(r->wf_ctx);
		perch_ctx_free(r->cleanup);
	}
	perch_run_result_free(&r->result);
	perch_run_control_free(r->ctl);
	if (r->plan_prior) {
		for (size_t i = 0; i < r->w->n_steps; i++) {
			free(r->plan_prior[i].error);
			free(r->plan_prior[i].skip_reason);
		}
	}
	free(r->plan_steps);
	free(r->plan_prior);
	free(r->plan_lines);
	free(r);
}

void perch_daemon_reap_runs(perch_daemon *d)
{
	for (;;) {
		drun *r = NULL;
		pthread_mutex_lock(&d->lock);
		for (drun **pp = &d->runs; *pp; pp = &(*pp)->next)
			if ((*pp)->done) {
				r = *pp;
				*pp = r->next;
				break;
			}
		pthread_mutex_unlock(&d->lock);
		if (r == NULL)
			break;
		if (r->thread_started)
			pthread_join(r->thread, NULL);
		/* The contexts hang off the version's generation: free them
		 * before the version can go. */
		dwf *w = r->w;
		dversion *v = r->v;
		bool stuck = r->result.abandoned_calls > 0;
		run_free(r);
		perch_workflow *free_wf = NULL;
		dstep *free_steps = NULL;
		pthread_mutex_lock(&d->lock);
		v->refs--;
		if (stuck)
			w->pinned = true; /* and keeps its hold on wf for good */
		else if (--w->holders == 0 && w->state == DWF_FINISHED) {
			free_wf = w->wf;
			free_steps = w->steps;
			w->wf = NULL;
			w->steps = NULL;
		}
		pthread_mutex_unlock(&d->lock);
		free(free_steps);
		perch_workflow_free(free_wf);
	}
	/* Workflows that could not start: end them (on this thread: it
	 * writes to disk). */
	for (;;) {
		dwf *w = NULL;
		char *why = NULL;
		pthread_mutex_lock(&d->lock);
		for (dwf *o = d->wfs; o; o = o->next)
			if (o->fail_reason) {
				w = o;
				why = o->fail_reason;
				o->fail_reason = NULL;
				break;
			}
		pthread_mutex_unlock(&d->lock);
		if (w == NULL)
			break;
		perch_daemon_log(d, PERCH_LOG_ERROR, "workflow %s: %s", w->id, why);
		perch_daemon_finish_unrun(d, w, "error", why);
		free(why);
	}
}

/* ---- the queue --------------------------------------------------------------- */

void perch_daemon_schedule(perch_daemon *d)
{
	while (!d->stopping && d->n_queued > 0 && (int64_t)d->n_running < d->max_workflows) {
		dwf *next = NULL;
		for (dwf *w = d->wfs; w; w = w->next)
			if (w->state == DWF_QUEUED && (next == NULL || w->seq < next->seq))
				next = w;
		if (next == NULL)
			break;
		char *err = NULL;
		dversion *v = perch_daemon_select(d, next->backend_req, &err);
		next->state = DWF_RUNNING;
		d->n_queued--;
		d->n_running++;
		if (v == NULL || !perch_daemon_start_run(d, next, v, NULL)) {
			/* Ends at once, with the reason; the control thread
			 * persists that (no disk writes under the lock). */
			next->fail_reason = err ? err : perch_xstrdup("cannot start a thread for it");
			perch_daemon_wake(d);
			continue;
		}
		free(err);
	}
}

/* ---- submission ---------------------------------------------------------------- */

static void wf_attach_doc(dwf *w, perch_workflow *doc)
{
	w->wf = doc;
	size_t n = 0;
	for (size_t i = 0; i < doc->config.n_stages; i++)
		n += doc->config.stages[i]->n_steps;
	w->n_steps = n;
	w->steps = perch_xcalloc(n + 1, sizeof *w->steps);
	size_t k = 0;
	for (size_t i = 0; i < doc->config.n_stages; i++)
		for (size_t j = 0; j < doc->config.stages[i]->n_steps; j++)
			w->steps[k++].step = doc->config.stages[i]->steps[j];
}

static dwf *wf_new(void)
{
	dwf *w = perch_xcalloc(1, sizeof *w);
	pthread_mutex_init(&w->io_lock, NULL);
	return w;
}

void perch_daemon_wf_free(dwf *w)
{
	if (w == NULL || w->pinned)
		return;
	free(w->status);
	free(w->error);
	free(w->backend_req);
	free(w->plugin);
	free(w->plugin_version);
	free(w->fail_reason);
	free(w->steps);
	perch_workflow_free(w->wf);
	pthread_mutex_destroy(&w->io_lock);
	free(w);
}

dwf *perch_daemon_submit(perch_daemon *d, const char *text, size_t len, const char *source,
			 const char *backend, int64_t timeout_ms, char **err, const char **code)
{
	*code = "invalid";
	perch_workflow *doc = perch_workflow_parse(text, len, source ? source : "<submitted>", err);
	if (doc == NULL)
		return NULL;
	bool named = backend && *backend && strcmp(backend, "auto-detect") != 0;
	pthread_mutex_lock(&d->submit_lock);
	pthread_mutex_lock(&d->lock);
	dwf *w = NULL;
	if (d->stopping) {
		*code = "shutting_down";
		*err = perch_xstrdup("the daemon is shutting down and accepts no workflows");
		goto refuse;
	}
	dversion *v = named ? perch_daemon_current(d, backend) : NULL;
	if (named && v == NULL) {
		*err = perch_xasprintf("backend \"%s\" not found", backend);
		goto refuse;
	}
	if (v && !v->available) {
		*code = "unavailable";
		*err = perch_xasprintf("backend \"%s\" is not available: %s", backend,
				       v->unavailable_why ? v->unavailable_why : "unknown");
		goto refuse;
	}
	bool room = d->n_queued == 0 && (int64_t)d->n_running < d->max_workflows;
	if (!room && (int64_t)d->n_queued >= d->max_queue) {
		*code = "queue_full";
		*err = perch_xasprintf("the queue is full: %zu workflows wait (max_queue %lld) and "
				       "%zu run (max_workflows %lld); try again later",
				       d->n_queued, (long long)d->max_queue, d->n_running,
				       (long long)d->max_workflows);
		goto refuse;
	}
	w = wf_new();
	perch_new_ulid(w->id);
	w->seq = d->next_seq++;
	w->state = DWF_QUEUED;
	w->backend_req = named ? perch_xstrdup(backend) : NULL;
	w->submitted_ns = perch_real_ns();
	if (timeout_ms > 0)
		w->deadline_ns = w->submitted_ns + timeout_ms * 1000000;
	char *meta = meta_json(w);
	pthread_mutex_unlock(&d->lock);

	/* Durable before anyone hears of it. */
	int rc = perch_store_create(d->store, w->id, text, len, meta, err);
	free(meta);
	pthread_mutex_lock(&d->lock);
	if (rc != 0) {
		*code = "internal";
		perch_daemon_wf_free(w);
		w = NULL;
		goto refuse;
	}
	wf_attach_doc(w, doc);
	w->next = d->wfs;
	d->wfs = w;
	d->n_queued++;
	perch_daemon_schedule(d);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_unlock(&d->submit_lock);
	return w;
refuse:
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_unlock(&d->submit_lock);
	perch_workflow_free(doc);
	return NULL;
}

/* ---- lookups, cancel, ps --------------------------------------------------------- */

dwf *perch_daemon_find(perch_daemon *d, const char *id, bool *ambiguous)
{
	*ambiguous = false;
	if (id == NULL || *id == '\0')
		return NULL;
	size_t n = strlen(id);
	dwf *found = NULL;
	for (dwf *w = d->wfs; w; w = w->next) {
		if (strcmp(w->id, id) == 0)
			return w;
		if (strncasecmp(w->id, id, n) == 0) {
			if (found)
				*ambiguous = true;
			found = w;
		}
	}
	return *ambiguous ? NULL : found;
}

int perch_daemon_cancel(perch_daemon *d, dwf *w, const char **was)
{
	*was = state_name(w->state);
	if (w->state == DWF_FINISHED)
		return -1;
	w->cancelled = true;
	/* Never an abandoned run's context: a cancelled wait ends the step in
	 * some backends, under its new owner's feet.  The new run starts
	 * cancelled (w->cancelled). */
	if (w->state == DWF_RUNNING && w->run && !w->run->superseded)
		perch_ctx_cancel(w->run->wf_ctx);
	return 0;
}

static size_t queue_position(perch_daemon *d, const dwf *w)
{
	size_t pos = 1;
	for (dwf *o = d->wfs; o; o = o->next)
		if (o->state == DWF_QUEUED && o->seq < w->seq)
			pos++;
	return pos;
}

char *perch_daemon_wf_json(perch_daemon *d, const dwf *w)
{
	perch_buf b = {0};
	perch_buf_puts(&b, "{\"id\":");
	perch_json_str(&b, w->id);
	perch_buf_printf(&b, ",\"state\":\"%s\",\"status\":", state_name(w->state));
	perch_json_str(&b, w->status);
	perch_buf_puts(&b, ",\"backend\":");
	perch_json_str(&b, w->plugin ? w->plugin : w->backend_req);
	perch_buf_puts(&b, ",\"plugin_version\":");
	perch_json_str(&b, w->plugin_version);
	perch_buf_printf(&b, ",\"version_number\":%u", w->version_number);
	perch_buf_printf(&b, ",\"steps\":%zu,\"steps_started\":%zu,\"steps_done\":%zu,"
			     "\"steps_resumed\":%zu", w->n_steps, w->steps_started, w->steps_done,
			 w->steps_resumed);
	if (w->state == DWF_QUEUED)
		perch_buf_printf(&b, ",\"position\":%zu", queue_position(d, w));
	perch_buf_printf(&b, ",\"submitted_ns\":%lld,\"started_ns\":%lld,\"finished_ns\":%lld",
			 (long long)w->submitted_ns, (long long)w->started_ns,
			 (long long)w->finished_ns);
	if (w->state == DWF_FINISHED)
		perch_buf_printf(&b, ",\"exit_code\":%d", perch_daemon_exit_code(w->status));
	perch_buf_printf(&b, ",\"adopted\":%s,\"handovers\":%u,\"cancelled\":%s,\"error\":",
			 w->adopted ? "true" : "false", w->handovers, w->cancelled ? "true" : "false");
	perch_json_str(&b, w->error);
	perch_buf_putc(&b, '}');
	return perch_buf_steal(&b);
}

/* ---- start-up: reading the records ---------------------------------------------- */

perch_workflow *perch_daemon_load_document(perch_daemon *d, const char *id, char **err)
{
	size_t len = 0;
	char *e = NULL;
	char *text = perch_store_get(d->store, id, "workflow.json", &len, &e);
	perch_workflow *wf = NULL;
	if (text)
		wf = perch_workflow_parse(text, len, "workflow.json", &e);
	free(text);
	if (err)
		*err = e;
	else
		free(e);
	return wf;
}

static int cmp_seq(const void *a, const void *b)
{
	const dwf *x = *(dwf *const *)a, *y = *(dwf *const *)b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static dwf *load_one(perch_daemon *d, const char *id)
{
	size_t len = 0;
	char *text = perch_store_get(d->store, id, "meta.json", &len, NULL);
	json_object *o = text ? parse_json(text, len) : NULL;
	free(text);
	if (o == NULL) {
		perch_daemon_log(d, PERCH_LOG_WARN, "state: workflow %s has no readable meta.json; "
						    "ignoring it", id);
		return NULL;
	}
	dwf *w = wf_new();
	snprintf(w->id, sizeof w->id, "%s", id);
	w->seq = (uint64_t)jint(o, "seq");
	const char *st = jstr(o, "state");
	w->state = st && strcmp(st, "queued") == 0    ? DWF_QUEUED
		   : st && strcmp(st, "running") == 0 ? DWF_RUNNING
						      : DWF_FINISHED;
	const char *s;
	if ((s = jstr(o, "status")))
		w->status = perch_xstrdup(s);
	if ((s = jstr(o, "error")))
		w->error = perch_xstrdup(s);
	if ((s = jstr(o, "backend")))
		w->backend_req = perch_xstrdup(s);
	if ((s = jstr(o, "plugin")))
		w->plugin = perch_xstrdup(s);
	if ((s = jstr(o, "plugin_version")))
		w->plugin_version = perch_xstrdup(s);
	w->version_number = (unsigned)jint(o, "version_number");
	w->submitted_ns = jint(o, "submitted_ns");
	w->started_ns = jint(o, "started_ns");
	w->finished_ns = jint(o, "finished_ns");
	w->deadline_ns = jint(o, "deadline_ns");
	w->setup_done = jbool(o, "setup_done");
	w->cancelled = jbool(o, "cancelled");
	w->adopted = jbool(o, "adopted");
	w->handovers = (unsigned)jint(o, "handovers");
	json_object_put(o);
	if (w->state == DWF_FINISHED && w->status == NULL)
		w->status = perch_xstrdup("error");
	if (w->state != DWF_FINISHED) {
		char *err = NULL;
		perch_workflow *doc = perch_daemon_load_document(d, w->id, &err);
		if (doc == NULL) {
			perch_daemon_log(d, PERCH_LOG_ERROR, "state: workflow %s: %s", w->id, err);
			free(err);
			w->state = DWF_FINISHED;
			w->status = perch_xstrdup("error");
			w->error = perch_xstrdup("its workflow.json in the state directory is "
						 "unreadable");
			w->finished_ns = perch_real_ns();
			perch_daemon_put_meta(d, w);
		} else {
			wf_attach_doc(w, doc);
		}
	}
	return w;
}

void perch_daemon_load_records(perch_daemon *d, dwf ***adopt, size_t *n_adopt)
{
	size_t n = 0;
	char **ids = perch_store_list(d->store, &n);
	dwf **all = perch_xcalloc(n + 1, sizeof *all);
	size_t n_all = 0;
	*adopt = perch_xcalloc(n + 1, sizeof **adopt);
	*n_adopt = 0;
	for (size_t i = 0; i < n; i++) {
		dwf *w = load_one(d, ids[i]);
		if (w)
			all[n_all++] = w;
	}
	perch_store_free_list(ids, n);
	if (n_all > 1)
		qsort(all, n_all, sizeof *all, cmp_seq);
	for (size_t i = 0; i < n_all; i++) {
		dwf *w = all[i];
		if (w->seq >= d->next_seq)
			d->next_seq = w->seq + 1;
		if (w->state == DWF_QUEUED)
			d->n_queued++;
		if (w->state == DWF_RUNNING) {
			d->n_running++;
			(*adopt)[(*n_adopt)++] = w;
		}
		/* Newest first, like submissions. */
		w->next = d->wfs;
		d->wfs = w;
	}
	free(all);
}

/* ---- retention --------------------------------------------------------------- */

static int cmp_finished_desc(const void *a, const void *b)
{
	const dwf *x = *(dwf *const *)a, *y = *(dwf *const *)b;
	if (x->finished_ns != y->finished_ns)
		return x->finished_ns > y->finished_ns ? -1 : 1;
	return x->seq > y->seq ? -1 : x->seq < y->seq;
}

void perch_daemon_prune(perch_daemon *d)
{
	pthread_mutex_lock(&d->lock);
	size_t n = 0;
	for (dwf *w = d->wfs; w; w = w->next)
		n += w->state == DWF_FINISHED;
	dwf **fin = perch_xcalloc(n + 1, sizeof *fin);
	n = 0;
	for (dwf *w = d->wfs; w; w = w->next)
		if (w->state == DWF_FINISHED)
			fin[n++] = w;
	if (n > 1)
		qsort(fin, n, sizeof *fin, cmp_finished_desc);
	int64_t now = perch_real_ns();
	dwf **gone = perch_xcalloc(n + 1, sizeof *gone);
	size_t n_gone = 0;
	for (size_t i = 0; i < n; i++) {
		dwf *w = fin[i];
		bool old = (d->retention_count >= 0 && (int64_t)i >= d->retention_count) ||
			   (d->retention_ms >= 0 && now - w->finished_ns > d->retention_ms * 1000000);
		if (!old || w->readers > 0 || w->holders > 0)
			continue;
		for (dwf **pp = &d->wfs; *pp; pp = &(*pp)->next)
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		gone[n_gone++] = w;
	}
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n_gone; i++) {
		char *err = NULL;
		if (perch_store_remove(d->store, gone[i]->id, &err) != 0) {
			perch_daemon_log(d, PERCH_LOG_WARN, "retention: %s", err);
			free(err);
		}
		perch_daemon_wf_free(gone[i]);
	}
	free(gone);
	free(fin);
}
