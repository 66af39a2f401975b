/*
 * test_docker.c - the docker backend plugin against a real Docker engine
 * (/var/run/docker.sock, started by .ci/docker.sh), driven through its ABI
 * entry by the test host.
 *
 * Every step field that has a Docker meaning is checked from inside the
 * container; then exit codes, OOM, cancellation, failed starts, parallel
 * workflows, pulls from the local registries (with and without auth),
 * discovery and resume across a simulated restart, a lost engine
 * connection (a proxy socket that the test cuts), and at the end that
 * nothing with this run's host ids is left in the engine.
 *
 * The engine must be there: without it every test fails with the reason.
 * Each run uses its own host ids, so leftovers of other runs and parallel
 * runs do not interfere.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "docker.h"
#include "plugintest.h"
#include "testhost.h"
#include "util.h"

#define SOCKET PERCH_DOCKER_DEFAULT_SOCKET
#define IMAGE "perch-test/busybox:latest"
#define REG_AUTH "127.0.0.1:5311"
#define REG_OPEN "127.0.0.1:5312"
#define REG_USER "perch"
#define REG_PASS "perch-test-pw"
#define TLS_HOST "tcp://127.0.0.1:5313"
#define TLS_CERTS "/var/lib/perch-test-docker-tls/client"

/* ---- the run's identity and a direct engine client for checks ---- */

static char host_id[64], other_host_id[128];
static perch_docker_client engine;
static bool engine_ok;
static char engine_why[PERCH_ERROR_MESSAGE_MAX + 64];
static int uniq;

static char *fresh(const char *prefix)
{
	return perch_xasprintf("%s%d-%d", prefix, (int)getpid(), ++uniq);
}

/* GET/DELETE/POST on the engine, JSON reply (caller puts) or NULL. */
static json_object *engine_call(const char *method, const char *path,
				long *code)
{
	perch_docker_req r = {
		.method = method,
		.path = path,
		.cancel_fd = {-1, -1},
		.timeout_ms = 60000,
	};
	perch_error e = testhost_error();
	json_object *out = NULL;
	long c = 0;
	perch_docker_call(&engine, &r, &out, &c, &e, method);
	if (code != NULL)
		*code = c;
	return out;
}

static json_object *inspect(const char *name)
{
	char *p = perch_docker_path("/containers/", name, "/json");
	json_object *o = engine_call("GET", p, NULL);
	free(p);
	return o;
}

static bool container_exists(const char *name)
{
	char *p = perch_docker_path("/containers/", name, "/json");
	long code = 0;
	json_object_put(engine_call("GET", p, &code));
	free(p);
	return code == 200;
}

/* A container whose step ended is removed by the plugin's reaper just
 * after destroy_step returns: true once it is gone (polled; the bound only
 * turns a hang into a failure). */
static bool gone_soon(const char *name)
{
	for (int i = 0; i < 1000; i++) {
		if (!container_exists(name))
			return true;
		usleep(10000);
	}
	return false;
}

static void remove_image(const char *ref)
{
	char *p = perch_docker_path("/images/", ref, "?force=1");
	json_object_put(engine_call("DELETE", p, NULL));
	free(p);
}

/* How many containers, volumes, networks carry host id `id` (and, when
 * task is not NULL, that task). */
static size_t count_labelled(const char *kind, const char *id,
			     const char *task)
{
	pp_buf b = {0};
	char *kv = perch_xasprintf("%s=%s", PERCH_DOCKER_LABEL_HOST_ID, id);
	char *tv = perch_xasprintf("%s=%s", PERCH_DOCKER_LABEL_TASK,
				   task ? task : "");
	const char *both[2] = {kv, tv};
	json_object *o, *list;
	size_t n = 0;
	char *p;

	pp_buf_printf(&b, "/%s%s", kind,
				strcmp(kind, "containers") == 0 ? "/json?all=1&filters="
								: "?filters=");
	perch_docker_label_filter(&b, both, task ? 2 : 1);
	p = pp_buf_steal(&b);
	o = engine_call("GET", p, NULL);
	list = o;
	if (json_object_is_type(o, json_type_object))
		json_object_object_get_ex(o, "Volumes", &list);
	if (json_object_is_type(list, json_type_array))
		n = json_object_array_length(list);
	json_object_put(o);
	free(p);
	free(kv);
	free(tv);
	return n;
}

static int group_setup(void **unused)
{
	perch_error e = testhost_error();
	long code = 0;

	snprintf(host_id, sizeof host_id, "perch-test-%d-%lld", (int)getpid(),
		 (long long)time(NULL));
	snprintf(other_host_id, sizeof other_host_id, "%s-other", host_id);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	perch_docker_client_init(&engine, NULL, NULL, true, &e);
	if (!perch_docker_ping(&engine, -1)) {
		snprintf(engine_why, sizeof engine_why,
			 "docker engine not reachable at %s: run .ci/docker.sh",
			 SOCKET);
		return 0;
	}
	if (perch_docker_negotiate(&engine, NULL, -1, (char[64]){0}, 64, &e) !=
	    PERCH_OK) {
		snprintf(engine_why, sizeof engine_why, "%s", e.message);
		return 0;
	}
	json_object_put(engine_call("GET", "/images/" IMAGE "/json", &code));
	if (code != 200) {
		snprintf(engine_why, sizeof engine_why,
			 "test image %s missing: run .ci/docker.sh", IMAGE);
		return 0;
	}
	engine_ok = true;
	return 0;
}

static int group_teardown(void **unused)
{
	perch_docker_client_free(&engine);
	curl_global_cleanup();
	return 0;
}

static void need_engine(void)
{
	if (!engine_ok) {
		fprintf(stderr, "%s\n", engine_why);
		fail_msg("%s", engine_why);
	}
}

/* ---- a loaded plugin ---- */

typedef struct fx {
	testhost *th;
	const perch_backend *be;
	perch_instance *inst;
} fx;

/* flags: NULL-terminated name, value pairs on top of the defaults. */
static void fx_open_flags(fx *f, const char *id, const char *const *flags)
{
	perch_backend_info info = {.struct_size = sizeof info};

	need_engine();
	memset(f, 0, sizeof *f);
	f->th = testhost_new();
	testhost_set_flag(f->th, "backend-docker-host-id", id);
	testhost_set_flag(f->th, "backend-docker-stop-timeout", "1");
	for (size_t i = 0; flags != NULL && flags[i] != NULL; i += 2)
		testhost_set_flag(f->th, flags[i], flags[i + 1]);
	f->be = plugintest_open(f->th, "docker");
	f->inst = plugintest_load(f->th, f->be, testhost_ctx(f->th), &info);
	assert_string_equal(info.platform, "linux/amd64");
}

static void fx_open(fx *f)
{
	fx_open_flags(f, host_id, NULL);
}

static void fx_close(fx *f)
{
	if (f->inst != NULL)
		f->be->unload(f->inst);
	testhost_free(f->th);
	memset(f, 0, sizeof *f);
}

static perch_ctx *ctx_of(fx *f)
{
	return testhost_ctx(f->th);
}

/* ---- workflows and steps ---- */

typedef struct twf {
	perch_config c;
	char *task, *net, *vol, *vol_spec;
} twf;

static void twf_init(twf *w)
{
	memset(w, 0, sizeof *w);
	w->task = fresh("task-");
	w->net = perch_xasprintf("%s_default", w->task);
	w->vol = perch_xasprintf("%s_default", w->task);
	w->vol_spec = perch_xasprintf("%s:/woodpecker", w->vol);
	w->c.struct_size = sizeof w->c;
	w->c.network = w->net;
	w->c.volume = w->vol;
}

static void twf_free(twf *w)
{
	free(w->task);
	free(w->net);
	free(w->vol);
	free(w->vol_spec);
}

/* A commands step of workflow w (NULL: none), named name, in the
 * workspace, with a uuid of its own. */
static void tstep_init(plugintest_step *t, twf *w, const char *name)
{
	plugintest_step_init(t, name, NULL, PERCH_STEP_COMMANDS, IMAGE);
	snprintf(t->uuid, sizeof t->uuid, "S%d-%d", (int)getpid(), ++uniq);
	t->step.uuid = t->uuid;
	t->step.working_dir = "/woodpecker/src";
	t->step.workspace_base = "/woodpecker";
	plugintest_env(t, "CI_WORKSPACE", "/woodpecker/src");
	if (w != NULL) {
		t->vols[t->step.volumes.len++] = w->vol_spec;
		t->aliases[0][0] = name;
		t->nets[0].name = w->net;
		t->nets[0].aliases.items = t->aliases[0];
		t->nets[0].aliases.len = 1;
		t->step.n_networks = 1;
	}
}

