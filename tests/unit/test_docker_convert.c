/*
 * test_docker_convert.c - the docker backend's pure parts, no engine:
 * Woodpecker's CI_SCRIPT (the script, base64), a step as a
 * container-create body, container names, volume specs, the log stream
 * demultiplexer (any chunking), and the one-line errors with their status
 * (including the ones a test engine cannot be made to produce, such as an
 * exhausted address pool).
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker.h"
#include "plugintest.h"
#include "util.h"

/* ---- script (the quoting itself: test_perchplugin) ---- */

static void test_script(void **unused)
{
	const char *cmds[] = {"echo ${PATH}", "go build", "go test"};
	char *s = perch_docker_script(cmds, 3, "/woodpecker/some");
	const char *want_head =
		"\nif [ -n \"$CI_NETRC_MACHINE\" ]; then\n"
		"cat <<EOF > $HOME/.netrc\nmachine $CI_NETRC_MACHINE\n"
		"login $CI_NETRC_USERNAME\npassword $CI_NETRC_PASSWORD\nEOF\n"
		"chmod 0600 $HOME/.netrc\nfi\nunset CI_NETRC_USERNAME\n"
		"unset CI_NETRC_PASSWORD\nunset CI_SCRIPT\n"
		"mkdir -p \"/woodpecker/some\"\ncd \"/woodpecker/some\"\n";
	const char *want_tail =
		"\nprintf '%s\\n' '+ echo ${PATH}'\necho ${PATH}\n"
		"\nprintf '%s\\n' '+ go build'\ngo build\n"
		"\nprintf '%s\\n' '+ go test'\ngo test\n";

	assert_non_null(s);
	assert_true(strncmp(s, want_head, strlen(want_head)) == 0);
	assert_string_equal(s + strlen(want_head), want_tail);
	free(s);

	/* A work dir is used as named, never expanded by the shell. */
	s = perch_docker_script(cmds, 0, "/w/$HOME/`x`/\"q\"");
	assert_non_null(strstr(s, "cd \"/w/\\$HOME/\\`x\\`/\\\"q\\\"\"\n"));
	free(s);
	/* No work dir: no cd. */
	s = perch_docker_script(cmds, 1, "");
	assert_null(strstr(s, "cd "));
	free(s);
}

