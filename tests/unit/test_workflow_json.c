/* test_workflow_json.c - the workflow document: decoding every field,
 * refusing bad documents with exact messages, serialising like Go, round
 * trips, and large workflows (host/workflow_*.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"
#include "workflow.h"

/* --- helpers ------------------------------------------------------------------- */

static char *fixture_path(const char *name)
{
	const char *top = getenv("abs_top_srcdir");
	if (top == NULL || *top == '\0')
		fail_msg("abs_top_srcdir is not set: run this test through make check");
	return perch_xasprintf("%s/tests/fixtures/workflows/%s", top, name);
}

static char *read_fixture(const char *name, size_t *len)
{
	char *path = fixture_path(name), *err = NULL;
	char *data = perch_read_file(path, len, &err);
	if (data == NULL)
		fail_msg("%s", err);
	free(path);
	return data;
}

/* Parses a fixture under its base name, so errors read "name.json: ...". */
static perch_workflow *parse_fixture(const char *name, char **err)
{
	size_t len;
	char *data = read_fixture(name, &len);
	perch_workflow *wf = perch_workflow_parse(data, len, name, err);
	free(data);
	return wf;
}

static perch_workflow *must_parse_n(const char *json, size_t len)
{
	char *err = NULL;
	perch_workflow *wf = perch_workflow_parse(json, len, "t.json", &err);
	if (wf == NULL)
		fail_msg("unexpected error: %s", err);
	assert_null(err);
	return wf;
}

static perch_workflow *must_parse(const char *json)
{
	return must_parse_n(json, strlen(json));
}

static void expect_error_n(const char *json, size_t len, const char *want)
{
	char *err = NULL;
	perch_workflow *wf = perch_workflow_parse(json, len, "t.json", &err);
	if (wf != NULL)
		fail_msg("parsed, expected error: %s\ninput: %s", want, json);
	assert_non_null(err);
	if (strcmp(err, want) != 0)
		fail_msg("wrong error\n got: %s\nwant: %s\ninput: %s", err, want, json);
	assert_null(strchr(err, '\n'));
	free(err);
}

static void expect_error(const char *json, const char *want)
{
	expect_error_n(json, strlen(json), want);
}

/* A one-step document around the members of that step. */
static char *one_step(const char *members)
{
	return perch_xasprintf("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"u1\"%s%s}]}]}",
			       *members ? "," : "", members);
}

static void expect_step_error(const char *members, const char *want)
{
	char *json = one_step(members);
	expect_error(json, want);
	free(json);
}

static const perch_step *step_of(const perch_workflow *wf, size_t stage, size_t step)
{
	assert_true(stage < wf->config.n_stages);
	assert_true(step < wf->config.stages[stage]->n_steps);
	return wf->config.stages[stage]->steps[step];
}

static void assert_strv(const perch_strv *v, const char *const *want, size_t n)
{
	size_t i;
	assert_int_equal(v->len, n);
	for (i = 0; i < n; i++)
		assert_string_equal(v->items[i], want[i]);
}
#define STRV(v, ...)                                                                  \
	assert_strv((v), (const char *const[]){__VA_ARGS__},                         \
		    sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))

/* --- field-by-field comparison --------------------------------------------------- */

static void strv_eq(const perch_strv *a, const perch_strv *b, bool null_matters)
{
	size_t i;
	assert_int_equal(a->len, b->len);
	if (null_matters)
		assert_int_equal(a->items == NULL, b->items == NULL);
	for (i = 0; i < a->len; i++)
		assert_string_equal(a->items[i], b->items[i]);
}

/* Maps are compared as sets: the serialiser writes keys sorted, as Go
 * does, while the parser keeps the document's order. */
static void map_eq(const perch_map *a, const perch_map *b)
{
	size_t i;
	assert_int_equal(a->len, b->len);
	for (i = 0; i < a->len; i++) {
		const char *v = perch_map_get(b, a->items[i].key);
		if (v == NULL)
			fail_msg("key %s missing", a->items[i].key);
		assert_string_equal(a->items[i].value, v);
	}
}

static void step_eq(const perch_step *a, const perch_step *b)
{
	size_t i;
	assert_int_equal(a->struct_size, b->struct_size);
	assert_string_equal(a->name, b->name);
	assert_int_equal(a->org_id, b->org_id);
	assert_string_equal(a->uuid, b->uuid);
	assert_string_equal(a->type, b->type);
	assert_string_equal(a->image, b->image);
	assert_int_equal(a->pull, b->pull);
	assert_int_equal(a->detach, b->detach);
	assert_int_equal(a->privileged, b->privileged);
	assert_string_equal(a->working_dir, b->working_dir);
	assert_string_equal(a->workspace_base, b->workspace_base);
	map_eq(&a->environment, &b->environment);
	map_eq(&a->secret_mapping, &b->secret_mapping);
	strv_eq(&a->entrypoint, &b->entrypoint, false);
	strv_eq(&a->commands, &b->commands, false);
	assert_int_equal(a->n_extra_hosts, b->n_extra_hosts);
	for (i = 0; i < a->n_extra_hosts; i++) {
		assert_string_equal(a->extra_hosts[i].name, b->extra_hosts[i].name);
		assert_string_equal(a->extra_hosts[i].ip, b->extra_hosts[i].ip);
	}
	strv_eq(&a->volumes, &b->volumes, false);
	strv_eq(&a->tmpfs, &b->tmpfs, false);
	strv_eq(&a->devices, &b->devices, false);
	assert_int_equal(a->n_networks, b->n_networks);
	for (i = 0; i < a->n_networks; i++) {
		assert_string_equal(a->networks[i].name, b->networks[i].name);
		strv_eq(&a->networks[i].aliases, &b->networks[i].aliases, true);
	}
	strv_eq(&a->dns, &b->dns, false);
	strv_eq(&a->dns_search, &b->dns_search, false);
	assert_int_equal(a->on_failure, b->on_failure);
	assert_int_equal(a->on_success, b->on_success);
	assert_string_equal(a->failure, b->failure);
	assert_string_equal(a->auth_config.username, b->auth_config.username);
	assert_string_equal(a->auth_config.password, b->auth_config.password);
	assert_string_equal(a->network_mode, b->network_mode);
	assert_int_equal(a->n_ports, b->n_ports);
	for (i = 0; i < a->n_ports; i++) {
		assert_int_equal(a->ports[i].number, b->ports[i].number);
		assert_string_equal(a->ports[i].protocol, b->ports[i].protocol);
	}
	assert_string_equal(a->backend_options, b->backend_options);
	map_eq(&a->workflow_labels, &b->workflow_labels);
	assert_string_equal(a->container_name_scheme, b->container_name_scheme);
	strv_eq(&a->depends_on, &b->depends_on, false);
}

static void config_eq(const perch_config *a, const perch_config *b)
{
	size_t i, j;
	assert_int_equal(a->struct_size, b->struct_size);
	assert_int_equal(a->n_stages, b->n_stages);
	assert_int_equal(a->stages == NULL, b->stages == NULL);
	for (i = 0; i < a->n_stages; i++) {
		assert_int_equal(a->stages[i]->struct_size, b->stages[i]->struct_size);
		assert_int_equal(a->stages[i]->n_steps, b->stages[i]->n_steps);
		for (j = 0; j < a->stages[i]->n_steps; j++)
			step_eq(a->stages[i]->steps[j], b->stages[i]->steps[j]);
	}
	assert_string_equal(a->network, b->network);
	assert_string_equal(a->volume, b->volume);
	assert_int_equal(a->n_secrets, b->n_secrets);
	assert_int_equal(a->secrets == NULL, b->secrets == NULL);
	for (i = 0; i < a->n_secrets; i++) {
		assert_string_equal(a->secrets[i].name, b->secrets[i].name);
		assert_string_equal(a->secrets[i].value, b->secrets[i].value);
	}
}