static perch_state new_state(void)
{
	perch_state s;
	memset(&s, 0, sizeof s);
	s.struct_size = sizeof s;
	return s;
}

static void setup_wf(fx *f, twf *w)
{
	perch_error err = testhost_error();
	perch_status st = f->be->setup_workflow(f->inst, ctx_of(f), &w->c,
						w->task, &err);
	if (st != PERCH_OK)
		fprintf(stderr, "setup: %s\n", err.message);
	assert_int_equal(st, PERCH_OK);
}

static void destroy_wf(fx *f, twf *w)
{
	perch_error err = testhost_error();
	perch_status st = f->be->destroy_workflow(f->inst, ctx_of(f), &w->c,
						  w->task, &err);
	if (st != PERCH_OK)
		fprintf(stderr, "destroy_workflow: %s\n", err.message);
	assert_int_equal(st, PERCH_OK);
}

static perch_status start(fx *f, twf *w, plugintest_step *t, perch_error *err)
{
	return f->be->start_step(f->inst, ctx_of(f), &t->step, w->task, err);
}

static char *tail(fx *f, twf *w, plugintest_step *t)
{
	perch_error err = testhost_error();
	int fd = -1;
	perch_status st = f->be->tail_step(f->inst, ctx_of(f), &t->step, w->task,
					   &fd, &err);
	if (st != PERCH_OK)
		fprintf(stderr, "tail: %s\n", err.message);
	assert_int_equal(st, PERCH_OK);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	return testhost_read_all(fd);
}

static perch_state wait_ok(fx *f, twf *w, plugintest_step *t)
{
	perch_error err = testhost_error();
	perch_state s = new_state();
	perch_status st = f->be->wait_step(f->inst, ctx_of(f), &t->step, w->task,
					   &s, &err);
	if (st != PERCH_OK)
		fprintf(stderr, "wait: %s\n", err.message);
	assert_int_equal(st, PERCH_OK);
	assert_true(s.exited);
	return s;
}

static void destroy_step(fx *f, twf *w, plugintest_step *t)
{
	perch_error err = testhost_error();
	perch_status st = f->be->destroy_step(f->inst, ctx_of(f), &t->step,
					      w->task, &err);
	if (st != PERCH_OK)
		fprintf(stderr, "destroy_step: %s\n", err.message);
	assert_int_equal(st, PERCH_OK);
}

/* The whole cycle of one step: its output (caller frees) and state. */
static char *run(fx *f, twf *w, plugintest_step *t, perch_state *state)
{
	perch_error err = testhost_error();
	perch_status st = start(f, w, t, &err);
	char *out;

	if (st != PERCH_OK)
		fprintf(stderr, "start %s: %s\n", t->step.name, err.message);
	assert_int_equal(st, PERCH_OK);
	out = tail(f, w, t);
	*state = wait_ok(f, w, t);
	destroy_step(f, w, t);
	if (getenv("TEST_DOCKER_VERBOSE"))
		fprintf(stderr, "--- %s (exit %d)\n%s---\n", t->step.name,
			state->exit_code, out);
	return out;
}

static void has(const char *out, const char *needle)
{
	if (strstr(out, needle) == NULL) {
		fprintf(stderr, "missing \"%s\" in:\n%s\n", needle, out);
		fail();
	}
}

static void lacks(const char *out, const char *needle)
{
	if (strstr(out, needle) != NULL) {
		fprintf(stderr, "unexpected \"%s\" in:\n%s\n", needle, out);
		fail();
	}
}

/* ---- the entry object, load, availability ---- */

static void test_entry_and_load(void **unused)
{
	fx f;
	const perch_backend *be;
	perch_instance *inst = NULL;
	perch_backend_info info = {.struct_size = sizeof info};
	perch_error err = testhost_error();
	bool saw_host = false, saw_stop = false;

	fx_open(&f);
	be = f.be;
	assert_string_equal(be->name, "docker");
	assert_int_equal(be->priority, 100);
	for (size_t i = 0; be->flags[i] != NULL; i++) {
		const perch_flag *fl = be->flags[i];
		if (strcmp(fl->name, "backend-docker-host") == 0) {
			saw_host = true;
			assert_string_equal(fl->env[0], "PERCH_BACKEND_DOCKER_HOST");
			assert_string_equal(fl->env[1], "WOODPECKER_BACKEND_DOCKER_HOST");
			assert_string_equal(fl->env[2], "DOCKER_HOST");
		}
		if (strcmp(fl->name, "backend-docker-stop-timeout") == 0) {
			saw_stop = true;
			assert_int_equal(fl->kind, PERCH_FLAG_INT);
			assert_string_equal(fl->default_value, "20");
		}
	}
	assert_true(saw_host && saw_stop);
	assert_non_null(be->get_capability(f.inst, PERCH_CAP_WORKFLOW_DISCOVERER));
	assert_non_null(be->get_capability(f.inst, PERCH_CAP_WORKFLOW_RESUMER));
	assert_null(be->get_capability(f.inst, "org.example.none/1"));
	assert_true(be->is_available(testhost_table(f.th), ctx_of(&f), &err));
	{
		char *path = testhost_plugin_path("docker");
		plugintest_assert_only_entry(path);
		free(path);
	}

	/* load needs the CLI context. */
	assert_int_equal(be->load(testhost_table(f.th), testhost_bare_ctx(f.th),
				  &inst, &info, &err),
			 PERCH_ERR_NO_CLI_CONTEXT);
	assert_string_equal(err.message, "no CliContext in context found");
	assert_null(inst);
	fx_close(&f);
}

static void test_engine_down(void **unused)
{
	testhost *th;
	const perch_backend *be;
	perch_instance *inst = NULL;
	perch_backend_info info = {.struct_size = sizeof info};
	perch_error err = testhost_error();

	need_engine();
	th = testhost_new();
	testhost_set_flag(th, "backend-docker-host", "unix:///nonexistent/docker.sock");
	be = plugintest_open(th, "docker");
	/* A configured host counts as available, as in Woodpecker. */
	assert_true(be->is_available(testhost_table(th), testhost_ctx(th), &err));
	assert_int_equal(be->load(testhost_table(th), testhost_ctx(th), &inst,
				  &info, &err),
			 PERCH_ERR_UNAVAILABLE);
	assert_null(inst);
	has(err.message, "docker engine not reachable at unix:///nonexistent/docker.sock");
	assert_null(strchr(err.message, '\n'));

	testhost_set_flag(th, "backend-docker-host", "ftp://x");
	assert_int_equal(be->load(testhost_table(th), testhost_ctx(th), &inst,
				  &info, &err),
			 PERCH_ERR_INVALID_INPUT);
	testhost_set_flag(th, "backend-docker-host", "");
	testhost_set_flag(th, "backend-docker-volumes", "/a:/b,nocolon");
	assert_int_equal(be->load(testhost_table(th), testhost_ctx(th), &inst,
				  &info, &err),
			 PERCH_ERR_INVALID_INPUT);
	has(err.message, "invalid volume 'nocolon'");
	testhost_free(th);
}

/* As a user without access to the socket: one clear line.  Runs in a
 * child that drops root; the parent checks its verdict. */
