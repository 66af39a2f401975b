/*
 * test_dummy.c - the dummy backend plugin, driven through its ABI entry by
 * the test host: Woodpecker's knobs, bad input, cancellation, concurrency,
 * big logs, and persistence across instances (restart and upgrade).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plugintest.h"
#include "testhost.h"
#include "util.h"

#define STATE_FLAG "backend-dummy-state-dir"

/* ---- helpers ---- */

/* Woodpecker's dummy output, computed independently of the plugin. */
static char *expected_log(const perch_step *s)
{
	perch_buf b = {0};
	perch_buf_printf(&b,
			 "StepName: %s\nStepType: %s\nStepUUID: %s\n"
			 "StepCommands:\n------------------\n",
			 s->name, s->type, s->uuid);
	for (size_t i = 0; i < s->commands.len; i++) {
		if (i > 0)
			perch_buf_putc(&b, '\n');
		perch_buf_puts(&b, s->commands.items[i]);
	}
	perch_buf_puts(&b, "\n------------------\n");
	return perch_buf_steal(&b);
}

static const char *after_lines(const char *s, int n)
{
	while (n-- > 0) {
		const char *nl = strchr(s, '\n');
		if (nl == NULL)
			return s + strlen(s);
		s = nl + 1;
	}
	return s;
}