/* Every string of a step is non-NULL, and every struct carries its size. */
static void assert_well_formed(const perch_config *c)
{
	size_t i, j, k;
	assert_int_equal(c->struct_size, sizeof(perch_config));
	assert_non_null(c->network);
	assert_non_null(c->volume);
	for (i = 0; i < c->n_secrets; i++) {
		assert_non_null(c->secrets[i].name);
		assert_non_null(c->secrets[i].value);
	}
	for (i = 0; i < c->n_stages; i++) {
		const perch_stage *st = c->stages[i];
		assert_int_equal(st->struct_size, sizeof(perch_stage));
		assert_int_equal(st->reserved0, 0);
		for (j = 0; j < st->n_steps; j++) {
			const perch_step *s = st->steps[j];
			const char *strs[] = {s->name, s->uuid, s->type, s->image, s->working_dir,
					      s->workspace_base, s->failure,
					      s->auth_config.username, s->auth_config.password,
					      s->network_mode, s->backend_options,
					      s->container_name_scheme};
			assert_int_equal(s->struct_size, sizeof(perch_step));
			assert_int_equal(s->reserved0, 0);
			for (k = 0; k < sizeof strs / sizeof strs[0]; k++)
				assert_non_null(strs[k]);
			for (k = 0; k < s->n_networks; k++)
				assert_non_null(s->networks[k].name);
			for (k = 0; k < s->n_ports; k++)
				assert_non_null(s->ports[k].protocol);
			for (k = 0; k < s->n_extra_hosts; k++) {
				assert_non_null(s->extra_hosts[k].name);
				assert_non_null(s->extra_hosts[k].ip);
			}
		}
	}
}

/* --- the Woodpecker example (woodpecker-backends.md section 6 B) ----------------- */

static void test_example_fields(void **state)
{
	char *err = NULL;
	perch_workflow *wf = parse_fixture("woodpecker-example.json", &err);
	const perch_step *s;
	assert_non_null(wf);
	assert_well_formed(&wf->config);
	assert_int_equal(wf->config.n_stages, 2);
	assert_string_equal(wf->config.network, "test_default");
	assert_string_equal(wf->config.volume, "test_default");
	assert_int_equal(wf->config.n_secrets, 0);
	assert_null(wf->config.secrets);

	s = step_of(wf, 0, 0);
	assert_int_equal(wf->config.stages[0]->n_steps, 1);
	assert_string_equal(s->name, "clone");
	assert_string_equal(s->uuid, "01HF8ZKQ5W3C2M4N6P7R8S9T0V");
	assert_string_equal(s->type, PERCH_STEP_CLONE);
	assert_string_equal(s->image, "docker.io/woodpeckerci/plugin-git:2.10.0");
	assert_string_equal(s->working_dir, "/woodpecker/src/github.com/octocat/hello-world");
	assert_string_equal(s->workspace_base, "/woodpecker");
	STRV(&s->volumes, "test_default:/woodpecker");
	assert_int_equal(s->n_networks, 1);
	assert_string_equal(s->networks[0].name, "test_default");
	STRV(&s->networks[0].aliases, "clone");
	assert_true(s->on_success);
	assert_false(s->on_failure);
	assert_false(s->detach);
	assert_string_equal(s->failure, PERCH_FAILURE_FAIL);
	assert_string_equal(s->auth_config.username, "");
	assert_string_equal(s->auth_config.password, "");
	assert_string_equal(s->backend_options, "");
	assert_int_equal(s->environment.len, 0);
	assert_int_equal(s->n_extra_hosts, 0);
	assert_int_equal(s->n_ports, 0);
	assert_int_equal(s->org_id, 0);

	s = step_of(wf, 1, 0);
	assert_string_equal(s->name, "dummy");
	assert_string_equal(s->type, PERCH_STEP_PLUGIN);
	assert_string_equal(s->image, "dummy_img");
	STRV(&s->networks[0].aliases, "dummy");
	perch_workflow_free(wf);
}

/* The serialiser writes exactly what Go's json.Marshal wrote. */
static void test_example_is_go_output(void **state)
{
	size_t len;
	char *text = read_fixture("woodpecker-example.json", &len);
	perch_workflow *wf = must_parse_n(text, len);
	char *out = perch_workflow_to_json(&wf->config);
	assert_true(len > 0 && text[len - 1] == '\n');
	text[len - 1] = '\0';
	assert_string_equal(out, text);
	free(out);
	free(text);
	perch_workflow_free(wf);
}

/* The example as printed has empty uuids, which no backend can key on. */
static void test_example_without_uuids_refused(void **state)
{
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"clone\",\"uuid\":\"\",\"type\":"
		     "\"clone\",\"auth_config\":{}}]}],\"network\":\"test_default\","
		     "\"volume\":\"test_default\",\"secrets\":null}",
		     "t.json: pipeline[0].steps[0]: step has no uuid");
}

/* --- every field ------------------------------------------------------------------- */

static void test_every_field(void **state)
{
	char *err = NULL;
	perch_workflow *wf = parse_fixture("every-field.json", &err);
	const perch_step *s, *t;
	assert_non_null(wf);
	assert_well_formed(&wf->config);
	assert_int_equal(wf->config.n_stages, 1);
	s = step_of(wf, 0, 0);
	assert_string_equal(s->name, "build");
	assert_int_equal(s->org_id, INT64_MAX);
	assert_string_equal(s->uuid, "01HF8ZKQ5W3C2M4N6P7R8S9T10");
	assert_string_equal(s->type, "commands");
	assert_string_equal(s->image, "golang:1.22");
	assert_true(s->pull);
	assert_true(s->detach);
	assert_true(s->privileged);
	assert_string_equal(s->working_dir, "/woodpecker/src/example.com/app");
	assert_string_equal(s->workspace_base, "/woodpecker");
	/* The map keeps the document's order. */
	assert_int_equal(s->environment.len, 4);
	assert_string_equal(s->environment.items[0].key, "CI_WORKSPACE");
	assert_string_equal(s->environment.items[1].key, "GOFLAGS");
	assert_string_equal(s->environment.items[2].key, "EMPTY");
	assert_string_equal(s->environment.items[3].key, "API_TOKEN");
	assert_string_equal(perch_map_get(&s->environment, "GOFLAGS"), "-mod=vendor");
	assert_string_equal(perch_map_get(&s->environment, "EMPTY"), "");
	assert_int_equal(s->secret_mapping.len, 1);
	assert_string_equal(perch_map_get(&s->secret_mapping, "API_TOKEN"), "s3cr3t-token");
	STRV(&s->entrypoint, "/bin/sh", "-c", "echo $CI_SCRIPT | base64 -d | /bin/sh -e");
	STRV(&s->commands, "go build ./...", "go test ./...", "");
	assert_int_equal(s->n_extra_hosts, 3);
	assert_string_equal(s->extra_hosts[0].name, "db.local");
	assert_string_equal(s->extra_hosts[0].ip, "10.0.0.5");
	assert_string_equal(s->extra_hosts[1].name, "cache.local");
	assert_string_equal(s->extra_hosts[1].ip, "");
	assert_string_equal(s->extra_hosts[2].name, "");
	STRV(&s->volumes, "wp_default:/woodpecker", "/var/run/docker.sock:/var/run/docker.sock:ro");
	STRV(&s->tmpfs, "/tmp:size=64m", "/run");
	STRV(&s->devices, "/dev/fuse:/dev/fuse");
	assert_int_equal(s->n_networks, 3);
	assert_string_equal(s->networks[0].name, "wp_default");
	STRV(&s->networks[0].aliases, "build", "compile");
	assert_string_equal(s->networks[1].name, "extra");
	assert_null(s->networks[1].aliases.items);
	assert_int_equal(s->networks[1].aliases.len, 0);
	assert_non_null(s->networks[2].aliases.items);
	assert_int_equal(s->networks[2].aliases.len, 0);
	STRV(&s->dns, "1.1.1.1", "9.9.9.9");
	STRV(&s->dns_search, "example.com");
	assert_true(s->on_failure);
	assert_true(s->on_success);
	assert_string_equal(s->failure, PERCH_FAILURE_IGNORE);
	assert_string_equal(s->auth_config.username, "robot");
	assert_string_equal(s->auth_config.password, "hunter2");
	assert_string_equal(s->network_mode, "bridge");
	assert_int_equal(s->n_ports, 4);
	assert_int_equal(s->ports[0].number, 8080);
	assert_string_equal(s->ports[0].protocol, "tcp");
	assert_int_equal(s->ports[1].number, 53);
	assert_string_equal(s->ports[1].protocol, "udp");
	assert_int_equal(s->ports[2].number, 65535);
	assert_string_equal(s->ports[2].protocol, "");
	assert_int_equal(s->ports[3].number, 0);
	assert_string_equal(s->ports[3].protocol, "tcp");
	assert_string_equal(
		s->backend_options,
		"{\"docker\":{\"user\":\"1000:1000\",\"cpus\":1.5,\"mem\":536870912,"
		"\"big\":18446744073709551615,\"neg\":-3,\"exp\":1e-7,\"ok\":true,\"no\":false,"
		"\"nothing\":null},\"kubernetes\":{\"resources\":{\"limits\":{\"memory\":\"1Gi\"}},"
		"\"tolerations\":[{\"key\":\"gpu\",\"effect\":\"NoSchedule\"}],\"nodeSelector\":{},"
		"\"list\":[]},\"html\":\"\\u003ca href=\\\"x\\\"\\u003e\\u0026\\u003c/a\\u003e\"}");
	assert_int_equal(s->workflow_labels.len, 2);
	assert_string_equal(perch_map_get(&s->workflow_labels, "org-id"), "42");
	assert_string_equal(s->container_name_scheme, "wp_{{.UUID}}");
	assert_int_equal(s->depends_on.len, 0);

	t = step_of(wf, 0, 1);
	assert_int_equal(t->org_id, -42);
	STRV(&t->depends_on, "build");
	assert_false(t->pull);
	assert_string_equal(t->backend_options, "");

	assert_int_equal(wf->config.n_secrets, 3);
	assert_string_equal(wf->config.secrets[0].name, "api_token");
	assert_string_equal(wf->config.secrets[0].value, "s3cr3t-token");
	assert_string_equal(wf->config.secrets[1].value, "");
	assert_string_equal(wf->config.secrets[2].name, "");
	perch_workflow_free(wf);
}