static void test_socket_permission(void **unused)
{
	struct stat sb;
	pid_t pid;
	int status = 0;

	need_engine();
	assert_int_equal(stat(SOCKET, &sb), 0);
	if (sb.st_mode & S_IWOTH) {
		fprintf(stderr, "socket is world-writable: nothing to deny\n");
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		testhost *th = testhost_new();
		const perch_backend *be;
		perch_instance *inst = NULL;
		perch_backend_info info = {.struct_size = sizeof info};
		perch_error err = testhost_error();
		perch_status st;
		if (getuid() == 0 && (setgroups(0, NULL) != 0 ||
				      setgid(65534) != 0 || setuid(65534) != 0))
			_exit(10);
		be = plugintest_open(th, "docker");
		st = be->load(testhost_table(th), testhost_ctx(th), &inst, &info,
			      &err);
		if (st != PERCH_ERR_UNAVAILABLE)
			_exit(11);
		if (strstr(err.message, "permission denied on the docker socket") ==
		    NULL) {
			fprintf(stderr, "got: %s\n", err.message);
			_exit(12);
		}
		testhost_free(th);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- step fields, seen from inside the container ---- */

static void test_commands_env_workdir(void **unused)
{
	fx f;
	twf w;
	plugintest_step t;
	perch_state s;
	char *out;

	fx_open(&f);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&t, &w, "build");
	plugintest_env(&t, "GREETING", "hello world");
	plugintest_env(&t, "SHELL", "/bin/false"); /* the script's SHELL wins */
	plugintest_cmd(&t, "echo \"$GREETING\"");
	plugintest_cmd(&t, "pwd");
	plugintest_cmd(&t, "echo shell=$SHELL ci_script=${CI_SCRIPT:-unset}");
	plugintest_cmd(&t, "printf 'a\\nb\\n'");
	/* Last: stdout and stderr are separate pipes into the engine, so
	 * their relative order is the engine's to decide (seen reordered on
	 * a busy engine, despite the order here). */
	plugintest_cmd(&t, "echo to-stderr >&2");
	out = run(&f, &w, &t, &s);
	assert_int_equal(s.exit_code, 0);
	assert_false(s.oom_killed);
	/* The engine copies stdout and stderr apart, so the stderr line may
	 * land anywhere: checked, then taken out of the way. */
	has(out, "to-stderr\n");
	{
		char *err_line = strstr(out, "to-stderr\n");
		memmove(err_line, err_line + strlen("to-stderr\n"),
			strlen(err_line + strlen("to-stderr\n")) + 1);
	}
	has(out, "+ echo \"$GREETING\"\nhello world\n");
	has(out, "+ pwd\n/woodpecker/src\n");
	has(out, "shell=/bin/sh ci_script=unset\n");
	/* The trace shows the command as written, backslashes and all. */
	has(out, "+ printf 'a\\nb\\n'\na\nb\n");
	free(out);
	destroy_wf(&f, &w);
	twf_free(&w);
	fx_close(&f);
}

static void test_exit_code_and_shared_workspace(void **unused)
{
	fx f;
	twf w;
	plugintest_step a, b, c;
	perch_state s;
	char *out;

	fx_open(&f);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&a, &w, "write");
	plugintest_cmd(&a, "echo from-a > /woodpecker/shared.txt");
	out = run(&f, &w, &a, &s);
	assert_int_equal(s.exit_code, 0);
	free(out);
	tstep_init(&b, &w, "read");
	plugintest_cmd(&b, "cat /woodpecker/shared.txt");
	plugintest_cmd(&b, "exit 3");
	plugintest_cmd(&b, "echo never");
	out = run(&f, &w, &b, &s);
	assert_int_equal(s.exit_code, 3);
	has(out, "from-a\n");
	lacks(out, "never");
	free(out);
	/* A plugin-style step: no commands, its own entrypoint. */
	tstep_init(&c, &w, "entry");
	c.step.type = PERCH_STEP_PLUGIN;
	c.ep[c.step.entrypoint.len++] = "/bin/sh";
	c.ep[c.step.entrypoint.len++] = "-c";
	c.ep[c.step.entrypoint.len++] = "pwd; echo $PLUGIN_X; exit 4";
	plugintest_env(&c, "PLUGIN_X", "setting");
	out = run(&f, &w, &c, &s);
	assert_int_equal(s.exit_code, 4);
	assert_string_equal(out, "/woodpecker/src\nsetting\n");
	free(out);
	destroy_wf(&f, &w);
	twf_free(&w);
	fx_close(&f);
}

static void test_fields(void **unused)
{
	const char *flags[] = {"backend-docker-volumes", NULL, NULL};
	char dir[] = "/tmp/perch-test-docker-XXXXXX";
	char *bind, *conf_bind, *file;
	fx f;
	twf w;
	plugintest_step t;
	perch_state s;
	char *out;
	FILE *fp;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0); /* readable by uid 1000 */
	file = perch_xasprintf("%s/in.txt", dir);
	fp = fopen(file, "w");
	assert_non_null(fp);
	fputs("bound-content\n", fp);
	fclose(fp);
	bind = perch_xasprintf("%s:/mnt/bind:ro", dir);
	conf_bind = perch_xasprintf("%s:/mnt/conf", dir);
	flags[1] = conf_bind;
	fx_open_flags(&f, host_id, flags);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&t, &w, "fields");
	/* uid 1000 may not create folders in the root-owned workspace. */
	t.step.working_dir = "/tmp/work";
	t.vols[t.step.volumes.len++] = bind;
	t.vols[t.step.volumes.len++] = "/anon";
	t.tmpfs[t.step.tmpfs.len++] = "/scratch:size=1m";
	t.devs[t.step.devices.len++] = "/dev/null:/dev/mynull";
	t.hosts[t.step.n_extra_hosts++] = (perch_host_alias){"db.example", "10.1.2.3"};
	t.dns[t.step.dns.len++] = "192.0.2.53";
	t.dns_search[t.step.dns_search.len++] = "search.example";
	t.ports[t.step.n_ports++] = (perch_port){8080, "tcp"};
	t.wlabels[t.step.workflow_labels.len++] = (perch_kv){"org.example.repo", "perch"};
	t.step.backend_options = "{\"docker\":{\"user\":\"1000:1000\"}}";
	plugintest_cmd(&t, "cat /mnt/bind/in.txt /mnt/conf/in.txt");
	plugintest_cmd(&t, "(echo ro > /mnt/bind/x) 2>/dev/null || echo bind-is-ro");
	plugintest_cmd(&t, "grep ' /scratch ' /proc/mounts | cut -d' ' -f3");
	plugintest_cmd(&t, "test -c /dev/mynull && echo has-device");
	plugintest_cmd(&t, "grep db.example /etc/hosts");
	plugintest_cmd(&t, "grep -E 'nameserver|search' /etc/resolv.conf");
	plugintest_cmd(&t, "id -u; id -g");
	plugintest_cmd(&t, "test -d /anon && echo has-anon");
	plugintest_cmd(&t, "grep CapEff /proc/self/status");
	out = run(&f, &w, &t, &s);
	assert_int_equal(s.exit_code, 0);
	has(out, "bound-content\nbound-content\n");
	has(out, "bind-is-ro\n");
	has(out, "tmpfs\n");
	has(out, "has-device\n");
	has(out, "10.1.2.3\tdb.example\n");
	/* On a user-defined network the engine's resolver (127.0.0.11)
	 * forwards to the step's DNS server; see the "dns" step below. */
	has(out, "search search.example");
	has(out, "+ id -u; id -g\n1000\n1000\n");
	has(out, "has-anon\n");
	has(out, "CapEff:\t0000000000000000\n"); /* uid 1000: no caps */
	free(out);

	/* DNS servers show in resolv.conf off the workflow network. */
	tstep_init(&t, &w, "dns");
	t.step.n_networks = 0;
	t.dns[t.step.dns.len++] = "192.0.2.53";
	t.dns_search[t.step.dns_search.len++] = "search.example";
	plugintest_cmd(&t, "cat /etc/resolv.conf");
	out = run(&f, &w, &t, &s);
	has(out, "nameserver 192.0.2.53");
	has(out, "search search.example");
	free(out);

	/* Privileged, as root: every capability.  Where the engine itself
	 * lacks some (a sandboxed VM whose bounding set is not full), runc
	 * refuses every privileged container; then the container must at
	 * least have been created privileged. */
	tstep_init(&t, &w, "privileged");
	t.step.privileged = true;
	plugintest_cmd(&t, "grep CapEff /proc/self/status");
	{
		perch_error err = testhost_error();
		perch_status st = start(&f, &w, &t, &err);
		if (st == PERCH_OK) {
			out = tail(&f, &w, &t);
			s = wait_ok(&f, &w, &t);
			lacks(out, "CapEff:\t00000000a80425fb");
			has(out, "CapEff:\t000001ff");
			free(out);
		} else {
			char *name = perch_xasprintf("wp_%s", t.uuid);
			json_object *c = inspect(name), *hc;
			fprintf(stderr, "note: this engine cannot run privileged "
					"containers: %s\n", err.message);
			has(err.message, "caps");
			assert_true(json_object_object_get_ex(c, "HostConfig", &hc));
			assert_true(perch_docker_jbool(hc, "Privileged"));
			json_object_put(c);
			free(name);
		}
		destroy_step(&f, &w, &t);
	}

	/* Labels, names and exposed ports, as the engine sees them. */
	tstep_init(&t, &w, "labels");
	t.ports[t.step.n_ports++] = (perch_port){8080, ""};
	t.ports[t.step.n_ports++] = (perch_port){53, "udp"};
	t.wlabels[t.step.workflow_labels.len++] = (perch_kv){"org.example.repo", "perch"};
	plugintest_cmd(&t, "true");
	{
		perch_error err = testhost_error();
		json_object *c, *cfg, *labels, *ports;
		char *name = perch_xasprintf("wp_%s", t.uuid);
		assert_int_equal(start(&f, &w, &t, &err), PERCH_OK);
		c = inspect(name);
		assert_non_null(c);
		assert_true(json_object_object_get_ex(c, "Config", &cfg));
		assert_true(json_object_object_get_ex(cfg, "Labels", &labels));
		assert_string_equal(perch_docker_jstr(labels, "wp_uuid"), t.uuid);
		assert_string_equal(perch_docker_jstr(labels, "wp_step"), "labels");
		assert_string_equal(perch_docker_jstr(labels, "io.perch.host-id"), host_id);
		assert_string_equal(perch_docker_jstr(labels, "io.perch.task-uuid"), w.task);
		assert_string_equal(perch_docker_jstr(labels, "io.perch.step-uuid"), t.uuid);
		assert_string_equal(perch_docker_jstr(labels, "io.perch.step-name"), "labels");
		assert_string_equal(perch_docker_jstr(labels, "org.example.repo"), "perch");
		assert_true(json_object_object_get_ex(cfg, "ExposedPorts", &ports));
		assert_true(json_object_object_get_ex(ports, "8080/tcp", NULL));
		assert_true(json_object_object_get_ex(ports, "53/udp", NULL));
		json_object_put(c);
		json_object_put(NULL);
		free(tail(&f, &w, &t));
		wait_ok(&f, &w, &t);
		destroy_step(&f, &w, &t);
		assert_true(gone_soon(name));
		/* Idempotent: again, and for a step never started. */
		destroy_step(&f, &w, &t);
		free(name);
	}

	destroy_wf(&f, &w);
	twf_free(&w);
	fx_close(&f);
	unlink(file);
	rmdir(dir);
	free(file);
	free(bind);
	free(conf_bind);
}