static void test_base64(void **unused)
{
	const char *cases[][2] = {
		{"", ""},       {"f", "Zg=="},         {"fo", "Zm8="},
		{"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"foobar", "Zm9vYmFy"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *b = perch_docker_base64(cases[i][0], strlen(cases[i][0]));
		assert_string_equal(b, cases[i][1]);
		free(b);
	}
	{
		const unsigned char raw[] = {0xfb, 0xff, 0xbf};
		char *b = perch_docker_base64(raw, 3);
		char *u = perch_docker_base64url(raw, 3);
		assert_string_equal(b, "+/+/");
		assert_string_equal(u, "-_-_");
		free(b);
		free(u);
	}
}

/* ---- conversion ---- */

/* The step every conversion test starts from. */
static void tstep_init(plugintest_step *t)
{
	plugintest_step_init(t, "build", "01HUUID", "commands", "alpine:3");
	t->step.working_dir = "/woodpecker/src/repo";
	t->step.workspace_base = "/woodpecker";
}

static json_object *get(json_object *o, const char *path)
{
	char *copy = perch_xstrdup(path), *save = NULL;
	for (char *k = strtok_r(copy, ".", &save); k && o;
	     k = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(o, k, &o))
			o = NULL;
	free(copy);
	return o;
}

static const char *gets_(json_object *o, const char *path)
{
	json_object *v = get(o, path);
	return v ? json_object_get_string(v) : NULL;
}

static json_object *body_of(plugintest_step *t, const perch_docker_conf *conf,
			    perch_status want, perch_error *err)
{
	perch_docker_create_in in = {
		.conf = conf,
		.task_uuid = "task-1",
		.host_id = "host-a",
		.prelude = "Pulling alpine:3\n",
	};
	json_object *b = NULL;
	*err = (perch_error){.struct_size = sizeof *err};
	assert_int_equal(perch_docker_create_body(&in, &t->step, &b, err), want);
	return b;
}

static void test_create_body(void **unused)
{
	perch_docker_conf conf = {0};
	char *conf_vols[] = {"/etc/ssl:/etc/ssl:ro", "vol_default:/woodpecker"};
	perch_error err;
	plugintest_step t;
	json_object *b, *env, *ep;
	char *script = NULL;

	conf.volumes = conf_vols;
	conf.n_volumes = 2;
	conf.limit_mem = 1 << 20;
	conf.limit_cpu_set = "0,1";
	conf.apparmor_profile = "perch";
	conf.network = "shared";
	tstep_init(&t);
	t.env[t.step.environment.len++] = (perch_kv){"CI_WORKSPACE", "/woodpecker/src/repo"};
	t.env[t.step.environment.len++] = (perch_kv){"", "dropped"};
	t.env[t.step.environment.len++] = (perch_kv){"SHELL", "/bin/bash"};
	t.cmds[t.step.commands.len++] = "make";
	t.vols[t.step.volumes.len++] = "vol_default:/woodpecker";
	t.vols[t.step.volumes.len++] = "/cache";
	t.tmpfs[t.step.tmpfs.len++] = "/run";
	t.tmpfs[t.step.tmpfs.len++] = "/tmp:size=64m,mode=1777";
	t.devs[t.step.devices.len++] = "/dev/fuse";
	t.devs[t.step.devices.len++] = "/dev/kvm:/dev/kvm:rw";
	t.hosts[t.step.n_extra_hosts++] = (perch_host_alias){"db", "10.0.0.5"};
	t.dns[t.step.dns.len++] = "2001:db8::53";
	t.aliases[0][0] = "build";
	t.nets[0] = (perch_conn){"wf_default", {t.aliases[0], 1}};
	t.nets[1] = (perch_conn){"extra", {NULL, 0}};
	t.step.n_networks = 2;
	t.ports[t.step.n_ports++] = (perch_port){5432, ""};
	t.wlabels[t.step.workflow_labels.len++] = (perch_kv){"wp_uuid", "not-this"};
	t.wlabels[t.step.workflow_labels.len++] = (perch_kv){"org.example", "x"};
	t.step.privileged = true;
	t.step.backend_options = "{\"docker\":{\"user\":1000},\"kubernetes\":{}}";

	b = body_of(&t, &conf, PERCH_OK, &err);
	assert_string_equal(gets_(b, "Image"), "alpine:3");
	assert_string_equal(gets_(b, "User"), "1000");
	/* Commands: the work dir is the workspace base; the script cds. */
	assert_string_equal(gets_(b, "WorkingDir"), "/woodpecker");
	ep = get(b, "Entrypoint");
	assert_int_equal(json_object_array_length(ep), 3);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(ep, 2)),
			    "echo $CI_SCRIPT | base64 -d | /bin/sh -e");
	env = get(b, "Env");
	assert_int_equal(json_object_array_length(env), 3);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(env, 0)),
			    "CI_WORKSPACE=/woodpecker/src/repo");
	script = perch_docker_script(t.cmds, 1, "/woodpecker/src/repo");
	{
		char *b64 = perch_docker_base64(script, strlen(script));
		char *want = perch_xasprintf("CI_SCRIPT=%s", b64);
		assert_string_equal(
			json_object_get_string(json_object_array_get_idx(env, 1)),
			want);
		free(want);
		free(b64);
	}
	free(script);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(env, 2)),
			    "SHELL=/bin/sh");
	/* Labels: ours win over the workflow's. */
	assert_string_equal(gets_(b, "Labels.wp_uuid"), "01HUUID");
	assert_string_equal(gets_(b, "Labels.wp_step"), "build");
	{
		json_object *l = get(b, "Labels");
		json_object *v;
		assert_true(json_object_object_get_ex(l, "io.perch.host-id", &v));
		assert_string_equal(json_object_get_string(v), "host-a");
		assert_true(json_object_object_get_ex(l, "io.perch.task-uuid", &v));
		assert_string_equal(json_object_get_string(v), "task-1");
		assert_true(json_object_object_get_ex(l, "io.perch.prelude", &v));
		assert_string_equal(json_object_get_string(v), "Pulling alpine:3\n");
		assert_true(json_object_object_get_ex(l, "org.example", &v));
	}
	/* Binds: the step's, then the configured ones, once each. */
	{
		json_object *binds = get(b, "HostConfig.Binds");
		assert_int_equal(json_object_array_length(binds), 2);
		assert_string_equal(json_object_get_string(json_object_array_get_idx(binds, 0)),
				    "vol_default:/woodpecker");
		assert_string_equal(json_object_get_string(json_object_array_get_idx(binds, 1)),
				    "/etc/ssl:/etc/ssl:ro");
		assert_non_null(get(b, "Volumes./cache"));
	}
	assert_string_equal(gets_(b, "HostConfig.Tmpfs./run"), "");
	assert_string_equal(gets_(b, "HostConfig.Tmpfs./tmp"), "size=64m,mode=1777");
	{
		json_object *d = get(b, "HostConfig.Devices");
		json_object *d0 = json_object_array_get_idx(d, 0);
		json_object *d1 = json_object_array_get_idx(d, 1);
		assert_string_equal(gets_(d0, "PathOnHost"), "/dev/fuse");
		assert_string_equal(gets_(d0, "PathInContainer"), "/dev/fuse");
		assert_string_equal(gets_(d0, "CgroupPermissions"), "rwm");
		assert_string_equal(gets_(d1, "CgroupPermissions"), "rw");
	}
	assert_string_equal(json_object_get_string(json_object_array_get_idx(
				    get(b, "HostConfig.ExtraHosts"), 0)),
			    "db:10.0.0.5");
	assert_true(json_object_get_boolean(get(b, "HostConfig.Privileged")));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(
				    get(b, "HostConfig.SecurityOpt"), 0)),
			    "apparmor=perch");
	assert_int_equal(json_object_get_int64(get(b, "HostConfig.Memory")), 1 << 20);
	assert_null(get(b, "HostConfig.MemorySwap"));
	assert_string_equal(gets_(b, "HostConfig.CpusetCpus"), "0,1");
	assert_string_equal(gets_(b, "HostConfig.LogConfig.Type"), "json-file");
	/* The first network at create, with its aliases. */
	assert_string_equal(gets_(b, "HostConfig.NetworkMode"), "wf_default");
	{
		json_object *eps = get(b, "NetworkingConfig.EndpointsConfig");
		json_object *wf, *al;
		assert_int_equal(json_object_object_length(eps), 1);
		assert_true(json_object_object_get_ex(eps, "wf_default", &wf));
		assert_true(json_object_object_get_ex(wf, "Aliases", &al));
		assert_string_equal(json_object_get_string(json_object_array_get_idx(al, 0)),
				    "build");
	}
	assert_non_null(get(b, "ExposedPorts.5432/tcp"));
	json_object_put(b);

	/* network_mode wins over networks; no commands: working_dir. */
	t.step.commands.len = 0;
	t.step.network_mode = "host";
	t.ep[t.step.entrypoint.len++] = "/bin/plugin";
	b = body_of(&t, &conf, PERCH_OK, &err);
	assert_string_equal(gets_(b, "HostConfig.NetworkMode"), "host");
	assert_null(get(b, "NetworkingConfig"));
	assert_string_equal(gets_(b, "WorkingDir"), "/woodpecker/src/repo");
	assert_int_equal(json_object_array_length(get(b, "Entrypoint")), 1);
	assert_int_equal(json_object_array_length(get(b, "Env")), 2);
	json_object_put(b);

	/* Refusals. */
	t.step.network_mode = "";
	t.dns[0] = "dns.example";
	assert_null(body_of(&t, &conf, PERCH_ERR_INVALID_INPUT, &err));
	assert_string_equal(err.message,
			    "invalid dns server \"dns.example\": not an IP address");
	t.dns[0] = "1.1.1.1";
	t.vols[1] = "relative:path";
	assert_null(body_of(&t, &conf, PERCH_ERR_INVALID_INPUT, &err));
	t.vols[1] = "/cache";
	t.tmpfs[0] = "run";
	assert_null(body_of(&t, &conf, PERCH_ERR_INVALID_INPUT, &err));
	t.tmpfs[0] = "/run";
	t.step.backend_options = "{\"docker\":\"root\"}";
	assert_null(body_of(&t, &conf, PERCH_ERR_INVALID_INPUT, &err));
	t.step.backend_options = "{\"docker\":{\"user\":true}}";
	assert_null(body_of(&t, &conf, PERCH_ERR_INVALID_INPUT, &err));
}