/* Go's output for the every-field fixture, written by hand from the rules
 * (omitempty, sorted map keys, HTML escaping, null vs []). */
static void test_every_field_serialised(void **state)
{
	char *err = NULL;
	perch_workflow *wf = parse_fixture("every-field.json", &err);
	char *out = perch_workflow_to_json(&wf->config);
	const char *want =
		"{\"pipeline\":[{\"steps\":[{\"name\":\"build\",\"org_id\":9223372036854775807,"
		"\"uuid\":\"01HF8ZKQ5W3C2M4N6P7R8S9T10\",\"type\":\"commands\",\"image\":"
		"\"golang:1.22\",\"pull\":true,\"detach\":true,\"privileged\":true,"
		"\"working_dir\":\"/woodpecker/src/example.com/app\",\"workspace_base\":"
		"\"/woodpecker\",\"environment\":{\"API_TOKEN\":\"s3cr3t-token\",\"CI_WORKSPACE\":"
		"\"/woodpecker/src/example.com/app\",\"EMPTY\":\"\",\"GOFLAGS\":\"-mod=vendor\"},"
		"\"secret_mapping\":{\"API_TOKEN\":\"s3cr3t-token\"},\"entrypoint\":[\"/bin/sh\","
		"\"-c\",\"echo $CI_SCRIPT | base64 -d | /bin/sh -e\"],\"commands\":[\"go build "
		"./...\",\"go test ./...\",\"\"],\"extra_hosts\":[{\"name\":\"db.local\",\"ip\":"
		"\"10.0.0.5\"},{\"name\":\"cache.local\"},{}],\"volumes\":[\"wp_default:/woodpecker\","
		"\"/var/run/docker.sock:/var/run/docker.sock:ro\"],\"tmpfs\":[\"/tmp:size=64m\","
		"\"/run\"],\"devices\":[\"/dev/fuse:/dev/fuse\"],\"networks\":[{\"name\":"
		"\"wp_default\",\"aliases\":[\"build\",\"compile\"]},{\"name\":\"extra\",\"aliases\":"
		"null},{\"name\":\"empty-aliases\",\"aliases\":[]}],\"dns\":[\"1.1.1.1\","
		"\"9.9.9.9\"],\"dns_search\":[\"example.com\"],\"on_failure\":true,\"on_success\":"
		"true,\"failure\":\"ignore\",\"auth_config\":{\"username\":\"robot\",\"password\":"
		"\"hunter2\"},\"network_mode\":\"bridge\",\"ports\":[{\"number\":8080,\"protocol\":"
		"\"tcp\"},{\"number\":53,\"protocol\":\"udp\"},{\"number\":65535},{\"protocol\":"
		"\"tcp\"}],\"backend_options\":{\"docker\":{\"user\":\"1000:1000\",\"cpus\":1.5,"
		"\"mem\":536870912,\"big\":18446744073709551615,\"neg\":-3,\"exp\":1e-7,\"ok\":true,"
		"\"no\":false,\"nothing\":null},\"kubernetes\":{\"resources\":{\"limits\":{\"memory\":"
		"\"1Gi\"}},\"tolerations\":[{\"key\":\"gpu\",\"effect\":\"NoSchedule\"}],"
		"\"nodeSelector\":{},\"list\":[]},\"html\":\"\\u003ca href=\\\"x\\\"\\u003e\\u0026"
		"\\u003c/a\\u003e\"},\"workflow_labels\":{\"org-id\":\"42\",\"repo\":\"example/app\"},"
		"\"container_name_scheme\":\"wp_{{.UUID}}\"},{\"name\":\"test\",\"org_id\":-42,"
		"\"uuid\":\"01HF8ZKQ5W3C2M4N6P7R8S9T11\",\"type\":\"commands\",\"image\":"
		"\"golang:1.22\",\"commands\":[\"go vet ./...\"],\"auth_config\":{},\"depends_on\":"
		"[\"build\"]}]}],\"network\":\"wp_01hf8zkq5w_7_default\",\"volume\":"
		"\"wp_01hf8zkq5w_7_default\",\"secrets\":[{\"name\":\"api_token\",\"value\":"
		"\"s3cr3t-token\"},{\"name\":\"only-name\"},{}]}";
	assert_non_null(wf);
	assert_string_equal(out, want);
	free(out);
	perch_workflow_free(wf);
}

static void test_services(void **state)
{
	char *err = NULL, *out;
	perch_workflow *wf = parse_fixture("services.json", &err);
	const perch_stage *svc;
	assert_non_null(wf);
	assert_well_formed(&wf->config);
	assert_int_equal(wf->config.n_stages, 3);
	svc = wf->config.stages[1];
	assert_int_equal(svc->n_steps, 2);
	assert_string_equal(svc->steps[0]->type, PERCH_STEP_SERVICE);
	assert_true(svc->steps[0]->detach);
	assert_true(svc->steps[1]->detach);
	assert_int_equal(svc->steps[0]->ports[0].number, 5432);
	assert_int_equal(svc->steps[1]->ports[0].number, 6379);
	STRV(&step_of(wf, 2, 2)->depends_on, "migrate", "test");
	assert_true(step_of(wf, 2, 3)->on_failure);
	assert_false(step_of(wf, 2, 3)->on_success);
	/* "secrets": [] is kept apart from null, as Go keeps it. */
	assert_non_null(wf->config.secrets);
	assert_int_equal(wf->config.n_secrets, 0);
	out = perch_workflow_to_json(&wf->config);
	assert_non_null(strstr(out, "\"secrets\":[]}"));
	assert_null(strstr(out, "unknown_top_level_key"));
	free(out);
	perch_workflow_free(wf);
}

