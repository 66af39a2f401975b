/*
 * test_resume.c - the runtime's resume mode, hooks and abandoning
 * (host/runtime.c), with the real dummy plugin loaded twice: from its
 * build and from a copy, as two versions side by side, sharing the
 * dummy's state directory.  Run 1 begins a workflow on the first version
 * and is abandoned mid-step; run 2 takes it up on the second from a plan,
 * and the step's log continues where the host's copy ends.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctx.h"
#include "flags.h"
#include "loader.h"
#include "logsink.h"
#include "runtime.h"
#include "testhost.h"
#include "util.h"
#include "workflow.h"

#define N_STEPS 4

/* ---- a sink that keeps every line, per step ------------------------------ */

typedef struct keep_sink {
	perch_logsink base;
	pthread_mutex_t lock;
	perch_buf lines[N_STEPS]; /* "data\n" per line, by step name a..d */
	bool closed;              /* lines after this are dropped (an abandoned run) */
} keep_sink;

typedef struct keep_step {
	keep_sink *sink;
	int index;
} keep_step;

static void *keep_attach(perch_logsink *s, const char *name, const char *uuid, char **err)
{
	keep_step *st = perch_xcalloc(1, sizeof *st);
	st->sink = (keep_sink *)s;
	st->index = name[0] - 'a';
	(void)uuid;
	(void)err;
	return st;
}

static void keep_write(void *step, const perch_log_line *l)
{
	keep_step *st = step;
	pthread_mutex_lock(&st->sink->lock);
	if (!st->sink->closed) {
		perch_buf_append(&st->sink->lines[st->index], l->data, l->len);
		perch_buf_putc(&st->sink->lines[st->index], '\n');
	}
	pthread_mutex_unlock(&st->sink->lock);
}

static int keep_flush(void *step, char **err)
{
	(void)step;
	(void)err;
	return 0;
}

static int keep_detach(void *step, char **err)
{
	(void)err;
	free(step);
	return 0;
}

static void keep_destroy(perch_logsink *s)
{
	keep_sink *k = (keep_sink *)s;
	for (int i = 0; i < N_STEPS; i++)
		perch_buf_free(&k->lines[i]);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static const perch_logsink_ops keep_ops = {keep_attach, keep_write, keep_flush, keep_detach,
					   keep_destroy};

static keep_sink *keep_new(void)
{
	keep_sink *k = perch_xcalloc(1, sizeof *k);
	k->base.ops = &keep_ops;
	pthread_mutex_init(&k->lock, NULL);
	return k;
}

static const char *kept(keep_sink *k, int i)
{
	return k->lines[i].data ? k->lines[i].data : "";
}

/* ---- fixture --------------------------------------------------------------- */

typedef struct fixture {
	char *tmp;
	char *state;
	char *copy;
	perch_cli *cli;
	perch_registry *reg1;
	perch_cli *scratch;
	perch_registry *reg2;
	perch_plugin *p1, *p2;
	perch_ctx *root;
	/* hooks */
	pthread_mutex_t lock;
	bool started[N_STEPS];
	bool finished[N_STEPS];
	perch_step_result results[N_STEPS];
	bool record_at_finish[N_STEPS]; /* the dummy's record existed in the hook */
	const char *task;
	bool setup_done;
} fixture;

static void copy_file(const char *from, const char *to)
{
	size_t n = 0;
	char *err = NULL;
	char *data = perch_read_file(from, &n, &err);
	assert_non_null(data);
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0700);
	assert_true(fd >= 0);
	assert_int_equal(perch_write_all(fd, data, n), 0);
	close(fd);
	free(data);
}