static void test_name_schemes(void **unused)
{
	fx f;
	twf w;
	plugintest_step t, u, v;
	perch_error err = testhost_error();
	perch_state s;
	char *name, *out;

	fx_open(&f);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&t, &w, "my step/1");
	t.step.container_name_scheme = "readable";
	plugintest_cmd(&t, "true");
	assert_int_equal(start(&f, &w, &t, &err), PERCH_OK);
	name = perch_xasprintf("wp_%s_my-step-1", w.task);
	assert_true(container_exists(name));
	/* The same name again: a clear conflict, the step's fault. */
	tstep_init(&u, &w, "my step/1");
	u.step.container_name_scheme = "readable";
	plugintest_cmd(&u, "true");
	assert_int_equal(start(&f, &w, &u, &err), PERCH_ERR_INVALID_INPUT);
	has(err.message, "already in use");
	assert_null(strchr(err.message, '\n'));
	destroy_step(&f, &w, &u);
	assert_true(container_exists(name)); /* u's destroy leaves t's */
	free(tail(&f, &w, &t));
	s = wait_ok(&f, &w, &t);
	assert_int_equal(s.exit_code, 0);
	destroy_step(&f, &w, &t);
	/* t's removal may still be queued: a step of the same name started
	 * at once waits for it instead of failing on the name. */
	tstep_init(&u, &w, "my step/1");
	u.step.container_name_scheme = "readable";
	plugintest_cmd(&u, "echo again");
	out = run(&f, &w, &u, &s);
	assert_int_equal(s.exit_code, 0);
	has(out, "again\n");
	free(out);
	assert_true(gone_soon(name));
	free(name);

	tstep_init(&v, &w, "odd");
	v.step.container_name_scheme = "fancy";
	assert_int_equal(start(&f, &w, &v, &err), PERCH_ERR_INVALID_INPUT);
	has(err.message, "unknown container_name_scheme \"fancy\"");
	destroy_step(&f, &w, &v);
	v.step.container_name_scheme = "default";
	plugintest_cmd(&v, "true");
	out = run(&f, &w, &v, &s);
	free(out);

	destroy_wf(&f, &w);
	twf_free(&w);
	fx_close(&f);
}

/* A step reaches a service by its alias on the workflow network; the
 * service runs until destroy_workflow. */
static void test_service_alias(void **unused)
{
	fx f;
	twf w;
	plugintest_step svc, t;
	perch_error err = testhost_error();
	perch_state s;
	char *out, *svc_name;
	int fd = -1;

	fx_open(&f);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&svc, &w, "database");
	svc.step.type = PERCH_STEP_SERVICE;
	svc.step.detach = true;
	plugintest_cmd(&svc, "echo service up");
	plugintest_cmd(&svc, "sleep 300");
	assert_int_equal(start(&f, &w, &svc, &err), PERCH_OK);
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &svc.step, w.task, &fd,
					 &err),
			 PERCH_OK);
	tstep_init(&t, &w, "client");
	plugintest_cmd(&t, "ping -c 1 -W 5 database >/dev/null && echo reached-database");
	plugintest_cmd(&t, "nslookup client >/dev/null && echo own-alias");
	out = run(&f, &w, &t, &s);
	assert_int_equal(s.exit_code, 0);
	has(out, "reached-database\n");
	free(out);
	svc_name = perch_xasprintf("wp_%s", svc.uuid);
	assert_true(container_exists(svc_name));
	/* destroy_workflow stops the service; its log reaches its end. */
	destroy_wf(&f, &w);
	assert_false(container_exists(svc_name));
	out = testhost_read_all(fd);
	has(out, "service up\n");
	free(out);
	free(svc_name);
	twf_free(&w);
	fx_close(&f);
}

static void test_oom(void **unused)
{
	const char *flags[] = {
		"backend-docker-limit-mem", "33554432",
		"backend-docker-limit-mem-swap", "33554432",
		NULL,
	};
	fx f;
	twf w;
	plugintest_step t;
	perch_state s;
	char *out;

	fx_open_flags(&f, host_id, flags);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&t, &w, "hog");
	/* tail keeps its last "line" in memory: 300 MB without a newline. */
	plugintest_cmd(&t, "head -c 300000000 /dev/zero | tail >/dev/null");
	out = run(&f, &w, &t, &s);
	assert_true(s.oom_killed);
	assert_int_not_equal(s.exit_code, 0);
	free(out);
	destroy_wf(&f, &w);
	twf_free(&w);
	fx_close(&f);
}

/* ---- cancellation and failures ---- */

typedef struct canceller {
	perch_ctx *ctx;
	int after_ms;
} canceller;

