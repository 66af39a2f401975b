/*
 * daemon_ctl.c - the control socket: one thread per connection, one request
 * per connection (docs/daemon-protocol.md).
 *
 * Whatever a client sends, the daemon answers with one clear error line
 * and goes on: malformed JSON, unknown commands, oversized or endless
 * requests.  Before closing after an error it drains what the client still
 * sends, so that the client reads the reply instead of a reset.
 */
#include "config.h"

#include "daemon.h"
#include "daemon_ctl.h"
#include "daemon_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How long a client may take to send its request. */
#define REQUEST_TIMEOUT_MS (30 * 1000)
/* How long, and how much, to drain after an error reply. */
#define DRAIN_MS 2000
#define DRAIN_BYTES (64u * 1024 * 1024)

typedef struct dconn {
	struct dconn *next;
	perch_daemon *d;
	int fd;
	pthread_t thread;
	bool done;
} dconn;

static bool conn_stop(void *arg)
{
	const dconn *c = arg;
	return atomic_load(&c->d->closing);
}

static int send_line(dconn *c, perch_buf *b)
{
	perch_buf_putc(b, '\n');
	int rc = perch_ctl_send(c->fd, b->data, b->len, conn_stop, c);
	b->len = 0;
	return rc;
}

static void drain(dconn *c)
{
	shutdown(c->fd, SHUT_WR);
	char buf[65536];
	size_t total = 0;
	int64_t end = perch_mono_ms() + DRAIN_MS;
	while (total < DRAIN_BYTES) {
		int64_t left = end - perch_mono_ms();
		if (left <= 0)
			break;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (poll(&p, 1, (int)left) <= 0)
			break;
		ssize_t n = read(c->fd, buf, sizeof buf);
		if (n <= 0)
			break;
		total += (size_t)n;
	}
}