static bool exists(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool exists(const char *fmt, ...)
{
	va_list ap;
	perch_buf b = {0};
	struct stat sb;
	bool ok;
	va_start(ap, fmt);
	perch_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	ok = lstat(b.data, &sb) == 0;
	perch_buf_free(&b);
	return ok;
}

static perch_instance *load_in(testhost *th, const perch_backend *be,
			       perch_ctx *ctx)
{
	perch_backend_info info = {.struct_size = sizeof info};
	perch_instance *inst = plugintest_load(th, be, ctx, &info);
	assert_string_equal(info.platform, "dummy");
	return inst;
}

/* One loaded dummy; dir is its state dir or NULL (memory only). */
typedef struct fx {
	testhost *th;
	const perch_backend *be;
	perch_instance *inst;
	char *dir;
} fx;

static void fx_open(fx *f, bool persistent)
{
	memset(f, 0, sizeof *f);
	f->th = testhost_new();
	if (persistent) {
		f->dir = plugintest_tmpdir("dummy");
		testhost_set_flag(f->th, STATE_FLAG, f->dir);
	}
	f->be = plugintest_open(f->th, "dummy");
	f->inst = load_in(f->th, f->be, testhost_ctx(f->th));
}

static void fx_close(fx *f)
{
	if (f->inst != NULL)
		f->be->unload(f->inst);
	testhost_free(f->th);
	plugintest_rm_tree(f->dir);
	memset(f, 0, sizeof *f);
}

static perch_ctx *ctx_of(fx *f)
{
	return testhost_ctx(f->th);
}

static perch_status setup(fx *f, const char *task, perch_error *err)
{
	return f->be->setup_workflow(f->inst, ctx_of(f), plugintest_empty_config(), task,
				     err);
}

static perch_status start(fx *f, plugintest_step *t, const char *task, perch_error *err)
{
	return f->be->start_step(f->inst, ctx_of(f), &t->step, task, err);
}

/* tail_step and read to the end; returns the output (caller frees) or NULL
 * with *st set. */
static char *tail(fx *f, plugintest_step *t, const char *task, perch_status *st,
		  perch_error *err)
{
	int fd = -1;
	*st = f->be->tail_step(f->inst, ctx_of(f), &t->step, task, &fd, err);
	if (*st != PERCH_OK)
		return NULL;
	if (fd < 0)
		return NULL;
	int flags = fcntl(fd, F_GETFD);
	if (!(flags & FD_CLOEXEC)) {
		close(fd);
		*st = -1; /* reported by the caller's assert */
		return NULL;
	}
	return testhost_read_all(fd);
}

static perch_status wait_in(fx *f, perch_ctx *ctx, plugintest_step *t, const char *task,
			    perch_state *state, perch_error *err)
{
	memset(state, 0, sizeof *state);
	state->struct_size = sizeof *state;
	return f->be->wait_step(f->inst, ctx, &t->step, task, state, err);
}

static perch_status destroy_step(fx *f, plugintest_step *t, const char *task,
				 perch_error *err)
{
	return f->be->destroy_step(f->inst, ctx_of(f), &t->step, task, err);
}

static perch_status destroy_wf(fx *f, const char *task, perch_error *err)
{
	return f->be->destroy_workflow(f->inst, ctx_of(f), plugintest_empty_config(), task,
				       err);
}

/* The whole cycle of one step; asserts each call. */
static void run_step(fx *f, plugintest_step *t, const char *task, int32_t want_code,
		     bool want_oom)
{
	perch_error err = testhost_error();
	perch_state state;
	perch_status st;
	char *out, *want;

	assert_int_equal(start(f, t, task, &err), PERCH_OK);
	out = tail(f, t, task, &st, &err);
	assert_int_equal(st, PERCH_OK);
	want = expected_log(&t->step);
	assert_string_equal(out, want);
	free(out);
	free(want);
	st = wait_in(f, ctx_of(f), t, task, &state, &err);
	if (st != PERCH_OK)
		fprintf(stderr, "wait: %s\n", err.message);
	assert_int_equal(st, PERCH_OK);
	assert_true(state.exited);
	assert_int_equal(state.exit_code, want_code);
	assert_int_equal(state.oom_killed, want_oom);
	assert_int_equal(destroy_step(f, t, task, &err), PERCH_OK);
}

/* ---- the entry object ---- */

static void test_entry(void **unused)
{
	testhost *th = testhost_new();
	const perch_backend *be = plugintest_open(th, "dummy");
	perch_error why = testhost_error();
	char *path;
	void *h;

	assert_int_equal(be->struct_size, sizeof(perch_backend));
	assert_int_equal(be->abi_major, PERCH_ABI_MAJOR);
	assert_string_equal(be->name, "dummy");
	assert_non_null(be->version);
	assert_true(be->version[0] != '\0');
	assert_int_equal(be->priority, 0);
	assert_non_null(be->flags);
	assert_non_null(be->flags[0]);
	assert_string_equal(be->flags[0]->name, STATE_FLAG);
	assert_int_equal(be->flags[0]->kind, PERCH_FLAG_STRING);
	assert_string_equal(be->flags[0]->env[0], "PERCH_BACKEND_DUMMY_STATE_DIR");
	assert_null(be->flags[0]->env[1]);
	assert_string_equal(be->flags[0]->default_value, "");
	assert_null(be->flags[1]);
	assert_true(be->is_available(testhost_table(th), testhost_ctx(th), &why));
	assert_true(be->is_available(testhost_table(th), testhost_bare_ctx(th),
				     &why));

	/* Only the entry is visible. */
	path = testhost_plugin_path("dummy");
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
	assert_non_null(h);
	assert_ptr_equal(dlsym(h, PERCH_BACKEND_SYMBOL), be);
	assert_null(dlsym(h, "perch_dummy_setup_workflow"));
	assert_null(dlsym(h, "perch_dummy_discoverer"));
	assert_null(dlsym(h, "perch_dummy_store_put_step"));
	assert_null(dlsym(h, "pp_buf_add")); /* plugins/common stays inside */
	dlclose(h);
	plugintest_assert_only_entry(path);
	free(path);
	testhost_free(th);
}

static void test_load_without_cli(void **unused)
{
	testhost *th = testhost_new();
	const perch_backend *be = plugintest_open(th, "dummy");
	perch_instance *inst = load_in(th, be, testhost_bare_ctx(th));

	assert_non_null(be->get_capability(inst, PERCH_CAP_WORKFLOW_DISCOVERER));
	assert_non_null(be->get_capability(inst, PERCH_CAP_WORKFLOW_RESUMER));
	assert_null(be->get_capability(inst, "perch.nope/1"));
	const perch_workflow_discoverer_v1 *d =
		be->get_capability(inst, PERCH_CAP_WORKFLOW_DISCOVERER);
	const perch_workflow_resumer_v1 *r =
		be->get_capability(inst, PERCH_CAP_WORKFLOW_RESUMER);
	assert_int_equal(d->struct_size, sizeof *d);
	assert_non_null(d->discover_workflows);
	assert_int_equal(r->struct_size, sizeof *r);
	assert_non_null(r->resume_step);
	be->unload(inst);
	testhost_free(th);
}

static void test_load_with_cli(void **unused)
{
	testhost *th = testhost_new();
	const perch_backend *be = plugintest_open(th, "dummy");
	char *base = plugintest_tmpdir("dummy");
	char *nested = perch_xasprintf("%s/a/b", base);
	char *file = perch_xasprintf("%s/file", base);
	char *under_file = perch_xasprintf("%s/file/x", base);
	perch_backend_info info = {.struct_size = sizeof info};
	perch_error err = testhost_error();
	perch_instance *inst;

	/* Empty (the default): memory only. */
	testhost_set_flag(th, STATE_FLAG, "");
	inst = load_in(th, be, testhost_ctx(th));
	be->unload(inst);

	/* A missing folder is created, parents too. */
	testhost_set_flag(th, STATE_FLAG, nested);
	inst = load_in(th, be, testhost_ctx(th));
	assert_true(exists("%s", nested));
	be->unload(inst);

	/* A folder that cannot be: a clear error, no instance. */
	FILE *fp = fopen(file, "w");
	assert_non_null(fp);
	fclose(fp);
	testhost_set_flag(th, STATE_FLAG, under_file);
	inst = (perch_instance *)&err; /* must be reset */
	assert_int_equal(be->load(testhost_table(th), testhost_ctx(th), &inst,
				  &info, &err),
			 PERCH_ERR_IO);
	assert_null(inst);
	assert_non_null(strstr(err.message, under_file));

	/* A file where the folder should be. */
	testhost_set_flag(th, STATE_FLAG, file);
	err = testhost_error();
	assert_int_equal(be->load(testhost_table(th), testhost_ctx(th), &inst,
				  &info, &err),
			 PERCH_ERR_IO);
	assert_null(inst);
	assert_non_null(strstr(err.message, strerror(ENOTDIR)));

	free(nested);
	free(file);
	free(under_file);
	plugintest_rm_tree(base);
	testhost_free(th);
}

/* ---- the step cycle and the knobs ---- */

static void cycle(bool persistent)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();

	fx_open(&f, persistent);
	assert_int_equal(setup(&f, "wf-1", &err), PERCH_OK);
	if (persistent) {
		assert_true(exists("%s/wf-1/workflow", f.dir));
	}
	plugintest_step_init(&t, "build", "step-1", PERCH_STEP_COMMANDS, "");
	plugintest_cmd(&t, "echo hello");
	plugintest_cmd(&t, "make 'all' \"x\" % \\ \t tab");
	assert_int_equal(start(&f, &t, "wf-1", &err), PERCH_OK);
	if (persistent) {
		assert_true(exists("%s/wf-1/steps/step-1", f.dir));
	}
	perch_status st;
	char *out = tail(&f, &t, "wf-1", &st, &err);
	assert_int_equal(st, PERCH_OK);
	assert_string_equal(out,
			    "StepName: build\nStepType: commands\n"
			    "StepUUID: step-1\nStepCommands:\n"
			    "------------------\n"
			    "echo hello\nmake 'all' \"x\" % \\ \t tab\n"
			    "------------------\n");
	free(out);
	perch_state state;
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "wf-1", &state, &err),
			 PERCH_OK);
	assert_true(state.exited);
	assert_int_equal(state.exit_code, 0);
	assert_false(state.oom_killed);
	assert_int_equal(destroy_step(&f, &t, "wf-1", &err), PERCH_OK);
	if (persistent) {
		assert_false(exists("%s/wf-1/steps/step-1", f.dir));
	}
	/* Idempotent. */
	assert_int_equal(destroy_step(&f, &t, "wf-1", &err), PERCH_OK);

	/* No commands: Go's Join of nothing is "". */
	plugintest_step_init(&t, "empty", "step-2", PERCH_STEP_CLONE, "");
	run_step(&f, &t, "wf-1", 0, false);

	assert_int_equal(destroy_wf(&f, "wf-1", &err), PERCH_OK);
	if (persistent) {
		assert_false(exists("%s/wf-1", f.dir));
	}
	assert_int_equal(destroy_wf(&f, "wf-1", &err), PERCH_OK);
	/* The uuid can be reused once destroyed. */
	assert_int_equal(setup(&f, "wf-1", &err), PERCH_OK);
	assert_int_equal(destroy_wf(&f, "wf-1", &err), PERCH_OK);
	fx_close(&f);
}