static void *cancel_later(void *arg)
{
	canceller *c = arg;
	struct timespec ts = {c->after_ms / 1000, (c->after_ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	perch_ctx_cancel(c->ctx);
	return NULL;
}

static void test_cancel_mid_step(void **unused)
{
	fx f;
	twf w;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state s = new_state();
	perch_ctx *wctx;
	canceller c;
	pthread_t thr;
	int64_t t0;
	char *name;
	int fd = -1;

	fx_open(&f);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&t, &w, "long");
	plugintest_cmd(&t, "echo started");
	plugintest_cmd(&t, "sleep 600");
	assert_int_equal(start(&f, &w, &t, &err), PERCH_OK);
	assert_int_equal(f.be->tail_step(f.inst, ctx_of(&f), &t.step, w.task, &fd,
					 &err),
			 PERCH_OK);
	wctx = perch_ctx_new(ctx_of(&f));
	c = (canceller){wctx, 300};
	assert_int_equal(pthread_create(&thr, NULL, cancel_later, &c), 0);
	t0 = perch_mono_ms();
	assert_int_equal(f.be->wait_step(f.inst, wctx, &t.step, w.task, &s, &err),
			 PERCH_ERR_CANCELLED);
	assert_true(perch_mono_ms() - t0 < 10000);
	pthread_join(thr, NULL);
	/* Cleanup on a fresh context; the log then reaches its end. */
	name = perch_xasprintf("wp_%s", t.uuid);
	destroy_step(&f, &w, &t);
	assert_false(container_exists(name));
	{
		char *out = testhost_read_all(fd);
		has(out, "started\n");
		free(out);
	}
	/* Cancelled before the call: at once, too. */
	assert_int_equal(f.be->wait_step(f.inst, wctx, &t.step, w.task, &s, &err),
			 PERCH_ERR_CANCELLED);
	perch_ctx_free(wctx);
	destroy_wf(&f, &w);
	free(name);
	twf_free(&w);
	fx_close(&f);
}

static void test_failed_starts(void **unused)
{
	fx f;
	twf w;
	plugintest_step t;
	perch_error err = testhost_error();

	fx_open(&f);
	twf_init(&w);
	setup_wf(&f, &w);

	/* An image that exists nowhere: the step's fault, one line. */
	tstep_init(&t, &w, "noimage");
	t.step.image = REG_OPEN "/perch-test/does-not-exist:1";
	plugintest_cmd(&t, "true");
	assert_int_equal(start(&f, &w, &t, &err), PERCH_ERR_NOT_FOUND);
	has(err.message, "does-not-exist");
	assert_null(strchr(err.message, '\n'));
	destroy_step(&f, &w, &t);

	/* A bad entrypoint: created, then refused at start; destroy removes. */
	tstep_init(&t, &w, "badentry");
	t.ep[t.step.entrypoint.len++] = "/no/such/binary";
	assert_int_not_equal(start(&f, &w, &t, &err), PERCH_OK);
	has(err.message, "start container");
	{
		char *name = perch_xasprintf("wp_%s", t.uuid);
		assert_true(container_exists(name));
		destroy_step(&f, &w, &t);
		assert_false(container_exists(name));
		free(name);
	}

	/* Bad step fields are refused before anything is created. */
	tstep_init(&t, &w, "baddns");
	t.dns[t.step.dns.len++] = "not-an-ip";
	plugintest_cmd(&t, "true");
	assert_int_equal(start(&f, &w, &t, &err), PERCH_ERR_INVALID_INPUT);
	has(err.message, "invalid dns server \"not-an-ip\"");
	t.step.dns.len = 0;
	t.step.backend_options = "{\"docker\":{\"user\":[1]}}";
	assert_int_equal(start(&f, &w, &t, &err), PERCH_ERR_INVALID_INPUT);
	has(err.message, "backend_options.docker.user");
	t.step.backend_options = "";
	t.step.networks = NULL;
	t.step.n_networks = 0;
	t.step.network_mode = "container:nonexistent-perch-test";
	assert_int_not_equal(start(&f, &w, &t, &err), PERCH_OK);
	destroy_step(&f, &w, &t);

	/* A workflow whose setup failed (its network name is taken): its
	 * destroy still cleans what setup made, and leaves the other's. */
	{
		twf w2;
		perch_status st;
		twf_init(&w2);
		free(w2.net);
		w2.net = perch_xstrdup(w.net);
		w2.c.network = w2.net;
		st = f.be->setup_workflow(f.inst, ctx_of(&f), &w2.c, w2.task, &err);
		assert_int_equal(st, PERCH_ERR_INVALID_INPUT);
		has(err.message, "create network");
		destroy_wf(&f, &w2);
		twf_free(&w2);
	}
	destroy_wf(&f, &w);
	assert_int_equal(count_labelled("networks", host_id, w.task), 0);
	assert_int_equal(count_labelled("volumes", host_id, w.task), 0);
	twf_free(&w);
	fx_close(&f);
}

/* Two workflows with the same step names at once. */
typedef struct par {
	fx *f;
	twf w;
	char *out;
	perch_state s;
	perch_status st;
	char err[1024];
} par;

static void *run_par(void *arg)
{
	par *p = arg;
	perch_error err = testhost_error();
	plugintest_step a, b;
	int fd = -1;

	p->st = p->f->be->setup_workflow(p->f->inst, ctx_of(p->f), &p->w.c,
					 p->w.task, &err);
	tstep_init(&a, &p->w, "build");
	tstep_init(&b, &p->w, "build");
	a.cmds[a.step.commands.len++] = "echo $TASK > /woodpecker/who";
	a.env[a.step.environment.len++] = (perch_kv){"TASK", p->w.task};
	b.cmds[b.step.commands.len++] = "sleep 1; cat /woodpecker/who";
	for (int i = 0; i < 2 && p->st == PERCH_OK; i++) {
		plugintest_step *t = i == 0 ? &a : &b;
		p->s = new_state();
		p->st = p->f->be->start_step(p->f->inst, ctx_of(p->f), &t->step,
					     p->w.task, &err);
		if (p->st == PERCH_OK)
			p->st = p->f->be->tail_step(p->f->inst, ctx_of(p->f),
						    &t->step, p->w.task, &fd, &err);
		if (p->st == PERCH_OK) {
			free(p->out);
			p->out = testhost_read_all(fd);
			p->st = p->f->be->wait_step(p->f->inst, ctx_of(p->f),
						    &t->step, p->w.task, &p->s,
						    &err);
		}
		if (p->st == PERCH_OK)
			p->st = p->f->be->destroy_step(p->f->inst, ctx_of(p->f),
						       &t->step, p->w.task, &err);
	}
	if (p->st == PERCH_OK)
		p->st = p->f->be->destroy_workflow(p->f->inst, ctx_of(p->f),
						   &p->w.c, p->w.task, &err);
	snprintf(p->err, sizeof p->err, "%s", err.message);
	return NULL;
}

static void test_parallel_workflows(void **unused)
{
	fx f;
	par p[2];
	pthread_t thr[2];

	fx_open(&f);
	for (int i = 0; i < 2; i++) {
		memset(&p[i], 0, sizeof p[i]);
		p[i].f = &f;
		twf_init(&p[i].w);
		assert_int_equal(pthread_create(&thr[i], NULL, run_par, &p[i]), 0);
	}
	for (int i = 0; i < 2; i++) {
		char *want;
		pthread_join(thr[i], NULL);
		if (p[i].st != PERCH_OK)
			fprintf(stderr, "workflow %d: %s\n", i, p[i].err);
		assert_int_equal(p[i].st, PERCH_OK);
		assert_int_equal(p[i].s.exit_code, 0);
		want = perch_xasprintf("\n%s\n", p[i].w.task);
		has(p[i].out, want);
		free(want);
		free(p[i].out);
		twf_free(&p[i].w);
	}
	fx_close(&f);
}

/* ---- pulls ---- */

static void test_pull(void **unused)
{
	fx f;
	twf w;
	plugintest_step t;
	perch_error err = testhost_error();
	perch_state s;
	char *out;

	fx_open(&f);
	twf_init(&w);
	setup_wf(&f, &w);

	/* With credentials, pull: true; the progress opens the log. */
	remove_image(REG_AUTH "/perch-test/busybox:latest");
	tstep_init(&t, &w, "private");
	t.step.image = REG_AUTH "/perch-test/busybox:latest";
	t.step.pull = true;
	t.step.auth_config = (perch_auth){REG_USER, REG_PASS};
	plugintest_cmd(&t, "echo pulled-and-ran");
	out = run(&f, &w, &t, &s);
	assert_int_equal(s.exit_code, 0);
	assert_true(strncmp(out, "Pulling " REG_AUTH "/perch-test/busybox:latest\n",
			    strlen("Pulling " REG_AUTH "/perch-test/busybox:latest\n")) == 0);
	has(out, "Status: ");
	has(out, "pulled-and-ran\n");
	free(out);

	/* Wrong password: refused, clearly, even though the image is here
	 * now (no silent fallback to a stale local copy). */
	tstep_init(&t, &w, "badauth");
	t.step.image = REG_AUTH "/perch-test/busybox:latest";
	t.step.pull = true;
	t.step.auth_config = (perch_auth){REG_USER, "wrong"};
	plugintest_cmd(&t, "true");
	assert_int_equal(start(&f, &w, &t, &err), PERCH_ERR_INVALID_INPUT);
	has(err.message, "pull image " REG_AUTH "/perch-test/busybox:latest");
	assert_null(strchr(err.message, '\n'));
	destroy_step(&f, &w, &t);
	remove_image(REG_AUTH "/perch-test/busybox:latest");

	/* No credentials at all against the auth registry. */
	tstep_init(&t, &w, "noauth");
	t.step.image = REG_AUTH "/perch-test/busybox:latest";
	plugintest_cmd(&t, "true");
	assert_int_equal(start(&f, &w, &t, &err), PERCH_ERR_INVALID_INPUT);
	destroy_step(&f, &w, &t);

	/* Missing locally, pull not asked: pulled, then created. */
	remove_image(REG_OPEN "/perch-test/busybox:latest");
	tstep_init(&t, &w, "implicit");
	t.step.image = REG_OPEN "/perch-test/busybox:latest";
	plugintest_cmd(&t, "echo implicit-pull");
	out = run(&f, &w, &t, &s);
	assert_int_equal(s.exit_code, 0);
	has(out, "Pulling " REG_OPEN "/perch-test/busybox:latest\n");
	has(out, "implicit-pull\n");
	free(out);
	remove_image(REG_OPEN "/perch-test/busybox:latest");

	destroy_wf(&f, &w);
	twf_free(&w);
	fx_close(&f);
}

/* ---- discovery and resume ---- */

typedef struct seen {
	char task[128];
	size_t n_steps;
	char uuids[8][64];
	char names[8][64];
	char ids[8][80];
	int n_workflows;
	bool other;
	const char *other_task;
} seen;

static bool on_wf(void *user, const perch_discovered_workflow *wf)
{
	seen *s = user;
	s->n_workflows++;
	if (s->other_task != NULL && strcmp(wf->task_uuid, s->other_task) == 0)
		s->other = true;
	if (strcmp(wf->task_uuid, s->task) != 0)
		return true;
	s->n_steps = wf->n_steps;
	for (size_t i = 0; i < wf->n_steps && i < 8; i++) {
		snprintf(s->uuids[i], sizeof s->uuids[i], "%s", wf->steps[i]->uuid);
		snprintf(s->names[i], sizeof s->names[i], "%s", wf->steps[i]->name);
		snprintf(s->ids[i], sizeof s->ids[i], "%s",
			 wf->steps[i]->container_id);
	}
	return true;
}

static bool seen_has(const seen *s, const char *uuid, const char *name)
{
	for (size_t i = 0; i < s->n_steps && i < 8; i++)
		if (strcmp(s->uuids[i], uuid) == 0 &&
		    strcmp(s->names[i], name) == 0 && s->ids[i][0] != '\0')
			return true;
	return false;
}

/* Reads fd until want is in the output (or EOF); returns what was read. */
static char *read_until(int fd, const char *want)
{
	perch_buf b = {0};
	char tmp[256];

	while (b.data == NULL || strstr(b.data, want) == NULL) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n <= 0)
			break;
		perch_buf_append(&b, tmp, (size_t)n);
	}
	return b.data ? perch_buf_steal(&b) : perch_xstrdup("");
}