static void test_names_and_volumes(void **unused)
{
	perch_error err = {.struct_size = sizeof err};
	plugintest_step t;
	char *name, *src, *dst, *mode;

	tstep_init(&t);
	assert_int_equal(perch_docker_container_name(&t.step, "42", &name, &err),
			 PERCH_OK);
	assert_string_equal(name, "wp_01HUUID");
	free(name);
	t.step.container_name_scheme = "readable";
	t.step.name = "unit tests (go)";
	assert_int_equal(perch_docker_container_name(&t.step, "42", &name, &err),
			 PERCH_OK);
	assert_string_equal(name, "wp_42_unit-tests--go-");
	free(name);
	t.step.container_name_scheme = "pets";
	assert_int_equal(perch_docker_container_name(&t.step, "42", &name, &err),
			 PERCH_ERR_INVALID_INPUT);
	assert_null(name);

	assert_true(perch_docker_split_volume("a:/b:ro", &src, &dst, &mode));
	assert_string_equal(src, "a");
	assert_string_equal(dst, "/b");
	assert_string_equal(mode, "ro");
	free(src), free(dst), free(mode);
	assert_true(perch_docker_split_volume("/only", &src, &dst, &mode));
	assert_null(src);
	assert_string_equal(dst, "/only");
	free(dst);
	assert_false(perch_docker_split_volume("", &src, &dst, &mode));
	assert_false(perch_docker_split_volume("a::/b", &src, &dst, &mode));
	assert_false(perch_docker_split_volume("a:/b:ro:x", &src, &dst, &mode));
	assert_false(perch_docker_split_volume("a:b", &src, &dst, &mode));
	assert_false(perch_docker_split_volume("rel", &src, &dst, &mode));
}