static int setup(void **state)
{
	fixture *f = perch_xcalloc(1, sizeof *f);
	pthread_mutex_init(&f->lock, NULL);
	const char *base = getenv("TMPDIR");
	f->tmp = perch_xasprintf("%s/perch-resume-XXXXXX", base && *base ? base : "/tmp");
	assert_non_null(mkdtemp(f->tmp));
	f->state = perch_xasprintf("%s/dummy-state", f->tmp);
	f->copy = perch_xasprintf("%s/dummy-2.so", f->tmp);
	char *path = testhost_plugin_path("dummy");
	copy_file(path, f->copy);

	char *err = NULL;
	f->cli = perch_cli_new();
	f->reg1 = perch_registry_new(f->cli);
	f->reg1->log_level = PERCH_LOG_WARN;
	f->p1 = perch_registry_open(f->reg1, path);
	free(path);
	assert_null(f->p1->error);
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-dummy-state-dir", f->state, &err), 0);
	assert_int_equal(perch_cli_resolve(f->cli, NULL, &err), 0);
	f->root = perch_ctx_new(NULL);
	perch_ctx_set_value(f->root, PERCH_CTX_CLI_COMMAND, f->cli);
	assert_int_equal(perch_plugin_load(f->p1, f->root, &err), 0);
	/* The second version: its own copy, its own registry (its flags are
	 * the first's, resolved in f->cli). */
	f->scratch = perch_cli_new();
	f->reg2 = perch_registry_new(f->scratch);
	f->reg2->log_level = PERCH_LOG_WARN;
	f->p2 = perch_registry_open(f->reg2, f->copy);
	assert_null(f->p2->error);
	assert_int_equal(perch_plugin_load(f->p2, f->root, &err), 0);
	assert_non_null(f->p2->resumer);
	assert_non_null(f->p2->discoverer);
	/* Two objects, not one cached twice. */
	assert_ptr_not_equal(f->p1->entry, f->p2->entry);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	perch_registry_free(f->reg2);
	perch_registry_free(f->reg1);
	perch_cli_free(f->scratch);
	perch_cli_free(f->cli);
	perch_ctx_free(f->root);
	char *cmd = perch_xasprintf("rm -rf '%s'", f->tmp);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	for (int i = 0; i < N_STEPS; i++) {
		free(f->results[i].error);
		free(f->results[i].skip_reason);
	}
	pthread_mutex_destroy(&f->lock);
	free(f->tmp);
	free(f->state);
	free(f->copy);
	free(f);
	return 0;
}

static bool path_exists(const char *a, const char *b, const char *c)
{
	char *p = perch_xasprintf("%s/%s%s%s", a, b, c ? "/steps/" : "", c ? c : "");
	struct stat st;
	bool r = stat(p, &st) == 0;
	free(p);
	return r;
}

/* ---- hooks ------------------------------------------------------------------ */

static void on_setup(void *arg)
{
	fixture *f = arg;
	pthread_mutex_lock(&f->lock);
	f->setup_done = true;
	pthread_mutex_unlock(&f->lock);
}

static void on_started(void *arg, size_t i, const perch_step_result *res)
{
	fixture *f = arg;
	pthread_mutex_lock(&f->lock);
	f->started[i] = true;
	f->results[i].started_ns = res->started_ns;
	pthread_mutex_unlock(&f->lock);
}

static void on_finished(void *arg, size_t i, const perch_step_result *res)
{
	fixture *f = arg;
	/* Before destroy_step: the dummy still has the step's record. */
	bool rec = path_exists(f->state, f->task, res->step->uuid);
	pthread_mutex_lock(&f->lock);
	f->finished[i] = true;
	f->record_at_finish[i] = rec;
	perch_step_result *r = &f->results[i];
	free(r->error);
	free(r->skip_reason);
	*r = *res;
	r->error = res->error ? perch_xstrdup(res->error) : NULL;
	r->skip_reason = res->skip_reason ? perch_xstrdup(res->skip_reason) : NULL;
	pthread_mutex_unlock(&f->lock);
}

static const char WORKFLOW[] =
	"{\"pipeline\":["
	"{\"steps\":[{\"name\":\"a\",\"uuid\":\"ua\",\"type\":\"commands\",\"commands\":[\"echo a\"],"
	"\"environment\":{},\"on_success\":true}]},"
	"{\"steps\":[{\"name\":\"b\",\"uuid\":\"ub\",\"type\":\"commands\",\"commands\":[\"echo b\"],"
	"\"environment\":{\"SLEEP\":\"1500ms\",\"STEP_EXIT_CODE\":\"3\"},\"on_success\":true},"
	"{\"name\":\"c\",\"uuid\":\"uc\",\"type\":\"commands\",\"commands\":[\"echo c\"],"
	"\"environment\":{},\"on_success\":true}]},"
	"{\"steps\":[{\"name\":\"d\",\"uuid\":\"ud\",\"type\":\"commands\",\"commands\":[\"echo d\"],"
	"\"environment\":{},\"on_success\":false,\"on_failure\":true}]}"
	"],\"network\":\"n\",\"volume\":\"v\",\"secrets\":[]}";

