/* workflow_decode.c - json-c values to perch_config, with the JSON path of
 * every refusal.
 *
 * Decoding mirrors Go's encoding/json on Woodpecker's types: a missing key
 * and null both give the zero value ("" for strings, never NULL), unknown
 * keys are ignored, a value of the wrong type is an error (Go's decoder
 * reports it too, and a half-decoded step must never run).  Each decoder
 * receives the value (NULL for absent or null) with d->path already naming
 * it, so an error message only has to say what is wrong. */
#include "config.h"

#include "workflow_priv.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct dec {
	perch_workflow *wf;
	perch_arena *arena;
	const char *source;
	perch_buf path; /* "pipeline[1].steps[0].pull" */
	char *err;
} dec;

__attribute__((format(printf, 2, 3))) static bool fail(dec *d, const char *fmt, ...)
{
	perch_buf b = {0};
	va_list ap;
	perch_buf_printf(&b, "%s: ", d->source);
	if (d->path.len != 0)
		perch_buf_printf(&b, "%s: ", d->path.data);
	va_start(ap, fmt);
	perch_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	d->err = perch_buf_steal(&b);
	return false;
}

static char *quote(const char *s)
{
	perch_buf b = {0};
	perch_json_put_message_string(&b, s);
	return perch_buf_steal(&b);
}

/* --- the path ------------------------------------------------------------------ */

static bool is_plain_key(const char *k)
{
	if (*k == '\0')
		return false;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || *k == '_' || *k == '-'))
			return false;
	return true;
}

static size_t path_key(dec *d, const char *key)
{
	size_t mark = d->path.len;
	if (is_plain_key(key)) {
		if (mark != 0)
			perch_buf_putc(&d->path, '.');
		perch_buf_puts(&d->path, key);
	} else {
		perch_buf_putc(&d->path, '[');
		perch_json_put_message_string(&d->path, key);
		perch_buf_putc(&d->path, ']');
	}
	return mark;
}

static size_t path_index(dec *d, size_t i)
{
	/* Runs for every list element: formatted by hand, as printf here
	 * was a tenth of the decoding time. */
	char tmp[24], *p = tmp + sizeof tmp;
	size_t mark = d->path.len;
	*--p = ']';
	do
		*--p = (char)('0' + i % 10);
	while ((i /= 10) != 0);
	*--p = '[';
	perch_buf_append(&d->path, p, (size_t)(tmp + sizeof tmp - p));
	return mark;
}

static void path_pop(dec *d, size_t mark)
{
	d->path.len = mark;
	d->path.data[mark] = '\0';
}

/* Runs `call` on the member key of obj (v: NULL when obj is NULL or the
 * member is absent or null) with the path pointing at the member.  Returns
 * from the calling decoder when `call` fails. */
#define MEMBER(obj, key, call)                                                        \
	do {                                                                          \
		json_object *v = NULL;                                                \
		size_t mark_ = path_key(d, (key));                                    \
		if ((obj) != NULL)                                                    \
			json_object_object_get_ex((obj), (key), &v);                  \
		if (!(call))                                                          \
			return false;                                                 \
		path_pop(d, mark_);                                                   \
	} while (0)

static const char *type_name(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double:
	case json_type_int: return "a number";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "something else";
}

static bool expect(dec *d, json_object *v, enum json_type t, const char *what)
{
	if (json_object_is_type(v, t))
		return true;
	return fail(d, "expected %s, got %s", what, type_name(v));
}

/* --- scalars --------------------------------------------------------------------- */

static bool dec_string(dec *d, json_object *v, const char **out)
{
	const char *s;
	size_t n;
	*out = "";
	if (v == NULL)
		return true;
	if (!expect(d, v, json_type_string, "a string"))
		return false;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	/* perch_workflow_parse refuses \u0000 up front; this keeps the
	 * invariant local should that ever change. */
	if (memchr(s, '\0', n) != NULL)
		return fail(d, "string contains a NUL character");
	*out = perch_arena_strndup(d->arena, s, n);
	return true;
}

static bool dec_bool(dec *d, json_object *v, bool *out)
{
	*out = false;
	if (v == NULL)
		return true;
	if (!expect(d, v, json_type_boolean, "a boolean"))
		return false;
	*out = json_object_get_boolean(v) != 0;
	return true;
}