/* ---- demux ---- */

static bool collect(void *user, const char *data, size_t n)
{
	perch_buf_append(user, data, n);
	return true;
}

static void test_demux(void **unused)
{
	perch_buf in = {0}, out;
	const char *payloads[] = {"hello\n", "", "err line\n", "partial"};
	const unsigned char streams[] = {1, 1, 2, 1};

	for (size_t i = 0; i < 4; i++) {
		size_t n = strlen(payloads[i]);
		unsigned char h[8] = {streams[i], 0, 0, 0, (unsigned char)(n >> 24),
				      (unsigned char)(n >> 16),
				      (unsigned char)(n >> 8), (unsigned char)n};
		perch_buf_append(&in, h, 8);
		perch_buf_append(&in, payloads[i], n);
	}
	/* Every chunk size, including one byte at a time. */
	for (size_t chunk = 1; chunk <= in.len; chunk++) {
		perch_docker_demux d = {0};
		memset(&out, 0, sizeof out);
		for (size_t off = 0; off < in.len; off += chunk) {
			size_t n = in.len - off < chunk ? in.len - off : chunk;
			assert_true(perch_docker_demux_feed(&d, in.data + off, n,
							    collect, &out));
		}
		assert_string_equal(out.data, "hello\nerr line\npartial");
		perch_buf_free(&out);
	}
	/* A TTY stream passes through; a bad header stops. */
	{
		perch_docker_demux d = {.tty = true};
		memset(&out, 0, sizeof out);
		assert_true(perch_docker_demux_feed(&d, "\x01raw", 4, collect, &out));
		assert_string_equal(out.data, "\x01raw");
		perch_buf_free(&out);
		d = (perch_docker_demux){0};
		assert_false(perch_docker_demux_feed(&d, "\x09\0\0\0\0\0\0\1x", 9,
						     collect, &out));
	}
	perch_buf_free(&in);
}

/* ---- errors ---- */

static perch_docker_resp reply(long status, const char *body)
{
	perch_docker_resp r;
	memset(&r, 0, sizeof r);
	r.status = status;
	if (body != NULL)
		pp_buf_puts(&r.body, body);
	return r;
}