/* The Id of the container called name, or NULL (caller frees). */
static char *container_id(const char *name)
{
	json_object *o = inspect(name);
	const char *id = perch_docker_jstr(o, "Id");
	char *out = id ? perch_xstrdup(id) : NULL;
	json_object_put(o);
	return out;
}

/* True once the container called name exists (polled; the bound only
 * turns a hang into a failure). */
static bool appears(const char *name)
{
	for (int i = 0; i < 1000; i++) {
		if (container_exists(name))
			return true;
		usleep(10000);
	}
	return false;
}

/* Stages made ahead: while a stage runs, the next one's containers are
 * created from the config, and their start_step only starts them - when
 * nothing changed.  Discovery does not take them for steps; another
 * instance replaces them; destroy_workflow leaves nothing. */
static void test_prepared_stages(void **unused)
{
	fx f, g;
	twf w;
	plugintest_step a, b, c, d, e;
	const perch_step *s0[1], *s1[2], *s2[1], *s3[1];
	perch_stage st[4];
	const perch_stage *stages[4];
	const perch_workflow_discoverer_v1 *disc;
	perch_error err = testhost_error();
	perch_state s;
	seen sn;
	char *b_name, *c_name, *d_name, *e_name, *prepared, *used, *out;

	fx_open(&f);
	twf_init(&w);
	tstep_init(&a, &w, "first");
	plugintest_cmd(&a, "echo from-a");
	tstep_init(&b, &w, "second");
	plugintest_cmd(&b, "echo from-b");
	tstep_init(&c, &w, "on-failure-only");
	plugintest_cmd(&c, "true");
	c.step.on_failure = true;
	tstep_init(&d, &w, "third");
	plugintest_cmd(&d, "echo from-d");
	tstep_init(&e, &w, "fourth");
	plugintest_cmd(&e, "echo from-e");
	a.step.on_success = b.step.on_success = true;
	d.step.on_success = e.step.on_success = true;
	s0[0] = &a.step;
	s1[0] = &b.step;
	s1[1] = &c.step;
	s2[0] = &d.step;
	s3[0] = &e.step;
	st[0] = (perch_stage){.struct_size = sizeof st[0], .steps = s0, .n_steps = 1};
	st[1] = (perch_stage){.struct_size = sizeof st[1], .steps = s1, .n_steps = 2};
	st[2] = (perch_stage){.struct_size = sizeof st[2], .steps = s2, .n_steps = 1};
	st[3] = (perch_stage){.struct_size = sizeof st[3], .steps = s3, .n_steps = 1};
	for (int i = 0; i < 4; i++)
		stages[i] = &st[i];
	w.c.stages = stages;
	w.c.n_stages = 4;
	setup_wf(&f, &w);
	b_name = perch_xasprintf("wp_%s", b.uuid);
	c_name = perch_xasprintf("wp_%s", c.uuid);
	d_name = perch_xasprintf("wp_%s", d.uuid);
	e_name = perch_xasprintf("wp_%s", e.uuid);

	/* Nothing is made before a stage runs. */
	assert_false(container_exists(b_name));
	assert_int_equal(start(&f, &w, &a, &err), PERCH_OK);
	assert_true(appears(b_name));
	assert_false(container_exists(c_name)); /* runs only after a failure */
	assert_false(container_exists(d_name)); /* one stage ahead only */
	prepared = container_id(b_name);
	assert_non_null(prepared);

	/* A container that never ran is not a step to resume. */
	disc = f.be->get_capability(f.inst, PERCH_CAP_WORKFLOW_DISCOVERER);
	memset(&sn, 0, sizeof sn);
	snprintf(sn.task, sizeof sn.task, "%s", w.task);
	assert_int_equal(disc->discover_workflows(f.inst, ctx_of(&f), on_wf, &sn,
						  &err),
			 PERCH_OK);
	assert_int_equal(sn.n_steps, 1);
	assert_true(seen_has(&sn, a.uuid, "first"));

	out = tail(&f, &w, &a);
	s = wait_ok(&f, &w, &a);
	assert_int_equal(s.exit_code, 0);
	has(out, "from-a\n");
	free(out);
	destroy_step(&f, &w, &a);

	/* The prepared container is the one that runs. */
	assert_int_equal(start(&f, &w, &b, &err), PERCH_OK);
	used = container_id(b_name);
	assert_string_equal(used, prepared);
	free(used);
	free(prepared);
	out = tail(&f, &w, &b);
	s = wait_ok(&f, &w, &b);
	assert_int_equal(s.exit_code, 0);
	has(out, "from-b\n");
	free(out);
	destroy_step(&f, &w, &b);

	/* Stage 2 was made once stage 1 ran; a step that changed since
	 * gets a container of its own. */
	assert_true(appears(d_name));
	prepared = container_id(d_name);
	plugintest_cmd(&d, "echo changed");
	out = run(&f, &w, &d, &s);
	assert_int_equal(s.exit_code, 0);
	has(out, "from-d\n");
	has(out, "changed\n");
	free(out);
	free(prepared);

	/* Another instance of this host (a restarted or upgraded perch)
	 * replaces a prepared container it does not know with its own. */
	assert_true(appears(e_name));
	fx_open(&g);
	out = run(&g, &w, &e, &s);
	assert_int_equal(s.exit_code, 0);
	has(out, "from-e\n");
	free(out);
	fx_close(&g);

	destroy_wf(&f, &w);
	assert_int_equal(count_labelled("containers", host_id, w.task), 0);
	assert_int_equal(count_labelled("networks", host_id, w.task), 0);
	assert_int_equal(count_labelled("volumes", host_id, w.task), 0);
	free(b_name);
	free(c_name);
	free(d_name);
	free(e_name);
	twf_free(&w);
	fx_close(&f);
}

