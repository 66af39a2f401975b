/*
 * cmd_run.c - `perch run WORKFLOW.json`: parse, pick and load the backend,
 * run the workflow with signals and --timeout wired to cancellation, report.
 */
#include "config.h"

#include "app.h"
#include "logpipe.h"
#include "runtime.h"
#include "util.h"
#include "workflow.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Cleanup calls (destroy_step, destroy_workflow) each get this long. */
#define CLEANUP_TIMEOUT_MS (60 * 1000)

/*
 * Signals.  The handler only writes the signal number into a pipe (the one
 * async-signal-safe thing worth doing); a thread reads it and cancels: the
 * first SIGINT/SIGTERM cancels the workflow, the next cuts cleanup short.
 * Handlers, not a blocked mask + sigwait, because a blocked mask would be
 * inherited by every process the backends start.
 */
static int signal_pipe[2] = {-1, -1}; /* written by the handler only */

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	if (write(signal_pipe[1], &b, 1) < 0) {
		/* nothing to do in a handler */
	}
	errno = saved;
}

struct sigwatch {
	pthread_t thread;
	perch_ctx *wf;
	perch_ctx *cleanup;
	int count;
};

static void *sigwatch_main(void *arg)
{
	struct sigwatch *w = arg;
	for (;;) {
		unsigned char b;
		ssize_t n = read(signal_pipe[0], &b, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || b == 0)
			return NULL; /* 0: the run is over */
		w->count++;
		if (w->count == 1) {
			fprintf(stderr, "perch: received %s; cancelling the workflow (again to "
					"skip cleanup)\n", strsignal(b));
			perch_ctx_cancel(w->wf);
		} else {
			fprintf(stderr, "perch: received %s again; cutting cleanup short\n",
				strsignal(b));
			perch_ctx_cancel(w->cleanup);
		}
	}
}

static bool sigwatch_start(struct sigwatch *w)
{
	if (pipe2(signal_pipe, O_CLOEXEC) != 0)
		return false;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return pthread_create(&w->thread, NULL, sigwatch_main, w) == 0;
}

static void sigwatch_stop(struct sigwatch *w)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	unsigned char zero = 0;
	if (write(signal_pipe[1], &zero, 1) == 1)
		pthread_join(w->thread, NULL);
	close(signal_pipe[0]);
	close(signal_pipe[1]);
	signal_pipe[0] = signal_pipe[1] = -1;
}

