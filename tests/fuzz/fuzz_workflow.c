/*
 * fuzz_workflow.c - the workflow JSON parser (host/workflow_*.c).
 *
 * Any input: perch_workflow_parse either refuses it with one line of error
 * or returns a workflow whose every struct is well formed (struct_size set,
 * strings never NULL, every step findable by its uuid).  An accepted input
 * must then round-trip: serialising it, parsing that, and serialising
 * again gives the same text and a field-for-field equal config.  Since the
 * serialiser writes every field, this catches a decoder and an encoder that
 * disagree, which no crash would.
 */
#include "config.h"

#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "workflow.h"

static const char *nn(const char *s)
{
	return s ? s : "(null)";
}

/* The strings of the perch_types.h rule: never NULL. */
#define CHECK_STR(s, what) FUZZ_CHECK((s) != NULL, "%s is NULL", what)

static void check_strv(const perch_strv *v, const char *what)
{
	FUZZ_CHECK(v->len == 0 || v->items != NULL, "%s: %zu items at NULL", what, v->len);
	for (size_t i = 0; i < v->len; i++)
		CHECK_STR(v->items[i], what);
}

static void check_map(const perch_map *m, const char *what)
{
	FUZZ_CHECK(m->len == 0 || m->items != NULL, "%s: %zu entries at NULL", what, m->len);
	for (size_t i = 0; i < m->len; i++) {
		CHECK_STR(m->items[i].key, what);
		CHECK_STR(m->items[i].value, what);
		/* "Keys are unique" (perch/types.h). */
		for (size_t j = 0; j < i; j++)
			FUZZ_CHECK(strcmp(m->items[i].key, m->items[j].key) != 0,
				   "%s: key \"%s\" twice", what, m->items[i].key);
	}
}

/* Everything a plugin may rely on, per perch/types.h. */
static void check_well_formed(const perch_workflow *wf)
{
	const perch_config *c = &wf->config;
	FUZZ_CHECK(c->struct_size == sizeof *c, "config struct_size %u", c->struct_size);
	FUZZ_CHECK(c->n_stages == 0 || c->stages != NULL, "stages NULL");
	CHECK_STR(c->network, "network");
	CHECK_STR(c->volume, "volume");
	FUZZ_CHECK(c->n_secrets == 0 || c->secrets != NULL, "secrets NULL");
	for (size_t i = 0; i < c->n_secrets; i++) {
		CHECK_STR(c->secrets[i].name, "secret name");
		CHECK_STR(c->secrets[i].value, "secret value");
	}
	for (size_t i = 0; i < c->n_stages; i++) {
		const perch_stage *st = c->stages[i];
		FUZZ_CHECK(st != NULL, "stage %zu is NULL", i);
		FUZZ_CHECK(st->struct_size == sizeof *st, "stage struct_size %u", st->struct_size);
		FUZZ_CHECK(st->n_steps == 0 || st->steps != NULL, "steps NULL");
		for (size_t j = 0; j < st->n_steps; j++) {
			const perch_step *s = st->steps[j];
			FUZZ_CHECK(s != NULL, "step %zu.%zu is NULL", i, j);
			FUZZ_CHECK(s->struct_size == sizeof *s, "step struct_size %u",
				   s->struct_size);
			CHECK_STR(s->name, "name");
			CHECK_STR(s->uuid, "uuid");
			FUZZ_CHECK(s->name[0] && s->uuid[0], "a step without name or uuid");
			CHECK_STR(s->type, "type");
			CHECK_STR(s->image, "image");
			CHECK_STR(s->working_dir, "working_dir");
			CHECK_STR(s->workspace_base, "workspace_base");
			CHECK_STR(s->failure, "failure");
			CHECK_STR(s->network_mode, "network_mode");
			CHECK_STR(s->backend_options, "backend_options");
			CHECK_STR(s->container_name_scheme, "container_name_scheme");
			CHECK_STR(s->auth_config.username, "username");
			CHECK_STR(s->auth_config.password, "password");
			check_map(&s->environment, "environment");
			check_map(&s->secret_mapping, "secret_mapping");
			check_map(&s->workflow_labels, "workflow_labels");
			check_strv(&s->entrypoint, "entrypoint");
			check_strv(&s->commands, "commands");
			check_strv(&s->volumes, "volumes");
			check_strv(&s->tmpfs, "tmpfs");
			check_strv(&s->devices, "devices");
			check_strv(&s->dns, "dns");
			check_strv(&s->dns_search, "dns_search");
			check_strv(&s->depends_on, "depends_on");
			FUZZ_CHECK(s->n_extra_hosts == 0 || s->extra_hosts, "extra_hosts NULL");
			for (size_t k = 0; k < s->n_extra_hosts; k++) {
				CHECK_STR(s->extra_hosts[k].name, "extra_hosts name");
				CHECK_STR(s->extra_hosts[k].ip, "extra_hosts ip");
			}
			FUZZ_CHECK(s->n_networks == 0 || s->networks, "networks NULL");
			for (size_t k = 0; k < s->n_networks; k++) {
				CHECK_STR(s->networks[k].name, "network name");
				check_strv(&s->networks[k].aliases, "aliases");
			}
			FUZZ_CHECK(s->n_ports == 0 || s->ports, "ports NULL");
			for (size_t k = 0; k < s->n_ports; k++)
				CHECK_STR(s->ports[k].protocol, "protocol");
			/* depends_on names steps of this stage, never itself. */
			for (size_t k = 0; k < s->depends_on.len; k++) {
				const char *dep = s->depends_on.items[k];
				bool found = false;
				FUZZ_CHECK(strcmp(dep, s->name) != 0, "step %s depends on itself",
					   s->name);
				for (size_t m = 0; m < st->n_steps && !found; m++)
					found = strcmp(st->steps[m]->name, dep) == 0;
				FUZZ_CHECK(found, "step %s depends on unknown %s", s->name, dep);
			}
			size_t stage = (size_t)-1;
			const perch_step *f = perch_workflow_find_step(wf, s->uuid, &stage);
			FUZZ_CHECK(f == s && stage == i, "find_step(%s) gave %p stage %zu", s->uuid,
				   (const void *)f, stage);
		}
	}
}

