/* workflow_emit.c - perch_config to JSON text, byte for byte what Go's
 * encoding/json writes for Woodpecker's Config (see workflow.h for the
 * rules), so that a config perch stores or forwards reads back the same in
 * perch and in Woodpecker. */
#include "config.h"

#include "workflow_priv.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct emit {
	perch_buf *b;
	bool first; /* no member written yet in the current object */
} emit;

static const char *str(const char *s)
{
	return s != NULL ? s : "";
}

static void put_str(perch_buf *b, const char *s)
{
	s = str(s);
	perch_json_put_string(b, s, strlen(s));
}

static void open_obj(emit *e)
{
	perch_buf_putc(e->b, '{');
	e->first = true;
}

static void close_obj(emit *e)
{
	perch_buf_putc(e->b, '}');
	e->first = false;
}

static void key(emit *e, const char *k)
{
	if (!e->first)
		perch_buf_putc(e->b, ',');
	e->first = false;
	perch_buf_putc(e->b, '"');
	perch_buf_puts(e->b, k); /* field names need no escaping */
	perch_buf_puts(e->b, "\":");
}

/* One helper per Go field shape.  "omit" ones follow omitempty. */
static void f_str(emit *e, const char *k, const char *v)
{
	key(e, k);
	put_str(e->b, v);
}

static void f_str_omit(emit *e, const char *k, const char *v)
{
	if (v != NULL && *v != '\0')
		f_str(e, k, v);
}

static void f_bool_omit(emit *e, const char *k, bool v)
{
	if (v) {
		key(e, k);
		perch_buf_puts(e->b, "true");
	}
}

static void put_strv(perch_buf *b, const perch_strv *v)
{
	size_t i;
	perch_buf_putc(b, '[');
	for (i = 0; i < v->len; i++) {
		if (i != 0)
			perch_buf_putc(b, ',');
		put_str(b, v->items[i]);
	}
	perch_buf_putc(b, ']');
}

static void f_strv_omit(emit *e, const char *k, const perch_strv *v)
{
	if (v->len != 0) {
		key(e, k);
		put_strv(e->b, v);
	}
}

static int cmp_kv(const void *x, const void *y)
{
	const perch_kv *a = *(const perch_kv *const *)x, *b = *(const perch_kv *const *)y;
	return strcmp(str(a->key), str(b->key));
}

/* Go writes map keys sorted (bytewise: strcmp compares unsigned chars). */
static void f_map_omit(emit *e, const char *k, const perch_map *m)
{
	const perch_kv **sorted;
	size_t i;
	emit inner = {.b = e->b};
	if (m->len == 0)
		return;
	key(e, k);
	sorted = perch_xmalloc(m->len * sizeof *sorted);
	for (i = 0; i < m->len; i++)
		sorted[i] = &m->items[i];
	qsort(sorted, m->len, sizeof *sorted, cmp_kv);
	open_obj(&inner);
	for (i = 0; i < m->len; i++) {
		if (!inner.first)
			perch_buf_putc(e->b, ',');
		inner.first = false;
		put_str(e->b, sorted[i]->key);
		perch_buf_putc(e->b, ':');
		put_str(e->b, sorted[i]->value);
	}
	close_obj(&inner);
	free(sorted);
}