static void test_unicode(void **state)
{
	char *err = NULL, *out;
	perch_workflow *wf = parse_fixture("unicode.json", &err);
	const perch_step *s;
	assert_non_null(wf);
	s = step_of(wf, 0, 0);
	assert_string_equal(s->name, "caf\xc3\xa9 \xf0\x9f\x98\x80");
	assert_string_equal(s->commands.items[0], "echo <b> & \"quoted\" \\ back/slash");
	assert_string_equal(s->commands.items[1], "printf 'tab\there\nnewline'");
	assert_string_equal(s->commands.items[2], "\xe5\x90\x8d\xe5\x89\x8d \xc3\xbcn\xc3\xaf" "c\xc3\xb6"
						  "d\xc3\xa9");
	assert_string_equal(perch_map_get(&s->environment, "GREETING"), "gr\xc3\xbc\xc3\x9f dich");
	assert_string_equal(perch_map_get(&s->environment, "EMOJI"), "\xf0\x9f\x8e\x89");
	assert_string_equal(perch_map_get(&s->environment, "CTRL"), "\x01\x1f\x7f");
	assert_string_equal(perch_map_get(&s->environment, "LS"), "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c");
	assert_string_equal(wf->config.network, "n\xc3\xa9t");
	assert_string_equal(wf->config.secrets[0].value, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");

	out = perch_workflow_to_json(&wf->config);
	assert_string_equal(
		out,
		"{\"pipeline\":[{\"steps\":[{\"name\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\",\"uuid\":"
		"\"01HF8ZKQ5W3C2M4N6P7R8S9T30\",\"environment\":{\"CTRL\":\"\\u0001\\u001f\x7f\","
		"\"EMOJI\":\"\xf0\x9f\x8e\x89\",\"GREETING\":\"gr\xc3\xbc\xc3\x9f dich\",\"LS\":"
		"\"a\\u2028b\\u2029c\"},\"commands\":[\"echo \\u003cb\\u003e \\u0026 \\\"quoted\\\" "
		"\\\\ back/slash\",\"printf 'tab\\there\\nnewline'\",\"\xe5\x90\x8d\xe5\x89\x8d "
		"\xc3\xbcn\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9\"],\"auth_config\":{}}]}],\"network\":"
		"\"n\xc3\xa9t\",\"volume\":\"\",\"secrets\":[{\"name\":\"s\xc3\xa9" "cret\",\"value\":"
		"\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}]}");
	free(out);
	perch_workflow_free(wf);
}

/* --- round trips ------------------------------------------------------------------ */

static const char *const good_fixtures[] = {
	"woodpecker-example.json", "every-field.json", "services.json", "unicode.json",
};

static void test_round_trip_fixtures(void **state)
{
	size_t i;
	for (i = 0; i < sizeof good_fixtures / sizeof good_fixtures[0]; i++) {
		char *err = NULL, *j1, *j2;
		perch_workflow *w1 = parse_fixture(good_fixtures[i], &err), *w2, *w3;
		if (w1 == NULL)
			fail_msg("%s", err);
		assert_well_formed(&w1->config);
		j1 = perch_workflow_to_json(&w1->config);
		w2 = must_parse(j1);
		j2 = perch_workflow_to_json(&w2->config);
		assert_string_equal(j1, j2);
		config_eq(&w1->config, &w2->config);
		/* And once more, from text that already is Go's form. */
		w3 = must_parse(j2);
		config_eq(&w2->config, &w3->config);
		free(j1);
		free(j2);
		perch_workflow_free(w1);
		perch_workflow_free(w2);
		perch_workflow_free(w3);
	}
}

/* --- bad fixtures: exact messages ---------------------------------------------------- */

static void test_bad_fixtures(void **state)
{
	static const struct {
		const char *file, *want;
	} cases[] = {
		{"bad-syntax.json", "bad-syntax.json: line 3, column 42: unexpected character"},
		{"bad-empty.json", "bad-empty.json: empty document"},
		{"bad-top-level-array.json",
		 "bad-top-level-array.json: expected an object at the top level, got an array"},
		{"bad-type-network.json",
		 "bad-type-network.json: network: expected a string, got a number"},
		{"bad-type-pull.json",
		 "bad-type-pull.json: pipeline[1].steps[0].pull: expected a boolean, got a string"},
		{"bad-type-env-value.json", "bad-type-env-value.json: pipeline[0].steps[0]."
					    "environment.UID: expected a string, got a number"},
		{"bad-type-alias.json", "bad-type-alias.json: pipeline[0].steps[0].networks[0]."
					"aliases[1]: expected a string, got a number"},
		{"bad-missing-uuid.json", "bad-missing-uuid.json: pipeline[0].steps[2]: step has no uuid"},
		{"bad-missing-name.json", "bad-missing-name.json: pipeline[0].steps[0]: step has no name"},
		{"bad-duplicate-uuid.json", "bad-duplicate-uuid.json: pipeline[1].steps[1].uuid: "
					    "duplicate uuid \"Y\" (also pipeline[0].steps[1])"},
		{"bad-unknown-depends-on.json",
		 "bad-unknown-depends-on.json: pipeline[2].steps[1].depends_on[1]: no step named "
		 "\"build\" in this stage"},
		{"bad-self-depends-on.json", "bad-self-depends-on.json: pipeline[0].steps[1]."
					     "depends_on[1]: step \"b\" depends on itself"},
		{"bad-cycle.json", "bad-cycle.json: pipeline[1]: depends_on cycle: a -> b -> c -> a"},
		{"bad-nul-escape.json",
		 "bad-nul-escape.json: line 2, column 31: string contains \\u0000 (a NUL "
		 "character, which perch cannot pass on)"},
		{"bad-trailing-data.json",
		 "bad-trailing-data.json: line 2, column 1: unexpected character"},
	};
	size_t i;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *err = NULL;
		perch_workflow *wf = parse_fixture(cases[i].file, &err);
		if (wf != NULL)
			fail_msg("%s parsed", cases[i].file);
		if (err == NULL || strcmp(err, cases[i].want) != 0)
			fail_msg("%s\n got: %s\nwant: %s", cases[i].file, err, cases[i].want);
		free(err);
	}
}

/* perch_workflow_load names the file it read, and "-" reads stdin. */
static void test_load(void **state)
{
	char *err = NULL, *path = fixture_path("bad-type-network.json"), *want, *tmp;
	perch_workflow *wf;
	int saved, fd;
	char tmpl[] = "/tmp/perch-wf-XXXXXX";

	wf = perch_workflow_load(path, &err);
	assert_null(wf);
	want = perch_xasprintf("%s: network: expected a string, got a number", path);
	assert_string_equal(err, want);
	free(want);
	free(err);
	free(path);

	wf = perch_workflow_load("/nonexistent/perch/workflow.json", &err);
	assert_null(wf);
	assert_string_equal(err, "/nonexistent/perch/workflow.json: No such file or directory");
	free(err);

	path = fixture_path("services.json");
	wf = perch_workflow_load(path, &err);
	assert_non_null(wf);
	assert_null(err);
	assert_int_equal(wf->config.n_stages, 3);
	perch_workflow_free(wf);
	free(path);

	/* Standard input, bad and good. */
	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_int_equal(perch_write_all(fd, "{\"pipeline\": 1}", 15), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	saved = dup(0);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, 0), 0);
	wf = perch_workflow_load("-", &err);
	assert_null(wf);
	assert_string_equal(err, "<stdin>: pipeline: expected an array, got a number");
	free(err);
	tmp = "{\"pipeline\":[{\"steps\":[{\"name\":\"s\",\"uuid\":\"u\"}]}]}";
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(perch_write_all(fd, tmp, strlen(tmp)), 0);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	wf = perch_workflow_load("-", &err);
	assert_non_null(wf);
	assert_string_equal(step_of(wf, 0, 0)->uuid, "u");
	perch_workflow_free(wf);
	assert_int_equal(dup2(saved, 0), 0);
	close(saved);
	close(fd);
	unlink(tmpl);
}

/* --- syntax and encoding ------------------------------------------------------------ */