static void test_cycle_memory(void **unused)
{
	cycle(false);
}

static void test_cycle_persistent(void **unused)
{
	cycle(true);
}

static void test_expect_type(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();

	fx_open(&f, false);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	plugintest_step_init(&t, "p", "s1", PERCH_STEP_COMMANDS, "");
	plugintest_env(&t, "EXPECT_TYPE", "plugin");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_ERR);
	assert_string_equal(err.message,
			    "expected step type 'plugin' but got 'commands'");
	/* Refused steps are not started: the right type now starts. */
	t.step.type = PERCH_STEP_PLUGIN;
	run_step(&f, &t, "wf", 0, false);
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

static void test_start_fail(void **unused)
{
	static const char *const truths[] = {"1", "t", "T", "TRUE", "true", "True"};
	static const char *const lies[] = {"0", "false", "yes", "on", " true", ""};
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	char uuid[32];

	fx_open(&f, false);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	for (size_t i = 0; i < 6; i++) {
		snprintf(uuid, sizeof uuid, "t%zu", i);
		plugintest_step_init(&t, "s", uuid, PERCH_STEP_COMMANDS, "");
		plugintest_env(&t, "STEP_START_FAIL", truths[i]);
		err = testhost_error();
		assert_int_equal(start(&f, &t, "wf", &err), PERCH_ERR);
		assert_string_equal(err.message, "expected fail to start step");
		/* Not started: tail and wait do not know it. */
		int fd = -1;
		assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step,
						 "wf", &fd, &err),
				 PERCH_ERR_NOT_FOUND);
		assert_int_equal(destroy_step(&f, &t, "wf", &err), PERCH_OK);
	}
	for (size_t i = 0; i < 6; i++) {
		snprintf(uuid, sizeof uuid, "l%zu", i);
		plugintest_step_init(&t, "s", uuid, PERCH_STEP_COMMANDS, "");
		plugintest_env(&t, "STEP_START_FAIL", lies[i]);
		run_step(&f, &t, "wf", 0, false);
	}
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

static void test_tail_fail(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state state;
	int fd = -1;

	fx_open(&f, false);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	plugintest_step_init(&t, "s", "u", PERCH_STEP_COMMANDS, "");
	plugintest_env(&t, "STEP_TAIL_FAIL", "true");
	plugintest_env(&t, "STEP_EXIT_CODE", "4");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step, "wf", &fd,
					 &err),
			 PERCH_ERR);
	assert_int_equal(fd, -1);
	assert_string_equal(err.message, "expected fail to read stdout of step");
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "wf", &state, &err),
			 PERCH_OK);
	assert_int_equal(state.exit_code, 4);
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

static void test_exit_code_and_oom(void **unused)
{
	static const struct {
		const char *code, *oom;
		int32_t want_code;
		bool want_oom;
	} cases[] = {
		{"3", NULL, 3, false},       {" 42\n", NULL, 42, false},
		{"-2", NULL, -2, false},     {"+5", NULL, 5, false},
		{"abc", NULL, 0, false},     {"7x", NULL, 0, false},
		{"", NULL, 0, false},        {"99999999999", NULL, 0, false},
		{"137", "true", 137, true},  {NULL, "1", 0, true},
		{NULL, "false", 0, false},   {NULL, "maybe", 0, false},
	};
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	char uuid[32];

	fx_open(&f, false);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(uuid, sizeof uuid, "s%zu", i);
		plugintest_step_init(&t, "s", uuid, PERCH_STEP_COMMANDS, "");
		if (cases[i].code)
			plugintest_env(&t, "STEP_EXIT_CODE", cases[i].code);
		if (cases[i].oom)
			plugintest_env(&t, "STEP_OOM_KILLED", cases[i].oom);
		run_step(&f, &t, "wf", cases[i].want_code, cases[i].want_oom);
	}
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

static void test_sleep(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state state;

	fx_open(&f, false);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);

	plugintest_step_init(&t, "s", "ok", PERCH_STEP_COMMANDS, "");
	plugintest_env(&t, "SLEEP", "20ms");
	plugintest_env(&t, "STEP_EXIT_CODE", "1");
	run_step(&f, &t, "wf", 1, false);

	plugintest_step_init(&t, "s", "negative", PERCH_STEP_COMMANDS, "");
	plugintest_env(&t, "SLEEP", "-1s");
	run_step(&f, &t, "wf", 0, false);

	/* SLEEP wins over the service rule (Woodpecker). */
	plugintest_step_init(&t, "svc", "svc", PERCH_STEP_SERVICE, "");
	plugintest_env(&t, "SLEEP", "1ms");
	run_step(&f, &t, "wf", 0, false);

	/* Go's ParseDuration needs a unit: "10" is an error at wait. */
	plugintest_step_init(&t, "s", "bad", PERCH_STEP_COMMANDS, "");
	plugintest_env(&t, "SLEEP", "10");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "wf", &state, &err),
			 PERCH_ERR_INVALID_INPUT);
	assert_non_null(strstr(err.message, "\"10\""));
	assert_non_null(strstr(err.message, "SLEEP"));
	assert_int_equal(destroy_step(&f, &t, "wf", &err), PERCH_OK);

	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

/* ---- bad input ---- */