/* Writes text to path atomically: a reader sees the old file or the new. */
static int write_result(const char *path, const char *text, char **err)
{
	char *tmp = perch_xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int rc = -1;
	if (fd < 0) {
		*err = perch_xasprintf("%s: %s", tmp, strerror(errno));
	} else if (perch_write_all(fd, text, strlen(text)) != 0 || perch_write_all(fd, "\n", 1) != 0 ||
		   fsync(fd) != 0) {
		*err = perch_xasprintf("%s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
	} else if (close(fd) != 0 || rename(tmp, path) != 0) {
		*err = perch_xasprintf("%s: %s", path, strerror(errno));
		unlink(tmp);
	} else {
		rc = 0;
	}
	free(tmp);
	return rc;
}

static void summary(const perch_run_result *r, int level)
{
	size_t ok = 0, failed = 0, skipped = 0, killed = 0;
	for (size_t i = 0; i < r->n_steps; i++) {
		const perch_step_result *s = &r->steps[i];
		if (s->skipped)
			skipped++;
		else if (s->cancelled)
			killed++;
		else if (s->failed)
			failed++;
		else
			ok++;
	}
	if (level >= PERCH_LOG_INFO || r->status != PERCH_RUN_SUCCESS)
		fprintf(stderr, "perch: workflow %s: %zu step%s: %zu succeeded, %zu failed, "
				"%zu skipped, %zu killed (%.1fs)\n",
			perch_run_status_name(r->status), r->n_steps, r->n_steps == 1 ? "" : "s", ok,
			failed, skipped, killed, (double)(r->finished_ns - r->started_ns) / 1e9);
}

int perch_cmd_run(perch_app *app)
{
	if (app->n_args != 1) {
		fprintf(stderr, "perch: run takes one workflow file (or - for standard input), "
				"got %zu arguments\nTry 'perch run --help'.\n", app->n_args);
		return PERCH_EXIT_USAGE;
	}
	const char *fmt = perch_app_string(app, "log-format");
	if (strcmp(fmt, "text") != 0 && strcmp(fmt, "json") != 0 && strcmp(fmt, "none") != 0) {
		fprintf(stderr, "perch: invalid value \"%s\" for --log-format: want text, json or "
				"none\n", fmt);
		return PERCH_EXIT_USAGE;
	}
	int64_t timeout_ms = perch_app_int(app, "timeout");
	if (perch_app_is_set(app, "timeout") && timeout_ms <= 0) {
		fprintf(stderr, "perch: --timeout must be positive\n");
		return PERCH_EXIT_USAGE;
	}

	char *err = NULL;
	perch_workflow *wf = perch_workflow_load(app->args[0], &err);
	if (wf == NULL) {
		fprintf(stderr, "perch: %s\n", err);
		free(err);
		return PERCH_EXIT_USAGE;
	}
	int level = app->reg->log_level;
	if (level >= PERCH_LOG_WARN)
		perch_app_warn_refused(app);

	int rc = PERCH_EXIT_BACKEND;
	perch_logsink *sinks[2] = {NULL, NULL};
	size_t n_sinks = 0;
	perch_masker *masker = NULL;
	char *explain = NULL;
	int sel_rc = PERCH_EXIT_BACKEND;
	perch_plugin *p = perch_registry_select(app->reg, perch_app_string(app, "backend"),
						app->conf, app->root, &explain, &err, &sel_rc);
	if (p == NULL) {
		fprintf(stderr, "perch: %s\n", err);
		free(err);
		rc = sel_rc;
		goto out;
	}
	if (level >= PERCH_LOG_INFO)
		fprintf(stderr, "perch: %s\n", explain);
	if (perch_plugin_load(p, app->root, &err) != 0) {
		fprintf(stderr, "perch: %s\n", err);
		free(err);
		goto out;
	}

	if (strcmp(fmt, "text") == 0)
		sinks[n_sinks++] = perch_logsink_text_new(1);
	else if (strcmp(fmt, "json") == 0)
		sinks[n_sinks++] = perch_logsink_json_new(1);
	const char *dir = perch_app_string(app, "logs-dir");
	if (dir) {
		sinks[n_sinks] = perch_logsink_dir_new(dir, &err);
		if (sinks[n_sinks] == NULL) {
			fprintf(stderr, "perch: --logs-dir: %s\n", err);
			free(err);
			rc = PERCH_EXIT_USAGE;
			goto out;
		}
		n_sinks++;
	}
	masker = perch_masker_new(wf->config.secrets, wf->config.n_secrets);

	char generated[27];
	perch_new_ulid(generated);
	const char *task_uuid = perch_app_string(app, "task-uuid");
	if (task_uuid == NULL || *task_uuid == '\0')
		task_uuid = generated;
	int64_t max_parallel = perch_app_int(app, "max-parallel");
	perch_ctx *wf_ctx = timeout_ms > 0 ? perch_ctx_new_timeout(app->root, timeout_ms)
					   : perch_ctx_new(app->root);
	perch_ctx *cleanup = perch_ctx_new(app->root);
	struct sigwatch watch = {.wf = wf_ctx, .cleanup = cleanup};
	bool watching = sigwatch_start(&watch);
	fflush(stdout);

	perch_run_opts opts = {
		.plugin = p,
		.wf = wf,
		.task_uuid = task_uuid,
		.wf_ctx = wf_ctx,
		.cleanup_parent = cleanup,
		.cleanup_timeout_ms = CLEANUP_TIMEOUT_MS,
		.sinks = sinks,
		.n_sinks = n_sinks,
		.masker = masker,
		.log_level = level,
		.max_parallel = max_parallel > 0 ? (size_t)max_parallel : 0,
	};
	perch_run_result result;
	perch_runtime_run(&opts, &result);
	if (watching)
		sigwatch_stop(&watch);
	if (result.status == PERCH_RUN_KILLED && watch.count == 0 && timeout_ms > 0)
		fprintf(stderr, "perch: the workflow timed out after %s\n",
			perch_app_string(app, "timeout"));
	summary(&result, level);

	switch (result.status) {
	case PERCH_RUN_SUCCESS: rc = PERCH_EXIT_OK; break;
	case PERCH_RUN_FAILURE: rc = PERCH_EXIT_STEP_FAILED; break;
	case PERCH_RUN_KILLED: rc = PERCH_EXIT_CANCELLED; break;
	case PERCH_RUN_ERROR: rc = PERCH_EXIT_BACKEND; break;
	}
	const char *result_path = perch_app_string(app, "result");
	if (result_path) {
		char *json = perch_run_result_json(&result, task_uuid);
		if (write_result(result_path, json, &err) != 0) {
			fprintf(stderr, "perch: --result: %s\n", err);
			free(err);
			if (rc == PERCH_EXIT_OK)
				rc = PERCH_EXIT_BACKEND;
		}
		free(json);
	}
	if (result.abandoned_calls > 0) {
		/* A plugin call never returned and its thread still runs in
		 * the plugin with our workflow, contexts and task id: none of
		 * it can be freed, nor the plugin unloaded.  Leave at once;
		 * exit() would run teardown under that thread's feet. */
		fflush(NULL);
		_exit(rc);
	}
	perch_run_result_free(&result);
	perch_ctx_free(wf_ctx);
	perch_ctx_free(cleanup);
out:
	free(explain);
	for (size_t i = 0; i < n_sinks; i++)
		perch_logsink_free(sinks[i]);
	perch_masker_free(masker);
	perch_workflow_free(wf);
	return rc;
}