static const char B_OUTPUT[] = "StepName: b\nStepType: commands\nStepUUID: ub\nStepCommands:\n"
			       "------------------\necho b\n------------------\n";

typedef struct bg_run {
	perch_run_opts opts;
	perch_run_result result;
	pthread_t thread;
} bg_run;

static void *bg_main(void *arg)
{
	bg_run *b = arg;
	perch_runtime_run(&b->opts, &b->result);
	return NULL;
}

static void opts_init(perch_run_opts *o, fixture *f, perch_plugin *p, const perch_workflow *wf,
		      const char *task, perch_ctx *ctx, perch_ctx *cleanup, perch_logsink **k,
		      const perch_run_hooks *hooks)
{
	memset(o, 0, sizeof *o);
	o->plugin = p;
	o->wf = wf;
	o->task_uuid = task;
	o->wf_ctx = ctx;
	o->cleanup_parent = cleanup;
	o->cleanup_timeout_ms = 10000;
	o->sinks = k;
	o->n_sinks = 1;
	o->log_level = PERCH_LOG_ERROR;
	o->hooks = hooks;
	(void)f;
}

/* Waits (bounded) until cond holds under f->lock. */
#define WAIT_FOR(f, cond)                                                                   \
	do {                                                                                \
		int64_t end_ = perch_mono_ms() + 10000;                                     \
		for (;;) {                                                                  \
			pthread_mutex_lock(&(f)->lock);                                     \
			bool ok_ = (cond);                                                  \
			pthread_mutex_unlock(&(f)->lock);                                   \
			if (ok_)                                                            \
				break;                                                      \
			assert_true(perch_mono_ms() < end_);                                \
			usleep(5000);                                                       \
		}                                                                           \
	} while (0)

