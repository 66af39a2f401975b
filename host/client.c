/*
 * client.c - the daemon's client commands: submit, ps, logs, cancel, wait,
 * status, reload.  Each opens the control socket (--socket, $PERCH_SOCKET,
 * control_socket in the config, else the default), sends one request and
 * renders the replies (docs/daemon-protocol.md).
 *
 * Exit codes: wait (and submit/logs --follow) exit as perch run would have
 * for the workflow: 0 success, 1 failure, 3 error or lost, 130 killed.
 * Otherwise 0; 2 for bad input (an unknown id, a malformed workflow); 3
 * when the daemon cannot be reached or refuses for its own reasons (queue
 * full, shutting down).
 */
#include "config.h"

#include "app.h"
#include "daemon.h"
#include "daemon_proto.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const client_commands[] = {"submit", "ps",     "logs",   "cancel",
					      "wait",   "status", "reload", NULL};

bool perch_is_client_command(const char *command)
{
	for (size_t i = 0; client_commands[i]; i++)
		if (strcmp(command, client_commands[i]) == 0)
			return true;
	return false;
}

typedef struct client {
	perch_app *app;
	int fd;
	perch_linereader lr;
} client;

static const char *socket_path(const perch_app *app)
{
	const char *s = perch_app_string(app, "socket");
	if (s && *s)
		return s;
	if (app->conf->control_socket)
		return app->conf->control_socket;
	return PERCH_DAEMON_SOCKET;
}

static int error_exit(const char *code)
{
	if (code == NULL)
		return PERCH_EXIT_BACKEND;
	if (strcmp(code, "invalid") == 0 || strcmp(code, "malformed") == 0 ||
	    strcmp(code, "not_found") == 0 || strcmp(code, "too_large") == 0)
		return PERCH_EXIT_USAGE;
	if (strcmp(code, "finished") == 0)
		return PERCH_EXIT_STEP_FAILED;
	return PERCH_EXIT_BACKEND;
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v)
		       : NULL;
}