/* ---- field-for-field equality --------------------------------------------- */

static void eq_str(const char *a, const char *b, const char *what)
{
	FUZZ_CHECK(strcmp(a, b) == 0, "%s differs after the round trip: \"%s\" vs \"%s\"", what,
		   nn(a), nn(b));
}

static void eq_strv(const perch_strv *a, const perch_strv *b, const char *what)
{
	FUZZ_CHECK(a->len == b->len, "%s: %zu vs %zu items", what, a->len, b->len);
	for (size_t i = 0; i < a->len; i++)
		eq_str(a->items[i], b->items[i], what);
}

static void eq_map(const perch_map *a, const perch_map *b, const char *what)
{
	/* The serialiser sorts keys (Go does), so compare as sets. */
	FUZZ_CHECK(a->len == b->len, "%s: %zu vs %zu entries", what, a->len, b->len);
	for (size_t i = 0; i < a->len; i++) {
		const char *v = perch_map_get(b, a->items[i].key);
		FUZZ_CHECK(v != NULL, "%s: key \"%s\" lost", what, a->items[i].key);
		eq_str(a->items[i].value, v, what);
	}
}

static void eq_step(const perch_step *a, const perch_step *b)
{
	eq_str(a->name, b->name, "name");
	FUZZ_CHECK(a->org_id == b->org_id, "org_id");
	eq_str(a->uuid, b->uuid, "uuid");
	eq_str(a->type, b->type, "type");
	eq_str(a->image, b->image, "image");
	FUZZ_CHECK(a->pull == b->pull && a->detach == b->detach && a->privileged == b->privileged,
		   "pull/detach/privileged");
	eq_str(a->working_dir, b->working_dir, "working_dir");
	eq_str(a->workspace_base, b->workspace_base, "workspace_base");
	eq_map(&a->environment, &b->environment, "environment");
	eq_map(&a->secret_mapping, &b->secret_mapping, "secret_mapping");
	eq_strv(&a->entrypoint, &b->entrypoint, "entrypoint");
	eq_strv(&a->commands, &b->commands, "commands");
	FUZZ_CHECK(a->n_extra_hosts == b->n_extra_hosts, "extra_hosts count");
	for (size_t i = 0; i < a->n_extra_hosts; i++) {
		eq_str(a->extra_hosts[i].name, b->extra_hosts[i].name, "extra_hosts name");
		eq_str(a->extra_hosts[i].ip, b->extra_hosts[i].ip, "extra_hosts ip");
	}
	eq_strv(&a->volumes, &b->volumes, "volumes");
	eq_strv(&a->tmpfs, &b->tmpfs, "tmpfs");
	eq_strv(&a->devices, &b->devices, "devices");
	FUZZ_CHECK(a->n_networks == b->n_networks, "networks count");
	for (size_t i = 0; i < a->n_networks; i++) {
		eq_str(a->networks[i].name, b->networks[i].name, "network name");
		eq_strv(&a->networks[i].aliases, &b->networks[i].aliases, "aliases");
		/* null and [] are different JSON for aliases (no omitempty). */
		FUZZ_CHECK((a->networks[i].aliases.items == NULL) ==
				   (b->networks[i].aliases.items == NULL),
			   "aliases null-ness");
	}
	eq_strv(&a->dns, &b->dns, "dns");
	eq_strv(&a->dns_search, &b->dns_search, "dns_search");
	FUZZ_CHECK(a->on_failure == b->on_failure && a->on_success == b->on_success,
		   "on_failure/on_success");
	eq_str(a->failure, b->failure, "failure");
	eq_str(a->auth_config.username, b->auth_config.username, "username");
	eq_str(a->auth_config.password, b->auth_config.password, "password");
	eq_str(a->network_mode, b->network_mode, "network_mode");
	FUZZ_CHECK(a->n_ports == b->n_ports, "ports count");
	for (size_t i = 0; i < a->n_ports; i++) {
		FUZZ_CHECK(a->ports[i].number == b->ports[i].number, "port number");
		eq_str(a->ports[i].protocol, b->ports[i].protocol, "port protocol");
	}
	eq_str(a->backend_options, b->backend_options, "backend_options");
	eq_map(&a->workflow_labels, &b->workflow_labels, "workflow_labels");
	eq_str(a->container_name_scheme, b->container_name_scheme, "container_name_scheme");
	eq_strv(&a->depends_on, &b->depends_on, "depends_on");
}