static void reply_error(dconn *c, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(dconn *c, const char *code, const char *fmt, ...)
{
	perch_buf msg = {0}, b = {0};
	va_list ap;
	va_start(ap, fmt);
	perch_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	perch_buf_printf(&b, "{\"ok\":false,\"code\":\"%s\",\"error\":", code);
	perch_json_str(&b, msg.data);
	perch_buf_putc(&b, '}');
	send_line(c, &b);
	perch_buf_free(&b);
	perch_buf_free(&msg);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

/* Finds the workflow id names and marks it read (not pruned); NULL after
 * replying an error. */
static dwf *hold_wf(dconn *c, const char *id)
{
	perch_daemon *d = c->d;
	bool ambiguous;
	pthread_mutex_lock(&d->lock);
	dwf *w = perch_daemon_find(d, id, &ambiguous);
	if (w)
		w->readers++;
	pthread_mutex_unlock(&d->lock);
	if (w == NULL) {
		if (ambiguous)
			reply_error(c, "not_found", "workflow id \"%s\" is ambiguous: give more of it",
				    id);
		else
			reply_error(c, "not_found", "no workflow %s (see perch ps)", id);
	}
	return w;
}

static void release_wf(perch_daemon *d, dwf *w)
{
	pthread_mutex_lock(&d->lock);
	w->readers--;
	pthread_mutex_unlock(&d->lock);
}

/* The final line of a workflow that ended (or the state it is in). */
static void final_wf(dconn *c, dwf *w, perch_buf *b)
{
	perch_daemon *d = c->d;
	pthread_mutex_lock(&d->lock);
	char *j = perch_daemon_wf_json(d, w);
	pthread_mutex_unlock(&d->lock);
	perch_buf_puts(b, "{\"ok\":true,\"workflow\":");
	perch_buf_puts(b, j);
	perch_buf_putc(b, '}');
	free(j);
	send_line(c, b);
}

/* ---- logs ------------------------------------------------------------------------ */

typedef struct logpos {
	off_t off;          /* bytes of complete lines already sent */
	uint64_t line;
} logpos;

/* Sends the complete lines of step i from pos on; false if the client is
 * gone. */
static bool send_step_lines(dconn *c, const char *id, size_t i, const perch_step *step,
			    logpos *pos, perch_buf *out)
{
	char *path = perch_store_log_path(c->d->store, id, i);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return true;
	char buf[65536];
	perch_buf carry = {0};
	off_t off = pos->off;
	bool ok = true;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof buf, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += n;
		perch_buf_append(&carry, buf, (size_t)n);
		size_t start = 0;
		for (;;) {
			char *nl = memchr(carry.data + start, '\n', carry.len - start);
			if (nl == NULL)
				break;
			size_t len = (size_t)(nl - (carry.data + start));
			perch_store_line l;
			if (!perch_store_parse_line(carry.data + start, len, &l)) {
				l.elapsed_ms = 0;
				l.data = carry.data + start;
				l.len = len;
			}
			perch_buf_puts(out, "{\"event\":\"log\",\"step\":");
			perch_json_str(out, step->name);
			perch_buf_puts(out, ",\"uuid\":");
			perch_json_str(out, step->uuid);
			perch_buf_printf(out, ",\"index\":%zu,\"line\":%llu,\"time_ms\":%lld,\"data\":", i,
					 (unsigned long long)pos->line, (long long)l.elapsed_ms);
			perch_json_strn(out, l.data, l.len);
			perch_buf_puts(out, "}\n");
			pos->line++;
			pos->off += (off_t)len + 1;
			start += len + 1;
			if (out->len >= 65536) {
				if (perch_ctl_send(c->fd, out->data, out->len, conn_stop, c) != 0)
					ok = false;
				out->len = 0;
				if (!ok)
					break;
			}
		}
		memmove(carry.data, carry.data + start, carry.len - start);
		carry.len -= start;
		if (!ok)
			break;
	}
	perch_buf_free(&carry);
	close(fd);
	return ok;
}

/* Sends w's log lines; with follow, until it ends.  false if the client
 * is gone or the daemon closes (an error was replied then). */
static bool stream_logs(dconn *c, dwf *w, bool follow)
{
	perch_daemon *d = c->d;
	char *err = NULL;
	perch_workflow *doc = perch_daemon_load_document(d, w->id, &err);
	if (doc == NULL) {
		reply_error(c, "internal", "workflow %s: %s", w->id, err);
		free(err);
		return false;
	}
	size_t n = 0;
	for (size_t i = 0; i < doc->config.n_stages; i++)
		n += doc->config.stages[i]->n_steps;
	const perch_step **steps = perch_xcalloc(n + 1, sizeof *steps);
	logpos *pos = perch_xcalloc(n + 1, sizeof *pos);
	size_t k = 0;
	for (size_t i = 0; i < doc->config.n_stages; i++)
		for (size_t j = 0; j < doc->config.stages[i]->n_steps; j++)
			steps[k++] = doc->config.stages[i]->steps[j];
	perch_buf out = {0};
	bool ok = true;
	for (;;) {
		/* The state first: lines written before it changed are read
		 * below, so nothing is missed at the end. */
		pthread_mutex_lock(&d->lock);
		bool finished = w->state == DWF_FINISHED;
		pthread_mutex_unlock(&d->lock);
		for (size_t i = 0; i < n && ok; i++)
			ok = send_step_lines(c, w->id, i, steps[i], &pos[i], &out);
		if (ok && out.len && perch_ctl_send(c->fd, out.data, out.len, conn_stop, c) != 0)
			ok = false;
		out.len = 0;
		if (!ok || finished || !follow)
			break;
		if (atomic_load(&d->closing)) {
			reply_error(c, "shutting_down", "the daemon is shutting down; workflow %s "
							"has not ended", w->id);
			ok = false;
			break;
		}
		pthread_mutex_lock(&d->lock);
		if (w->state != DWF_FINISHED) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 500 * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&d->cond, &d->lock, &ts);
		}
		pthread_mutex_unlock(&d->lock);
	}
	perch_buf_free(&out);
	free(steps);
	free(pos);
	perch_workflow_free(doc);
	return ok;
}

/* Blocks until w ended; false (after replying) when the daemon closes. */
static bool wait_end(dconn *c, dwf *w)
{
	perch_daemon *d = c->d;
	pthread_mutex_lock(&d->lock);
	while (w->state != DWF_FINISHED && !atomic_load(&d->closing)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&d->cond, &d->lock, &ts);
	}
	bool finished = w->state == DWF_FINISHED;
	pthread_mutex_unlock(&d->lock);
	if (!finished)
		reply_error(c, "shutting_down", "the daemon stopped before workflow %s ended (a "
						"backend that can resume hands it to the next "
						"daemon)", w->id);
	return finished;
}

/* ---- requests ---------------------------------------------------------------------- */