static void test_setup_failure(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();

	fx_open(&f, true);
	assert_int_equal(setup(&f, "WorkflowSetupShouldFail", &err), PERCH_ERR);
	assert_string_equal(err.message, "expected fail to setup workflow");
	assert_false(exists("%s/WorkflowSetupShouldFail", f.dir));
	plugintest_step_init(&t, "s", "u", PERCH_STEP_COMMANDS, "");
	assert_int_equal(start(&f, &t, "WorkflowSetupShouldFail", &err),
			 PERCH_ERR_NOT_FOUND);
	assert_int_equal(destroy_step(&f, &t, "WorkflowSetupShouldFail", &err),
			 PERCH_OK);
	assert_int_equal(destroy_wf(&f, "WorkflowSetupShouldFail", &err),
			 PERCH_OK);
	assert_int_equal(destroy_wf(&f, "WorkflowSetupShouldFail", &err),
			 PERCH_OK);
	fx_close(&f);
}

static void test_double_calls(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state state;
	perch_status st;
	int fd = -1;

	fx_open(&f, true);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	assert_int_equal(setup(&f, "wf", &err), PERCH_ERR_INVALID_INPUT);
	assert_non_null(strstr(err.message, "wf"));

	plugintest_step_init(&t, "build", "u1", PERCH_STEP_COMMANDS, "");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
	err = testhost_error();
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_ERR_INVALID_INPUT);
	assert_non_null(strstr(err.message, "u1"));
	assert_non_null(strstr(err.message, "already started"));
	char *out = tail(&f, &t, "wf", &st, &err);
	assert_int_equal(st, PERCH_OK);
	free(out);
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "wf", &state, &err),
			 PERCH_OK);
	/* Ended: a second wait or a tail is a host bug, said so. */
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "wf", &state, &err),
			 PERCH_ERR_INVALID_INPUT);
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step, "wf", &fd,
					 &err),
			 PERCH_ERR_INVALID_INPUT);
	/* And still no double start after the end. */
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_ERR_INVALID_INPUT);
	assert_int_equal(destroy_step(&f, &t, "wf", &err), PERCH_OK);
	/* Destroyed: the uuid is free again. */
	run_step(&f, &t, "wf", 0, false);
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

static void test_not_found(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state state;
	int fd = -1;

	fx_open(&f, false);
	plugintest_step_init(&t, "build", "step-x", PERCH_STEP_COMMANDS, "");
	assert_int_equal(start(&f, &t, "nowhere", &err), PERCH_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "nowhere"));
	err = testhost_error();
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step, "nowhere",
					 &fd, &err),
			 PERCH_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "nowhere"));
	err = testhost_error();
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "nowhere", &state, &err),
			 PERCH_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "nowhere"));

	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	err = testhost_error();
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step, "wf", &fd,
					 &err),
			 PERCH_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "step-x"));
	assert_non_null(strstr(err.message, "wf"));
	err = testhost_error();
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "wf", &state, &err),
			 PERCH_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "step-x"));
	assert_int_equal(destroy_step(&f, &t, "wf", &err), PERCH_OK);
	assert_int_equal(destroy_step(&f, &t, "nowhere", &err), PERCH_OK);
	assert_int_equal(destroy_wf(&f, "nowhere", &err), PERCH_OK);
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

static void test_bad_names(void **unused)
{
	static const char *const bad[] = {"", ".", "..", "a/b", "../x", ".hidden",
					  "/abs"};
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();

	fx_open(&f, true);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err = testhost_error();
		assert_int_equal(setup(&f, bad[i], &err), PERCH_ERR_INVALID_INPUT);
		assert_true(err.message[0] != '\0');
		/* Nothing can exist under such a name: destroying it is fine. */
		assert_int_equal(destroy_wf(&f, bad[i], &err), PERCH_OK);
	}
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		plugintest_step_init(&t, "s", bad[i], PERCH_STEP_COMMANDS, "");
		err = testhost_error();
		assert_int_equal(start(&f, &t, "wf", &err),
				 PERCH_ERR_INVALID_INPUT);
		assert_int_equal(destroy_step(&f, &t, "wf", &err), PERCH_OK);
	}
	/* Nothing escaped the state dir. */
	char *parent = perch_xasprintf("%s/..", f.dir);
	assert_false(exists("%s/x", parent));
	free(parent);
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

/* ---- cancellation and services ---- */

typedef struct canceller {
	perch_ctx *ctx;
	int delay_ms;
} canceller;

static void *cancel_later(void *arg)
{
	canceller *c = arg;
	struct timespec ts = {0, (long)c->delay_ms * 1000000};
	nanosleep(&ts, NULL);
	perch_ctx_cancel(c->ctx);
	return NULL;
}

static void test_cancel_during_sleep(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state state;
	pthread_t thr;

	fx_open(&f, false);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	plugintest_step_init(&t, "s", "u", PERCH_STEP_COMMANDS, "");
	plugintest_env(&t, "SLEEP", "1h");
	plugintest_env(&t, "STEP_EXIT_CODE", "0");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);

	perch_ctx *wctx = perch_ctx_new(ctx_of(&f));
	canceller c = {wctx, 50};
	int64_t t0 = perch_mono_ms();
	assert_int_equal(pthread_create(&thr, NULL, cancel_later, &c), 0);
	assert_int_equal(wait_in(&f, wctx, &t, "wf", &state, &err),
			 PERCH_ERR_CANCELLED);
	/* A bound on "returned at all", not a timing assertion. */
	assert_true(perch_mono_ms() - t0 < 10000);
	pthread_join(thr, NULL);
	assert_true(state.exited);
	assert_int_equal(state.exit_code, 130);
	assert_false(state.oom_killed);
	perch_ctx_free(wctx);
	assert_int_equal(destroy_step(&f, &t, "wf", &err), PERCH_OK);
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

typedef struct waiter {
	fx *f;
	plugintest_step *t;
	const char *task;
	perch_ctx *ctx;
	perch_state state;
	perch_error err;
	perch_status st;
	volatile int entered;
} waiter;

static void *wait_thread(void *arg)
{
	waiter *w = arg;
	__atomic_store_n(&w->entered, 1, __ATOMIC_SEQ_CST);
	w->err = testhost_error();
	w->st = wait_in(w->f, w->ctx, w->t, w->task, &w->state, &w->err);
	return NULL;
}

