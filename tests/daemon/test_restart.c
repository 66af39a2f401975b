/*
 * test_restart.c - what the daemon's adoption needs from a new instance of
 * a backend, one that did not set up the workflow it is asked about:
 *  - the dummy (with a state directory) starts the next stage's steps of a
 *    workflow an earlier instance set up, and destroys it;
 *  - the local backend removes the folder an earlier, killed process made
 *    for a workflow (and leaves alone the folder of a process that runs);
 *  - the dummy's hold knobs keep setup, start and destroy where a test
 *    wants to kill the host, and let go when the file goes or the call is
 *    cancelled.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plugintest.h"
#include "testhost.h"
#include "util.h"

#define DUMMY_STATE "backend-dummy-state-dir"
#define LOCAL_TEMP "backend-local-temp-dir"

static bool exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool exists(const char *fmt, ...)
{
	va_list ap;
	perch_buf b = {0};
	struct stat sb;
	va_start(ap, fmt);
	perch_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	bool ok = lstat(b.data, &sb) == 0;
	perch_buf_free(&b);
	return ok;
}

/* One loaded plugin with its own test host. */
typedef struct fx {
	testhost *th;
	const perch_backend *be;
	perch_instance *inst;
} fx;

static void fx_open(fx *f, const char *plugin, const char *flag, const char *value)
{
	memset(f, 0, sizeof *f);
	f->th = testhost_new();
	testhost_set_flag(f->th, flag, value);
	f->be = plugintest_open(f->th, plugin);
	f->inst = plugintest_load(f->th, f->be, testhost_ctx(f->th), NULL);
	assert_non_null(f->inst);
}

static void fx_close(fx *f)
{
	if (f->inst)
		f->be->unload(f->inst);
	testhost_free(f->th);
	memset(f, 0, sizeof *f);
}

/* start, tail to the end, wait, destroy_step; returns the output. */
static char *run_step(fx *f, plugintest_step *t, const char *task, int32_t want_code)
{
	perch_ctx *ctx = testhost_ctx(f->th);
	perch_error err = testhost_error();
	perch_state state = {.struct_size = sizeof state};
	int fd = -1;

	perch_status st = f->be->start_step(f->inst, ctx, &t->step, task, &err);
	if (st != PERCH_OK)
		fail_msg("start_step: %s", err.message);
	assert_int_equal(f->be->tail_step(f->inst, ctx, &t->step, task, &fd, &err), PERCH_OK);
	char *out = testhost_read_all(fd);
	assert_int_equal(f->be->wait_step(f->inst, ctx, &t->step, task, &state, &err), PERCH_OK);
	assert_true(state.exited);
	assert_int_equal(state.exit_code, want_code);
	assert_int_equal(f->be->destroy_step(f->inst, ctx, &t->step, task, &err), PERCH_OK);
	return out;
}

/* ---- dummy: the next stage on a new instance ---------------------------------- */

