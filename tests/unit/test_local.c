/*
 * test_local.c - the local backend plugin, driven through its ABI entry by
 * the test host, with real processes: scripts and exit codes, shells,
 * environment, working directories, plugins, git clone, the grandchild
 * rule, detached steps, cancellation, big logs and concurrency.
 *
 * After every test: no descriptor more than before, no child process (no
 * zombie either), and nothing left in the plugin's temp dir.  Every test
 * runs under an alarm(): a hang kills the suite loudly instead of stalling.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plugintest.h"
#include "testhost.h"
#include "util.h"

#define F_TEMP "backend-local-temp-dir"
#define F_HOME "backend-local-isolated-home"
#define F_STOP "backend-local-stop-timeout"
#define WATCHDOG_S 120
#define BOUND_MS 10000

/* ---- steps ---------------------------------------------------------- */

/* A commands step run by sh; its uuid is its name. */
static void tstep_sh(plugintest_step *t, const char *name)
{
	plugintest_step_init(t, name, NULL, PERCH_STEP_COMMANDS, "sh");
}

/* ---- processes, descriptors, directories ---------------------------- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own */
}

/* State letter of pid from /proc, or 0 when it does not exist. */
static char proc_state(pid_t pid, pid_t *pgrp)
{
	char path[64], buf[512], st = 0;
	const char *p;
	int fd, ppid, pg = 0;
	ssize_t n;
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %c %d %d", &st, &ppid, &pg) != 3)
		return 0;
	if (pgrp)
		*pgrp = pg;
	return st;
}

/* Gone: absent, or a zombie (this sandbox's init does not reap). */
static bool proc_gone(pid_t pid)
{
	char st = proc_state(pid, NULL);
	return st == 0 || st == 'Z' || st == 'X';
}

static bool group_gone(pid_t pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool gone = true;
	assert_non_null(d);
	while (gone && (e = readdir(d)) != NULL) {
		pid_t pid = (pid_t)atoi(e->d_name), pg = 0;
		char st;
		if (pid <= 0)
			continue;
		st = proc_state(pid, &pg);
		if (st != 0 && st != 'Z' && st != 'X' && pg == pgid)
			gone = false;
	}
	closedir(d);
	return gone;
}

/* Waits up to BOUND_MS for a file with a number in it; returns it. */
static pid_t read_pid_file(const char *path)
{
	int64_t end = perch_mono_ms() + BOUND_MS;
	for (;;) {
		FILE *f = fopen(path, "re");
		int pid = 0;
		if (f != NULL) {
			if (fscanf(f, "%d", &pid) != 1)
				pid = 0;
			fclose(f);
		}
		if (pid > 0)
			return (pid_t)pid;
		if (perch_mono_ms() > end)
			fail_msg("no pid in %s", path);
		usleep(10000);
	}
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void write_exec(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, 0755), 0);
}

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "re");
	int n = 0, c;
	if (f == NULL)
		return 0;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/* ---- the fixture ---------------------------------------------------- */

typedef struct fx {
	testhost *th;
	const perch_backend *be;
	char *plugin_path;
	perch_instance *inst;
	char *tmp; /* the plugin's temp dir */
	char *aux; /* the test's scratch dir */
	int fds_before;
} fx;

static perch_instance *load(fx *f)
{
	return plugintest_load(f->th, f->be, testhost_ctx(f->th), NULL);
}

/* Loads again with flag=value (unloading the current instance). */
static void reload(fx *f, const char *flag, const char *value)
{
	f->be->unload(f->inst);
	testhost_set_flag(f->th, flag, value);
	f->inst = load(f);
}