static void test_syntax_errors(void **state)
{
	char deep[512];
	size_t i, n = 0;

	expect_error("", "t.json: empty document");
	expect_error(" \n\t\r\n ", "t.json: empty document");
	expect_error_n(NULL, 0, "t.json: empty document");
	expect_error("{", "t.json: line 1, column 2: unexpected end of data");
	expect_error("{\"pipeline\": [\n", "t.json: line 2, column 1: unexpected end of data");
	expect_error("{\"pipeline\": \"abc", "t.json: line 1, column 18: unexpected end of data");
	expect_error("{\"a\":1,}", "t.json: line 1, column 8: unexpected character");
	expect_error("{\"a\":[1,2,]}", "t.json: line 1, column 11: unexpected character");
	expect_error("{\"a\":1 /* no comments */}",
		     "t.json: line 1, column 8: object value separator ',' expected");
	/* json-c takes single-quoted names even when strict; JSON does not. */
	expect_error("{'a':1}", "t.json: line 1, column 2: single quotes are not JSON; use double quotes");
	expect_error("{\"x\":\"\\\"'\",\n 'a':1}",
		     "t.json: line 2, column 2: single quotes are not JSON; use double quotes");
	{
		perch_workflow *wf = must_parse("{\"network\":\"it's \\\"q\\\" '\"}");
		assert_string_equal(wf->config.network, "it's \"q\" '");
		perch_workflow_free(wf);
	}
	expect_error("{\"a\":TRUE}", "t.json: line 1, column 6: boolean expected");
	expect_error("{\"a\":01}", "t.json: line 1, column 8: number expected");
	expect_error("{\"a\":\"\\x\"}", "t.json: line 1, column 8: invalid string sequence");
	expect_error("{} {}", "t.json: line 1, column 4: unexpected character");
	/* Columns count characters, not bytes. */
	expect_error("{\"\xc3\xa9\xc3\xa9\": x}", "t.json: line 1, column 8: unexpected character");
	/* Bytes json-c would misreport. */
	expect_error_n("{\"a\":\"b\0c\"}", 11, "t.json: line 1, column 8: NUL byte in the document");
	expect_error_n("{}\0", 3, "t.json: line 1, column 3: NUL byte in the document");
	expect_error("{\"a\":\n\"\xff\"}", "t.json: line 2, column 2: invalid UTF-8");
	expect_error("{\"a\":\"\xc0\xaf\"}", "t.json: line 1, column 7: invalid UTF-8");
	expect_error("{\"a\":\"\xed\xa0\x80\"}", "t.json: line 1, column 7: invalid UTF-8");
	expect_error("{\"a\":\"\xf4\x90\x80\x80\"}", "t.json: line 1, column 7: invalid UTF-8");
	expect_error("{\"a\":\"\xe2\x82\"}", "t.json: line 1, column 7: invalid UTF-8");
	/* \u0000 anywhere, keys included (json-c would cut the key short). */
	expect_error("{\"network\\u0000x\": \"a\"}",
		     "t.json: line 1, column 10: string contains \\u0000 (a NUL character, "
		     "which perch cannot pass on)");
	/* An escaped backslash before u0000 is just text. */
	{
		perch_workflow *wf = must_parse("{\"network\": \"\\\\u0000\"}");
		assert_string_equal(wf->config.network, "\\u0000");
		perch_workflow_free(wf);
	}
	/* Depth: bounded, with its own message. */
	n = 0;
	deep[n++] = '{';
	memcpy(deep + n, "\"x\":", 4);
	n += 4;
	for (i = 0; i < 100; i++)
		deep[n++] = '[';
	for (i = 0; i < 100; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	deep[n] = '\0';
	expect_error(deep, "t.json: line 1, column 69: nesting too deep (more than 64 levels)");
}

static void test_top_level(void **state)
{
	expect_error("[]", "t.json: expected an object at the top level, got an array");
	expect_error("null", "t.json: expected an object at the top level, got null");
	expect_error("42", "t.json: expected an object at the top level, got a number");
	expect_error("\"s\"", "t.json: expected an object at the top level, got a string");
	expect_error("true", "t.json: expected an object at the top level, got a boolean");
}

/* A byte order mark is skipped; positions count from after it. */
static void test_bom(void **state)
{
	perch_workflow *wf = must_parse("\xef\xbb\xbf{\"network\":\"n\"}");
	assert_string_equal(wf->config.network, "n");
	perch_workflow_free(wf);
	expect_error("\xef\xbb\xbf{x}", "t.json: line 1, column 2: quoted object property name expected");
	expect_error("\xef\xbb\xbf", "t.json: empty document");
}

/* --- zero values ------------------------------------------------------------------ */

static void test_empty_and_null(void **state)
{
	perch_workflow *wf = must_parse("{}");
	char *out;
	assert_well_formed(&wf->config);
	assert_null(wf->config.stages);
	assert_int_equal(wf->config.n_stages, 0);
	assert_string_equal(wf->config.network, "");
	assert_string_equal(wf->config.volume, "");
	assert_null(wf->config.secrets);
	out = perch_workflow_to_json(&wf->config);
	assert_string_equal(out, "{\"pipeline\":null,\"network\":\"\",\"volume\":\"\",\"secrets\":null}");
	free(out);
	perch_workflow_free(wf);

	wf = must_parse("{\"pipeline\":null,\"network\":null,\"volume\":null,\"secrets\":null}");
	assert_null(wf->config.stages);
	assert_string_equal(wf->config.network, "");
	perch_workflow_free(wf);

	/* [] stays [] (Go keeps a non-nil empty slice). */
	wf = must_parse("{\"pipeline\":[],\"secrets\":[]}");
	assert_non_null(wf->config.stages);
	assert_int_equal(wf->config.n_stages, 0);
	out = perch_workflow_to_json(&wf->config);
	assert_string_equal(out, "{\"pipeline\":[],\"network\":\"\",\"volume\":\"\",\"secrets\":[]}");
	free(out);
	perch_workflow_free(wf);

	/* Empty and null stages, null secret entries. */
	wf = must_parse("{\"pipeline\":[{},null,{\"steps\":null},{\"steps\":[]}],"
			"\"secrets\":[null,{\"name\":null,\"value\":null}]}");
	assert_well_formed(&wf->config);
	assert_int_equal(wf->config.n_stages, 4);
	assert_int_equal(wf->config.stages[1]->n_steps, 0);
	assert_int_equal(wf->config.n_secrets, 2);
	assert_string_equal(wf->config.secrets[0].name, "");
	assert_string_equal(wf->config.secrets[1].value, "");
	out = perch_workflow_to_json(&wf->config);
	assert_string_equal(out, "{\"pipeline\":[{},{},{},{}],\"network\":\"\",\"volume\":\"\","
				 "\"secrets\":[{},{}]}");
	free(out);
	perch_workflow_free(wf);
}

/* null for every field of a step gives the zero value, as in Go. */
static void test_step_all_null(void **state)
{
	static const char *const fields[] = {
		"org_id", "type", "image", "pull", "detach", "privileged", "working_dir",
		"workspace_base", "environment", "secret_mapping", "entrypoint", "commands",
		"extra_hosts", "volumes", "tmpfs", "devices", "networks", "dns", "dns_search",
		"on_failure", "on_success", "failure", "auth_config", "network_mode", "ports",
		"backend_options", "workflow_labels", "container_name_scheme", "depends_on",
	};
	perch_buf b = {0};
	perch_workflow *wf;
	const perch_step *s;
	char *json, *out;
	size_t i;
	for (i = 0; i < sizeof fields / sizeof fields[0]; i++)
		perch_buf_printf(&b, "%s\"%s\":null", i ? "," : "", fields[i]);
	json = one_step(b.data);
	wf = must_parse(json);
	assert_well_formed(&wf->config);
	s = step_of(wf, 0, 0);
	assert_int_equal(s->org_id, 0);
	assert_string_equal(s->type, "");
	assert_false(s->pull);
	assert_int_equal(s->environment.len, 0);
	assert_int_equal(s->n_networks, 0);
	assert_int_equal(s->n_ports, 0);
	assert_string_equal(s->auth_config.username, "");
	assert_string_equal(s->backend_options, "");
	out = perch_workflow_to_json(&wf->config);
	assert_string_equal(out, "{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"u1\","
				 "\"auth_config\":{}}]}],\"network\":\"\",\"volume\":\"\","
				 "\"secrets\":null}");
	free(out);
	free(json);
	perch_buf_free(&b);
	perch_workflow_free(wf);

	/* null inside lists and maps, and for struct members. */
	json = one_step("\"commands\":[null,\"x\"],\"environment\":{\"A\":null},"
			"\"networks\":[null,{\"name\":null,\"aliases\":null}],"
			"\"ports\":[{\"number\":null,\"protocol\":null}],\"extra_hosts\":[null],"
			"\"auth_config\":{\"username\":null}");
	wf = must_parse(json);
	assert_well_formed(&wf->config);
	s = step_of(wf, 0, 0);
	STRV(&s->commands, "", "x");
	assert_string_equal(perch_map_get(&s->environment, "A"), "");
	assert_int_equal(s->n_networks, 2);
	assert_string_equal(s->networks[0].name, "");
	assert_null(s->networks[1].aliases.items);
	assert_int_equal(s->ports[0].number, 0);
	assert_string_equal(s->extra_hosts[0].ip, "");
	free(json);
	perch_workflow_free(wf);
}

/* Empty maps, lists and backend_options vanish on output (omitempty). */
static void test_omitempty(void **state)
{
	char *json = one_step("\"environment\":{},\"commands\":[],\"backend_options\":{},"
			      "\"ports\":[],\"networks\":[],\"depends_on\":[],\"pull\":false,"
			      "\"org_id\":0,\"failure\":\"\"");
	perch_workflow *wf = must_parse(json);
	const perch_step *s = step_of(wf, 0, 0);
	char *out = perch_workflow_to_json(&wf->config);
	assert_string_equal(s->backend_options, "");
	assert_string_equal(out, "{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"u1\","
				 "\"auth_config\":{}}]}],\"network\":\"\",\"volume\":\"\","
				 "\"secrets\":null}");
	free(out);
	free(json);
	perch_workflow_free(wf);
}

/* Unknown keys anywhere are ignored; duplicate keys: the last wins (Go). */
static void test_unknown_and_duplicate_keys(void **state)
{
	perch_workflow *wf = must_parse(
		"{\"version\":3,\"pipeline\":[{\"name\":\"legacy\",\"alias\":\"x\",\"steps\":[{"
		"\"name\":\"a\",\"uuid\":\"u1\",\"alias\":\"old\",\"command\":[\"x\"],"
		"\"image\":\"first\",\"image\":\"second\",\"environment\":{\"K\":\"1\",\"K\":\"2\"},"
		"\"auth_config\":{\"email\":\"x@y\"}}]}],\"networks\":[{\"name\":\"n\"}],"
		"\"volumes\":[{\"name\":\"v\",\"driver\":\"local\"}]}");
	const perch_step *s = step_of(wf, 0, 0);
	assert_string_equal(s->image, "second");
	assert_int_equal(s->environment.len, 1);
	assert_string_equal(perch_map_get(&s->environment, "K"), "2");
	assert_int_equal(s->commands.len, 0);
	assert_string_equal(wf->config.network, "");
	perch_workflow_free(wf);
}

/* --- wrong types -------------------------------------------------------------------- */

static void test_wrong_types(void **state)
{
	expect_error("{\"pipeline\":{}}", "t.json: pipeline: expected an array, got an object");
	expect_error("{\"pipeline\":[1]}", "t.json: pipeline[0]: expected an object, got a number");
	expect_error("{\"pipeline\":[{\"steps\":{}}]}",
		     "t.json: pipeline[0].steps: expected an array, got an object");
	expect_error("{\"pipeline\":[{\"steps\":[\"a\"]}]}",
		     "t.json: pipeline[0].steps[0]: expected an object, got a string");
	expect_error("{\"volume\":[]}", "t.json: volume: expected a string, got an array");
	expect_error("{\"secrets\":{}}", "t.json: secrets: expected an array, got an object");
	expect_error("{\"secrets\":[[]]}", "t.json: secrets[0]: expected an object, got an array");
	expect_error("{\"secrets\":[{\"value\":1}]}",
		     "t.json: secrets[0].value: expected a string, got a number");

	expect_step_error("\"name\":1", "t.json: pipeline[0].steps[0].name: expected a string, got a number");
	expect_step_error("\"org_id\":\"1\"",
			  "t.json: pipeline[0].steps[0].org_id: expected an integer, got a string");
	expect_step_error("\"org_id\":1.5",
			  "t.json: pipeline[0].steps[0].org_id: expected an integer, got 1.5");
	expect_step_error("\"org_id\":1.0",
			  "t.json: pipeline[0].steps[0].org_id: expected an integer, got 1.0");
	expect_step_error("\"org_id\":9223372036854775808",
			  "t.json: pipeline[0].steps[0].org_id: 9223372036854775808 is out of "
			  "range (a 64-bit signed integer)");
	expect_step_error("\"pull\":\"yes\"",
			  "t.json: pipeline[0].steps[0].pull: expected a boolean, got a string");
	expect_step_error("\"detach\":1",
			  "t.json: pipeline[0].steps[0].detach: expected a boolean, got a number");
	expect_step_error("\"privileged\":{}",
			  "t.json: pipeline[0].steps[0].privileged: expected a boolean, got an object");
	expect_step_error("\"on_failure\":[]",
			  "t.json: pipeline[0].steps[0].on_failure: expected a boolean, got an array");
	expect_step_error("\"environment\":\"A=1\"",
			  "t.json: pipeline[0].steps[0].environment: expected an object, got a string");
	expect_step_error("\"environment\":[]",
			  "t.json: pipeline[0].steps[0].environment: expected an object, got an array");
	expect_step_error("\"environment\":{\"A\":true}",
			  "t.json: pipeline[0].steps[0].environment.A: expected a string, got a boolean");
	expect_step_error("\"secret_mapping\":{\"a.b\":{}}",
			  "t.json: pipeline[0].steps[0].secret_mapping[\"a.b\"]: expected a string, "
			  "got an object");
	expect_step_error("\"workflow_labels\":{\"\":1}",
			  "t.json: pipeline[0].steps[0].workflow_labels[\"\"]: expected a string, "
			  "got a number");
	expect_step_error("\"workflow_labels\":{\"a\\\"\\nb\":1}",
			  "t.json: pipeline[0].steps[0].workflow_labels[\"a\\\"\\nb\"]: expected a "
			  "string, got a number");
	expect_step_error("\"commands\":\"make\"",
			  "t.json: pipeline[0].steps[0].commands: expected an array, got a string");
	expect_step_error("\"commands\":[\"a\",[\"b\"]]",
			  "t.json: pipeline[0].steps[0].commands[1]: expected a string, got an array");
	expect_step_error("\"entrypoint\":{}",
			  "t.json: pipeline[0].steps[0].entrypoint: expected an array, got an object");
	expect_step_error("\"extra_hosts\":[\"h:1.2.3.4\"]",
			  "t.json: pipeline[0].steps[0].extra_hosts[0]: expected an object, got a string");
	expect_step_error("\"extra_hosts\":[{\"ip\":4}]",
			  "t.json: pipeline[0].steps[0].extra_hosts[0].ip: expected a string, got a number");
	expect_step_error("\"networks\":{}",
			  "t.json: pipeline[0].steps[0].networks: expected an array, got an object");
	expect_step_error("\"networks\":[{\"aliases\":\"x\"}]",
			  "t.json: pipeline[0].steps[0].networks[0].aliases: expected an array, got a string");
	expect_step_error("\"dns_search\":[1]",
			  "t.json: pipeline[0].steps[0].dns_search[0]: expected a string, got a number");
	expect_step_error("\"failure\":false",
			  "t.json: pipeline[0].steps[0].failure: expected a string, got a boolean");
	expect_step_error("\"auth_config\":[]",
			  "t.json: pipeline[0].steps[0].auth_config: expected an object, got an array");
	expect_step_error("\"auth_config\":{\"password\":123}",
			  "t.json: pipeline[0].steps[0].auth_config.password: expected a string, got a number");
	expect_step_error("\"ports\":[8080]",
			  "t.json: pipeline[0].steps[0].ports[0]: expected an object, got a number");
	expect_step_error("\"ports\":[{\"number\":\"80\"}]",
			  "t.json: pipeline[0].steps[0].ports[0].number: expected an integer, got a string");
	expect_step_error("\"ports\":[{\"number\":80.5}]",
			  "t.json: pipeline[0].steps[0].ports[0].number: expected an integer, got 80.5");
	expect_step_error("\"ports\":[{\"number\":65536}]",
			  "t.json: pipeline[0].steps[0].ports[0].number: 65536 is out of range (0 to 65535)");
	expect_step_error("\"ports\":[{\"number\":-1}]",
			  "t.json: pipeline[0].steps[0].ports[0].number: -1 is out of range (0 to 65535)");
	expect_step_error("\"ports\":[{\"number\":18446744073709551615}]",
			  "t.json: pipeline[0].steps[0].ports[0].number: 18446744073709551615 is out "
			  "of range (0 to 65535)");
	expect_step_error("\"ports\":[{\"number\":1,\"protocol\":6}]",
			  "t.json: pipeline[0].steps[0].ports[0].protocol: expected a string, got a number");
	expect_step_error("\"backend_options\":[]",
			  "t.json: pipeline[0].steps[0].backend_options: expected an object, got an array");
	expect_step_error("\"backend_options\":\"{}\"",
			  "t.json: pipeline[0].steps[0].backend_options: expected an object, got a string");
	expect_step_error("\"backend_options\":{\"docker\":{\"cpus\":NaN}}",
			  "t.json: pipeline[0].steps[0].backend_options.docker.cpus: not a JSON "
			  "number: \"NaN\"");
	expect_step_error("\"backend_options\":{\"x\":[1,-Infinity]}",
			  "t.json: pipeline[0].steps[0].backend_options.x[1]: not a JSON number: "
			  "\"-Infinity\"");
	expect_step_error("\"backend_options\":{\"x\":1.}",
			  "t.json: pipeline[0].steps[0].backend_options.x: not a JSON number: \"1.\"");
	expect_step_error("\"container_name_scheme\":{}",
			  "t.json: pipeline[0].steps[0].container_name_scheme: expected a string, got an object");
	expect_step_error("\"depends_on\":\"b\"",
			  "t.json: pipeline[0].steps[0].depends_on: expected an array, got a string");
	/* The first problem in document order is the one reported. */
	expect_step_error("\"pull\":1,\"image\":2",
			  "t.json: pipeline[0].steps[0].image: expected a string, got a number");
}

static void test_integers(void **state)
{
	char *json = one_step("\"org_id\":-9223372036854775808,\"ports\":[{\"number\":0},"
			      "{\"number\":65535},{\"number\":1e0}]");
	expect_error(json, "t.json: pipeline[0].steps[0].ports[2].number: expected an integer, got 1e0");
	free(json);
	json = one_step("\"org_id\":-9223372036854775808,\"ports\":[{\"number\":0},{\"number\":65535}]");
	{
		perch_workflow *wf = must_parse(json);
		const perch_step *s = step_of(wf, 0, 0);
		char *out = perch_workflow_to_json(&wf->config);
		assert_true(s->org_id == INT64_MIN);
		assert_int_equal(s->ports[0].number, 0);
		assert_int_equal(s->ports[1].number, 65535);
		assert_non_null(strstr(out, "\"org_id\":-9223372036854775808,"));
		assert_non_null(strstr(out, "\"ports\":[{},{\"number\":65535}]"));
		free(out);
		perch_workflow_free(wf);
	}
	free(json);
}

/* --- names, uuids, depends_on ---------------------------------------------------------- */

static void test_required_fields(void **state)
{
	expect_error("{\"pipeline\":[{\"steps\":[null]}]}", "t.json: pipeline[0].steps[0]: step has no name");
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"\",\"uuid\":\"u\"}]}]}",
		     "t.json: pipeline[0].steps[0]: step has no name");
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a\"}]}]}",
		     "t.json: pipeline[0].steps[0]: step has no uuid");
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":null}]}]}",
		     "t.json: pipeline[0].steps[0]: step has no uuid");
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"u\"},"
		     "{\"name\":\"a\",\"uuid\":\"u\"}]}]}",
		     "t.json: pipeline[0].steps[1].uuid: duplicate uuid \"u\" (also pipeline[0].steps[0])");
	/* Uuids compare exactly: case and whitespace matter. */
	{
		perch_workflow *wf = must_parse("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"u\"},"
						"{\"name\":\"b\",\"uuid\":\"U\"},{\"name\":\"c\",\"uuid\":\"u \"}]}]}");
		perch_workflow_free(wf);
	}
}