static void test_discover_and_resume(void **unused)
{
	fx a, other, b;
	twf w, wo;
	plugintest_step done, live, mine;
	perch_error err = testhost_error();
	perch_state s = new_state();
	const perch_workflow_discoverer_v1 *disc;
	const perch_workflow_resumer_v1 *res;
	perch_resume_point rp = {.struct_size = sizeof rp};
	seen sn;
	char *first, *rest, *all, *name;
	int fd = -1;

	fx_open(&a);
	fx_open_flags(&other, other_host_id, NULL);
	twf_init(&w);
	twf_init(&wo);
	setup_wf(&a, &w);
	setup_wf(&other, &wo);

	/* Another host's workflow on the same engine. */
	tstep_init(&mine, &wo, "build");
	plugintest_cmd(&mine, "sleep 300");
	assert_int_equal(start(&other, &wo, &mine, &err), PERCH_OK);

	/* One step that will have ended while "perch was down", one that
	 * still runs and prints numbered lines. */
	tstep_init(&done, &w, "finished");
	plugintest_cmd(&done, "echo done-output");
	plugintest_cmd(&done, "exit 7");
	assert_int_equal(start(&a, &w, &done, &err), PERCH_OK);
	tstep_init(&live, &w, "counter");
	live.step.pull = true;
	live.step.image = REG_OPEN "/perch-test/busybox:latest";
	plugintest_cmd(&live, "i=1; while [ $i -le 40 ]; do echo line-$i; i=$((i+1)); "
		   "if [ $i -eq 6 ]; then sleep 2; fi; done; sleep 1; "
		   "echo tail-end; exit 5");
	assert_int_equal(start(&a, &w, &live, &err), PERCH_OK);
	assert_int_equal(a.be->tail_step(a.inst, ctx_of(&a), &live.step, w.task,
					 &fd, &err),
			 PERCH_OK);
	first = read_until(fd, "line-3\n");
	has(first, "Pulling ");
	rp.bytes_seen = strlen(first);
	/* "Restart": the host goes away mid-stream. */
	close(fd);
	fx_close(&a);

	fx_open(&b);
	disc = b.be->get_capability(b.inst, PERCH_CAP_WORKFLOW_DISCOVERER);
	res = b.be->get_capability(b.inst, PERCH_CAP_WORKFLOW_RESUMER);
	assert_non_null(disc);
	assert_non_null(res);
	memset(&sn, 0, sizeof sn);
	snprintf(sn.task, sizeof sn.task, "%s", w.task);
	sn.other_task = wo.task;
	assert_int_equal(disc->discover_workflows(b.inst, ctx_of(&b), on_wf, &sn,
						  &err),
			 PERCH_OK);
	assert_int_equal(sn.n_steps, 2);
	assert_true(seen_has(&sn, done.uuid, "finished"));
	assert_true(seen_has(&sn, live.uuid, "counter"));
	assert_false(sn.other); /* another host id's workflow is not ours */

	/* The step that ended while we were away: its own exit code. */
	assert_int_equal(res->resume_step(b.inst, ctx_of(&b), &done.step, w.task,
					  NULL, &err),
			 PERCH_OK);
	all = tail(&b, &w, &done);
	assert_string_equal(all, "+ echo done-output\ndone-output\n+ exit 7\n");
	free(all);
	s = wait_ok(&b, &w, &done);
	assert_int_equal(s.exit_code, 7);
	destroy_step(&b, &w, &done);

	/* The running one: the log goes on where the host stopped. */
	assert_int_equal(res->resume_step(b.inst, ctx_of(&b), &live.step, w.task,
					  &rp, &err),
			 PERCH_OK);
	rest = tail(&b, &w, &live);
	s = wait_ok(&b, &w, &live);
	assert_int_equal(s.exit_code, 5);
	all = perch_xasprintf("%s%s", first, rest);
	has(all, "line-1\nline-2\nline-3\nline-4\n");
	has(all, "line-39\nline-40\ntail-end\n");
	/* Each line once: no repeats across the restart. */
	for (int i = 1; i <= 40; i++) {
		char *l = perch_xasprintf("line-%d\n", i);
		char *at = strstr(all, l);
		assert_non_null(at);
		assert_null(strstr(at + 1, l + 0) == at ? NULL : strstr(at + strlen(l), l));
		free(l);
	}
	/* And the whole stream equals a fresh read from the start. */
	assert_int_equal(res->resume_step(b.inst, ctx_of(&b), &live.step, w.task,
					  NULL, &err),
			 PERCH_OK);
	{
		char *again = tail(&b, &w, &live);
		assert_string_equal(again, all);
		free(again);
	}
	/* Lines instead of bytes: the same continuation. */
	{
		perch_resume_point lp = {.struct_size = sizeof lp};
		char *again;
		for (const char *p = first; *p; p++)
			lp.lines_seen += *p == '\n';
		assert_int_equal(res->resume_step(b.inst, ctx_of(&b), &live.step,
						  w.task, &lp, &err),
				 PERCH_OK);
		again = tail(&b, &w, &live);
		assert_string_equal(again, rest);
		free(again);
	}
	free(all);
	free(rest);
	free(first);
	destroy_step(&b, &w, &live);

	/* A step with no container cannot be resumed. */
	name = perch_xasprintf("%s", live.uuid);
	assert_int_equal(res->resume_step(b.inst, ctx_of(&b), &live.step, w.task,
					  NULL, &err),
			 PERCH_ERR_NOT_FOUND);
	free(name);

	destroy_wf(&b, &w);
	destroy_wf(&other, &wo);
	/* After destroy, discovery finds nothing of either. */
	memset(&sn, 0, sizeof sn);
	snprintf(sn.task, sizeof sn.task, "%s", w.task);
	sn.other_task = wo.task;
	assert_int_equal(disc->discover_workflows(b.inst, ctx_of(&b), on_wf, &sn,
						  &err),
			 PERCH_OK);
	assert_int_equal(sn.n_steps, 0);
	assert_false(sn.other);
	remove_image(REG_OPEN "/perch-test/busybox:latest");
	twf_free(&w);
	twf_free(&wo);
	fx_close(&b);
	fx_close(&other);
}

/* ---- the engine going away mid-step (a proxy socket the test cuts) ---- */

typedef struct proxy {
	char path[108];
	int listen_fd;
	int stop_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	int requests; /* reads from the plugin's side: requests sent so far */
} proxy;

static int dial_engine(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(a.sun_path, sizeof a.sun_path, "%s", SOCKET);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void *proxy_main(void *arg)
{
	proxy *p = arg;
	int pairs[64][2];
	size_t n = 0, polled;

	for (;;) {
		struct pollfd pf[2 + 128];
		size_t k = 0;
		pf[k++] = (struct pollfd){.fd = p->stop_fd, .events = POLLIN};
		pf[k++] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
		for (size_t i = 0; i < n; i++) {
			pf[k++] = (struct pollfd){.fd = pairs[i][0], .events = POLLIN};
			pf[k++] = (struct pollfd){.fd = pairs[i][1], .events = POLLIN};
		}
		if (poll(pf, k, -1) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;
		polled = n;
		if ((pf[1].revents & POLLIN) && n < 64) {
			int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			int e = c >= 0 ? dial_engine() : -1;
			if (c >= 0 && e >= 0) {
				pairs[n][0] = c;
				pairs[n][1] = e;
				n++;
			} else {
				if (c >= 0)
					close(c);
				if (e >= 0)
					close(e);
			}
		}
		for (size_t i = 0; i < polled; i++) {
			bool dead = false;
			for (int side = 0; side < 2 && !dead; side++) {
				struct pollfd *q = &pf[2 + 2 * i + side];
				char buf[16384];
				ssize_t r;
				if (!(q->revents & (POLLIN | POLLHUP | POLLERR)))
					continue;
				r = read(q->fd, buf, sizeof buf);
				if (r <= 0 || perch_write_all(pairs[i][!side], buf,
							      (size_t)r) != 0)
					dead = true;
				if (r > 0 && side == 0) {
					pthread_mutex_lock(&p->lock);
					p->requests++;
					pthread_mutex_unlock(&p->lock);
				}
			}
			if (dead) {
				close(pairs[i][0]);
				close(pairs[i][1]);
				pairs[i][0] = pairs[n - 1][0];
				pairs[i][1] = pairs[n - 1][1];
				n--;
				/* pf no longer matches: poll again. */
				break;
			}
		}
	}
	for (size_t i = 0; i < n; i++) {
		close(pairs[i][0]);
		close(pairs[i][1]);
	}
	return NULL;
}

static void proxy_start(proxy *p)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memset(p, 0, sizeof *p);
	snprintf(p->path, sizeof p->path, "/tmp/perch-test-proxy-%d.sock",
		 (int)getpid());
	unlink(p->path);
	snprintf(a.sun_path, sizeof a.sun_path, "%s", p->path);
	p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->listen_fd >= 0);
	assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(p->listen_fd, 16), 0);
	p->stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&p->lock, NULL);
	assert_int_equal(pthread_create(&p->thread, NULL, proxy_main, p), 0);
}