static int64_t jint(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static bool jbool(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static json_object *jobj(json_object *o, const char *key)
{
	json_object *v;
	return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* Connects and sends req (a JSON object, consumed).  -1 after printing. */
static int send_request(client *c, json_object *req)
{
	char *err = NULL;
	c->fd = perch_ctl_connect(socket_path(c->app), &err);
	if (c->fd < 0) {
		fprintf(stderr, "perch: %s\n", err);
		free(err);
		json_object_put(req);
		return -1;
	}
	c->lr.fd = c->fd;
	const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN |
								       JSON_C_TO_STRING_NOSLASHESCAPE);
	char *line = perch_xasprintf("%s\n", text);
	json_object_put(req);
	int rc = perch_ctl_send(c->fd, line, strlen(line), NULL, NULL);
	int e = errno;
	free(line);
	if (rc != 0 && e != EPIPE) {
		fprintf(stderr, "perch: sending the request to %s: %s\n", socket_path(c->app),
			strerror(e));
		return -1;
	}
	/* EPIPE: the daemon refused early; its reply is still there. */
	return 0;
}

/* The next reply line as a JSON object, or NULL after printing why. */
static json_object *next_reply(client *c)
{
	char *line = NULL;
	size_t len = 0;
	int rc = perch_lr_next(&c->lr, PERCH_CTL_MAX_REPLY, -1, NULL, NULL, &line, &len);
	if (rc != PERCH_CTL_LINE) {
		fprintf(stderr, "perch: the daemon closed the connection without a reply%s%s\n",
			rc == PERCH_CTL_ERROR ? ": " : "", rc == PERCH_CTL_ERROR ? strerror(errno) : "");
		return NULL;
	}
	json_object *o = json_tokener_parse(line);
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		fprintf(stderr, "perch: the daemon sent a malformed reply\n");
		json_object_put(o);
		return NULL;
	}
	return o;
}

static void client_close(client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	perch_lr_free(&c->lr);
}

/* An error reply: prints it, returns its exit code. */
static int reply_failed(json_object *o)
{
	const char *e = jstr(o, "error");
	fprintf(stderr, "perch: %s\n", e ? e : "the daemon refused the request");
	return error_exit(jstr(o, "code"));
}

static void print_log(json_object *o)
{
	const char *name = jstr(o, "step");
	json_object *data = jobj(o, "data");
	const char *text = data ? json_object_get_string(data) : "";
	size_t n = data ? (size_t)json_object_get_string_len(data) : 0;
	printf("[%s:L%lld:%llds] ", name ? name : "", (long long)jint(o, "line"),
	       (long long)(jint(o, "time_ms") / 1000));
	fwrite(text, 1, n, stdout);
	putchar('\n');
}

/* Reads log events until the final line; returns it (or NULL). */
static json_object *read_logs(client *c)
{
	for (;;) {
		json_object *o = next_reply(c);
		if (o == NULL)
			return NULL;
		const char *ev = jstr(o, "event");
		if (ev == NULL)
			return o;
		if (strcmp(ev, "log") == 0)
			print_log(o);
		json_object_put(o);
		/* Following, lines go out as they come, also into a pipe; a
		 * batch that is still arriving is written in one go. */
		if (c->lr.buf.len == c->lr.start)
			fflush(stdout);
	}
}

static int workflow_exit(json_object *wf, bool quiet_success)
{
	const char *status = jstr(wf, "status");
	const char *id = jstr(wf, "id");
	const char *err = jstr(wf, "error");
	fflush(stdout);
	if (!quiet_success || status == NULL || strcmp(status, "success") != 0)
		fprintf(stderr, "perch: workflow %s %s%s%s\n", id ? id : "?",
			status ? status : "has not ended", err ? ": " : "", err ? err : "");
	return status ? perch_daemon_exit_code(status) : PERCH_EXIT_BACKEND;
}

/* ---- commands ------------------------------------------------------------------- */

static int need_args(const perch_app *app, size_t n, const char *usage)
{
	if (app->n_args == n)
		return 0;
	fprintf(stderr, "perch: usage: perch %s %s\nTry 'perch %s --help'.\n", app->command, usage,
		app->command);
	return -1;
}

static int cmd_submit(client *c)
{
	perch_app *app = c->app;
	if (need_args(app, 1, "WORKFLOW.json") != 0)
		return PERCH_EXIT_USAGE;
	const char *path = app->args[0];
	char *err = NULL;
	size_t len = 0;
	char *text = perch_read_file(path, &len, &err);
	if (text == NULL) {
		fprintf(stderr, "perch: %s\n", err);
		free(err);
		return PERCH_EXIT_USAGE;
	}
	if (memchr(text, '\0', len)) {
		fprintf(stderr, "perch: %s: contains a NUL byte: not a workflow document\n", path);
		free(text);
		return PERCH_EXIT_USAGE;
	}
	bool follow = perch_app_bool(app, "follow");
	json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string("submit"));
	json_object_object_add(req, "workflow", json_object_new_string_len(text, (int)len));
	free(text);
	const char *slash = strrchr(path, '/');
	json_object_object_add(req, "source", json_object_new_string(strcmp(path, "-") == 0
									      ? "<stdin>"
								      : slash ? slash + 1
									      : path));
	/* The backend only when this command line or environment names it:
	 * otherwise the daemon's own default applies. */
	const perch_flagdef *b = perch_cli_find(app->cli, "backend");
	if (b && (b->source == PERCH_SRC_CLI || b->source == PERCH_SRC_ENV) && b->str)
		json_object_object_add(req, "backend", json_object_new_string(b->str));
	if (perch_app_is_set(app, "timeout")) {
		int64_t ms = perch_app_int(app, "timeout");
		if (ms <= 0) {
			fprintf(stderr, "perch: --timeout must be positive\n");
			json_object_put(req);
			return PERCH_EXIT_USAGE;
		}
		json_object_object_add(req, "timeout_ms", json_object_new_int64(ms));
	}
	if (follow)
		json_object_object_add(req, "follow", json_object_new_boolean(true));
	if (send_request(c, req) != 0)
		return PERCH_EXIT_BACKEND;
	json_object *o = next_reply(c);
	if (o == NULL)
		return PERCH_EXIT_BACKEND;
	if (jobj(o, "ok") && !jbool(o, "ok")) {
		int rc = reply_failed(o);
		json_object_put(o);
		return rc;
	}
	json_object *wf = jobj(o, "workflow");
	const char *state = jstr(wf, "state");
	if (state && strcmp(state, "queued") == 0)
		printf("workflow accepted (queued at position %lld): %s\n",
		       (long long)jint(wf, "position"), jstr(o, "id"));
	else
		printf("workflow accepted (%s): %s\n", state ? state : "?", jstr(o, "id"));
	fflush(stdout);
	if (!follow) {
		json_object_put(o);
		return PERCH_EXIT_OK;
	}
	json_object_put(o);
	o = read_logs(c);
	if (o == NULL)
		return PERCH_EXIT_BACKEND;
	if (!jbool(o, "ok")) {
		int rc = reply_failed(o);
		json_object_put(o);
		return rc;
	}
	wf = jobj(o, "workflow");
	printf("workflow %s: %s\n", jstr(wf, "status") ? jstr(wf, "status") : "?", jstr(wf, "id"));
	int rc = workflow_exit(wf, true);
	json_object_put(o);
	return rc;
}