static void test_depends_on(void **state)
{
	perch_workflow *wf;

	/* Across stages is not allowed: stages already order steps. */
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"1\"}]},{\"steps\":["
		     "{\"name\":\"b\",\"uuid\":\"2\",\"depends_on\":[\"a\"]}]}]}",
		     "t.json: pipeline[1].steps[0].depends_on[0]: no step named \"a\" in this stage");
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"1\",\"depends_on\":[\"a\"]}]}]}",
		     "t.json: pipeline[0].steps[0].depends_on[0]: step \"a\" depends on itself");
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"1\",\"depends_on\":[\"\"]}]}]}",
		     "t.json: pipeline[0].steps[0].depends_on[0]: no step named \"\" in this stage");
	/* Two steps of one name: fine until something depends on the name. */
	wf = must_parse("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"1\"},"
			"{\"name\":\"a\",\"uuid\":\"2\"},{\"name\":\"b\",\"uuid\":\"3\"}]}]}");
	perch_workflow_free(wf);
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"1\"},"
		     "{\"name\":\"a\",\"uuid\":\"2\"},{\"name\":\"b\",\"uuid\":\"3\",\"depends_on\":[\"a\"]}]}]}",
		     "t.json: pipeline[0].steps[2].depends_on[0]: 2 steps in this stage are named "
		     "\"a\", so the dependency is ambiguous");
	/* Cycles: two steps; and a cycle reached from outside it. */
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"1\",\"depends_on\":[\"b\"]},"
		     "{\"name\":\"b\",\"uuid\":\"2\",\"depends_on\":[\"a\"]}]}]}",
		     "t.json: pipeline[0]: depends_on cycle: a -> b -> a");
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"x\",\"uuid\":\"0\",\"depends_on\":[\"y\"]},"
		     "{\"name\":\"y\",\"uuid\":\"1\",\"depends_on\":[\"z\"]},"
		     "{\"name\":\"z\",\"uuid\":\"2\",\"depends_on\":[\"w\"]},"
		     "{\"name\":\"w\",\"uuid\":\"3\",\"depends_on\":[\"y\"]}]}]}",
		     "t.json: pipeline[0]: depends_on cycle: y -> z -> w -> y");
	/* Names that would make the report ambiguous are quoted. */
	expect_error("{\"pipeline\":[{\"steps\":[{\"name\":\"a -> b\",\"uuid\":\"1\",\"depends_on\":[\"c\\n\"]},"
		     "{\"name\":\"c\\n\",\"uuid\":\"2\",\"depends_on\":[\"a -> b\"]}]}]}",
		     "t.json: pipeline[0]: depends_on cycle: \"a -> b\" -> \"c\\n\" -> \"a -> b\"");
	/* A diamond is no cycle; repeating a dependency is harmless. */
	wf = must_parse("{\"pipeline\":[{\"steps\":[{\"name\":\"a\",\"uuid\":\"1\"},"
			"{\"name\":\"b\",\"uuid\":\"2\",\"depends_on\":[\"a\"]},"
			"{\"name\":\"c\",\"uuid\":\"3\",\"depends_on\":[\"a\",\"a\"]},"
			"{\"name\":\"d\",\"uuid\":\"4\",\"depends_on\":[\"b\",\"c\"]}]}]}");
	STRV(&step_of(wf, 0, 3)->depends_on, "b", "c");
	perch_workflow_free(wf);
}