static int proxy_requests(proxy *p)
{
	int n;
	pthread_mutex_lock(&p->lock);
	n = p->requests;
	pthread_mutex_unlock(&p->lock);
	return n;
}

/* Like an engine that dies: every connection cut, the socket gone. */
static void proxy_kill(proxy *p)
{
	uint64_t one = 1;
	if (p->stop_fd < 0)
		return;
	assert_int_equal(write(p->stop_fd, &one, sizeof one), sizeof one);
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
	close(p->stop_fd);
	p->stop_fd = -1;
	unlink(p->path);
	pthread_mutex_destroy(&p->lock);
}

typedef struct waiter {
	fx *f;
	twf *w;
	plugintest_step *t;
	perch_status st;
	perch_error err;
	perch_state s;
} waiter;

static void *wait_thread(void *arg)
{
	waiter *wt = arg;
	wt->err = testhost_error();
	wt->s = new_state();
	wt->st = wt->f->be->wait_step(wt->f->inst, ctx_of(wt->f), &wt->t->step,
				      wt->w->task, &wt->s, &wt->err);
	return NULL;
}

static void test_engine_lost_mid_step(void **unused)
{
	fx f, clean;
	twf w;
	plugintest_step t;
	proxy px;
	waiter wt;
	pthread_t thr;
	perch_error err = testhost_error();
	const char *flags[3] = {"backend-docker-host", NULL, NULL};
	char *host;
	int before;

	need_engine();
	proxy_start(&px);
	host = perch_xasprintf("unix://%s", px.path);
	flags[1] = host;
	fx_open_flags(&f, host_id, flags);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&t, &w, "victim");
	plugintest_cmd(&t, "sleep 600");
	assert_int_equal(start(&f, &w, &t, &err), PERCH_OK);
	wt = (waiter){.f = &f, .w = &w, .t = &t};
	before = proxy_requests(&px);
	assert_int_equal(pthread_create(&thr, NULL, wait_thread, &wt), 0);
	/* Cut once the wait's request is in (its first and only one: the
	 * container id is cached since start_step; the connection may be
	 * one that start_step opened). */
	for (int i = 0; i < 1000 && proxy_requests(&px) == before; i++)
		usleep(10000);
	assert_true(proxy_requests(&px) > before);
	usleep(100000);
	proxy_kill(&px);
	pthread_join(thr, NULL);
	assert_int_equal(wt.st, PERCH_ERR_UNAVAILABLE);
	has(wt.err.message, "lost the connection to the docker engine");
	assert_null(strchr(wt.err.message, '\n'));
	/* Cleanup through the engine (the "restarted" one). */
	{
		perch_status st = f.be->destroy_workflow(f.inst, ctx_of(&f), &w.c,
							 w.task, &err);
		assert_int_equal(st, PERCH_ERR_UNAVAILABLE);
		has(err.message, "not reachable");
	}
	fx_close(&f);
	fx_open(&clean);
	destroy_wf(&clean, &w);
	fx_close(&clean);
	twf_free(&w);
	free(host);
}

/* ---- tcp:// with TLS from a cert dir (socat in front of the socket) ---- */

static void copy_file(const char *from, const char *to)
{
	size_t len = 0;
	char *why = NULL;
	char *data = perch_read_file(from, &len, &why);
	FILE *f;
	if (data == NULL)
		fail_msg("%s: run .ci/docker.sh", why);
	f = fopen(to, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
	free(data);
}

static void test_tls(void **unused)
{
	const char *flags[] = {
		"backend-docker-host", TLS_HOST,
		"backend-docker-cert", TLS_CERTS,
		NULL, NULL, NULL,
	};
	char dir[] = "/tmp/perch-test-tls-XXXXXX";
	char *p[6];
	fx f;
	twf w;
	plugintest_step t;
	perch_state s;
	char *out;

	need_engine();
	if (access(TLS_CERTS "/key.pem", R_OK) != 0)
		fail_msg("no client certificates in %s: run .ci/docker.sh",
			 TLS_CERTS);
	fx_open_flags(&f, host_id, flags);
	twf_init(&w);
	setup_wf(&f, &w);
	tstep_init(&t, &w, "over-tls");
	plugintest_cmd(&t, "echo hello over tls");
	out = run(&f, &w, &t, &s);
	has(out, "hello over tls\n");
	free(out);
	destroy_wf(&f, &w);
	twf_free(&w);
	fx_close(&f);

	/* A CA that did not sign the engine's certificate: refused, one
	 * line; accepted once verification is off. */
	assert_non_null(mkdtemp(dir));
	p[0] = perch_xasprintf("%s/ca.pem", dir);
	p[1] = perch_xasprintf("%s/cert.pem", dir);
	p[2] = perch_xasprintf("%s/key.pem", dir);
	p[3] = perch_xasprintf("%s/cert.pem", TLS_CERTS);
	p[4] = perch_xasprintf("%s/key.pem", TLS_CERTS);
	copy_file(p[3], p[0]); /* the client's own cert as the "CA" */
	copy_file(p[3], p[1]);
	copy_file(p[4], p[2]);
	{
		testhost *th = testhost_new();
		const perch_backend *be = plugintest_open(th, "docker");
		perch_instance *inst = NULL;
		perch_backend_info info = {.struct_size = sizeof info};
		perch_error err = testhost_error();
		testhost_set_flag(th, "backend-docker-host", TLS_HOST);
		testhost_set_flag(th, "backend-docker-cert", dir);
		assert_int_equal(be->load(testhost_table(th), testhost_ctx(th),
					  &inst, &info, &err),
				 PERCH_ERR_UNAVAILABLE);
		has(err.message, "TLS with the docker engine at " TLS_HOST " failed");
		testhost_set_flag(th, "backend-docker-tls-verify", "false");
		assert_int_equal(be->load(testhost_table(th), testhost_ctx(th),
					  &inst, &info, &err),
				 PERCH_OK);
		be->unload(inst);
		testhost_free(th);
	}
	for (int i = 0; i < 3; i++)
		unlink(p[i]);
	for (int i = 0; i < 5; i++)
		free(p[i]);
	rmdir(dir);
}

/* ---- last: nothing of this run is left ---- */

static void test_no_leaks(void **unused)
{
	need_engine();
	for (int i = 0; i < 2; i++) {
		const char *id = i == 0 ? host_id : other_host_id;
		size_t c = count_labelled("containers", id, NULL);
		size_t v = count_labelled("volumes", id, NULL);
		size_t n = count_labelled("networks", id, NULL);
		if (c + v + n > 0)
			fprintf(stderr, "left with io.perch.host-id=%s: %zu "
					"containers, %zu volumes, %zu networks\n",
				id, c, v, n);
		assert_int_equal(c + v + n, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entry_and_load),
		cmocka_unit_test(test_engine_down),
		cmocka_unit_test(test_socket_permission),
		cmocka_unit_test(test_commands_env_workdir),
		cmocka_unit_test(test_exit_code_and_shared_workspace),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_name_schemes),
		cmocka_unit_test(test_service_alias),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_cancel_mid_step),
		cmocka_unit_test(test_failed_starts),
		cmocka_unit_test(test_parallel_workflows),
		cmocka_unit_test(test_pull),
		cmocka_unit_test(test_discover_and_resume),
		cmocka_unit_test(test_prepared_stages),
		cmocka_unit_test(test_engine_lost_mid_step),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_no_leaks),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