static int simple(client *c, const char *cmd, bool with_id, bool follow, json_object **out)
{
	json_object *req = json_object_new_object();
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	if (with_id)
		json_object_object_add(req, "id", json_object_new_string(c->app->args[0]));
	if (follow)
		json_object_object_add(req, "follow", json_object_new_boolean(true));
	if (send_request(c, req) != 0)
		return PERCH_EXIT_BACKEND;
	json_object *o = read_logs(c);
	if (o == NULL)
		return PERCH_EXIT_BACKEND;
	if (!jbool(o, "ok")) {
		int rc = reply_failed(o);
		json_object_put(o);
		return rc;
	}
	*out = o;
	return PERCH_EXIT_OK;
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
}

static void fmt_age(char *buf, size_t n, int64_t ns)
{
	int64_t s = ns / 1000000000;
	if (s < 0)
		s = 0;
	if (s < 120)
		snprintf(buf, n, "%llds", (long long)s);
	else if (s < 7200)
		snprintf(buf, n, "%lldm", (long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, n, "%lldh", (long long)(s / 3600));
	else
		snprintf(buf, n, "%lldd", (long long)(s / 86400));
}

static int cmd_ps(client *c)
{
	if (need_args(c->app, 0, "[--json]") != 0)
		return PERCH_EXIT_USAGE;
	json_object *o = NULL;
	int rc = simple(c, "ps", false, false, &o);
	if (rc != PERCH_EXIT_OK)
		return rc;
	json_object *arr = jobj(o, "workflows");
	if (perch_app_bool(c->app, "json")) {
		print_json(arr);
		json_object_put(o);
		return PERCH_EXIT_OK;
	}
	printf("%-26s  %-8s  %-8s  %-16s  %-11s  %-7s  %s\n", "ID", "STATE", "STATUS", "BACKEND",
	       "STEPS", "AGE", "TIME");
	int64_t now = perch_real_ns();
	size_t n = arr ? json_object_array_length(arr) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *w = json_object_array_get_idx(arr, i);
		char backend[64], steps[32], age[16], took[16] = "-";
		const char *be = jstr(w, "backend");
		const char *ver = jstr(w, "plugin_version");
		if (ver)
			snprintf(backend, sizeof backend, "%s %s#%lld", be ? be : "?", ver,
				 (long long)jint(w, "version_number"));
		else
			snprintf(backend, sizeof backend, "%s", be ? be : "(default)");
		snprintf(steps, sizeof steps, "%lld/%lld", (long long)jint(w, "steps_done"),
			 (long long)jint(w, "steps"));
		fmt_age(age, sizeof age, now - jint(w, "submitted_ns"));
		int64_t st = jint(w, "started_ns"), fin = jint(w, "finished_ns");
		if (st)
			fmt_age(took, sizeof took, (fin ? fin : now) - st);
		const char *state = jstr(w, "state");
		char status[32];
		if (state && strcmp(state, "queued") == 0)
			snprintf(status, sizeof status, "#%lld", (long long)jint(w, "position"));
		else
			snprintf(status, sizeof status, "%s", jstr(w, "status") ? jstr(w, "status") : "-");
		printf("%-26s  %-8s  %-8s  %-16s  %-11s  %-7s  %s%s%s\n", jstr(w, "id"),
		       state ? state : "?", status, backend, steps, age, took,
		       jbool(w, "adopted") ? "  (adopted)" : "",
		       jint(w, "handovers") ? "  (handed over)" : "");
	}
	json_object_put(o);
	return PERCH_EXIT_OK;
}

