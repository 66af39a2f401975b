/* cmd_backends.c - `perch backends [--json]`. */
#include "config.h"

#include "app.h"
#include "util.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Asks availability and, for available plugins, loads them for their
 * platform and capabilities, then unloads. */
static void probe(perch_app *app, perch_plugin *p)
{
	if (!perch_plugin_available(p, app->root))
		return;
	char *err = NULL;
	if (perch_plugin_load(p, app->root, &err) != 0)
		free(err); /* kept in p->load_error */
}

static const char *abi_string(const perch_plugin *p, char *buf, size_t n)
{
	snprintf(buf, n, "%u.%u", p->entry->abi_major, p->entry->abi_minor);
	return buf;
}

static json_object *flags_json(const perch_app *app, const char *owner)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; i < app->cli->n; i++) {
		const perch_flagdef *d = &app->cli->defs[i];
		if (strcmp(d->owner, owner) != 0)
			continue;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(d->name));
		json_object_object_add(o, "kind", json_object_new_string(perch_flag_kind_name(d->kind)));
		json_object *env = json_object_new_array();
		for (size_t e = 0; e < d->n_env; e++)
			json_object_array_add(env, json_object_new_string(d->env[e]));
		json_object_object_add(o, "env", env);
		json_object_object_add(o, "config", d->config_key ? json_object_new_string(d->config_key) : NULL);
		json_object_object_add(o, "default", d->default_value ? json_object_new_string(d->default_value) : NULL);
		json_object_object_add(o, "usage", json_object_new_string(d->usage));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *caps_json(const perch_plugin *p)
{
	json_object *arr = json_object_new_array();
	if (p->discoverer)
		json_object_array_add(arr, json_object_new_string(PERCH_CAP_WORKFLOW_DISCOVERER));
	if (p->resumer)
		json_object_array_add(arr, json_object_new_string(PERCH_CAP_WORKFLOW_RESUMER));
	return arr;
}

static int print_json(perch_app *app)
{
	json_object *arr = json_object_new_array();
	char abi[32];
	for (size_t i = 0; i < app->reg->n; i++) {
		perch_plugin *p = app->reg->plugins[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "version", json_object_new_string(p->entry->version));
		json_object_object_add(o, "abi", json_object_new_string(abi_string(p, abi, sizeof abi)));
		json_object_object_add(o, "path", json_object_new_string(p->path));
		json_object_object_add(o, "description",
				       p->entry->description ? json_object_new_string(p->entry->description) : NULL);
		json_object_object_add(o, "priority", json_object_new_int(p->entry->priority));
		json_object_object_add(o, "available", json_object_new_boolean(p->available == 1));
		if (p->available != 1)
			json_object_object_add(o, "unavailable_reason",
					       json_object_new_string(p->unavailable_why));
		json_object_object_add(o, "loaded", json_object_new_boolean(p->loaded));
		json_object_object_add(o, "platform", p->loaded ? json_object_new_string(p->info.platform) : NULL);
		json_object_object_add(o, "capabilities", caps_json(p));
		json_object_object_add(o, "flags", flags_json(app, p->name));
		json_object_object_add(o, "error", p->load_error ? json_object_new_string(p->load_error) : NULL);
		json_object_array_add(arr, o);
	}
	for (size_t i = 0; i < app->reg->n_refused; i++) {
		const perch_plugin *p = app->reg->refused[i];
		json_object *o = json_object_new_object();
		json_object_object_add(o, "name", p->name ? json_object_new_string(p->name) : NULL);
		json_object_object_add(o, "version", NULL);
		json_object_object_add(o, "abi", NULL);
		json_object_object_add(o, "path", json_object_new_string(p->path));
		json_object_object_add(o, "available", json_object_new_boolean(0));
		json_object_object_add(o, "capabilities", json_object_new_array());
		json_object_object_add(o, "flags", json_object_new_array());
		json_object_object_add(o, "error", json_object_new_string(p->error));
		json_object_array_add(arr, o);
	}
	puts(json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	return PERCH_EXIT_OK;
}

static int print_text(perch_app *app)
{
	char abi[32];
	for (size_t i = 0; i < app->reg->n; i++) {
		perch_plugin *p = app->reg->plugins[i];
		printf("%s %s (ABI %s)\n", p->name, p->entry->version, abi_string(p, abi, sizeof abi));
		printf("  path:         %s\n", p->path);
		if (p->entry->description)
			printf("  description:  %s\n", p->entry->description);
		if (p->available == 1)
			printf("  available:    yes\n");
		else
			printf("  available:    no (%s)\n", p->unavailable_why);
		if (p->loaded)
			printf("  platform:     %s\n", p->info.platform);
		if (p->load_error)
			printf("  load error:   %s\n", p->load_error);
		printf("  capabilities: %s%s%s\n",
		       p->discoverer ? PERCH_CAP_WORKFLOW_DISCOVERER : "",
		       p->discoverer && p->resumer ? ", " : "",
		       p->resumer ? PERCH_CAP_WORKFLOW_RESUMER
				  : (p->discoverer ? "" : (p->loaded ? "none" : "unknown (not loaded)")));
		bool any = false;
		for (size_t k = 0; k < app->cli->n; k++) {
			const perch_flagdef *d = &app->cli->defs[k];
			if (strcmp(d->owner, p->name) != 0)
				continue;
			if (!any)
				printf("  flags:\n");
			any = true;
			printf("    --%s (%s%s%s)  %s\n", d->name, perch_flag_kind_name(d->kind),
			       d->default_value && *d->default_value ? ", default " : "",
			       d->default_value ? d->default_value : "", d->usage);
		}
		if (!any)
			printf("  flags:        none\n");
	}
	if (app->reg->n == 0)
		printf("no backend plugins found\n");
	for (size_t i = 0; i < app->reg->n_refused; i++)
		printf("refused %s: %s\n", app->reg->refused[i]->path, app->reg->refused[i]->error);
	printf("searched: ");
	for (size_t i = 0; i < app->reg->n_dirs; i++)
		printf("%s%s", i ? ":" : "", app->reg->dirs[i]);
	printf("\n");
	return PERCH_EXIT_OK;
}

int perch_cmd_backends(perch_app *app)
{
	if (app->n_args) {
		fprintf(stderr, "perch: backends takes no arguments (got \"%s\")\n", app->args[0]);
		return PERCH_EXIT_USAGE;
	}
	for (size_t i = 0; i < app->reg->n; i++)
		probe(app, app->reg->plugins[i]);
	int rc = perch_app_bool(app, "json") ? print_json(app) : print_text(app);
	for (size_t i = 0; i < app->reg->n; i++)
		perch_plugin_unload(app->reg->plugins[i]);
	if (fflush(stdout) != 0) {
		perror("perch: standard output");
		return PERCH_EXIT_BACKEND;
	}
	return rc;
}