/* A service runs until its workflow is destroyed.  The wait has to be
 * blocked before destroy_workflow for that to show (a wait after it finds
 * nothing), which a test cannot observe, so a lost race is run again. */
static void test_service_until_destroyed(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	bool seen = false;

	fx_open(&f, true);
	for (int attempt = 0; attempt < 50 && !seen; attempt++) {
		waiter w = {.f = &f, .t = &t, .task = "wf", .ctx = ctx_of(&f)};
		pthread_t thr;
		struct timespec ts = {0, 20 * 1000000};

		assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
		plugintest_step_init(&t, "db", "svc", PERCH_STEP_SERVICE, "");
		plugintest_env(&t, "STEP_EXIT_CODE", "5");
		assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
		assert_int_equal(pthread_create(&thr, NULL, wait_thread, &w), 0);
		while (!__atomic_load_n(&w.entered, __ATOMIC_SEQ_CST))
			nanosleep(&ts, NULL);
		nanosleep(&ts, NULL);
		assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
		pthread_join(thr, NULL);
		if (w.st == PERCH_ERR_NOT_FOUND)
			continue; /* the wait came too late */
		assert_int_equal(w.st, PERCH_OK);
		assert_true(w.state.exited);
		assert_int_equal(w.state.exit_code, 5);
		seen = true;
	}
	assert_true(seen);
	assert_false(exists("%s/wf", f.dir));
	fx_close(&f);
}

static void test_service_cancelled(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state state;
	pthread_t thr;

	fx_open(&f, false);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	plugintest_step_init(&t, "db", "svc", PERCH_STEP_SERVICE, "");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
	perch_ctx *wctx = perch_ctx_new(ctx_of(&f));
	canceller c = {wctx, 30};
	assert_int_equal(pthread_create(&thr, NULL, cancel_later, &c), 0);
	assert_int_equal(wait_in(&f, wctx, &t, "wf", &state, &err),
			 PERCH_ERR_CANCELLED);
	pthread_join(thr, NULL);
	assert_int_equal(state.exit_code, 130);
	perch_ctx_free(wctx);
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

/* ---- concurrency ---- */

#define N_WORKFLOWS 50
#define N_STEPS 4

typedef struct worker {
	fx *f;
	int index;
	char failure[1400];
} worker;

#define WFAIL(...)                                                            \
	do {                                                                   \
		snprintf(w->failure, sizeof w->failure, __VA_ARGS__);          \
		return NULL;                                                   \
	} while (0)

static void *worker_main(void *arg)
{
	worker *w = arg;
	fx *f = w->f;
	char task[32], uuids[N_STEPS][48], code[8];
	perch_error err = testhost_error();
	plugintest_step t;

	snprintf(task, sizeof task, "wf-%d", w->index);
	if (setup(f, task, &err) != PERCH_OK)
		WFAIL("setup %s: %s", task, err.message);
	for (int i = 0; i < N_STEPS; i++) {
		perch_state state;
		perch_status st;
		char *out, *want;

		snprintf(uuids[i], sizeof uuids[i], "%s-s%d", task, i);
		snprintf(code, sizeof code, "%d", (w->index + i) % 7);
		plugintest_step_init(&t, "step", uuids[i], PERCH_STEP_COMMANDS, "");
		plugintest_env(&t, "SLEEP", "1ms");
		plugintest_env(&t, "STEP_EXIT_CODE", code);
		plugintest_cmd(&t, task);
		plugintest_cmd(&t, uuids[i]);
		if (start(f, &t, task, &err) != PERCH_OK)
			WFAIL("start %s: %s", uuids[i], err.message);
		out = tail(f, &t, task, &st, &err);
		want = expected_log(&t.step);
		if (st != PERCH_OK || out == NULL || strcmp(out, want) != 0) {
			free(out);
			free(want);
			WFAIL("tail %s: %s", uuids[i], err.message);
		}
		free(out);
		free(want);
		if (wait_in(f, ctx_of(f), &t, task, &state, &err) != PERCH_OK)
			WFAIL("wait %s: %s", uuids[i], err.message);
		if (!state.exited || state.exit_code != (w->index + i) % 7)
			WFAIL("wait %s: exit %d", uuids[i], state.exit_code);
		/* Leave every other step for destroy_workflow. */
		if (i % 2 == 0 && destroy_step(f, &t, task, &err) != PERCH_OK)
			WFAIL("destroy %s: %s", uuids[i], err.message);
	}
	if (destroy_wf(f, task, &err) != PERCH_OK)
		WFAIL("destroy %s: %s", task, err.message);
	return NULL;
}

static void concurrency(bool persistent)
{
	fx f;
	worker w[N_WORKFLOWS];
	pthread_t thr[N_WORKFLOWS];

	fx_open(&f, persistent);
	for (int i = 0; i < N_WORKFLOWS; i++) {
		w[i] = (worker){.f = &f, .index = i};
		assert_int_equal(pthread_create(&thr[i], NULL, worker_main, &w[i]),
				 0);
	}
	for (int i = 0; i < N_WORKFLOWS; i++)
		pthread_join(thr[i], NULL);
	for (int i = 0; i < N_WORKFLOWS; i++) {
		if (w[i].failure[0] != '\0')
			fprintf(stderr, "worker %d: %s\n", i, w[i].failure);
		assert_string_equal(w[i].failure, "");
	}
	if (persistent) {
		for (int i = 0; i < N_WORKFLOWS; i++)
			assert_false(exists("%s/wf-%d", f.dir, i));
	}
	fx_close(&f);
}

static void test_concurrency_memory(void **unused)
{
	concurrency(false);
}

static void test_concurrency_persistent(void **unused)
{
	concurrency(true);
}

/* ---- big output ---- */

#define BIG_CMDS 8
#define BIG_CMD_LEN (200 * 1024)

static void big_step(plugintest_step *t, char **cmds, const char *uuid)
{
	plugintest_step_init(t, "big", uuid, PERCH_STEP_COMMANDS, "");
	for (int i = 0; i < BIG_CMDS; i++)
		plugintest_cmd(t, cmds[i]);
}

static void test_big_log(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state state;
	char *cmds[BIG_CMDS];
	int fd = -1;

	for (int i = 0; i < BIG_CMDS; i++) {
		cmds[i] = perch_xmalloc(BIG_CMD_LEN + 1);
		memset(cmds[i], 'a' + i, BIG_CMD_LEN);
		cmds[i][BIG_CMD_LEN] = '\0';
	}
	fx_open(&f, true);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);

	/* Read fully: every byte arrives, in order. */
	big_step(&t, cmds, "read");
	run_step(&f, &t, "wf", 0, false);

	/* The host closes its end early: no SIGPIPE, no hang. */
	big_step(&t, cmds, "closed");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step, "wf", &fd,
					 &err),
			 PERCH_OK);
	close(fd);
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "wf", &state, &err),
			 PERCH_OK);
	assert_int_equal(destroy_step(&f, &t, "wf", &err), PERCH_OK);

	/* Not read, then destroyed: the stream ends (short). */
	big_step(&t, cmds, "destroyed");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step, "wf", &fd,
					 &err),
			 PERCH_OK);
	assert_int_equal(wait_in(&f, ctx_of(&f), &t, "wf", &state, &err),
			 PERCH_OK);
	assert_int_equal(destroy_step(&f, &t, "wf", &err), PERCH_OK);
	char *out = testhost_read_all(fd);
	assert_true(strlen(out) < (size_t)BIG_CMDS * BIG_CMD_LEN);
	free(out);

	/* Not read at all, then unloaded: unload joins the writer. */
	big_step(&t, cmds, "abandoned");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step, "wf", &fd,
					 &err),
			 PERCH_OK);
	f.be->unload(f.inst);
	f.inst = NULL;
	out = testhost_read_all(fd);
	free(out);

	fx_close(&f);
	for (int i = 0; i < BIG_CMDS; i++)
		free(cmds[i]);
}