static void test_dummy_next_stage(void **unused)
{
	char *dir = plugintest_tmpdir("restart-dummy");
	perch_error err = testhost_error();
	plugintest_step a, b;
	fx f1, f2;

	fx_open(&f1, "dummy", DUMMY_STATE, dir);
	assert_int_equal(f1.be->setup_workflow(f1.inst, testhost_ctx(f1.th),
					       plugintest_empty_config(), "task-1", &err),
			 PERCH_OK);
	plugintest_step_init(&a, "first", "s-a", PERCH_STEP_COMMANDS, "");
	free(run_step(&f1, &a, "task-1", 0));
	/* The host goes away between the two stages. */
	fx_close(&f1);
	assert_true(exists("%s/task-1/workflow", dir));

	fx_open(&f2, "dummy", DUMMY_STATE, dir);
	plugintest_step_init(&b, "second", "s-b", PERCH_STEP_COMMANDS, "");
	plugintest_env(&b, "STEP_EXIT_CODE", "4");
	plugintest_cmd(&b, "make");
	char *out = run_step(&f2, &b, "task-1", 4);
	assert_non_null(strstr(out, "StepName: second\n"));
	assert_non_null(strstr(out, "\nmake\n"));
	free(out);
	/* Started twice is still refused, also for a workflow taken up. */
	plugintest_step_init(&b, "second", "s-b2", PERCH_STEP_COMMANDS, "");
	assert_int_equal(f2.be->start_step(f2.inst, testhost_ctx(f2.th), &b.step, "task-1",
					   &err),
			 PERCH_OK);
	assert_int_equal(f2.be->start_step(f2.inst, testhost_ctx(f2.th), &b.step, "task-1",
					   &err),
			 PERCH_ERR_INVALID_INPUT);

	/* Neither a workflow the folder does not hold nor a half set up one
	 * (no "workflow" file) can be continued; both can be destroyed. */
	err = testhost_error();
	assert_int_equal(f2.be->start_step(f2.inst, testhost_ctx(f2.th), &a.step, "task-2",
					   &err),
			 PERCH_ERR_NOT_FOUND);
	char *half = perch_xasprintf("%s/task-3", dir);
	assert_int_equal(mkdir(half, 0700), 0);
	char *half_steps = perch_xasprintf("%s/steps", half);
	assert_int_equal(mkdir(half_steps, 0700), 0);
	free(half_steps);
	free(half);
	assert_int_equal(f2.be->start_step(f2.inst, testhost_ctx(f2.th), &a.step, "task-3",
					   &err),
			 PERCH_ERR_NOT_FOUND);
	assert_int_equal(f2.be->destroy_workflow(f2.inst, testhost_ctx(f2.th),
						 plugintest_empty_config(), "task-3", &err),
			 PERCH_OK);
	assert_false(exists("%s/task-3", dir));

	assert_int_equal(f2.be->destroy_workflow(f2.inst, testhost_ctx(f2.th),
						 plugintest_empty_config(), "task-1", &err),
			 PERCH_OK);
	assert_false(exists("%s/task-1", dir));
	fx_close(&f2);
	plugintest_rm_tree(dir);
}

/* ---- dummy: hold knobs ---------------------------------------------------------- */

typedef struct setup_call {
	fx *f;
	const perch_config *cfg;
	const char *task;
	perch_ctx *ctx;
	perch_status st;
	perch_error err;
} setup_call;

static void *setup_thread(void *arg)
{
	setup_call *c = arg;
	c->err = testhost_error();
	c->st = c->f->be->setup_workflow(c->f->inst, c->ctx, c->cfg, c->task, &c->err);
	return NULL;
}

static void test_dummy_holds(void **unused)
{
	char *dir = plugintest_tmpdir("restart-hold");
	char *gate = perch_xasprintf("%s/gate", dir);
	char *state = perch_xasprintf("%s/state", dir);
	perch_error err = testhost_error();
	plugintest_step t;
	fx f;

	fx_open(&f, "dummy", DUMMY_STATE, state);
	plugintest_step_init(&t, "held", "s-held", PERCH_STEP_COMMANDS, "");
	plugintest_env(&t, "SETUP_HOLD_FILE", gate);
	plugintest_env(&t, "START_HOLD_FILE", gate);
	plugintest_env(&t, "DESTROY_HOLD_FILE", gate);
	const perch_step *steps[1] = {&t.step};
	perch_stage stage = {.struct_size = sizeof stage, .steps = steps, .n_steps = 1};
	const perch_stage *stages[1] = {&stage};
	perch_config cfg = {.struct_size = sizeof cfg, .stages = stages, .n_stages = 1};

	/* No file: nothing is held. */
	assert_int_equal(f.be->setup_workflow(f.inst, testhost_ctx(f.th), &cfg, "plain", &err),
			 PERCH_OK);
	free(run_step(&f, &t, "plain", 0));
	assert_int_equal(f.be->destroy_workflow(f.inst, testhost_ctx(f.th), &cfg, "plain", &err),
			 PERCH_OK);
	assert_false(exists("%s/plain", state));

	/* Setup held half done until the file goes. */
	FILE *fp = fopen(gate, "w");
	assert_non_null(fp);
	fclose(fp);
	setup_call c = {.f = &f, .cfg = &cfg, .task = "held", .ctx = testhost_ctx(f.th)};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, setup_thread, &c), 0);
	for (int i = 0; i < 1000 && !exists("%s/held/steps", state); i++)
		usleep(10 * 1000);
	assert_true(exists("%s/held/steps", state));
	/* Held: the file that completes it cannot come while the gate is. */
	assert_false(exists("%s/held/workflow", state));
	assert_int_equal(unlink(gate), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(c.st, PERCH_OK);
	assert_true(exists("%s/held/workflow", state));

	/* A cancelled call lets go at once: setup leaves nothing, start
	 * starts nothing, destroy still destroys. */
	fp = fopen(gate, "w");
	assert_non_null(fp);
	fclose(fp);
	perch_ctx *dead = perch_ctx_new(testhost_ctx(f.th));
	perch_ctx_cancel(dead);
	err = testhost_error();
	assert_int_equal(f.be->setup_workflow(f.inst, dead, &cfg, "cancelled", &err),
			 PERCH_ERR_CANCELLED);
	assert_non_null(strstr(err.message, "held by"));
	assert_false(exists("%s/cancelled", state));
	err = testhost_error();
	assert_int_equal(f.be->start_step(f.inst, dead, &t.step, "held", &err),
			 PERCH_ERR_CANCELLED);
	assert_false(exists("%s/held/steps/s-held", state));
	assert_int_equal(f.be->destroy_workflow(f.inst, dead, &cfg, "held", &err), PERCH_OK);
	assert_false(exists("%s/held", state));
	perch_ctx_free(dead);

	fx_close(&f);
	free(gate);
	free(state);
	plugintest_rm_tree(dir);
}