static void do_submit(dconn *c, const perch_ctl_request *req)
{
	perch_daemon *d = c->d;
	bool follow = req->follow;
	char *err = NULL;
	const char *code = NULL;
	dwf *w = perch_daemon_submit(d, req->workflow, req->workflow_len, req->source,
				     req->backend, req->timeout_ms, &err, &code);
	if (w == NULL) {
		reply_error(c, code, "%s", err);
		free(err);
		return;
	}
	pthread_mutex_lock(&d->lock);
	w->readers++;
	char *j = perch_daemon_wf_json(d, w);
	pthread_mutex_unlock(&d->lock);
	perch_daemon_log(d, PERCH_LOG_INFO, "workflow %s accepted", w->id);
	perch_buf b = {0};
	if (!follow) {
		perch_buf_printf(&b, "{\"ok\":true,\"id\":\"%s\",\"workflow\":%s}", w->id, j);
		send_line(c, &b);
	} else {
		perch_buf_printf(&b, "{\"event\":\"accepted\",\"id\":\"%s\",\"workflow\":%s}", w->id,
				 j);
		if (send_line(c, &b) == 0 && stream_logs(c, w, true))
			final_wf(c, w, &b);
	}
	free(j);
	perch_buf_free(&b);
	release_wf(d, w);
}

static void do_ps(dconn *c)
{
	perch_daemon *d = c->d;
	perch_buf b = {0};
	perch_buf_puts(&b, "{\"ok\":true,\"workflows\":[");
	pthread_mutex_lock(&d->lock);
	bool first = true;
	for (dwf *w = d->wfs; w; w = w->next) {
		char *j = perch_daemon_wf_json(d, w);
		perch_buf_printf(&b, "%s%s", first ? "" : ",", j);
		free(j);
		first = false;
	}
	pthread_mutex_unlock(&d->lock);
	perch_buf_puts(&b, "]}");
	send_line(c, &b);
	perch_buf_free(&b);
}

static void do_logs(dconn *c, const perch_ctl_request *req)
{
	bool follow = req->follow;
	dwf *w = hold_wf(c, req->id);
	if (w == NULL)
		return;
	perch_buf b = {0};
	if (stream_logs(c, w, follow))
		final_wf(c, w, &b);
	perch_buf_free(&b);
	release_wf(c->d, w);
}

static void do_wait(dconn *c, const perch_ctl_request *req)
{
	dwf *w = hold_wf(c, req->id);
	if (w == NULL)
		return;
	perch_buf b = {0};
	if (wait_end(c, w))
		final_wf(c, w, &b);
	perch_buf_free(&b);
	release_wf(c->d, w);
}

static void do_cancel(dconn *c, const perch_ctl_request *req)
{
	perch_daemon *d = c->d;
	dwf *w = hold_wf(c, req->id);
	if (w == NULL)
		return;
	const char *was;
	pthread_mutex_lock(&d->lock);
	int rc = perch_daemon_cancel(d, w, &was);
	bool queued = rc == 0 && strcmp(was, "queued") == 0;
	char *status = w->status ? perch_xstrdup(w->status) : NULL;
	pthread_mutex_unlock(&d->lock);
	if (rc != 0) {
		reply_error(c, "finished", "workflow %s has already ended: %s", w->id, status);
	} else {
		if (queued)
			perch_daemon_finish_unrun(d, w, "killed", "cancelled while queued");
		else
			perch_daemon_put_meta(d, w); /* an adopting daemon cancels too */
		perch_daemon_log(d, PERCH_LOG_INFO, "workflow %s: cancel requested (it was %s)",
				 w->id, was);
		perch_buf b = {0};
		perch_buf_printf(&b, "{\"ok\":true,\"id\":\"%s\",\"was\":\"%s\"}", w->id, was);
		send_line(c, &b);
		perch_buf_free(&b);
	}
	free(status);
	release_wf(d, w);
}