static int cmd_logs(client *c)
{
	if (need_args(c->app, 1, "ID [--follow]") != 0)
		return PERCH_EXIT_USAGE;
	json_object *o = NULL;
	bool follow = perch_app_bool(c->app, "follow");
	int rc = simple(c, "logs", true, follow, &o);
	if (rc == PERCH_EXIT_OK && follow)
		rc = workflow_exit(jobj(o, "workflow"), true);
	json_object_put(o);
	return rc;
}

static int cmd_wait(client *c)
{
	if (need_args(c->app, 1, "ID") != 0)
		return PERCH_EXIT_USAGE;
	json_object *o = NULL;
	int rc = simple(c, "wait", true, false, &o);
	if (rc != PERCH_EXIT_OK)
		return rc;
	rc = workflow_exit(jobj(o, "workflow"), false);
	json_object_put(o);
	return rc;
}

static int cmd_cancel(client *c)
{
	if (need_args(c->app, 1, "ID") != 0)
		return PERCH_EXIT_USAGE;
	json_object *o = NULL;
	int rc = simple(c, "cancel", true, false, &o);
	if (rc != PERCH_EXIT_OK)
		return rc;
	printf("cancel requested: workflow %s was %s\n", jstr(o, "id"), jstr(o, "was"));
	json_object_put(o);
	return PERCH_EXIT_OK;
}

static int cmd_status(client *c)
{
	if (need_args(c->app, 0, "[--json]") != 0)
		return PERCH_EXIT_USAGE;
	json_object *o = NULL;
	int rc = simple(c, "status", false, false, &o);
	if (rc != PERCH_EXIT_OK)
		return rc;
	if (perch_app_bool(c->app, "json")) {
		json_object_object_del(o, "ok");
		print_json(o);
		json_object_put(o);
		return PERCH_EXIT_OK;
	}
	char up[16];
	fmt_age(up, sizeof up, jint(o, "uptime_ms") * 1000000);
	printf("perch daemon %s, pid %lld, up %s, configuration generation %lld\n",
	       jstr(o, "version"), (long long)jint(o, "pid"), up, (long long)jint(o, "generation"));
	printf("socket %s, state directory %s\n", jstr(o, "socket"), jstr(o, "state_dir"));
	printf("workflows: %lld running (max_workflows %lld), %lld queued (max_queue %lld)%s; "
	       "swap: %s\n",
	       (long long)jint(o, "running"), (long long)jint(o, "max_workflows"),
	       (long long)jint(o, "queued"), (long long)jint(o, "max_queue"),
	       jbool(o, "draining") ? "; draining" : "", jstr(o, "swap"));
	json_object *ad = jobj(o, "adoption");
	if (jint(ad, "workflows") || jint(ad, "lost"))
		printf("at start: adopted %lld workflows (%lld steps resumed), %lld lost, in %lld ms\n",
		       (long long)jint(ad, "workflows"), (long long)jint(ad, "steps"),
		       (long long)jint(ad, "lost"), (long long)jint(ad, "duration_ms"));
	printf("backends:\n");
	json_object *arr = jobj(o, "backends");
	size_t n = arr ? json_object_array_length(arr) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *b = json_object_array_get_idx(arr, i);
		json_object *caps = jobj(b, "capabilities");
		perch_buf cb = {0};
		for (size_t k = 0; caps && k < json_object_array_length(caps); k++)
			perch_buf_printf(&cb, "%s%s", k ? ", " : "",
					 json_object_get_string(json_object_array_get_idx(caps, k)));
		printf("  %s %s #%lld (%s): %lld workflow%s now, %lld served; %s%s%s\n",
		       jstr(b, "name"), jstr(b, "version") ? jstr(b, "version") : "?",
		       (long long)jint(b, "number"),
		       jbool(b, "current") ? "current" : "retired", (long long)jint(b, "workflows"),
		       jint(b, "workflows") == 1 ? "" : "s", (long long)jint(b, "served"),
		       jbool(b, "available") ? "available" : "not available: ",
		       jbool(b, "available") ? "" : jstr(b, "unavailable"),
		       jstr(b, "platform") ? "" : "");
		printf("      from %s; capabilities: %s\n", jstr(b, "origin"),
		       cb.data ? cb.data : "none");
		perch_buf_free(&cb);
	}
	json_object_put(o);
	return PERCH_EXIT_OK;
}