static void test_abandon_then_resume_elsewhere(void **state)
{
	fixture *f = *state;
	f->task = "task-handover";
	char *err = NULL;
	perch_workflow *wf = perch_workflow_parse(WORKFLOW, strlen(WORKFLOW), "wf", &err);
	assert_non_null(wf);
	perch_run_hooks hooks = {.arg = f, .setup_done = on_setup, .step_started = on_started,
				 .step_finished = on_finished};

	/* Run 1, on the first version, in the background. */
	keep_sink *k1 = keep_new();
	perch_ctx *ctx1 = perch_ctx_new(f->root), *clean1 = perch_ctx_new(f->root);
	perch_run_control *ctl = perch_run_control_new();
	bg_run *b = perch_xcalloc(1, sizeof *b);
	perch_logsink *s1[1] = {&k1->base};
	opts_init(&b->opts, f, f->p1, wf, f->task, ctx1, clean1, s1, &hooks);
	b->opts.control = ctl;
	assert_int_equal(pthread_create(&b->thread, NULL, bg_main, b), 0);
	/* b runs (1.5 s), its first lines arrived, and c has ended: abandon
	 * now. */
	WAIT_FOR(f, f->started[1] && f->finished[2]);
	for (int64_t end = perch_mono_ms() + 10000;;) {
		pthread_mutex_lock(&k1->lock);
		size_t n = 0;
		for (const char *p = kept(k1, 1); *p; p++)
			n += *p == '\n';
		pthread_mutex_unlock(&k1->lock);
		if (n >= 3)
			break;
		assert_true(perch_mono_ms() < end);
		usleep(5000);
	}
	perch_run_abandon(ctl);
	assert_true(perch_run_abandoned(ctl));
	pthread_mutex_lock(&k1->lock);
	k1->closed = true;
	pthread_mutex_unlock(&k1->lock);
	/* Run 1 returns once b's wait returns by itself; it destroyed
	 * nothing and reported no more. */
	pthread_join(b->thread, NULL);
	assert_true(b->result.abandoned);
	assert_true(path_exists(f->state, f->task, NULL));
	assert_true(path_exists(f->state, f->task, "ub"));
	assert_false(f->finished[1]);
	assert_false(f->started[3]);
	assert_true(f->setup_done);
	/* a's and c's results were final before destroy_step removed them. */
	assert_true(f->record_at_finish[0]);
	assert_true(f->record_at_finish[2]);
	perch_run_result_free(&b->result);

	/* The host keeps only b's first three lines (say, the rest never
	 * reached its disk): the new version continues from there. */
	perch_step_plan steps[N_STEPS] = {PERCH_PLAN_DONE, PERCH_PLAN_RESUME, PERCH_PLAN_DONE,
					  PERCH_PLAN_RUN};
	uint64_t lines[N_STEPS] = {0, 3, 0, 0};
	perch_run_plan plan = {.skip_setup = true, .steps = steps, .prior = f->results,
			       .lines_seen = lines};
	keep_sink *k2 = keep_new();
	perch_ctx *ctx2 = perch_ctx_new(f->root), *clean2 = perch_ctx_new(f->root);
	perch_run_opts o;
	perch_logsink *s2[1] = {&k2->base};
	opts_init(&o, f, f->p2, wf, f->task, ctx2, clean2, s2, &hooks);
	o.plan = &plan;
	perch_run_result r;
	perch_runtime_run(&o, &r);
	assert_false(r.abandoned);
	assert_int_equal(r.status, PERCH_RUN_FAILURE);
	assert_int_equal(r.n_steps, 4);
	/* a and c as they were; b with its real exit code, resumed; d ran
	 * because b failed. */
	assert_true(r.steps[0].exited);
	assert_int_equal(r.steps[0].exit_code, 0);
	assert_true(r.steps[1].resumed);
	assert_true(r.steps[1].exited);
	assert_int_equal(r.steps[1].exit_code, 3);
	assert_true(r.steps[1].failed);
	assert_int_equal(r.steps[1].log_lines, 7);
	assert_int_equal(r.steps[1].started_ns, f->results[1].started_ns);
	assert_false(r.steps[2].failed);
	assert_false(r.steps[3].skipped);
	assert_true(r.steps[3].exited);
	/* Every line of b exactly once across the two runs. */
	perch_buf all = {0};
	const char *first = kept(k1, 1);
	size_t nl = 0, cut = 0;
	for (size_t i = 0; first[i] && nl < 3; i++)
		if (first[i] == '\n')
			nl++, cut = i + 1;
	perch_buf_append(&all, first, cut);
	perch_buf_puts(&all, kept(k2, 1));
	assert_string_equal(all.data, B_OUTPUT);
	perch_buf_free(&all);
	/* Steps that were DONE were not run again. */
	assert_string_equal(kept(k2, 0), "");
	assert_string_equal(kept(k2, 2), "");
	assert_non_null(strstr(kept(k2, 3), "echo d"));
	/* The workflow is gone from the backend. */
	assert_false(path_exists(f->state, f->task, NULL));
	perch_run_result_free(&r);

	perch_run_control_free(ctl);
	perch_ctx_free(ctx1);
	perch_ctx_free(clean1);
	perch_ctx_free(ctx2);
	perch_ctx_free(clean2);
	perch_logsink_free(&k1->base);
	perch_logsink_free(&k2->base);
	free(b);
	perch_workflow_free(wf);
}