static void do_status(dconn *c)
{
	perch_daemon *d = c->d;
	perch_buf b = {0};
	pthread_mutex_lock(&d->lock);
	perch_buf_printf(&b, "{\"ok\":true,\"pid\":%ld,\"version\":\"%s\",\"uptime_ms\":%lld,"
			     "\"socket\":",
			 (long)getpid(), PACKAGE_VERSION,
			 (long long)((perch_real_ns() - d->started_ns) / 1000000));
	perch_json_str(&b, d->socket_path);
	perch_buf_puts(&b, ",\"state_dir\":");
	perch_json_str(&b, perch_store_dir(d->store));
	perch_buf_puts(&b, ",\"config\":");
	perch_json_str(&b, d->gen->app->conf->path);
	perch_buf_printf(&b, ",\"generation\":%u,\"running\":%zu,\"queued\":%zu,"
			     "\"max_workflows\":%lld,\"max_queue\":%lld,\"draining\":%s,"
			     "\"swap\":\"%s\",\"shutdown_timeout_ms\":%lld,\"adopt_grace_ms\":%lld,"
			     "\"retention\":",
			 d->gen->number, d->n_running, d->n_queued, (long long)d->max_workflows,
			 (long long)d->max_queue, d->stopping ? "true" : "false",
			 d->swap_adopt ? "adopt" : "finish", (long long)d->shutdown_ms,
			 (long long)d->adopt_grace_ms);
	if (d->retention_ms >= 0)
		perch_buf_printf(&b, "{\"age_ms\":%lld}", (long long)d->retention_ms);
	else
		perch_buf_printf(&b, "{\"count\":%lld}", (long long)d->retention_count);
	perch_buf_printf(&b, ",\"adoption\":{\"workflows\":%zu,\"steps\":%zu,\"lost\":%zu,"
			     "\"duration_ms\":%lld,\"orphans_pending\":%zu}",
			 d->adopted, d->adopted_steps, d->lost, (long long)d->adopt_ms, d->n_orphans);
	perch_buf_puts(&b, ",\"backends\":[");
	bool first = true;
	for (dversion *v = d->versions; v; v = v->next) {
		perch_buf_printf(&b, "%s{\"name\":", first ? "" : ",");
		first = false;
		perch_json_str(&b, v->name);
		perch_buf_puts(&b, ",\"version\":");
		perch_json_str(&b, v->p->entry ? v->p->entry->version : NULL);
		perch_buf_printf(&b, ",\"number\":%u,\"current\":%s,\"loaded\":%s,\"available\":%s,"
				     "\"workflows\":%u,\"served\":%u,\"generation\":%u,\"origin\":",
				 v->number, v->retired ? "false" : "true",
				 v->p->loaded ? "true" : "false", v->available ? "true" : "false",
				 v->refs, v->served, v->gen->number);
		perch_json_str(&b, v->origin);
		perch_buf_puts(&b, ",\"copy\":");
		perch_json_str(&b, v->copy);
		perch_buf_puts(&b, ",\"platform\":");
		perch_json_str(&b, v->p->loaded ? v->p->info.platform : NULL);
		perch_buf_puts(&b, ",\"unavailable\":");
		perch_json_str(&b, v->unavailable_why);
		perch_buf_puts(&b, ",\"retired\":");
		perch_json_str(&b, v->retired_why);
		char *caps = perch_daemon_caps_json(v);
		perch_buf_printf(&b, ",\"capabilities\":%s}", caps);
		free(caps);
	}
	pthread_mutex_unlock(&d->lock);
	perch_buf_puts(&b, "]}");
	send_line(c, &b);
	perch_buf_free(&b);
}

static void do_reload(dconn *c)
{
	perch_daemon *d = c->d;
	reload_req *rq = perch_xcalloc(1, sizeof *rq);
	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		pthread_mutex_unlock(&d->lock);
		free(rq);
		reply_error(c, "shutting_down", "the daemon is shutting down");
		return;
	}
	rq->next = d->reloads;
	d->reloads = rq;
	pthread_mutex_unlock(&d->lock);
	perch_daemon_wake(d);
	pthread_mutex_lock(&d->lock);
	/* The control thread answers every queued reload before it stops. */
	while (!rq->done)
		pthread_cond_wait(&d->cond, &d->lock);
	pthread_mutex_unlock(&d->lock);
	perch_buf b = {0};
	perch_buf_puts(&b, rq->reply);
	send_line(c, &b);
	perch_buf_free(&b);
	free(rq->reply);
	free(rq);
}

/* ---- decoding a request (daemon_ctl.h) -------------------------------------------- */