static void put_step(perch_buf *b, const perch_step *s)
{
	emit e = {.b = b};
	size_t i;

	open_obj(&e);
	f_str(&e, "name", s->name);
	if (s->org_id != 0) {
		key(&e, "org_id");
		perch_buf_printf(b, "%" PRId64, s->org_id);
	}
	f_str(&e, "uuid", s->uuid);
	f_str_omit(&e, "type", s->type);
	f_str_omit(&e, "image", s->image);
	f_bool_omit(&e, "pull", s->pull);
	f_bool_omit(&e, "detach", s->detach);
	f_bool_omit(&e, "privileged", s->privileged);
	f_str_omit(&e, "working_dir", s->working_dir);
	f_str_omit(&e, "workspace_base", s->workspace_base);
	f_map_omit(&e, "environment", &s->environment);
	f_map_omit(&e, "secret_mapping", &s->secret_mapping);
	f_strv_omit(&e, "entrypoint", &s->entrypoint);
	f_strv_omit(&e, "commands", &s->commands);
	if (s->n_extra_hosts != 0) {
		key(&e, "extra_hosts");
		perch_buf_putc(b, '[');
		for (i = 0; i < s->n_extra_hosts; i++) {
			emit h = {.b = b};
			if (i != 0)
				perch_buf_putc(b, ',');
			open_obj(&h);
			f_str_omit(&h, "name", s->extra_hosts[i].name);
			f_str_omit(&h, "ip", s->extra_hosts[i].ip);
			close_obj(&h);
		}
		perch_buf_putc(b, ']');
	}
	f_strv_omit(&e, "volumes", &s->volumes);
	f_strv_omit(&e, "tmpfs", &s->tmpfs);
	f_strv_omit(&e, "devices", &s->devices);
	if (s->n_networks != 0) {
		key(&e, "networks");
		perch_buf_putc(b, '[');
		for (i = 0; i < s->n_networks; i++) {
			const perch_conn *c = &s->networks[i];
			emit n = {.b = b};
			if (i != 0)
				perch_buf_putc(b, ',');
			open_obj(&n);
			f_str(&n, "name", c->name);
			/* No omitempty: a nil slice is null, an empty one []. */
			key(&n, "aliases");
			if (c->aliases.items == NULL && c->aliases.len == 0)
				perch_buf_puts(b, "null");
			else
				put_strv(b, &c->aliases);
			close_obj(&n);
		}
		perch_buf_putc(b, ']');
	}
	f_strv_omit(&e, "dns", &s->dns);
	f_strv_omit(&e, "dns_search", &s->dns_search);
	f_bool_omit(&e, "on_failure", s->on_failure);
	f_bool_omit(&e, "on_success", s->on_success);
	f_str_omit(&e, "failure", s->failure);
	{
		/* A struct: omitempty never drops it. */
		emit a = {.b = b};
		key(&e, "auth_config");
		open_obj(&a);
		f_str_omit(&a, "username", s->auth_config.username);
		f_str_omit(&a, "password", s->auth_config.password);
		close_obj(&a);
	}
	f_str_omit(&e, "network_mode", s->network_mode);
	if (s->n_ports != 0) {
		key(&e, "ports");
		perch_buf_putc(b, '[');
		for (i = 0; i < s->n_ports; i++) {
			emit p = {.b = b};
			if (i != 0)
				perch_buf_putc(b, ',');
			open_obj(&p);
			if (s->ports[i].number != 0) {
				key(&p, "number");
				perch_buf_printf(b, "%u", (unsigned)s->ports[i].number);
			}
			f_str_omit(&p, "protocol", s->ports[i].protocol);
			close_obj(&p);
		}
		perch_buf_putc(b, ']');
	}
	if (s->backend_options != NULL && s->backend_options[0] != '\0') {
		/* Already JSON text; written as it is. */
		key(&e, "backend_options");
		perch_buf_puts(b, s->backend_options);
	}
	f_map_omit(&e, "workflow_labels", &s->workflow_labels);
	f_str_omit(&e, "container_name_scheme", s->container_name_scheme);
	f_strv_omit(&e, "depends_on", &s->depends_on);
	close_obj(&e);
}

char *perch_workflow_to_json(const perch_config *c)
{
	perch_buf b = {0};
	emit e = {.b = &b};
	size_t i, j;

	open_obj(&e);
	key(&e, "pipeline");
	if (c->stages == NULL && c->n_stages == 0) {
		perch_buf_puts(&b, "null");
	} else {
		perch_buf_putc(&b, '[');
		for (i = 0; i < c->n_stages; i++) {
			const perch_stage *st = c->stages[i];
			if (i != 0)
				perch_buf_putc(&b, ',');
			if (st == NULL) {
				perch_buf_puts(&b, "null");
				continue;
			}
			perch_buf_putc(&b, '{');
			if (st->n_steps != 0) {
				perch_buf_puts(&b, "\"steps\":[");
				for (j = 0; j < st->n_steps; j++) {
					if (j != 0)
						perch_buf_putc(&b, ',');
					if (st->steps[j] == NULL)
						perch_buf_puts(&b, "null");
					else
						put_step(&b, st->steps[j]);
				}
				perch_buf_putc(&b, ']');
			}
			perch_buf_putc(&b, '}');
		}
		perch_buf_putc(&b, ']');
	}
	f_str(&e, "network", c->network);
	f_str(&e, "volume", c->volume);
	key(&e, "secrets");
	if (c->secrets == NULL && c->n_secrets == 0) {
		perch_buf_puts(&b, "null");
	} else {
		perch_buf_putc(&b, '[');
		for (i = 0; i < c->n_secrets; i++) {
			emit s = {.b = &b};
			if (i != 0)
				perch_buf_putc(&b, ',');
			open_obj(&s);
			f_str_omit(&s, "name", c->secrets[i].name);
			f_str_omit(&s, "value", c->secrets[i].value);
			close_obj(&s);
		}
		perch_buf_putc(&b, ']');
	}
	close_obj(&e);
	return perch_buf_steal(&b);
}