static void print_items(const char *what, json_object *arr)
{
	size_t n = arr ? json_object_array_length(arr) : 0;
	for (size_t i = 0; i < n; i++) {
		json_object *it = json_object_array_get_idx(arr, i);
		const char *why = jstr(it, "why");
		printf("%s %s %s #%lld%s%s%s\n", what, jstr(it, "name"),
		       jstr(it, "version") ? jstr(it, "version") : "", (long long)jint(it, "number"),
		       why ? " (" : "", why ? why : "", why ? ")" : "");
	}
}

static int cmd_reload(client *c)
{
	if (need_args(c->app, 0, "") != 0)
		return PERCH_EXIT_USAGE;
	json_object *o = NULL;
	int rc = simple(c, "reload", false, false, &o);
	if (rc != PERCH_EXIT_OK)
		return rc;
	printf("reloaded: configuration generation %lld in %lld ms\n",
	       (long long)jint(o, "generation"), (long long)jint(o, "duration_ms"));
	print_items("loaded", jobj(o, "loaded"));
	print_items("retired", jobj(o, "retired"));
	json_object *h = jobj(o, "handed_over");
	for (size_t i = 0; h && i < json_object_array_length(h); i++) {
		json_object *it = json_object_array_get_idx(h, i);
		printf("handed over %s from #%lld to #%lld\n", jstr(it, "id"),
		       (long long)jint(it, "from"), (long long)jint(it, "to"));
	}
	json_object *w = jobj(o, "warnings");
	for (size_t i = 0; w && i < json_object_array_length(w); i++)
		fprintf(stderr, "perch: warning: %s\n",
			json_object_get_string(json_object_array_get_idx(w, i)));
	json_object_put(o);
	return PERCH_EXIT_OK;
}

int perch_cmd_client(perch_app *app)
{
	client c = {.app = app, .fd = -1};
	const char *cmd = app->command;
	int rc;
	if (strcmp(cmd, "submit") == 0)
		rc = cmd_submit(&c);
	else if (strcmp(cmd, "ps") == 0)
		rc = cmd_ps(&c);
	else if (strcmp(cmd, "logs") == 0)
		rc = cmd_logs(&c);
	else if (strcmp(cmd, "wait") == 0)
		rc = cmd_wait(&c);
	else if (strcmp(cmd, "cancel") == 0)
		rc = cmd_cancel(&c);
	else if (strcmp(cmd, "status") == 0)
		rc = cmd_status(&c);
	else
		rc = cmd_reload(&c);
	client_close(&c);
	if (fflush(stdout) != 0 && rc == PERCH_EXIT_OK) {
		fprintf(stderr, "perch: writing the output: %s\n", strerror(errno));
		rc = PERCH_EXIT_BACKEND;
	}
	return rc;
}