/* ---- discovery and resumption ---- */

typedef struct seen_wf {
	char task[64];
	size_t n_steps;
	char uuids[8][64];
	char names[8][64];
	char containers[8][80];
} seen_wf;

typedef struct seen {
	seen_wf wfs[8];
	size_t n;
	size_t stop_after; /* 0: never */
} seen;

static bool collect(void *user, const perch_discovered_workflow *wf)
{
	seen *s = user;
	seen_wf *w;

	if (s->n == 8)
		return false;
	w = &s->wfs[s->n++];
	snprintf(w->task, sizeof w->task, "%s", wf->task_uuid);
	for (size_t i = 0; i < wf->n_steps && i < 8; i++) {
		assert_int_equal(wf->steps[i]->struct_size,
				 sizeof(perch_discovered_step));
		snprintf(w->uuids[i], sizeof w->uuids[i], "%s",
			 wf->steps[i]->uuid);
		snprintf(w->names[i], sizeof w->names[i], "%s",
			 wf->steps[i]->name);
		snprintf(w->containers[i], sizeof w->containers[i], "%s",
			 wf->steps[i]->container_id);
	}
	w->n_steps = wf->n_steps;
	return s->stop_after == 0 || s->n < s->stop_after;
}

static const seen_wf *find_seen(const seen *s, const char *task)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->wfs[i].task, task) == 0)
			return &s->wfs[i];
	return NULL;
}

static int find_seen_step(const seen_wf *w, const char *uuid)
{
	for (size_t i = 0; i < w->n_steps; i++)
		if (strcmp(w->uuids[i], uuid) == 0)
			return (int)i;
	return -1;
}

static perch_status discover(fx *f, seen *s, perch_error *err)
{
	const perch_workflow_discoverer_v1 *d =
		f->be->get_capability(f->inst, PERCH_CAP_WORKFLOW_DISCOVERER);
	return d->discover_workflows(f->inst, ctx_of(f), collect, s, err);
}

static perch_status resume(fx *f, plugintest_step *t, const char *task,
			   const perch_resume_point *from, perch_error *err)
{
	const perch_workflow_resumer_v1 *r =
		f->be->get_capability(f->inst, PERCH_CAP_WORKFLOW_RESUMER);
	return r->resume_step(f->inst, ctx_of(f), &t->step, task, from, err);
}

static void test_discover_resume_memory(void **unused)
{
	fx f;
	plugintest_step a, b;
	perch_error err = testhost_error();
	perch_status st;
	seen s = {0};

	fx_open(&f, false);
	assert_int_equal(setup(&f, "wf-a", &err), PERCH_OK);
	assert_int_equal(setup(&f, "wf-b", &err), PERCH_OK);
	plugintest_step_init(&a, "alpha", "a1", PERCH_STEP_COMMANDS, "");
	plugintest_cmd(&a, "one");
	plugintest_cmd(&a, "two");
	plugintest_step_init(&b, "beta", "b1", PERCH_STEP_COMMANDS, "");
	assert_int_equal(start(&f, &a, "wf-a", &err), PERCH_OK);
	assert_int_equal(start(&f, &b, "wf-b", &err), PERCH_OK);

	assert_int_equal(discover(&f, &s, &err), PERCH_OK);
	assert_int_equal(s.n, 2);
	const seen_wf *w = find_seen(&s, "wf-a");
	assert_non_null(w);
	assert_int_equal(w->n_steps, 1);
	assert_string_equal(w->uuids[0], "a1");
	assert_string_equal(w->names[0], "alpha");
	assert_string_equal(w->containers[0], "dummy-a1");

	/* emit returning false stops discovery. */
	memset(&s, 0, sizeof s);
	s.stop_after = 1;
	assert_int_equal(discover(&f, &s, &err), PERCH_OK);
	assert_int_equal(s.n, 1);

	/* Re-attach in the same instance, after 6 lines. */
	perch_resume_point from = {.struct_size = sizeof from, .lines_seen = 6};
	assert_int_equal(resume(&f, &a, "wf-a", &from, &err), PERCH_OK);
	char *out = tail(&f, &a, "wf-a", &st, &err);
	assert_int_equal(st, PERCH_OK);
	assert_string_equal(out, "two\n------------------\n");
	free(out);
	/* More lines than there are: nothing left. */
	from.lines_seen = 1000;
	assert_int_equal(resume(&f, &a, "wf-a", &from, &err), PERCH_OK);
	out = tail(&f, &a, "wf-a", &st, &err);
	assert_string_equal(out, "");
	free(out);

	/* Unknown: not found, naming what. */
	plugintest_step_init(&b, "ghost", "g1", PERCH_STEP_COMMANDS, "");
	err = testhost_error();
	assert_int_equal(resume(&f, &b, "wf-a", NULL, &err), PERCH_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "g1"));
	err = testhost_error();
	assert_int_equal(resume(&f, &b, "wf-zz", NULL, &err),
			 PERCH_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "wf-zz"));

	assert_int_equal(destroy_wf(&f, "wf-a", &err), PERCH_OK);
	assert_int_equal(destroy_wf(&f, "wf-b", &err), PERCH_OK);
	memset(&s, 0, sizeof s);
	assert_int_equal(discover(&f, &s, &err), PERCH_OK);
	assert_int_equal(s.n, 0);
	fx_close(&f);
}