/* ---- local: a killed process's folder ------------------------------------------ */

/* The perch-local-* folders in dir. */
static int local_folders(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += strncmp(e->d_name, "perch-local-", 12) == 0;
	closedir(d);
	return n;
}

static void test_local_leftover(void **unused)
{
	char *tmp = plugintest_tmpdir("restart-local");
	perch_error err = testhost_error();
	fx f;

	/* A process sets a workflow up and ends without destroying it, as a
	 * killed host would: it execs true(1), which keeps its pid and start
	 * time and exits (and leaves valgrind, which does not follow an exec,
	 * nothing to report of a process that never cleaned up). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fx c;
		perch_error e = testhost_error();
		fx_open(&c, "local", LOCAL_TEMP, tmp);
		if (c.be->setup_workflow(c.inst, testhost_ctx(c.th), plugintest_empty_config(),
					 "task-L", &e) == PERCH_OK)
			execlp("true", "true", (char *)NULL);
		_exit(1);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(local_folders(tmp), 1);

	fx_open(&f, "local", LOCAL_TEMP, tmp);
	/* Another task's destroy leaves it. */
	assert_int_equal(f.be->destroy_workflow(f.inst, testhost_ctx(f.th),
						plugintest_empty_config(), "task-X", &err),
			 PERCH_OK);
	assert_int_equal(local_folders(tmp), 1);
	/* Its own goes, although this instance never set it up. */
	assert_int_equal(f.be->destroy_workflow(f.inst, testhost_ctx(f.th),
						plugintest_empty_config(), "task-L", &err),
			 PERCH_OK);
	assert_int_equal(local_folders(tmp), 0);

	/* The folder of a process that still runs (this one, through another
	 * instance) is not a leftover. */
	fx g;
	fx_open(&g, "local", LOCAL_TEMP, tmp);
	assert_int_equal(g.be->setup_workflow(g.inst, testhost_ctx(g.th),
					      plugintest_empty_config(), "task-M", &err),
			 PERCH_OK);
	assert_int_equal(f.be->destroy_workflow(f.inst, testhost_ctx(f.th),
						plugintest_empty_config(), "task-M", &err),
			 PERCH_OK);
	assert_int_equal(local_folders(tmp), 1);
	assert_int_equal(g.be->destroy_workflow(g.inst, testhost_ctx(g.th),
						plugintest_empty_config(), "task-M", &err),
			 PERCH_OK);
	assert_int_equal(local_folders(tmp), 0);
	fx_close(&g);
	fx_close(&f);
	plugintest_rm_tree(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dummy_next_stage),
		cmocka_unit_test(test_dummy_holds),
		cmocka_unit_test(test_local_leftover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