static void test_find_step(void **state)
{
	char *err = NULL;
	perch_workflow *wf = parse_fixture("services.json", &err);
	size_t stage = 99;
	const perch_step *s = perch_workflow_find_step(wf, "01HF8ZKQ5W3C2M4N6P7R8S9T22", &stage);
	assert_non_null(s);
	assert_string_equal(s->name, "cache");
	assert_int_equal(stage, 1);
	s = perch_workflow_find_step(wf, "01HF8ZKQ5W3C2M4N6P7R8S9T20", NULL);
	assert_string_equal(s->name, "clone");
	assert_null(perch_workflow_find_step(wf, "nope", &stage));
	assert_null(perch_workflow_find_step(wf, "", NULL));
	perch_workflow_free(wf);

	wf = must_parse("{}");
	assert_null(perch_workflow_find_step(wf, "x", NULL));
	perch_workflow_free(wf);
}

/* --- the serialiser on hand-built configs -------------------------------------------- */

static void test_serialise_hand_built(void **state)
{
	perch_config c = {.struct_size = sizeof c};
	perch_step s = {.struct_size = sizeof s};
	const perch_step *steps[] = {&s, NULL};
	perch_stage st = {.struct_size = sizeof st, .steps = steps, .n_steps = 2};
	const perch_stage *stages[] = {&st, NULL};
	const perch_kv env[] = {{"b", "2"}, {"a", "1"}, {"B", "3"}, {"\xc3\xa9", "4"}, {"_", "5"}};
	const char *aliases[] = {"x"};
	perch_conn nets[] = {{"n", {aliases, 1}}, {NULL, {NULL, 0}}};
	char *out;

	/* All zero and NULL: valid output, strings as "". */
	out = perch_workflow_to_json(&c);
	assert_string_equal(out, "{\"pipeline\":null,\"network\":\"\",\"volume\":\"\",\"secrets\":null}");
	free(out);

	s.name = "n\x01<>&\xff\xe2\x80\xa8\x7f\b\f";
	s.uuid = NULL;
	s.environment.items = env;
	s.environment.len = 5;
	s.networks = nets;
	s.n_networks = 2;
	s.org_id = -1;
	c.stages = stages;
	c.n_stages = 2;
	c.network = "\"net\"\\";
	out = perch_workflow_to_json(&c);
	assert_string_equal(out, "{\"pipeline\":[{\"steps\":[{\"name\":\"n\\u0001\\u003c\\u003e\\u0026"
				 "\\ufffd\\u2028\x7f\\b\\f\",\"org_id\":-1,\"uuid\":\"\",\"environment\":"
				 "{\"B\":\"3\",\"_\":\"5\",\"a\":\"1\",\"b\":\"2\",\"\xc3\xa9\":\"4\"},"
				 "\"networks\":[{\"name\":\"n\",\"aliases\":[\"x\"]},{\"name\":\"\","
				 "\"aliases\":null}],\"auth_config\":{}},null]},null],\"network\":"
				 "\"\\\"net\\\"\\\\\",\"volume\":\"\",\"secrets\":null}");
	free(out);
}