static void eq_config(const perch_config *a, const perch_config *b)
{
	FUZZ_CHECK(a->n_stages == b->n_stages, "stage count %zu vs %zu", a->n_stages,
		   b->n_stages);
	FUZZ_CHECK((a->stages == NULL) == (b->stages == NULL), "pipeline null-ness");
	eq_str(a->network, b->network, "network");
	eq_str(a->volume, b->volume, "volume");
	FUZZ_CHECK(a->n_secrets == b->n_secrets, "secret count");
	FUZZ_CHECK((a->secrets == NULL) == (b->secrets == NULL), "secrets null-ness");
	for (size_t i = 0; i < a->n_secrets; i++) {
		eq_str(a->secrets[i].name, b->secrets[i].name, "secret name");
		eq_str(a->secrets[i].value, b->secrets[i].value, "secret value");
	}
	for (size_t i = 0; i < a->n_stages; i++) {
		FUZZ_CHECK(a->stages[i]->n_steps == b->stages[i]->n_steps, "stage %zu step count",
			   i);
		for (size_t j = 0; j < a->stages[i]->n_steps; j++)
			eq_step(a->stages[i]->steps[j], b->stages[i]->steps[j]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *err = NULL;
	perch_workflow *wf = perch_workflow_parse((const char *)data, size, "fuzz.json", &err);
	if (wf == NULL) {
		FUZZ_CHECK(err != NULL && err[0] != '\0', "refused without a message");
		FUZZ_CHECK(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL,
			   "error is not one line: %s", err);
		FUZZ_CHECK(strncmp(err, "fuzz.json: ", 11) == 0, "error does not name the input: %s",
			   err);
		free(err);
		return 0;
	}
	FUZZ_CHECK(err == NULL, "accepted but *err set: %s", err);
	check_well_formed(wf);

	char *j1 = perch_workflow_to_json(&wf->config);
	perch_workflow *wf2 = perch_workflow_parse(j1, strlen(j1), "reparse", &err);
	FUZZ_CHECK(wf2 != NULL, "the serialised workflow does not parse: %s\n%s", nn(err), j1);
	check_well_formed(wf2);
	eq_config(&wf->config, &wf2->config);
	char *j2 = perch_workflow_to_json(&wf2->config);
	FUZZ_CHECK(strcmp(j1, j2) == 0, "serialising is not stable:\n%s\n%s", j1, j2);

	free(j1);
	free(j2);
	perch_workflow_free(wf2);
	perch_workflow_free(wf);
	return 0;
}