static void test_all_done_only_destroys(void **state)
{
	fixture *f = *state;
	f->task = "task-done";
	char *err = NULL;
	perch_workflow *wf = perch_workflow_parse(WORKFLOW, strlen(WORKFLOW), "wf", &err);
	assert_non_null(wf);
	perch_step_plan steps[N_STEPS] = {PERCH_PLAN_DONE, PERCH_PLAN_DONE, PERCH_PLAN_DONE,
					  PERCH_PLAN_DONE};
	perch_step_result prior[N_STEPS];
	memset(prior, 0, sizeof prior);
	for (int i = 0; i < N_STEPS; i++) {
		prior[i].started = prior[i].exited = true;
		prior[i].log_lines = 7;
	}
	prior[3].started = prior[3].exited = false;
	prior[3].skipped = true;
	prior[3].skip_reason = (char *)"on_success is false";
	perch_run_plan plan = {.skip_setup = true, .steps = steps, .prior = prior};
	keep_sink *k = keep_new();
	perch_ctx *ctx = perch_ctx_new(f->root), *clean = perch_ctx_new(f->root);
	perch_run_opts o;
	perch_run_hooks hooks = {.arg = f, .setup_done = on_setup, .step_started = on_started,
				 .step_finished = on_finished};
	perch_logsink *sk[1] = {&k->base};
	opts_init(&o, f, f->p2, wf, f->task, ctx, clean, sk, &hooks);
	o.plan = &plan;
	perch_run_result r;
	perch_runtime_run(&o, &r);
	assert_int_equal(r.status, PERCH_RUN_SUCCESS);
	assert_true(r.steps[3].skipped);
	assert_string_equal(r.steps[3].skip_reason, "on_success is false");
	assert_ptr_not_equal(r.steps[3].skip_reason, prior[3].skip_reason); /* copied */
	assert_string_equal(r.steps[1].step->name, "b");
	for (int i = 0; i < N_STEPS; i++) {
		assert_false(f->started[i]);
		assert_false(f->finished[i]);
		assert_string_equal(kept(k, i), "");
	}
	assert_false(f->setup_done);
	perch_run_result_free(&r);
	perch_ctx_free(ctx);
	perch_ctx_free(clean);
	perch_logsink_free(&k->base);
	perch_workflow_free(wf);
}

static void test_abandoned_before_start(void **state)
{
	fixture *f = *state;
	f->task = "task-never";
	char *err = NULL;
	perch_workflow *wf = perch_workflow_parse(WORKFLOW, strlen(WORKFLOW), "wf", &err);
	assert_non_null(wf);
	perch_run_control *ctl = perch_run_control_new();
	perch_run_abandon(ctl);
	keep_sink *k = keep_new();
	perch_ctx *ctx = perch_ctx_new(f->root), *clean = perch_ctx_new(f->root);
	perch_run_opts o;
	perch_logsink *sk[1] = {&k->base};
	opts_init(&o, f, f->p1, wf, f->task, ctx, clean, sk, NULL);
	o.control = ctl;
	perch_run_result r;
	perch_runtime_run(&o, &r);
	assert_true(r.abandoned);
	for (size_t i = 0; i < r.n_steps; i++)
		assert_true(r.steps[i].skipped);
	/* Not even set up. */
	assert_false(path_exists(f->state, f->task, NULL));
	perch_run_result_free(&r);
	perch_run_control_free(ctl);
	perch_ctx_free(ctx);
	perch_ctx_free(clean);
	perch_logsink_free(&k->base);
	perch_workflow_free(wf);
}

static void test_resume_unknown_step_is_an_error(void **state)
{
	fixture *f = *state;
	f->task = "task-unknown";
	char *err = NULL;
	perch_workflow *wf = perch_workflow_parse(WORKFLOW, strlen(WORKFLOW), "wf", &err);
	assert_non_null(wf);
	perch_step_plan steps[N_STEPS] = {PERCH_PLAN_RESUME, PERCH_PLAN_RUN, PERCH_PLAN_RUN,
					  PERCH_PLAN_RUN};
	perch_step_result prior[N_STEPS];
	memset(prior, 0, sizeof prior);
	perch_run_plan plan = {.skip_setup = true, .steps = steps, .prior = prior};
	keep_sink *k = keep_new();
	perch_ctx *ctx = perch_ctx_new(f->root), *clean = perch_ctx_new(f->root);
	perch_run_opts o;
	perch_logsink *sk[1] = {&k->base};
	opts_init(&o, f, f->p2, wf, f->task, ctx, clean, sk, NULL);
	o.plan = &plan;
	perch_run_result r;
	perch_runtime_run(&o, &r);
	/* The backend no longer knows the step: an infrastructure error that
	 * says so; the steps after it are skipped as after any failure. */
	assert_int_equal(r.status, PERCH_RUN_ERROR);
	assert_true(r.steps[0].infra_error);
	assert_non_null(strstr(r.steps[0].error, "resuming the step failed"));
	assert_true(r.steps[1].skipped);
	perch_run_result_free(&r);
	perch_ctx_free(ctx);
	perch_ctx_free(clean);
	perch_logsink_free(&k->base);
	perch_workflow_free(wf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_abandon_then_resume_elsewhere, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_done_only_destroys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandoned_before_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_unknown_step_is_an_error, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