/*
 * The adoption path: an instance starts steps with a state dir and goes
 * away; a new instance (from a copy of the .so at another path, as an
 * upgrade would load it) discovers them, resumes them, tails only what the
 * host lacks and reports the outcomes fixed at start.
 */
static void test_persistence_upgrade(void **unused)
{
	char *dir = plugintest_tmpdir("dummy");
	char *copydir = plugintest_tmpdir("dummy");
	char *orig = testhost_plugin_path("dummy");
	char *copy = perch_xasprintf("%s/dummy-v2.so", copydir);
	perch_error err = testhost_error();
	perch_state state;
	perch_status st;
	plugintest_step slow, quick, gone, svc, cancelled;
	fx f1, f2;
	char *out, *want;

	/* Instance 1. */
	memset(&f1, 0, sizeof f1);
	f1.th = testhost_new();
	testhost_set_flag(f1.th, STATE_FLAG, dir);
	f1.be = plugintest_open(f1.th, "dummy");
	f1.inst = load_in(f1.th, f1.be, testhost_ctx(f1.th));
	assert_int_equal(setup(&f1, "task-1", &err), PERCH_OK);

	plugintest_step_init(&slow, "slow", "s-slow", PERCH_STEP_COMMANDS, "");
	plugintest_env(&slow, "SLEEP", "1500ms");
	plugintest_env(&slow, "STEP_EXIT_CODE", "3");
	plugintest_cmd(&slow, "first command");
	plugintest_cmd(&slow, "second\ncommand with a newline");
	assert_int_equal(start(&f1, &slow, "task-1", &err), PERCH_OK);
	/* The host read it all before going down (it only counts 5 lines). */
	out = tail(&f1, &slow, "task-1", &st, &err);
	assert_int_equal(st, PERCH_OK);
	free(out);

	plugintest_step_init(&quick, "quick", "s-quick", PERCH_STEP_COMMANDS, "");
	plugintest_env(&quick, "SLEEP", "1ms");
	plugintest_env(&quick, "STEP_EXIT_CODE", "7");
	plugintest_env(&quick, "STEP_OOM_KILLED", "true");
	assert_int_equal(start(&f1, &quick, "task-1", &err), PERCH_OK);

	plugintest_step_init(&gone, "gone", "s-gone", PERCH_STEP_COMMANDS, "");
	run_step(&f1, &gone, "task-1", 0, false);

	plugintest_step_init(&svc, "db", "s-svc", PERCH_STEP_SERVICE, "");
	assert_int_equal(start(&f1, &svc, "task-1", &err), PERCH_OK);

	plugintest_step_init(&cancelled, "cancelled", "s-cancel", PERCH_STEP_COMMANDS, "");
	plugintest_env(&cancelled, "SLEEP", "1h");
	assert_int_equal(start(&f1, &cancelled, "task-1", &err), PERCH_OK);
	perch_ctx *dead = perch_ctx_new(ctx_of(&f1));
	perch_ctx_cancel(dead);
	assert_int_equal(wait_in(&f1, dead, &cancelled, "task-1", &state, &err),
			 PERCH_ERR_CANCELLED);
	assert_int_equal(state.exit_code, 130);
	perch_ctx_free(dead);

	/* A workflow set up but never given a step is adopted too. */
	assert_int_equal(setup(&f1, "task-2", &err), PERCH_OK);

	/* Instance 1 goes away; its state stays. */
	f1.be->unload(f1.inst);
	f1.inst = NULL;
	testhost_free(f1.th);
	assert_true(exists("%s/task-1/steps/s-slow", dir));

	/* Instance 2, from another path. */
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", orig, copy);
	assert_int_equal(system(cmd), 0);
	memset(&f2, 0, sizeof f2);
	f2.th = testhost_new();
	testhost_set_flag(f2.th, STATE_FLAG, dir);
	f2.be = testhost_open(f2.th, copy);
	assert_non_null(f2.be);
	f2.inst = load_in(f2.th, f2.be, testhost_ctx(f2.th));

	seen s = {0};
	assert_int_equal(discover(&f2, &s, &err), PERCH_OK);
	assert_int_equal(s.n, 2);
	const seen_wf *w = find_seen(&s, "task-1");
	assert_non_null(w);
	assert_int_equal(w->n_steps, 4);
	int i = find_seen_step(w, "s-slow");
	assert_true(i >= 0);
	assert_string_equal(w->names[i], "slow");
	assert_string_equal(w->containers[i], "dummy-s-slow");
	assert_true(find_seen_step(w, "s-quick") >= 0);
	assert_true(find_seen_step(w, "s-svc") >= 0);
	assert_true(find_seen_step(w, "s-cancel") >= 0);
	assert_int_equal(find_seen_step(w, "s-gone"), -1);
	w = find_seen(&s, "task-2");
	assert_non_null(w);
	assert_int_equal(w->n_steps, 0);

	/* Resume the slow one after the 5 lines the host has. */
	perch_resume_point from = {.struct_size = sizeof from, .lines_seen = 5};
	assert_int_equal(resume(&f2, &slow, "task-1", &from, &err), PERCH_OK);
	out = tail(&f2, &slow, "task-1", &st, &err);
	assert_int_equal(st, PERCH_OK);
	want = expected_log(&slow.step);
	assert_string_equal(out, after_lines(want, 5));
	assert_string_equal(out, "first command\nsecond\ncommand with a newline\n"
				 "------------------\n");
	free(want);
	free(out);
	assert_int_equal(wait_in(&f2, ctx_of(&f2), &slow, "task-1", &state,
				 &err),
			 PERCH_OK);
	assert_true(state.exited);
	assert_int_equal(state.exit_code, 3);
	assert_false(state.oom_killed);

	/* The quick one ended while nobody watched: its outcome at once. */
	assert_int_equal(resume(&f2, &quick, "task-1", NULL, &err), PERCH_OK);
	out = tail(&f2, &quick, "task-1", &st, &err);
	want = expected_log(&quick.step);
	assert_string_equal(out, want);
	free(want);
	free(out);
	assert_int_equal(wait_in(&f2, ctx_of(&f2), &quick, "task-1", &state,
				 &err),
			 PERCH_OK);
	assert_int_equal(state.exit_code, 7);
	assert_true(state.oom_killed);

	/* The cancelled one stays ended with 130. */
	assert_int_equal(resume(&f2, &cancelled, "task-1", NULL, &err),
			 PERCH_OK);
	assert_int_equal(wait_in(&f2, ctx_of(&f2), &cancelled, "task-1", &state,
				 &err),
			 PERCH_OK);
	assert_int_equal(state.exit_code, 130);

	/* The service is still a service: it only ends by destruction or
	 * cancellation (an ended step would report OK at once). */
	assert_int_equal(resume(&f2, &svc, "task-1", NULL, &err), PERCH_OK);
	dead = perch_ctx_new(ctx_of(&f2));
	perch_ctx_cancel(dead);
	assert_int_equal(wait_in(&f2, dead, &svc, "task-1", &state, &err),
			 PERCH_ERR_CANCELLED);
	perch_ctx_free(dead);

	/* A step that was destroyed cannot be resumed. */
	err = testhost_error();
	assert_int_equal(resume(&f2, &gone, "task-1", NULL, &err),
			 PERCH_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "s-gone"));

	assert_int_equal(destroy_step(&f2, &slow, "task-1", &err), PERCH_OK);
	assert_false(exists("%s/task-1/steps/s-slow", dir));
	assert_int_equal(destroy_wf(&f2, "task-1", &err), PERCH_OK);
	/* task-2 was never resumed: destroying it from disk works too. */
	assert_int_equal(destroy_wf(&f2, "task-2", &err), PERCH_OK);
	assert_false(exists("%s/task-1", dir));
	assert_false(exists("%s/task-2", dir));

	memset(&s, 0, sizeof s);
	assert_int_equal(discover(&f2, &s, &err), PERCH_OK);
	assert_int_equal(s.n, 0);

	f2.be->unload(f2.inst);
	testhost_free(f2.th);
	free(orig);
	free(copy);
	plugintest_rm_tree(dir);
	plugintest_rm_tree(copydir);
}