/* An integer that fits int64_t.  json-c clamps what does not fit, so a
 * clamped INT64_MAX is recognised by the unsigned value behind it.  (Below
 * INT64_MIN json-c clamps silently and indistinguishably; accepted.) */
static bool dec_int64(dec *d, json_object *v, int64_t *out)
{
	*out = 0;
	if (v == NULL)
		return true;
	if (json_object_is_type(v, json_type_double))
		return fail(d, "expected an integer, got %s",
			    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	if (!expect(d, v, json_type_int, "an integer"))
		return false;
	*out = json_object_get_int64(v);
	if (*out == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return fail(d, "%s is out of range (a 64-bit signed integer)",
			    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	return true;
}

static bool dec_port_number(dec *d, json_object *v, uint16_t *out)
{
	int64_t n;
	*out = 0;
	if (v != NULL && json_object_is_type(v, json_type_double))
		return fail(d, "expected an integer, got %s",
			    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	if (v != NULL && !expect(d, v, json_type_int, "an integer"))
		return false;
	if (v == NULL)
		return true;
	n = json_object_get_int64(v);
	if (n < 0 || n > 65535 ||
	    (n == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX))
		return fail(d, "%s is out of range (0 to 65535)",
			    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	*out = (uint16_t)n;
	return true;
}

/* --- lists and maps ------------------------------------------------------------- */

/* keep_empty: a given [] gets a non-NULL pointer, so that the serialiser
 * can tell it from null where Go's output differs ([] versus null). */
static bool dec_strv(dec *d, json_object *v, perch_strv *out, bool keep_empty)
{
	const char **items;
	size_t n, i;
	out->items = NULL;
	out->len = 0;
	if (v == NULL)
		return true;
	if (!expect(d, v, json_type_array, "an array"))
		return false;
	n = json_object_array_length(v);
	if (n == 0 && !keep_empty)
		return true;
	items = perch_arena_array(d->arena, n, sizeof *items);
	for (i = 0; i < n; i++) {
		size_t mark = path_index(d, i);
		if (!dec_string(d, json_object_array_get_idx(v, i), &items[i]))
			return false;
		path_pop(d, mark);
	}
	out->items = items;
	out->len = n;
	return true;
}

/* A Go map[string]string: an object whose values are strings (null: ""),
 * in the order the JSON gave them.  json-c keeps the last of duplicate keys,
 * as Go does. */
static bool dec_map(dec *d, json_object *v, perch_map *out)
{
	struct json_object_iterator it, end;
	perch_kv *items;
	size_t n, i = 0;
	out->items = NULL;
	out->len = 0;
	if (v == NULL)
		return true;
	if (!expect(d, v, json_type_object, "an object"))
		return false;
	n = (size_t)json_object_object_length(v);
	if (n == 0)
		return true;
	items = perch_arena_array(d->arena, n, sizeof *items);
	it = json_object_iter_begin(v);
	end = json_object_iter_end(v);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it), i++) {
		const char *key = json_object_iter_peek_name(&it);
		size_t mark = path_key(d, key);
		if (!dec_string(d, json_object_iter_peek_value(&it), &items[i].value))
			return false;
		path_pop(d, mark);
		items[i].key = perch_arena_strndup(d->arena, key, strlen(key));
	}
	out->items = items;
	out->len = n;
	return true;
}

/* --- backend_options: any JSON object, kept as compact JSON text ------------------ */

/* RFC 8259 number grammar.  json-c also accepts NaN, Infinity and "1.",
 * which no JSON parser in a plugin would take back. */
static bool is_json_number(const char *s)
{
	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		while (*s >= '0' && *s <= '9')
			s++;
	else
		return false;
	if (*s == '.') {
		s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!(*s >= '0' && *s <= '9'))
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

/* Writes v as compact JSON: keys in their original order, numbers as they
 * were written, strings escaped like the rest of the serialiser's output.
 * Recursion is bounded by the tokener's depth limit. */
static bool write_value(dec *d, perch_buf *b, json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null:
		perch_buf_puts(b, "null");
		return true;
	case json_type_boolean:
		perch_buf_puts(b, json_object_get_boolean(v) ? "true" : "false");
		return true;
	case json_type_int:
		perch_buf_puts(b, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
		return true;
	case json_type_double: {
		/* The tokener keeps the text it parsed for doubles. */
		const char *t = json_object_get_string(v);
		if (!is_json_number(t)) {
			char *q = quote(t);
			fail(d, "not a JSON number: %s", q);
			free(q);
			return false;
		}
		perch_buf_puts(b, t);
		return true;
	}
	case json_type_string:
		perch_json_put_string(b, json_object_get_string(v),
				      (size_t)json_object_get_string_len(v));
		return true;
	case json_type_array: {
		size_t i, n = json_object_array_length(v);
		perch_buf_putc(b, '[');
		for (i = 0; i < n; i++) {
			size_t mark = path_index(d, i);
			if (i != 0)
				perch_buf_putc(b, ',');
			if (!write_value(d, b, json_object_array_get_idx(v, i)))
				return false;
			path_pop(d, mark);
		}
		perch_buf_putc(b, ']');
		return true;
	}
	case json_type_object: {
		struct json_object_iterator it = json_object_iter_begin(v);
		struct json_object_iterator end = json_object_iter_end(v);
		bool first = true;
		perch_buf_putc(b, '{');
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			const char *key = json_object_iter_peek_name(&it);
			size_t mark = path_key(d, key);
			if (!first)
				perch_buf_putc(b, ',');
			first = false;
			perch_json_put_string(b, key, strlen(key));
			perch_buf_putc(b, ':');
			if (!write_value(d, b, json_object_iter_peek_value(&it)))
				return false;
			path_pop(d, mark);
		}
		perch_buf_putc(b, '}');
		return true;
	}
	}
	return fail(d, "unexpected JSON value");
}

/* "" when absent, null or {} (Go's omitempty drops an empty map, so the
 * round trip agrees). */
static bool dec_backend_options(dec *d, json_object *v, const char **out)
{
	perch_buf b = {0};
	*out = "";
	if (v == NULL)
		return true;
	if (!expect(d, v, json_type_object, "an object"))
		return false;
	if (json_object_object_length(v) == 0)
		return true;
	if (!write_value(d, &b, v)) {
		perch_buf_free(&b);
		return false;
	}
	*out = perch_arena_strndup(d->arena, b.data, b.len);
	perch_buf_free(&b);
	return true;
}

/* --- small structs --------------------------------------------------------------- */

/* Lists of structs: v is an array (or NULL); each element an object or
 * null (the zero struct).  elem gets the element with the path on it. */
typedef bool (*elem_fn)(dec *d, json_object *o, void *out);

static bool dec_list(dec *d, json_object *v, size_t size, elem_fn elem, void **items,
		     size_t *len, bool keep_empty)
{
	unsigned char *arr;
	size_t n, i;
	*items = NULL;
	*len = 0;
	if (v == NULL)
		return true;
	if (!expect(d, v, json_type_array, "an array"))
		return false;
	n = json_object_array_length(v);
	if (n == 0 && !keep_empty)
		return true;
	arr = perch_arena_array(d->arena, n, size);
	for (i = 0; i < n; i++) {
		size_t mark = path_index(d, i);
		json_object *o = json_object_array_get_idx(v, i);
		if (o != NULL && !expect(d, o, json_type_object, "an object"))
			return false;
		if (!elem(d, o, arr + i * size))
			return false;
		path_pop(d, mark);
	}
	*items = arr;
	*len = n;
	return true;
}

static bool dec_host_alias(dec *d, json_object *o, void *out)
{
	perch_host_alias *h = out;
	MEMBER(o, "name", dec_string(d, v, &h->name));
	MEMBER(o, "ip", dec_string(d, v, &h->ip));
	return true;
}

static bool dec_conn(dec *d, json_object *o, void *out)
{
	perch_conn *c = out;
	MEMBER(o, "name", dec_string(d, v, &c->name));
	MEMBER(o, "aliases", dec_strv(d, v, &c->aliases, true));
	return true;
}

static bool dec_port(dec *d, json_object *o, void *out)
{
	perch_port *p = out;
	MEMBER(o, "number", dec_port_number(d, v, &p->number));
	MEMBER(o, "protocol", dec_string(d, v, &p->protocol));
	return true;
}

static bool dec_secret(dec *d, json_object *o, void *out)
{
	perch_secret *s = out;
	MEMBER(o, "name", dec_string(d, v, &s->name));
	MEMBER(o, "value", dec_string(d, v, &s->value));
	return true;
}

static bool dec_auth(dec *d, json_object *o, perch_auth *a)
{
	if (o != NULL && !expect(d, o, json_type_object, "an object"))
		return false;
	MEMBER(o, "username", dec_string(d, v, &a->username));
	MEMBER(o, "password", dec_string(d, v, &a->password));
	return true;
}

/* Typed front ends of dec_list. */
static bool dec_extra_hosts(dec *d, json_object *v, perch_step *s)
{
	void *items;
	bool ok = dec_list(d, v, sizeof(perch_host_alias), dec_host_alias, &items,
			   &s->n_extra_hosts, false);
	s->extra_hosts = items;
	return ok;
}

static bool dec_networks(dec *d, json_object *v, perch_step *s)
{
	void *items;
	bool ok = dec_list(d, v, sizeof(perch_conn), dec_conn, &items, &s->n_networks, false);
	s->networks = items;
	return ok;
}

static bool dec_ports(dec *d, json_object *v, perch_step *s)
{
	void *items;
	bool ok = dec_list(d, v, sizeof(perch_port), dec_port, &items, &s->n_ports, false);
	s->ports = items;
	return ok;
}

/* keep_empty: "secrets": [] stays [] in the serialiser, null stays null. */
static bool dec_secrets(dec *d, json_object *v, perch_config *c)
{
	void *items;
	bool ok = dec_list(d, v, sizeof(perch_secret), dec_secret, &items, &c->n_secrets, true);
	c->secrets = items;
	return ok;
}

/* --- steps, stages, config ------------------------------------------------------- */

static bool dec_step(dec *d, json_object *o, perch_step *s, size_t stage_i, size_t step_i)
{
	bool created;
	perch_index_entry *e;

	s->struct_size = sizeof *s;
	MEMBER(o, "name", dec_string(d, v, &s->name));
	MEMBER(o, "org_id", dec_int64(d, v, &s->org_id));
	MEMBER(o, "uuid", dec_string(d, v, &s->uuid));
	MEMBER(o, "type", dec_string(d, v, &s->type));
	MEMBER(o, "image", dec_string(d, v, &s->image));
	MEMBER(o, "pull", dec_bool(d, v, &s->pull));
	MEMBER(o, "detach", dec_bool(d, v, &s->detach));
	MEMBER(o, "privileged", dec_bool(d, v, &s->privileged));
	MEMBER(o, "working_dir", dec_string(d, v, &s->working_dir));
	MEMBER(o, "workspace_base", dec_string(d, v, &s->workspace_base));
	MEMBER(o, "environment", dec_map(d, v, &s->environment));
	MEMBER(o, "secret_mapping", dec_map(d, v, &s->secret_mapping));
	MEMBER(o, "entrypoint", dec_strv(d, v, &s->entrypoint, false));
	MEMBER(o, "commands", dec_strv(d, v, &s->commands, false));
	MEMBER(o, "extra_hosts", dec_extra_hosts(d, v, s));
	MEMBER(o, "volumes", dec_strv(d, v, &s->volumes, false));
	MEMBER(o, "tmpfs", dec_strv(d, v, &s->tmpfs, false));
	MEMBER(o, "devices", dec_strv(d, v, &s->devices, false));
	MEMBER(o, "networks", dec_networks(d, v, s));
	MEMBER(o, "dns", dec_strv(d, v, &s->dns, false));
	MEMBER(o, "dns_search", dec_strv(d, v, &s->dns_search, false));
	MEMBER(o, "on_failure", dec_bool(d, v, &s->on_failure));
	MEMBER(o, "on_success", dec_bool(d, v, &s->on_success));
	MEMBER(o, "failure", dec_string(d, v, &s->failure));
	MEMBER(o, "auth_config", dec_auth(d, v, &s->auth_config));
	MEMBER(o, "network_mode", dec_string(d, v, &s->network_mode));
	MEMBER(o, "ports", dec_ports(d, v, s));
	MEMBER(o, "backend_options", dec_backend_options(d, v, &s->backend_options));
	MEMBER(o, "workflow_labels", dec_map(d, v, &s->workflow_labels));
	MEMBER(o, "container_name_scheme", dec_string(d, v, &s->container_name_scheme));
	MEMBER(o, "depends_on", dec_strv(d, v, &s->depends_on, false));

	/* Backends key containers, logs and state on the uuid, and the
	 * runtime reports steps by name: neither can be missing. */
	if (s->name[0] == '\0')
		return fail(d, "step has no name");
	if (s->uuid[0] == '\0')
		return fail(d, "step has no uuid");

	e = perch_index_put(&d->wf->priv->uuids, s->uuid, &created);
	if (!created) {
		size_t mark = path_key(d, "uuid");
		char *q = quote(s->uuid);
		fail(d, "duplicate uuid %s (also pipeline[%zu].steps[%zu])", q, e->a, e->b);
		free(q);
		path_pop(d, mark);
		return false;
	}
	e->a = stage_i;
	e->b = step_i;
	return true;
}

static bool dec_steps(dec *d, json_object *v, perch_stage *st, size_t stage_i)
{
	const perch_step **steps;
	perch_step *arr;
	size_t n, i;
	if (v == NULL)
		return true;
	if (!expect(d, v, json_type_array, "an array"))
		return false;
	n = json_object_array_length(v);
	if (n == 0)
		return true;
	steps = perch_arena_array(d->arena, n, sizeof *steps);
	arr = perch_arena_array(d->arena, n, sizeof *arr);
	for (i = 0; i < n; i++) {
		size_t mark = path_index(d, i);
		json_object *o = json_object_array_get_idx(v, i);
		if (o != NULL && !expect(d, o, json_type_object, "an object"))
			return false;
		if (!dec_step(d, o, &arr[i], stage_i, i))
			return false;
		steps[i] = &arr[i];
		path_pop(d, mark);
	}
	st->steps = steps;
	st->n_steps = n;
	return true;
}

static bool dec_stage(dec *d, json_object *o, perch_stage *st, size_t stage_i)
{
	char *rel = NULL, *what = NULL;
	st->struct_size = sizeof *st;
	MEMBER(o, "steps", dec_steps(d, v, st, stage_i));
	if (!perch_workflow_check_stage(st, &rel, &what)) {
		size_t mark = d->path.len;
		perch_buf_puts(&d->path, rel);
		fail(d, "%s", what);
		path_pop(d, mark);
		free(rel);
		free(what);
		return false;
	}
	return true;
}

static bool dec_stages(dec *d, json_object *v, perch_config *c)
{
	const perch_stage **stages;
	perch_stage *arr;
	size_t n, i;
	c->stages = NULL;
	c->n_stages = 0;
	if (v == NULL)
		return true;
	if (!expect(d, v, json_type_array, "an array"))
		return false;
	n = json_object_array_length(v);
	stages = perch_arena_array(d->arena, n, sizeof *stages);
	arr = perch_arena_array(d->arena, n, sizeof *arr);
	for (i = 0; i < n; i++) {
		size_t mark = path_index(d, i);
		json_object *o = json_object_array_get_idx(v, i);
		if (o != NULL && !expect(d, o, json_type_object, "an object"))
			return false;
		if (!dec_stage(d, o, &arr[i], i))
			return false;
		stages[i] = &arr[i];
		path_pop(d, mark);
	}
	/* Non-NULL also for [], which Go writes back as [] rather than null. */
	c->stages = stages;
	c->n_stages = n;
	return true;
}

static bool dec_config(dec *d, json_object *root, perch_config *c)
{
	c->struct_size = sizeof *c;
	if (!json_object_is_type(root, json_type_object))
		return fail(d, "expected an object at the top level, got %s", type_name(root));
	MEMBER(root, "pipeline", dec_stages(d, v, c));
	MEMBER(root, "network", dec_string(d, v, &c->network));
	MEMBER(root, "volume", dec_string(d, v, &c->volume));
	MEMBER(root, "secrets", dec_secrets(d, v, c));
	return true;
}

bool perch_workflow_decode(perch_workflow *wf, json_object *root, const char *source,
			   char **err)
{
	dec d = {.wf = wf, .arena = &wf->priv->arena, .source = source};
	bool ok;
	perch_buf_reserve(&d.path, 128);
	d.path.data[0] = '\0';
	ok = dec_config(&d, root, &wf->config);
	perch_buf_free(&d.path);
	if (!ok)
		*err = d.err;
	return ok;
}