static int setup(void **state)
{
	fx *f = perch_xcalloc(1, sizeof *f);
	alarm(WATCHDOG_S);
	f->fds_before = count_fds();
	f->th = testhost_new();
	f->tmp = plugintest_tmpdir("local-tmp");
	f->aux = plugintest_tmpdir("local-aux");
	testhost_set_flag(f->th, F_TEMP, f->tmp);
	testhost_set_flag(f->th, F_STOP, "2s");
	f->plugin_path = testhost_plugin_path("local");
	f->be = plugintest_open(f->th, "local");
	f->inst = load(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	int status, left;
	pid_t r;

	if (f->inst != NULL)
		f->be->unload(f->inst);
	left = count_entries(f->tmp);
	plugintest_rm_tree(f->tmp);
	plugintest_rm_tree(f->aux);
	testhost_free(f->th);
	free(f->plugin_path);
	/* No child of ours remains, running or zombie. */
	r = waitpid(-1, &status, WNOHANG);
	assert_int_equal(r, -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(left, 0);
	assert_int_equal(count_fds(), f->fds_before);
	free(f);
	alarm(0);
	return 0;
}

static void wf_setup(fx *f, const char *task)
{
	perch_error err = testhost_error();
	perch_status st = f->be->setup_workflow(f->inst, testhost_ctx(f->th),
						plugintest_empty_config(), task, &err);
	if (st != PERCH_OK)
		fail_msg("setup_workflow: %s", err.message);
}

static void wf_destroy(fx *f, const char *task)
{
	perch_error err = testhost_error();
	perch_status st = f->be->destroy_workflow(f->inst, testhost_ctx(f->th),
						  plugintest_empty_config(), task, &err);
	if (st != PERCH_OK)
		fail_msg("destroy_workflow: %s", err.message);
}

/* ---- running steps -------------------------------------------------- */

typedef struct reader {
	int fd;
	char *out;
	pthread_t thread;
} reader;

static void *reader_main(void *arg)
{
	reader *r = arg;
	r->out = testhost_read_all(r->fd);
	return NULL;
}

static void reader_start(reader *r, int fd)
{
	r->fd = fd;
	r->out = NULL;
	assert_int_equal(pthread_create(&r->thread, NULL, reader_main, r), 0);
}

static char *reader_join(reader *r)
{
	pthread_join(r->thread, NULL);
	return r->out;
}

typedef struct run {
	perch_status start_rc;
	perch_status wait_rc;
	perch_error err;
	perch_state state;
	char *log;
} run;

static perch_status start(fx *f, const char *task, const perch_step *s,
			  perch_error *err)
{
	*err = testhost_error();
	return f->be->start_step(f->inst, testhost_ctx(f->th), s, task, err);
}

static int tail(fx *f, const char *task, const perch_step *s)
{
	perch_error err = testhost_error();
	int fd = -1;
	perch_status st = f->be->tail_step(f->inst, testhost_ctx(f->th), s,
					   task, &fd, &err);
	if (st != PERCH_OK)
		fail_msg("tail_step: %s", err.message);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	return fd;
}

static void destroy_step(fx *f, const char *task, const perch_step *s)
{
	perch_error err = testhost_error();
	assert_int_equal(f->be->destroy_step(f->inst, testhost_ctx(f->th), s,
					     task, &err),
			 PERCH_OK);
}

/* start, tail (read concurrently, like the host), wait, destroy. */
static run run_step_ctx(fx *f, const char *task, const perch_step *s,
			perch_ctx *ctx)
{
	run r;
	reader rd;
	memset(&r, 0, sizeof r);
	r.state.struct_size = sizeof r.state;
	r.start_rc = start(f, task, s, &r.err);
	if (r.start_rc != PERCH_OK)
		return r;
	reader_start(&rd, tail(f, task, s));
	r.err = testhost_error();
	r.wait_rc = f->be->wait_step(f->inst, ctx, s, task, &r.state, &r.err);
	r.log = reader_join(&rd);
	destroy_step(f, task, s);
	return r;
}

static run run_step(fx *f, const char *task, const perch_step *s)
{
	return run_step_ctx(f, task, s, testhost_ctx(f->th));
}

/* Runs s in a fresh workflow and expects it to end with code. */
static char *run_expect(fx *f, const perch_step *s, int code)
{
	run r;
	wf_setup(f, "t");
	r = run_step(f, "t", s);
	wf_destroy(f, "t");
	if (r.start_rc != PERCH_OK)
		fail_msg("start_step: %s", r.err.message);
	if (r.wait_rc != PERCH_OK)
		fail_msg("wait_step: %s", r.err.message);
	assert_true(r.state.exited);
	assert_false(r.state.oom_killed);
	if (r.state.exit_code != code)
		fail_msg("exit code %d, expected %d; log:\n%s", r.state.exit_code,
			 code, r.log);
	return r.log;
}

/* start_step must fail with code and message. */
static void expect_start_error(fx *f, const perch_step *s, perch_status code,
			       const char *message)
{
	perch_error err;
	perch_status st;
	wf_setup(f, "t");
	st = start(f, "t", s, &err);
	destroy_step(f, "t", s);
	wf_destroy(f, "t");
	if (st != code)
		fail_msg("start_step: %s (%d), expected %d", err.message, st,
			 code);
	if (message != NULL)
		assert_string_equal(err.message, message);
}

/* The value of "key=" on a line of log, malloc'd. */
static char *log_value(const char *log, const char *key)
{
	size_t n = strlen(key);
	for (const char *p = log; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > n && strncmp(p, key, n) == 0 && p[n] == '=')
			return perch_xstrndup(p + n + 1, len - n - 1);
		p = nl ? nl + 1 : NULL;
	}
	fail_msg("no %s= in log:\n%s", key, log);
	return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ---- entry, availability, load -------------------------------------- */

static void test_entry(void **state)
{
	fx *f = *state;
	const perch_backend *be = f->be;
	const char *names[] = {F_TEMP, F_HOME, F_STOP};
	const uint32_t kinds[] = {PERCH_FLAG_STRING, PERCH_FLAG_BOOL,
				  PERCH_FLAG_DURATION};

	assert_int_equal(be->abi_major, PERCH_ABI_MAJOR);
	assert_int_equal(be->struct_size, sizeof(perch_backend));
	assert_string_equal(be->name, "local");
	assert_int_equal(be->priority, 10);
	assert_non_null(be->flags);
	for (int i = 0; i < 3; i++) {
		const perch_flag *fl = be->flags[i];
		char *env0, *env1;
		assert_non_null(fl);
		assert_string_equal(fl->name, names[i]);
		assert_int_equal(fl->kind, kinds[i]);
		assert_non_null(fl->usage);
		env0 = perch_xasprintf("PERCH_BACKEND_LOCAL_%s", names[i] + 14);
		env1 = perch_xasprintf("WOODPECKER_BACKEND_LOCAL_%s",
				       names[i] + 14);
		for (char *c = env0; *c; c++)
			*c = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
		for (char *c = env1; *c; c++)
			*c = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
		assert_string_equal(fl->env[0], env0);
		assert_string_equal(fl->env[1], env1);
		assert_null(fl->env[2]);
		free(env0);
		free(env1);
	}
	assert_null(be->flags[3]);
	assert_null(be->flags[0]->default_value);
	assert_string_equal(be->flags[1]->default_value, "true");
	assert_string_equal(be->flags[2]->default_value, "10s");
	assert_null(be->get_capability(f->inst, PERCH_CAP_WORKFLOW_DISCOVERER));
	assert_null(be->get_capability(f->inst, PERCH_CAP_WORKFLOW_RESUMER));

	/* Exactly one exported symbol. */
	plugintest_assert_only_entry(f->plugin_path);
}

static void test_is_available(void **state)
{
	fx *f = *state;
	perch_error why = testhost_error();
	const perch_host *h = testhost_table(f->th);
	perch_ctx *ctx = testhost_ctx(f->th);

	unsetenv("PERCH_IN_CONTAINER");
	unsetenv("WOODPECKER_IN_CONTAINER");
	assert_true(f->be->is_available(h, ctx, &why));
	setenv("WOODPECKER_IN_CONTAINER", "", 1); /* set, even if empty */
	assert_false(f->be->is_available(h, ctx, &why));
	assert_non_null(strstr(why.message, "WOODPECKER_IN_CONTAINER"));
	unsetenv("WOODPECKER_IN_CONTAINER");
	why = testhost_error();
	setenv("PERCH_IN_CONTAINER", "1", 1);
	assert_false(f->be->is_available(h, ctx, &why));
	assert_non_null(strstr(why.message, "PERCH_IN_CONTAINER"));
	unsetenv("PERCH_IN_CONTAINER");
}

static void test_load(void **state)
{
	fx *f = *state;
	perch_instance *inst = NULL;
	perch_backend_info info = {.struct_size = sizeof info};
	perch_error err = testhost_error();
	struct utsname u;
	const char *arch;
	char *want;

	/* No CLI context: the defaults, and a platform from uname. */
	assert_int_equal(f->be->load(testhost_table(f->th),
				     testhost_bare_ctx(f->th), &inst, &info,
				     &err),
			 PERCH_OK);
	f->be->unload(inst);
	assert_int_equal(uname(&u), 0);
	arch = !strcmp(u.machine, "x86_64")    ? "amd64"
	       : !strcmp(u.machine, "aarch64") ? "arm64"
					       : u.machine;
	want = perch_xasprintf("linux/%s", arch);
	assert_string_equal(info.platform, want);
	free(want);

	/* A temp dir that does not exist is refused at load. */
	testhost_set_flag(f->th, F_TEMP, "/nonexistent/perch-local");
	inst = NULL;
	err = testhost_error();
	assert_int_equal(f->be->load(testhost_table(f->th), testhost_ctx(f->th),
				     &inst, &info, &err),
			 PERCH_ERR_INVALID_INPUT);
	assert_null(inst);
	assert_non_null(strstr(err.message, "/nonexistent/perch-local"));
	testhost_set_flag(f->th, F_TEMP, f->tmp);

	testhost_set_flag(f->th, F_STOP, "-1s");
	err = testhost_error();
	assert_int_equal(f->be->load(testhost_table(f->th), testhost_ctx(f->th),
				     &inst, &info, &err),
			 PERCH_ERR_INVALID_INPUT);
	testhost_set_flag(f->th, F_STOP, "2s");
}

/* ---- scripts and exit codes ----------------------------------------- */

static void test_hello(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *log;
	tstep_sh(&t, "hello");
	plugintest_cmd(&t, "echo hi");
	log = run_expect(f, &t.step, 0);
	assert_string_equal(log, "+ echo hi\nhi\n");
	free(log);
}

static void test_failure_stops_script(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *log;
	tstep_sh(&t, "fail");
	plugintest_cmd(&t, "echo one");
	plugintest_cmd(&t, "sh -c 'exit 5'");
	plugintest_cmd(&t, "echo two");
	log = run_expect(f, &t.step, 5);
	assert_string_equal(log, "+ echo one\none\n+ sh -c 'exit 5'\n");
	free(log);

	tstep_sh(&t, "false");
	plugintest_cmd(&t, "false");
	plugintest_cmd(&t, "echo never");
	log = run_expect(f, &t.step, 1);
	assert_string_equal(log, "+ false\n");
	free(log);
}

static void test_exit_code(void **state)
{
	fx *f = *state;
	plugintest_step t;
	tstep_sh(&t, "exit");
	plugintest_cmd(&t, "exit 3");
	free(run_expect(f, &t.step, 3));
}

static void test_killed_by_signal(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *log;
	tstep_sh(&t, "kill");
	plugintest_cmd(&t, "kill -9 $$");
	plugintest_cmd(&t, "echo survived");
	log = run_expect(f, &t.step, 137);
	assert_null(strstr(log, "survived\n"));
	free(log);
}

static void test_command_not_found(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *log;
	tstep_sh(&t, "nf");
	plugintest_cmd(&t, "no_such_command_perch_xyz");
	log = run_expect(f, &t.step, 127);
	assert_non_null(strstr(log, "no_such_command_perch_xyz"));
	free(log);
}

static void test_quoting(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *log;
	tstep_sh(&t, "quote");
	plugintest_cmd(&t, "printf '%s\\n' 'it''s' \"a\\\\nb\"");
	log = run_expect(f, &t.step, 0);
	/* The trace shows the command exactly, backslashes included (an echo
	 * under dash would have turned \n into a newline). */
	assert_string_equal(log, "+ printf '%s\\n' 'it''s' \"a\\\\nb\"\n"
				 "its\na\\nb\n");
	free(log);
}

static void test_no_final_newline(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *log;
	tstep_sh(&t, "nonl");
	plugintest_cmd(&t, "printf abc");
	log = run_expect(f, &t.step, 0);
	assert_string_equal(log, "+ printf abc\nabc");
	free(log);
}

static void test_many_lines(void **state)
{
	fx *f = *state;
	plugintest_step t;
	perch_buf want = {0};
	char *log;
	tstep_sh(&t, "seq");
	plugintest_cmd(&t, "seq 1 50000");
	log = run_expect(f, &t.step, 0);
	perch_buf_puts(&want, "+ seq 1 50000\n");
	for (int i = 1; i <= 50000; i++)
		perch_buf_printf(&want, "%d\n", i);
	assert_int_equal(strlen(log), want.len);
	assert_string_equal(log, want.data);
	perch_buf_free(&want);
	free(log);
}

/* A script beyond one argv string (128 KiB) goes through a file. */
static void test_big_script(void **state)
{
	fx *f = *state;
	plugintest_step t;
	perch_buf cmd = {0};
	char *log;
	perch_buf_puts(&cmd, "x=");
	for (int i = 0; i < 150000; i++)
		perch_buf_putc(&cmd, 'a' + i % 26);
	perch_buf_puts(&cmd, "; echo ${#x}");
	tstep_sh(&t, "big");
	plugintest_cmd(&t, cmd.data);
	log = run_expect(f, &t.step, 0);
	assert_true(ends_with(log, "\n150000\n"));
	free(log);
	perch_buf_free(&cmd);
}

/* ---- shells --------------------------------------------------------- */

static void test_shells(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *fake, *counter, *script, *posix, *log, *msg;

	plugintest_step_init(&t, "s", NULL, PERCH_STEP_COMMANDS, "nosuchsh");
	plugintest_cmd(&t, "echo hi");
	expect_start_error(f, &t.step, PERCH_ERR_INVALID_INPUT,
			   "shell \"nosuchsh\" not found in PATH");

	plugintest_step_init(&t, "s", NULL, PERCH_STEP_COMMANDS, "");
	plugintest_cmd(&t, "echo hi");
	expect_start_error(f, &t.step, PERCH_ERR_INVALID_INPUT,
			   "no shell set (image)");

	plugintest_step_init(&t, "s", NULL, PERCH_STEP_COMMANDS, "sh");
	expect_start_error(f, &t.step, PERCH_ERR_INVALID_INPUT, NULL);

	/* Not POSIX: answers the probe wrongly.  Probed once. */
	fake = perch_xasprintf("%s/fish", f->aux);
	counter = perch_xasprintf("%s/probes", f->aux);
	script = perch_xasprintf("#!/bin/sh\necho probe >> '%s'\necho nope\n",
				 counter);
	write_exec(fake, script);
	msg = perch_xasprintf("shell \"%s\" is not a POSIX shell", fake);
	plugintest_step_init(&t, "s", NULL, PERCH_STEP_COMMANDS, fake);
	plugintest_cmd(&t, "echo hi");
	expect_start_error(f, &t.step, PERCH_ERR_INVALID_INPUT, msg);
	expect_start_error(f, &t.step, PERCH_ERR_INVALID_INPUT, msg);
	assert_int_equal(count_lines(counter), 1);

	/* A POSIX shell under another name passes the probe and runs. */
	posix = perch_xasprintf("%s/mysh", f->aux);
	assert_int_equal(symlink("/bin/sh", posix), 0);
	plugintest_step_init(&t, "s", NULL, PERCH_STEP_COMMANDS, posix);
	plugintest_cmd(&t, "echo hi");
	log = run_expect(f, &t.step, 0);
	assert_string_equal(log, "+ echo hi\nhi\n");
	free(log);

	/* bash by name, and sh by absolute path. */
	plugintest_step_init(&t, "s", NULL, PERCH_STEP_COMMANDS, "bash");
	plugintest_cmd(&t, "echo \"$BASH_VERSION\" | grep -q . && echo bash");
	log = run_expect(f, &t.step, 0);
	assert_true(ends_with(log, "\nbash\n"));
	free(log);
	plugintest_step_init(&t, "s", NULL, PERCH_STEP_COMMANDS, "/bin/sh");
	plugintest_cmd(&t, "echo abs");
	log = run_expect(f, &t.step, 0);
	assert_string_equal(log, "+ echo abs\nabs\n");
	free(log);

	free(fake);
	free(counter);
	free(script);
	free(posix);
	free(msg);
}

/* ---- environment, directories, home --------------------------------- */

static void test_environment(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *log, *ws, *home, *pwd, *foo, *shell;
	const char *host_shell = getenv("SHELL");

	tstep_sh(&t, "env");
	plugintest_env(&t, "HOME", "/x");
	plugintest_env(&t, "CI_WORKSPACE", "/y");
	plugintest_env(&t, "SHELL", "/z");
	plugintest_env(&t, "CI_SCRIPT", "evil");
	plugintest_env(&t, "FOO", "bar baz");
	plugintest_cmd(&t, "echo \"WS=$CI_WORKSPACE\"");
	plugintest_cmd(&t, "echo \"HOME=$HOME\"");
	plugintest_cmd(&t, "echo \"UP=$USERPROFILE\"");
	plugintest_cmd(&t, "echo \"PWD=$(pwd -P)\"");
	plugintest_cmd(&t, "echo \"FOO=$FOO\"");
	plugintest_cmd(&t, "echo \"SH=${SHELL:-}\" \"CS=${CI_SCRIPT:-unset}\"");
	log = run_expect(f, &t.step, 0);
	ws = log_value(log, "WS");
	home = log_value(log, "HOME");
	pwd = log_value(log, "PWD");
	foo = log_value(log, "FOO");
	assert_string_equal(pwd, ws);
	assert_true(strncmp(ws, f->tmp, strlen(f->tmp)) == 0);
	assert_true(ends_with(ws, "/workspace"));
	assert_true(ends_with(home, "/home"));
	assert_true(strncmp(home, ws, strlen(ws) - strlen("workspace")) == 0);
	assert_string_equal(foo, "bar baz");
	shell = perch_xasprintf("SH=%s CS=unset",
				host_shell ? host_shell : "");
	assert_non_null(strstr(log, shell));
	/* The overrides were named in a warning. */
	assert_non_null(strstr(testhost_last_log(f->th), "HOME"));
	/* Not CI_WORKSPACE: every compiled step carries one. */
	assert_null(strstr(testhost_last_log(f->th), "CI_WORKSPACE"));
	assert_non_null(strstr(testhost_last_log(f->th), "SHELL"));
	assert_non_null(strstr(testhost_last_log(f->th), "CI_SCRIPT"));
	free(log);
	free(ws);
	free(pwd);
	free(foo);
	free(shell);

	tstep_sh(&t, "home");
	plugintest_cmd(&t, "echo \"UP=$USERPROFILE\"");
	plugintest_cmd(&t, "touch \"$HOME/written\" && ls \"$HOME\"");
	log = run_expect(f, &t.step, 0);
	assert_non_null(strstr(log, "\nwritten\n"));
	free(log);
	free(home);
}

static void test_working_dir(void **state)
{
	fx *f = *state;
	plugintest_step t;
	run r;
	char *ws, *pwd, *abs;

	wf_setup(f, "t");
	tstep_sh(&t, "a");
	plugintest_cmd(&t, "echo \"PWD=$(pwd -P)\"");
	r = run_step(f, "t", &t.step);
	assert_int_equal(r.state.exit_code, 0);
	ws = log_value(r.log, "PWD");
	free(r.log);

	/* Relative: below the workspace, created on demand. */
	tstep_sh(&t, "b");
	t.step.working_dir = "sub/dir";
	plugintest_cmd(&t, "echo \"PWD=$(pwd -P)\"");
	r = run_step(f, "t", &t.step);
	assert_int_equal(r.state.exit_code, 0);
	pwd = log_value(r.log, "PWD");
	abs = perch_xasprintf("%s/sub/dir", ws);
	assert_string_equal(pwd, abs);
	free(pwd);
	free(abs);
	free(r.log);

	/* Absolute inside the workspace: used. */
	abs = perch_xasprintf("%s/abs", ws);
	tstep_sh(&t, "c");
	t.step.working_dir = abs;
	plugintest_cmd(&t, "echo \"PWD=$(pwd -P)\"");
	r = run_step(f, "t", &t.step);
	pwd = log_value(r.log, "PWD");
	assert_string_equal(pwd, abs);
	free(pwd);
	free(abs);
	free(r.log);

	/* Absolute elsewhere (Woodpecker's container path): ignored. */
	tstep_sh(&t, "d");
	t.step.working_dir = "/woodpecker/src/example.com/repo";
	plugintest_cmd(&t, "echo \"PWD=$(pwd -P)\"");
	r = run_step(f, "t", &t.step);
	pwd = log_value(r.log, "PWD");
	assert_string_equal(pwd, ws);
	free(pwd);
	free(r.log);

	/* Climbing out is refused. */
	tstep_sh(&t, "e");
	t.step.working_dir = "sub/../../x";
	plugintest_cmd(&t, "true");
	r = run_step(f, "t", &t.step);
	assert_int_equal(r.start_rc, PERCH_ERR_INVALID_INPUT);
	destroy_step(f, "t", &t.step);
	wf_destroy(f, "t");
	free(ws);
}

static void test_netrc(void **state)
{
	fx *f = *state;
	plugintest_step t;
	run r;
	char *log;

	wf_setup(f, "t");
	tstep_sh(&t, "netrc");
	plugintest_env(&t, "CI_NETRC_MACHINE", "git.example.com");
	plugintest_env(&t, "CI_NETRC_USERNAME", "user");
	plugintest_env(&t, "CI_NETRC_PASSWORD", "secret");
	plugintest_cmd(&t, "cat \"$HOME/.netrc\"");
	plugintest_cmd(&t, "stat -c %a \"$HOME/.netrc\"");
	plugintest_cmd(&t, "echo \"PW=${CI_NETRC_PASSWORD:-unset}\"");
	r = run_step(f, "t", &t.step);
	assert_int_equal(r.state.exit_code, 0);
	assert_non_null(strstr(r.log, "\nmachine git.example.com\nlogin user\n"
				      "password secret\n"));
	assert_non_null(strstr(r.log, "\n600\n"));
	assert_non_null(strstr(r.log, "\nPW=unset\n"));
	free(r.log);
	/* Gone once the step that needed it ended. */
	tstep_sh(&t, "after");
	plugintest_cmd(&t, "test ! -e \"$HOME/.netrc\"");
	r = run_step(f, "t", &t.step);
	assert_int_equal(r.state.exit_code, 0);
	free(r.log);
	wf_destroy(f, "t");

	/* Without an isolated home: the host's HOME, and no netrc. */
	reload(f, F_HOME, "false");
	tstep_sh(&t, "shared");
	plugintest_env(&t, "CI_NETRC_MACHINE", "git.example.com");
	plugintest_env(&t, "CI_NETRC_PASSWORD", "secret");
	plugintest_cmd(&t, "echo \"HOME=${HOME:-}\"");
	log = run_expect(f, &t.step, 0);
	{
		char *home = log_value(log, "HOME");
		const char *mine = getenv("HOME");
		assert_string_equal(home, mine ? mine : "");
		free(home);
	}
	free(log);
	reload(f, F_HOME, "true");
}

/* The step starts with a clean process state: stdin /dev/null, only fds
 * 0-2, no blocked or ignored signals, whatever the host thread had. */
static void test_process_hygiene(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *log;
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */
	sigset_t block, old;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;

	assert_true(leak >= 0);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	sigaction(SIGPIPE, &ign, &old_pipe);

	tstep_sh(&t, "hyg");
	plugintest_cmd(&t, "echo \"IN=$(readlink /proc/$$/fd/0)\"");
	plugintest_cmd(&t, "echo FDS; ls /proc/$$/fd");
	/* grep's own status: the shell's may show the all-blocked mask that
	 * dash holds around fork(). */
	plugintest_cmd(&t, "grep -E '^Sig(Blk|Ign)' /proc/self/status");
	plugintest_cmd(&t, "yes | head -n 1");
	log = run_expect(f, &t.step, 0);

	sigaction(SIGPIPE, &old_pipe, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(leak);

	if (getenv("TEST_LOCAL_VERBOSE"))
		fprintf(stderr, "%s", log);
	assert_non_null(strstr(log, "\nIN=/dev/null\n"));
	assert_non_null(strstr(log, "\nFDS\n0\n1\n2\n+ "));
	assert_non_null(strstr(log, "\nSigBlk:\t0000000000000000\n"));
	assert_non_null(strstr(log, "\nSigIgn:\t0000000000000000\n"));
	assert_true(ends_with(log, "+ yes | head -n 1\ny\n"));
	free(log);
}

/* ---- plugin and clone steps ----------------------------------------- */

static void test_plugin(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *path, *path_env, *log, *pwd;

	path = perch_xasprintf("%s/myplugin", f->aux);
	write_exec(path, "#!/bin/sh\necho \"plugin:$PLUGIN_GREETING:$#\"\n"
			 "echo \"PWD=$(pwd -P)\"\nexit ${PLUGIN_EXIT:-0}\n");
	plugintest_step_init(&t, "p", NULL, PERCH_STEP_PLUGIN, path);
	plugintest_env(&t, "PLUGIN_GREETING", "hello");
	log = run_expect(f, &t.step, 0);
	assert_true(strncmp(log, "plugin:hello:0\n", 15) == 0);
	pwd = log_value(log, "PWD");
	assert_true(ends_with(pwd, "/workspace"));
	free(pwd);
	free(log);

	/* Found through the step's PATH; its exit code is the step's. */
	path_env = perch_xasprintf("%s:/usr/local/bin:/usr/bin:/bin", f->aux);
	plugintest_step_init(&t, "p", NULL, PERCH_STEP_PLUGIN, "myplugin");
	plugintest_env(&t, "PATH", path_env);
	plugintest_env(&t, "PLUGIN_EXIT", "4");
	free(run_expect(f, &t.step, 4));

	plugintest_step_init(&t, "p", NULL, PERCH_STEP_PLUGIN, "no_such_plugin_perch");
	expect_start_error(f, &t.step, PERCH_ERR_INVALID_INPUT,
			   "plugin \"no_such_plugin_perch\" not found in PATH");
	free(path);
	free(path_env);
}

static char *sh_output(const char *cmd)
{
	FILE *p = popen(cmd, "r");
	char buf[256] = "";
	assert_non_null(p);
	if (fgets(buf, sizeof buf, p) == NULL)
		buf[0] = '\0';
	assert_int_equal(pclose(p), 0);
	buf[strcspn(buf, "\n")] = '\0';
	return perch_xstrdup(buf);
}

static void test_clone(void **state)
{
	fx *f = *state;
	plugintest_step clone, check;
	char *mk, *url, *sha1, *sha2, *cmd, *log;
	run r;

	/* git is a build dependency: its absence fails this test. */
	assert_int_equal(system("git --version >/dev/null"), 0);
	mk = perch_xasprintf(
		"set -e; cd '%s'; export GIT_CONFIG_NOSYSTEM=1 HOME='%s';"
		"git init -q --bare src.git; git init -q work; cd work;"
		"echo one > hello.txt; git add hello.txt;"
		"git -c user.name=t -c user.email=t@example.com commit -q -m 1;"
		"git push -q ../src.git HEAD:refs/heads/main;"
		"echo two > hello.txt;"
		"git -c user.name=t -c user.email=t@example.com commit -q -am 2;"
		"git push -q ../src.git HEAD:refs/heads/main",
		f->aux, f->aux);
	assert_int_equal(system(mk), 0);
	cmd = perch_xasprintf("git -C '%s/work' rev-parse HEAD~1", f->aux);
	sha1 = sh_output(cmd);
	free(cmd);
	cmd = perch_xasprintf("git -C '%s/work' rev-parse HEAD", f->aux);
	sha2 = sh_output(cmd);
	free(cmd);
	url = perch_xasprintf("%s/src.git", f->aux);

	/* A given SHA (not the tip) is what gets checked out. */
	wf_setup(f, "t");
	plugintest_step_init(&clone, "clone", NULL, PERCH_STEP_CLONE, "woodpeckerci/plugin-git");
	plugintest_env(&clone, "CI_REPO_CLONE_URL", url);
	plugintest_env(&clone, "CI_COMMIT_SHA", sha1);
	plugintest_env(&clone, "CI_COMMIT_REF", "refs/heads/main");
	r = run_step(f, "t", &clone.step);
	if (r.state.exit_code != 0)
		fail_msg("clone failed: %s\n%s", r.err.message, r.log);
	if (getenv("TEST_LOCAL_VERBOSE"))
		fprintf(stderr, "%s", r.log);
	assert_non_null(strstr(r.log, "+ git init -q\n"));
	free(r.log);
	tstep_sh(&check, "check");
	plugintest_cmd(&check, "echo \"C=$(cat hello.txt)\" \"H=$(git rev-parse HEAD)\"");
	r = run_step(f, "t", &check.step);
	cmd = perch_xasprintf("C=one H=%s", sha1);
	assert_non_null(strstr(r.log, cmd));
	free(cmd);
	free(r.log);
	wf_destroy(f, "t");

	/* No SHA: the ref's tip. */
	wf_setup(f, "t");
	plugintest_step_init(&clone, "clone", NULL, PERCH_STEP_CLONE, "");
	plugintest_env(&clone, "CI_REPO_CLONE_URL", url);
	plugintest_env(&clone, "CI_COMMIT_REF", "refs/heads/main");
	plugintest_env(&clone, "PLUGIN_DEPTH", "1");
	r = run_step(f, "t", &clone.step);
	if (r.state.exit_code != 0)
		fail_msg("clone failed: %s\n%s", r.err.message, r.log);
	free(r.log);
	r = run_step(f, "t", &check.step);
	cmd = perch_xasprintf("C=two H=%s", sha2);
	assert_non_null(strstr(r.log, cmd));
	free(cmd);
	free(r.log);
	wf_destroy(f, "t");

	/* No git in the step's PATH: a clear error. */
	plugintest_step_init(&clone, "clone", NULL, PERCH_STEP_CLONE, "");
	plugintest_env(&clone, "CI_REPO_CLONE_URL", url);
	plugintest_env(&clone, "PATH", f->aux);
	expect_start_error(f, &clone.step, PERCH_ERR_UNAVAILABLE,
			   "git not found in PATH: the local backend clones "
			   "with the host's git");

	/* No URL: a clear error. */
	plugintest_step_init(&clone, "clone", NULL, PERCH_STEP_CLONE, "");
	expect_start_error(f, &clone.step, PERCH_ERR_INVALID_INPUT,
			   "clone step \"clone\": CI_REPO_CLONE_URL is not set");

	/* A URL that does not work fails the step, not the call. */
	plugintest_step_init(&clone, "clone", NULL, PERCH_STEP_CLONE, "");
	plugintest_env(&clone, "CI_REPO_CLONE_URL", "/nonexistent/repo.git");
	log = run_expect(f, &clone.step, 128);
	free(log);

	free(mk);
	free(url);
	free(sha1);
	free(sha2);
}

/* ---- the grandchild rule, detached steps, cancellation -------------- */

static void test_background_grandchild(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *pidfile, *cmd, *cmd2, *log;
	pid_t bg;

	pidfile = perch_xasprintf("%s/bg.pid", f->aux);
	cmd = perch_xasprintf("sleep 300 & echo $! > '%s'", pidfile);
	tstep_sh(&t, "bg");
	plugintest_cmd(&t, cmd);
	plugintest_cmd(&t, "echo done");
	log = run_expect(f, &t.step, 0); /* returns: the pipe reached EOF */
	assert_true(ends_with(log, "+ echo done\ndone\n"));
	bg = read_pid_file(pidfile);
	assert_true(proc_gone(bg));
	free(log);
	free(cmd);

	/* One that ignores SIGTERM is killed after the stop timeout. */
	unlink(pidfile);
	cmd = perch_xasprintf("sh -c 'trap \"\" TERM; echo $$ > %s; "
			      "exec sleep 300' &",
			      pidfile);
	cmd2 = perch_xasprintf("while ! test -s '%s'; do sleep 0.01; done",
			       pidfile);
	tstep_sh(&t, "stubborn");
	plugintest_cmd(&t, cmd);
	plugintest_cmd(&t, cmd2);
	log = run_expect(f, &t.step, 0);
	bg = read_pid_file(pidfile);
	assert_true(proc_gone(bg));
	free(log);
	free(cmd);
	free(cmd2);
	free(pidfile);
}

typedef struct waiter {
	fx *f;
	const char *task;
	const perch_step *step;
	perch_ctx *ctx;
	perch_status rc;
	perch_state state;
	perch_error err;
	int64_t returned_ms;
	_Atomic pid_t tid;
	pthread_t thread;
} waiter;

static void *waiter_main(void *arg)
{
	waiter *w = arg;
	w->tid = (pid_t)syscall(SYS_gettid);
	w->state.struct_size = sizeof w->state;
	w->err = testhost_error();
	w->rc = w->f->be->wait_step(w->f->inst, w->ctx, w->step, w->task,
				    &w->state, &w->err);
	w->returned_ms = perch_mono_ms();
	return NULL;
}

static void waiter_start(waiter *w, fx *f, const char *task,
			 const perch_step *s, perch_ctx *ctx)
{
	memset(w, 0, sizeof *w);
	w->f = f;
	w->task = task;
	w->step = s;
	w->ctx = ctx;
	assert_int_equal(pthread_create(&w->thread, NULL, waiter_main, w), 0);
}

/* True when thread tid of this process sits in poll()/ppoll(). */
static bool in_poll(pid_t tid)
{
	char path[64], buf[64];
	long nr = -1;
	FILE *fp;
	snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)tid);
	fp = fopen(path, "re");
	if (fp == NULL)
		return false;
	if (fgets(buf, sizeof buf, fp) != NULL)
		nr = strtol(buf, NULL, 10);
	fclose(fp);
#ifdef SYS_poll
	if (nr == SYS_poll)
		return true;
#endif
	return nr == SYS_ppoll;
}

/* Waits until the waiter is blocked inside wait_step (its only poll), so
 * that what follows happens during the wait, not before it. */
static void waiter_blocked(waiter *w)
{
	int64_t end = perch_mono_ms() + BOUND_MS;
	while (w->tid == 0 || !in_poll(w->tid)) {
		if (perch_mono_ms() > end)
			fail_msg("wait_step did not block");
		usleep(1000);
	}
}

static void test_detached_and_services(void **state)
{
	fx *f = *state;
	plugintest_step det, svc, exe;
	char *p1, *p2, *p3, *c1, *c2, *svcbin, *script;
	reader r1, r2, r3;
	waiter w1, w2, w3;
	perch_error err;
	pid_t pid1, pid2, pid3;

	p1 = perch_xasprintf("%s/det.pid", f->aux);
	p2 = perch_xasprintf("%s/svc.pid", f->aux);
	p3 = perch_xasprintf("%s/exe.pid", f->aux);
	c1 = perch_xasprintf("echo $$ > '%s'", p1);
	c2 = perch_xasprintf("echo $$ > '%s'", p2);
	svcbin = perch_xasprintf("%s/server", f->aux);
	script = perch_xasprintf("#!/bin/sh\necho $$ > '%s'\necho up\n"
				 "exec sleep 300\n",
				 p3);
	write_exec(svcbin, script);

	wf_setup(f, "t");
	tstep_sh(&det, "detached");
	det.step.detach = true;
	plugintest_cmd(&det, c1);
	plugintest_cmd(&det, "sleep 300");
	plugintest_step_init(&svc, "service", NULL, PERCH_STEP_SERVICE, "sh");
	svc.step.detach = true;
	plugintest_cmd(&svc, c2);
	plugintest_cmd(&svc, "sleep 300");
	plugintest_step_init(&exe, "server", NULL, PERCH_STEP_SERVICE, svcbin);
	exe.step.detach = true;

	assert_int_equal(start(f, "t", &det.step, &err), PERCH_OK);
	assert_int_equal(start(f, "t", &svc.step, &err), PERCH_OK);
	assert_int_equal(start(f, "t", &exe.step, &err), PERCH_OK);
	reader_start(&r1, tail(f, "t", &det.step));
	reader_start(&r2, tail(f, "t", &svc.step));
	reader_start(&r3, tail(f, "t", &exe.step));
	waiter_start(&w1, f, "t", &det.step, testhost_ctx(f->th));
	waiter_start(&w2, f, "t", &svc.step, testhost_ctx(f->th));
	waiter_start(&w3, f, "t", &exe.step, testhost_ctx(f->th));
	pid1 = read_pid_file(p1);
	pid2 = read_pid_file(p2);
	pid3 = read_pid_file(p3);
	assert_false(proc_gone(pid1));
	waiter_blocked(&w1);
	waiter_blocked(&w2);
	waiter_blocked(&w3);

	/* destroy_workflow stops them all; their waits return. */
	wf_destroy(f, "t");
	pthread_join(w1.thread, NULL);
	pthread_join(w2.thread, NULL);
	pthread_join(w3.thread, NULL);
	free(reader_join(&r1));
	free(reader_join(&r2));
	free(reader_join(&r3));
	assert_int_equal(w1.rc, PERCH_OK);
	assert_true(w1.state.exited);
	assert_int_equal(w1.state.exit_code, 128 + SIGTERM);
	assert_int_equal(w2.rc, PERCH_OK);
	assert_int_equal(w2.state.exit_code, 128 + SIGTERM);
	assert_int_equal(w3.rc, PERCH_OK);
	assert_int_equal(w3.state.exit_code, 128 + SIGTERM);
	assert_true(group_gone(pid1));
	assert_true(group_gone(pid2));
	assert_true(group_gone(pid3));
	/* Destroying a step of a destroyed workflow is fine. */
	destroy_step(f, "t", &det.step);

	free(p1);
	free(p2);
	free(p3);
	free(c1);
	free(c2);
	free(svcbin);
	free(script);
}

/* Cancelling a blocked wait: wait_step returns promptly (the contract), the
 * group has been asked to stop, and destroy_step - on the host's cleanup
 * context - gives it the grace period and kills what is left.  With
 * cleanup_cancelled, the cleanup context is already cancelled (a second
 * signal to the host): destroy_step kills at once. */
static void cancel_case(fx *f, const char *first, bool cleanup_cancelled)
{
	plugintest_step t;
	char *pidfile, *cmd;
	perch_ctx *ctx = perch_ctx_new(testhost_ctx(f->th));
	perch_ctx *cleanup = perch_ctx_new(testhost_ctx(f->th));
	perch_error err = testhost_error();
	reader rd;
	waiter w;
	int64_t cancelled_ms, destroy_ms;
	pid_t pgid;

	pidfile = perch_xasprintf("%s/cancel.pid", f->aux);
	unlink(pidfile);
	cmd = perch_xasprintf("%secho $$ > '%s'", first, pidfile);
	wf_setup(f, "t");
	tstep_sh(&t, "cancel");
	plugintest_cmd(&t, cmd);
	plugintest_cmd(&t, "sleep 300");
	assert_int_equal(start(f, "t", &t.step, &err), PERCH_OK);
	reader_start(&rd, tail(f, "t", &t.step));
	waiter_start(&w, f, "t", &t.step, ctx);
	pgid = read_pid_file(pidfile);
	waiter_blocked(&w);
	cancelled_ms = perch_mono_ms();
	perch_ctx_cancel(ctx);
	pthread_join(w.thread, NULL);
	/* Returned at all within a generous bound. */
	assert_true(w.returned_ms - cancelled_ms < BOUND_MS);
	assert_int_equal(w.rc, PERCH_ERR_CANCELLED);
	if (cleanup_cancelled)
		perch_ctx_cancel(cleanup);
	destroy_ms = perch_mono_ms();
	assert_int_equal(f->be->destroy_step(f->inst, cleanup, &t.step, "t", &err), PERCH_OK);
	assert_true(perch_mono_ms() - destroy_ms < BOUND_MS);
	assert_true(group_gone(pgid));
	free(reader_join(&rd)); /* the group is gone: end of stream */
	wf_destroy(f, "t");
	perch_ctx_free(cleanup);
	perch_ctx_free(ctx);
	free(cmd);
	free(pidfile);
}

static void test_cancel(void **state)
{
	fx *f = *state;
	cancel_case(f, "", false);
	/* Ignores SIGTERM (so does its sleep): SIGKILL after the 2 s grace. */
	cancel_case(f, "trap '' TERM; ", false);
	/* ... or at once when the cleanup context is cancelled too. */
	cancel_case(f, "trap '' TERM; ", true);
}

static void test_cancelled_before_wait(void **state)
{
	fx *f = *state;
	perch_ctx *ctx = perch_ctx_new(testhost_ctx(f->th));
	plugintest_step t;
	run r;
	perch_ctx_cancel(ctx);
	wf_setup(f, "t");
	tstep_sh(&t, "c");
	plugintest_cmd(&t, "sleep 300");
	r = run_step_ctx(f, "t", &t.step, ctx);
	assert_int_equal(r.wait_rc, PERCH_ERR_CANCELLED);
	wf_destroy(f, "t");
	perch_ctx_free(ctx);
	free(r.log);
}

/* ---- the calls' contract -------------------------------------------- */

static void test_contract(void **state)
{
	fx *f = *state;
	plugintest_step t, cache;
	perch_error err = testhost_error();
	perch_state st = {.struct_size = sizeof st};
	int fd = -1;
	run r;

	tstep_sh(&t, "s");
	plugintest_cmd(&t, "echo hi");
	/* Unknown workflow. */
	assert_int_equal(start(f, "nope", &t.step, &err), PERCH_ERR_NOT_FOUND);
	assert_int_equal(f->be->tail_step(f->inst, testhost_ctx(f->th), &t.step,
					  "nope", &fd, &err),
			 PERCH_ERR_NOT_FOUND);
	assert_int_equal(f->be->wait_step(f->inst, testhost_ctx(f->th), &t.step,
					  "nope", &st, &err),
			 PERCH_ERR_NOT_FOUND);
	destroy_step(f, "nope", &t.step);
	wf_destroy(f, "nope");

	wf_setup(f, "t");
	err = testhost_error();
	assert_int_equal(f->be->setup_workflow(f->inst, testhost_ctx(f->th),
					       plugintest_empty_config(), "t", &err),
			 PERCH_ERR_INVALID_INPUT);
	/* Never-started step: not found for tail/wait, fine to destroy. */
	assert_int_equal(f->be->tail_step(f->inst, testhost_ctx(f->th), &t.step,
					  "t", &fd, &err),
			 PERCH_ERR_NOT_FOUND);
	destroy_step(f, "t", &t.step);

	plugintest_step_init(&cache, "cache", NULL, PERCH_STEP_CACHE, "sh");
	plugintest_cmd(&cache, "true");
	assert_int_equal(start(f, "t", &cache.step, &err), PERCH_ERR_UNSUPPORTED);
	assert_string_equal(err.message, "step type \"cache\" is not supported "
					 "by the local backend");
	plugintest_step_init(&cache, "odd", NULL, "teleport", "sh");
	assert_int_equal(start(f, "t", &cache.step, &err), PERCH_ERR_UNSUPPORTED);

	/* Twice: start refused, tail refused, wait repeats its answer. */
	assert_int_equal(start(f, "t", &t.step, &err), PERCH_OK);
	assert_int_equal(start(f, "t", &t.step, &err), PERCH_ERR_INVALID_INPUT);
	fd = tail(f, "t", &t.step);
	free(testhost_read_all(fd));
	err = testhost_error();
	assert_int_not_equal(f->be->tail_step(f->inst, testhost_ctx(f->th),
					      &t.step, "t", &fd, &err),
			     PERCH_OK);
	for (int i = 0; i < 2; i++) {
		st.exit_code = -5;
		assert_int_equal(f->be->wait_step(f->inst, testhost_ctx(f->th),
						  &t.step, "t", &st, &err),
				 PERCH_OK);
		assert_int_equal(st.exit_code, 0);
	}
	destroy_step(f, "t", &t.step);
	destroy_step(f, "t", &t.step);
	wf_destroy(f, "t");
	wf_destroy(f, "t");

	/* A step never tailed or waited: destroy_workflow cleans it up. */
	wf_setup(f, "t");
	tstep_sh(&t, "orphan");
	plugintest_cmd(&t, "sleep 300");
	assert_int_equal(start(f, "t", &t.step, &err), PERCH_OK);
	wf_destroy(f, "t");

	/* The task uuid can be reused. */
	wf_setup(f, "t");
	tstep_sh(&t, "again");
	plugintest_cmd(&t, "echo again");
	r = run_step(f, "t", &t.step);
	assert_string_equal(r.log, "+ echo again\nagain\n");
	free(r.log);
	wf_destroy(f, "t");
}

/* What steps leave behind is removed without following links out. */
static void test_cleanup(void **state)
{
	fx *f = *state;
	plugintest_step t;
	char *outside, *cmd, *keep;
	struct stat sb;

	outside = perch_xasprintf("%s/outside", f->aux);
	keep = perch_xasprintf("%s/keep.txt", outside);
	assert_int_equal(mkdir(outside, 0700), 0);
	write_exec(keep, "keep\n");
	cmd = perch_xasprintf("ln -s '%s' link && ln -s '%s' \"$HOME/hlink\" && "
			      "mkdir -p ro/sub && touch ro/sub/f && "
			      "chmod 0500 ro/sub && chmod 0 ro",
			      outside, keep);
	tstep_sh(&t, "mess");
	plugintest_cmd(&t, cmd);
	free(run_expect(f, &t.step, 0)); /* destroys the workflow */
	assert_int_equal(stat(keep, &sb), 0);
	free(cmd);
	free(keep);
	free(outside);
}

/* ---- concurrency ---------------------------------------------------- */

#define N_WORKFLOWS 20
#define N_STEPS 3

typedef struct wf_job {
	fx *f;
	int index;
	char task[32];
	char names[N_STEPS][16];
	char cmds[N_STEPS][64];
	plugintest_step steps[N_STEPS];
	char *logs[N_STEPS];
	int codes[N_STEPS];
	perch_status rc[N_STEPS * 4 + 2];
	pthread_t thread;
} wf_job;

/* Runs a workflow with its steps in parallel; records, never asserts
 * (cmocka's failures cannot cross threads). */
static void *wf_job_main(void *arg)
{
	wf_job *j = arg;
	fx *f = j->f;
	perch_ctx *ctx = testhost_ctx(f->th);
	reader rd[N_STEPS];
	perch_error err = testhost_error();
	int k = 0;

	j->rc[k++] = f->be->setup_workflow(f->inst, ctx, plugintest_empty_config(), j->task, &err);
	for (int s = 0; s < N_STEPS; s++) {
		int fd = -1;
		j->rc[k++] = f->be->start_step(f->inst, ctx, &j->steps[s].step,
					       j->task, &err);
		j->rc[k++] = f->be->tail_step(f->inst, ctx, &j->steps[s].step,
					      j->task, &fd, &err);
		rd[s].fd = fd;
		pthread_create(&rd[s].thread, NULL, reader_main, &rd[s]);
	}
	for (int s = 0; s < N_STEPS; s++) {
		perch_state st = {.struct_size = sizeof st};
		j->rc[k++] = f->be->wait_step(f->inst, ctx, &j->steps[s].step,
					      j->task, &st, &err);
		j->codes[s] = st.exit_code;
		j->logs[s] = reader_join(&rd[s]);
		j->rc[k++] = f->be->destroy_step(f->inst, ctx,
						 &j->steps[s].step, j->task,
						 &err);
	}
	j->rc[k++] = f->be->destroy_workflow(f->inst, ctx, plugintest_empty_config(), j->task, &err);
	return NULL;
}

static void test_concurrency(void **state)
{
	fx *f = *state;
	wf_job *jobs = perch_xcalloc(N_WORKFLOWS, sizeof *jobs);

	for (int i = 0; i < N_WORKFLOWS; i++) {
		wf_job *j = &jobs[i];
		j->f = f;
		snprintf(j->task, sizeof j->task, "wf-%d", i);
		for (int s = 0; s < N_STEPS; s++) {
			snprintf(j->names[s], sizeof j->names[s], "step-%d", s);
			snprintf(j->cmds[s], sizeof j->cmds[s],
				 "echo %d-%d; exit %d", i, s, s);
			tstep_sh(&j->steps[s], j->names[s]);
			plugintest_cmd(&j->steps[s], j->cmds[s]);
		}
	}
	for (int i = 0; i < N_WORKFLOWS; i++)
		assert_int_equal(pthread_create(&jobs[i].thread, NULL,
						wf_job_main, &jobs[i]),
				 0);
	for (int i = 0; i < N_WORKFLOWS; i++)
		pthread_join(jobs[i].thread, NULL);
	for (int i = 0; i < N_WORKFLOWS; i++) {
		wf_job *j = &jobs[i];
		for (size_t k = 0; k < sizeof j->rc / sizeof j->rc[0]; k++)
			assert_int_equal(j->rc[k], PERCH_OK);
		for (int s = 0; s < N_STEPS; s++) {
			char *want = perch_xasprintf("+ %s\n%d-%d\n", j->cmds[s],
						     i, s);
			assert_string_equal(j->logs[s], want);
			assert_int_equal(j->codes[s], s);
			free(want);
			free(j->logs[s]);
		}
	}
	free(jobs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_entry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_is_available, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_stops_script, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_by_signal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_not_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_final_newline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_script, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shells, setup, teardown),
		cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_working_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_netrc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_process_hygiene, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plugin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_background_grandchild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detached_and_services, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancelled_before_wait, setup, teardown),
		cmocka_unit_test_setup_teardown(test_contract, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cleanup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