/* --- scale -------------------------------------------------------------------------- */

/* Ten thousand steps in one stage, each depending on the one before (a
 * chain as deep as the stage), then ten thousand single-step stages.  No
 * timing assertion; the test would take minutes if a check were
 * quadratic, and overflow the stack if the cycle search recursed. */
static void test_large_workflow(void **state)
{
	enum { N = 10000 };
	perch_buf b = {0};
	perch_workflow *wf;
	int64_t t0, t1;
	size_t i, stage;
	char uuid[32], *out;

	perch_buf_puts(&b, "{\"pipeline\":[{\"steps\":[");
	for (i = 0; i < N; i++) {
		perch_buf_printf(&b, "%s{\"name\":\"step-%zu\",\"uuid\":\"01HF8ZKQ5W3C2M4N6P%08zu\","
				 "\"image\":\"alpine\",\"commands\":[\"echo %zu\"],"
				 "\"environment\":{\"CI\":\"woodpecker\",\"N\":\"%zu\"},\"auth_config\":{}",
				 i ? "," : "", i, i, i, i);
		if (i > 0)
			perch_buf_printf(&b, ",\"depends_on\":[\"step-%zu\"]", i - 1);
		perch_buf_putc(&b, '}');
	}
	perch_buf_puts(&b, "]}");
	for (i = 0; i < N; i++)
		perch_buf_printf(&b, ",{\"steps\":[{\"name\":\"s\",\"uuid\":\"B%zu\"}]}", i);
	perch_buf_puts(&b, "],\"network\":\"n\",\"volume\":\"v\",\"secrets\":null}");

	t0 = perch_mono_ns();
	wf = must_parse_n(b.data, b.len);
	t1 = perch_mono_ns();
	print_message("parsed %d steps (%zu bytes) in %.1f ms\n", 2 * N, b.len, (double)(t1 - t0) / 1e6);
	assert_int_equal(wf->config.n_stages, N + 1);
	assert_int_equal(wf->config.stages[0]->n_steps, N);
	STRV(&step_of(wf, 0, N - 1)->depends_on, "step-9998");
	snprintf(uuid, sizeof uuid, "01HF8ZKQ5W3C2M4N6P%08d", 4321);
	assert_string_equal(perch_workflow_find_step(wf, uuid, &stage)->name, "step-4321");
	assert_int_equal(stage, 0);
	assert_string_equal(perch_workflow_find_step(wf, "B9999", &stage)->name, "s");
	assert_int_equal(stage, N);

	out = perch_workflow_to_json(&wf->config);
	{
		perch_workflow *w2 = must_parse(out);
		char *out2 = perch_workflow_to_json(&w2->config);
		assert_string_equal(out, out2);
		config_eq(&wf->config, &w2->config);
		free(out2);
		perch_workflow_free(w2);
	}
	free(out);
	perch_workflow_free(wf);

	/* The same chain closed into a cycle of N steps. */
	perch_buf_free(&b);
	perch_buf_puts(&b, "{\"pipeline\":[{\"steps\":[");
	for (i = 0; i < N; i++)
		perch_buf_printf(&b, "%s{\"name\":\"s%zu\",\"uuid\":\"u%zu\",\"depends_on\":[\"s%zu\"]}",
				 i ? "," : "", i, i, (i + 1) % N);
	perch_buf_puts(&b, "]}]}");
	{
		char *err = NULL;
		const char *want_head = "t.json: pipeline[0]: depends_on cycle: s0 -> s1 -> s2 -> ";
		const char *want_tail = " -> s9998 -> s9999 -> s0";
		size_t len;
		assert_null(perch_workflow_parse(b.data, b.len, "t.json", &err));
		assert_non_null(err);
		len = strlen(err);
		assert_memory_equal(err, want_head, strlen(want_head));
		assert_true(len > strlen(want_tail));
		assert_string_equal(err + len - strlen(want_tail), want_tail);
		free(err);
	}

	/* Ten thousand uuids with the duplicate last. */
	perch_buf_free(&b);
	perch_buf_puts(&b, "{\"pipeline\":[{\"steps\":[");
	for (i = 0; i < N; i++)
		perch_buf_printf(&b, "{\"name\":\"s\",\"uuid\":\"u%zu\"},", i);
	perch_buf_puts(&b, "{\"name\":\"s\",\"uuid\":\"u1234\"}]}]}");
	expect_error_n(b.data, b.len,
		       "t.json: pipeline[0].steps[10000].uuid: duplicate uuid \"u1234\" (also "
		       "pipeline[0].steps[1234])");
	perch_buf_free(&b);
}

/* Whatever parse is given, it returns either a workflow or one message:
 * every prefix of a good document (most are truncated JSON). */
static void test_every_prefix(void **state)
{
	size_t len, i;
	char *text = read_fixture("every-field.json", &len);
	for (i = 0; i <= len; i++) {
		char *err = NULL;
		char *copy = perch_xstrndup(text, i); /* exact length for ASan */
		perch_workflow *wf = perch_workflow_parse(copy, i, "p.json", &err);
		assert_true((wf == NULL) != (err == NULL));
		if (err != NULL) {
			assert_memory_equal(err, "p.json: ", 8);
			assert_null(strchr(err, '\n'));
		}
		perch_workflow_free(wf);
		free(err);
		free(copy);
	}
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_fields),
		cmocka_unit_test(test_example_is_go_output),
		cmocka_unit_test(test_example_without_uuids_refused),
		cmocka_unit_test(test_every_field),
		cmocka_unit_test(test_every_field_serialised),
		cmocka_unit_test(test_services),
		cmocka_unit_test(test_unicode),
		cmocka_unit_test(test_round_trip_fixtures),
		cmocka_unit_test(test_bad_fixtures),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_top_level),
		cmocka_unit_test(test_bom),
		cmocka_unit_test(test_empty_and_null),
		cmocka_unit_test(test_step_all_null),
		cmocka_unit_test(test_omitempty),
		cmocka_unit_test(test_unknown_and_duplicate_keys),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_required_fields),
		cmocka_unit_test(test_depends_on),
		cmocka_unit_test(test_find_step),
		cmocka_unit_test(test_serialise_hand_built),
		cmocka_unit_test(test_large_workflow),
		cmocka_unit_test(test_every_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