/* Damaged state: a corrupt record is an error for its step and skipped by
 * discovery; foreign files are ignored. */
static void test_corrupt_state(void **unused)
{
	fx f;
	plugintest_step t;
	perch_error err = testhost_error();
	seen s = {0};
	FILE *fp;
	char *p;

	fx_open(&f, true);
	assert_int_equal(setup(&f, "wf", &err), PERCH_OK);
	plugintest_step_init(&t, "good", "good", PERCH_STEP_COMMANDS, "");
	assert_int_equal(start(&f, &t, "wf", &err), PERCH_OK);
	f.be->unload(f.inst);

	p = perch_xasprintf("%s/wf/steps/bad", f.dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("perch-dummy-step 1\nname x\n", fp);
	fclose(fp);
	free(p);
	p = perch_xasprintf("%s/not-a-workflow", f.dir);
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);

	f.inst = load_in(f.th, f.be, ctx_of(&f));
	assert_int_equal(discover(&f, &s, &err), PERCH_OK);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.wfs[0].n_steps, 1);
	assert_string_equal(s.wfs[0].uuids[0], "good");

	plugintest_step_init(&t, "bad", "bad", PERCH_STEP_COMMANDS, "");
	err = testhost_error();
	assert_int_equal(resume(&f, &t, "wf", NULL, &err), PERCH_ERR_IO);
	assert_non_null(strstr(err.message, "corrupt"));
	assert_int_equal(resume(&f, &t, "not-a-workflow", NULL, &err),
			 PERCH_ERR_NOT_FOUND);
	assert_int_equal(destroy_wf(&f, "wf", &err), PERCH_OK);
	fx_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry),
		cmocka_unit_test(test_load_without_cli),
		cmocka_unit_test(test_load_with_cli),
		cmocka_unit_test(test_cycle_memory),
		cmocka_unit_test(test_cycle_persistent),
		cmocka_unit_test(test_expect_type),
		cmocka_unit_test(test_start_fail),
		cmocka_unit_test(test_tail_fail),
		cmocka_unit_test(test_exit_code_and_oom),
		cmocka_unit_test(test_sleep),
		cmocka_unit_test(test_setup_failure),
		cmocka_unit_test(test_double_calls),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_bad_names),
		cmocka_unit_test(test_cancel_during_sleep),
		cmocka_unit_test(test_service_until_destroyed),
		cmocka_unit_test(test_service_cancelled),
		cmocka_unit_test(test_concurrency_memory),
		cmocka_unit_test(test_concurrency_persistent),
		cmocka_unit_test(test_big_log),
		cmocka_unit_test(test_discover_resume_memory),
		cmocka_unit_test(test_persistence_upgrade),
		cmocka_unit_test(test_corrupt_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