static bool refuse(perch_ctl_refusal *why, bool drain, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static bool refuse(perch_ctl_refusal *why, bool drain, const char *fmt, ...)
{
	perch_buf msg = {0};
	va_list ap;
	va_start(ap, fmt);
	perch_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	why->code = "malformed";
	why->message = perch_buf_steal(&msg);
	why->drain = drain;
	return false;
}

bool perch_ctl_parse_request(const char *line, size_t len, perch_ctl_request *req,
			     perch_ctl_refusal *why)
{
	memset(req, 0, sizeof *req);
	memset(why, 0, sizeof *why);
	/* json-c takes an int length; the line reader's limit is far below. */
	if (len > INT_MAX)
		return refuse(why, true, "malformed request: not valid JSON: %s",
			      json_tokener_error_desc(json_tokener_error_size));
	json_tokener *tok = json_tokener_new();
	json_object *obj = json_tokener_parse_ex(tok, line, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t end = obj ? json_tokener_get_parse_end(tok) : 0;
	while (end < len && (line[end] == ' ' || line[end] == '\t' || line[end] == '\r'))
		end++;
	if (obj && (jerr != json_tokener_success || end < len)) {
		json_object_put(obj);
		obj = NULL;
		if (jerr == json_tokener_success)
			jerr = json_tokener_error_parse_unexpected;
	}
	json_tokener_free(tok);
	if (obj == NULL || !json_object_is_type(obj, json_type_object)) {
		bool is_json = obj != NULL;
		json_object_put(obj);
		return refuse(why, true, "malformed request: %s%s",
			      is_json ? "not a JSON object" : "not valid JSON: ",
			      is_json ? ""
				      : jerr == json_tokener_continue ? "incomplete"
								     : json_tokener_error_desc(jerr));
	}
	const char *cmd = jstr(obj, "cmd");
	bool ok = true;
	json_object *v;
	if (cmd == NULL) {
		ok = refuse(why, false, "malformed request: no \"cmd\" string");
	} else if (strcmp(cmd, "submit") == 0) {
		req->cmd = PERCH_CTL_SUBMIT;
		if (json_object_object_get_ex(obj, "workflow", &v) &&
		    json_object_is_type(v, json_type_string)) {
			req->workflow = json_object_get_string(v);
			req->workflow_len = (size_t)json_object_get_string_len(v);
		}
		if (req->workflow == NULL)
			ok = refuse(why, false,
				    "submit needs \"workflow\": the workflow JSON as a string");
		if (json_object_object_get_ex(obj, "timeout_ms", &v))
			req->timeout_ms = json_object_get_int64(v);
		req->follow = json_object_object_get_ex(obj, "follow", &v) &&
			      json_object_get_boolean(v);
		req->source = jstr(obj, "source");
		req->backend = jstr(obj, "backend");
	} else if (strcmp(cmd, "ps") == 0) {
		req->cmd = PERCH_CTL_PS;
	} else if (strcmp(cmd, "logs") == 0 || strcmp(cmd, "wait") == 0 ||
		   strcmp(cmd, "cancel") == 0) {
		req->cmd = cmd[0] == 'l' ? PERCH_CTL_LOGS
			   : cmd[0] == 'w' ? PERCH_CTL_WAIT
					   : PERCH_CTL_CANCEL;
		if (req->cmd == PERCH_CTL_LOGS)
			req->follow = json_object_object_get_ex(obj, "follow", &v) &&
				      json_object_get_boolean(v);
		req->id = jstr(obj, "id");
		if (req->id == NULL)
			ok = refuse(why, false, "this request needs \"id\": the workflow's id");
	} else if (strcmp(cmd, "status") == 0) {
		req->cmd = PERCH_CTL_STATUS;
	} else if (strcmp(cmd, "reload") == 0) {
		req->cmd = PERCH_CTL_RELOAD;
	} else if (strcmp(cmd, "ping") == 0) {
		req->cmd = PERCH_CTL_PING;
	} else {
		ok = refuse(why, false,
			    "unknown command \"%s\" (known: submit, ps, logs, wait, cancel, "
			    "status, reload, ping)",
			    cmd);
	}
	if (!ok) {
		json_object_put(obj);
		memset(req, 0, sizeof *req);
		return false;
	}
	req->obj = obj;
	return true;
}

void perch_ctl_request_free(perch_ctl_request *req)
{
	json_object_put(req->obj);
	memset(req, 0, sizeof *req);
}

/* ---- a connection ------------------------------------------------------------------ */

static void *conn_main(void *arg)
{
	dconn *c = arg;
	perch_daemon *d = c->d;
	perch_linereader lr = {.fd = c->fd};
	char *line = NULL;
	size_t len = 0;
	int rc = perch_lr_next(&lr, PERCH_CTL_MAX_REQUEST, REQUEST_TIMEOUT_MS, conn_stop, c, &line,
			       &len);
	perch_ctl_request req = {0};
	perch_ctl_refusal why = {0};
	if (rc == PERCH_CTL_TOO_LONG) {
		reply_error(c, "too_large", "request too large: the limit is %u bytes on one line",
			    PERCH_CTL_MAX_REQUEST);
		drain(c);
		goto out;
	}
	if (rc == PERCH_CTL_TIMEOUT) {
		reply_error(c, "timeout", "no complete request line within %d s",
			    REQUEST_TIMEOUT_MS / 1000);
		goto out;
	}
	if (rc != PERCH_CTL_LINE) {
		if (rc == PERCH_CTL_ERROR && errno == EPROTO)
			reply_error(c, "malformed", "the request line was cut short (no newline "
						    "before the end)");
		goto out;
	}
	if (!perch_ctl_parse_request(line, len, &req, &why)) {
		reply_error(c, why.code, "%s", why.message);
		if (why.drain)
			drain(c);
		free(why.message);
		goto out;
	}
	switch (req.cmd) {
	case PERCH_CTL_SUBMIT:
		do_submit(c, &req);
		break;
	case PERCH_CTL_PS:
		do_ps(c);
		break;
	case PERCH_CTL_LOGS:
		do_logs(c, &req);
		break;
	case PERCH_CTL_WAIT:
		do_wait(c, &req);
		break;
	case PERCH_CTL_CANCEL:
		do_cancel(c, &req);
		break;
	case PERCH_CTL_STATUS:
		do_status(c);
		break;
	case PERCH_CTL_RELOAD:
		do_reload(c);
		break;
	case PERCH_CTL_PING: {
		perch_buf b = {0};
		perch_buf_puts(&b, "{\"ok\":true}");
		send_line(c, &b);
		perch_buf_free(&b);
		break;
	}
	}
out:
	perch_ctl_request_free(&req);
	perch_lr_free(&lr);
	close(c->fd);
	pthread_mutex_lock(&d->lock);
	c->done = true;
	pthread_mutex_unlock(&d->lock);
	perch_daemon_wake(d);
	return NULL;
}

void perch_daemon_accept(perch_daemon *d)
{
	int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			perch_daemon_log(d, PERCH_LOG_WARN, "accept: %s", strerror(errno));
		return;
	}
	pthread_mutex_lock(&d->lock);
	bool full = d->n_conns >= PERCH_DAEMON_MAX_CONNS;
	pthread_mutex_unlock(&d->lock);
	if (full) {
		static const char busy[] = "{\"ok\":false,\"code\":\"busy\",\"error\":\"too many "
					   "connections; try again\"}\n";
		if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* the client sees the close */
		}
		close(fd);
		return;
	}
	dconn *c = perch_xcalloc(1, sizeof *c);
	c->d = d;
	c->fd = fd;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int rc = pthread_create(&c->thread, &attr, conn_main, c);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		perch_daemon_log(d, PERCH_LOG_WARN, "cannot start a connection thread: %s",
				 strerror(rc));
		close(fd);
		free(c);
		return;
	}
	pthread_mutex_lock(&d->lock);
	c->next = d->conns;
	d->conns = c;
	d->n_conns++;
	pthread_mutex_unlock(&d->lock);
}

void perch_daemon_reap_conns(perch_daemon *d, bool wait_all)
{
	for (;;) {
		dconn *c = NULL;
		pthread_mutex_lock(&d->lock);
		for (dconn **pp = &d->conns; *pp; pp = &(*pp)->next)
			if ((*pp)->done || wait_all) {
				c = *pp;
				*pp = c->next;
				d->n_conns--;
				break;
			}
		pthread_mutex_unlock(&d->lock);
		if (c == NULL)
			break;
		pthread_join(c->thread, NULL);
		free(c);
	}
}

void perch_daemon_serve_reloads(perch_daemon *d)
{
	for (;;) {
		reload_req *rq = NULL;
		pthread_mutex_lock(&d->lock);
		for (reload_req *r = d->reloads; r; r = r->next)
			if (!r->done && r->reply == NULL) {
				rq = r;
				break;
			}
		pthread_mutex_unlock(&d->lock);
		if (rq == NULL)
			break;
		char *reply = perch_daemon_reload(d);
		pthread_mutex_lock(&d->lock);
		for (reload_req **pp = &d->reloads; *pp; pp = &(*pp)->next)
			if (*pp == rq) {
				*pp = rq->next;
				break;
			}
		rq->reply = reply;
		rq->done = true;
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
	}
}