static void test_errors(void **unused)
{
	perch_docker_client c;
	perch_error err = {.struct_size = sizeof err};
	perch_docker_resp r;

	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	assert_int_equal(perch_docker_client_init(&c, NULL, NULL, true, &err),
			 PERCH_OK);
	assert_string_equal(c.display, "unix:///var/run/docker.sock");

	r = reply(403, "{\"message\":\"could not find an available, "
		       "non-overlapping IPv4 address pool among the defaults "
		       "to assign to the network\"}");
	assert_int_equal(perch_docker_fail(&c, &r, &err, "create network wf_default"),
			 PERCH_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.message, "create network wf_default: the "
					    "docker engine has no free address pool"));
	perch_docker_resp_free(&r);

	r = reply(404, "{\"message\":\"No such image: nope:1\"}\n");
	assert_int_equal(perch_docker_fail(&c, &r, &err, "create container x"),
			 PERCH_ERR_NOT_FOUND);
	assert_string_equal(err.message, "create container x: No such image: nope:1");
	perch_docker_resp_free(&r);

	r = reply(409, "{\"message\":\"Conflict. The container name \\\"/x\\\" is "
		       "already in use by container \\\"abc\\\".\"}");
	assert_int_equal(perch_docker_fail(&c, &r, &err, "create container x"),
			 PERCH_ERR_INVALID_INPUT);
	perch_docker_resp_free(&r);

	r = reply(500, "<html>proxy\nerror</html>");
	assert_int_equal(perch_docker_fail(&c, &r, &err, "list"), PERCH_ERR);
	assert_string_equal(err.message, "list: <html>proxy");
	perch_docker_resp_free(&r);

	r = reply(0, NULL);
	r.curl_code = CURLE_COULDNT_CONNECT;
	r.os_errno = EACCES;
	assert_int_equal(perch_docker_fail(&c, &r, &err, "docker version"),
			 PERCH_ERR_UNAVAILABLE);
	assert_string_equal(err.message,
			    "docker version: permission denied on the docker socket "
			    "/var/run/docker.sock (is this user in the docker group?)");
	r.os_errno = ENOENT;
	assert_int_equal(perch_docker_fail(&c, &r, &err, "docker version"),
			 PERCH_ERR_UNAVAILABLE);
	assert_string_equal(err.message,
			    "docker version: docker engine not reachable at "
			    "unix:///var/run/docker.sock: No such file or directory");
	r.os_errno = 0;
	r.curl_code = CURLE_RECV_ERROR;
	r.status = 200;
	snprintf(r.curl_error, sizeof r.curl_error, "Connection reset by peer");
	assert_int_equal(perch_docker_fail(&c, &r, &err, "wait"),
			 PERCH_ERR_UNAVAILABLE);
	assert_non_null(strstr(err.message, "lost the connection"));
	r.cancelled = true;
	assert_int_equal(perch_docker_fail(&c, &r, &err, "wait"),
			 PERCH_ERR_CANCELLED);

	/* Pull errors arrive inside a 200 stream: words decide. */
	assert_int_equal(perch_docker_classify_message(
				 0, "Head \"http://r/v2/x/manifests/1\": unauthorized: "
				    "authentication required"),
			 PERCH_ERR_INVALID_INPUT);
	assert_int_equal(perch_docker_classify_message(0, "manifest unknown"),
			 PERCH_ERR_NOT_FOUND);
	assert_int_equal(perch_docker_classify_message(
				 0, "Get \"http://r:1/v2/\": dial tcp r:1: connect: "
				    "connection refused"),
			 PERCH_ERR_UNAVAILABLE);
	assert_int_equal(perch_docker_classify_message(
				 500, "exec: \"/x\": executable file not found in $PATH"),
			 PERCH_ERR_INVALID_INPUT);
	perch_docker_client_free(&c);

	/* Hosts. */
	assert_int_equal(perch_docker_client_init(&c, "tcp://10.0.0.1:2375/", NULL,
						  true, &err),
			 PERCH_OK);
	assert_string_equal(c.base_url, "http://10.0.0.1:2375");
	assert_null(c.socket_path);
	perch_docker_client_free(&c);
	assert_int_equal(perch_docker_client_init(&c, "/run/podman/podman.sock",
						  NULL, true, &err),
			 PERCH_OK);
	assert_string_equal(c.socket_path, "/run/podman/podman.sock");
	perch_docker_client_free(&c);
	assert_int_equal(perch_docker_client_init(&c, "tcp://h:2376", "/nonexistent",
						  true, &err),
			 PERCH_ERR_INVALID_INPUT);
	assert_non_null(strstr(err.message, "/nonexistent/ca.pem"));
	perch_docker_client_free(&c);
	assert_int_equal(perch_docker_client_init(&c, "unix://relative", NULL,
						  true, &err),
			 PERCH_ERR_INVALID_INPUT);
	perch_docker_client_free(&c);
	curl_global_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_script),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_create_body),
		cmocka_unit_test(test_names_and_volumes),
		cmocka_unit_test(test_demux),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
