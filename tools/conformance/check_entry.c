/*
 * check_entry.c - the checks that need no workflow: the entry object and
 * its versions, the exported symbols, the flags, availability, load with
 * and without the CLI context, and capability lookup.
 *
 * The loader has validated the entry already (ABI major, struct_size, name,
 * version, required calls, flag declarations); these checks add what the
 * loader tolerates but the contract asks for.
 */
#include "config.h"

#include "conformance.h"
#include "util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool one_line(const char *s)
{
	return strchr(s, '\n') == NULL && strchr(s, '\r') == NULL;
}

/* entry (parent): the loader accepted it; what it says about itself. */
void perch_cf_check_entry(perch_cf_run *run, perch_cf_verdict *v)
{
	const perch_backend *e = run->plugin->entry;
	fprintf(stderr, "perch-conformance: %s %s, built for ABI %u.%u (this host: %d.%d), "
		"priority %d, entry size %u\n",
		e->name, e->version, e->abi_major, e->abi_minor, PERCH_ABI_MAJOR, PERCH_ABI_MINOR,
		e->priority, e->struct_size);
	if (e->description != NULL && !one_line(e->description))
		perch_cf_fail(v, "the description must be one line (it is printed in 'perch backends')");
	else if (!one_line(e->version))
		perch_cf_fail(v, "the version must be one line");
}

/* exports (parent): perch_backend_v1 and nothing else. */
void perch_cf_check_exports(perch_cf_run *run, perch_cf_verdict *v)
{
	/* Symbols every linker defines in a shared object. */
	static const char *const linker[] = {"_init", "_fini", "_edata", "_end", "__bss_start",
					     NULL};
	char **names = NULL, *err = NULL;
	size_t n = 0;
	if (perch_cf_elf_exports(run->opts->plugin_path, &names, &n, &err) != 0) {
		perch_cf_skip_because(v, "cannot read the symbol table: %s", err);
		free(err);
		return;
	}
	perch_buf extra = {0};
	size_t n_extra = 0;
	bool entry = false;
	for (size_t i = 0; i < n; i++) {
		bool known = strcmp(names[i], PERCH_BACKEND_SYMBOL) == 0;
		entry = entry || known;
		for (size_t k = 0; linker[k] && !known; k++)
			known = strcmp(names[i], linker[k]) == 0;
		if (!known) {
			if (n_extra < 5)
				perch_buf_printf(&extra, "%s%s", n_extra ? ", " : "", names[i]);
			n_extra++;
		}
		free(names[i]);
	}
	free(names);
	if (!entry)
		perch_cf_fail(v, "%s is not in the dynamic symbol table", PERCH_BACKEND_SYMBOL);
	else if (n_extra)
		perch_cf_fail(v, "exports %zu symbol%s besides %s (%s%s): build with "
			      "-fvisibility=hidden so that plugins never bind to each other",
			      n_extra, n_extra == 1 ? "" : "s", PERCH_BACKEND_SYMBOL, extra.data,
			      n_extra > 5 ? ", ..." : "");
	perch_buf_free(&extra);
}

static bool env_name_ok(const char *s)
{
	if (!(isupper((unsigned char)*s) || *s == '_'))
		return false;
	for (; *s; s++)
		if (!(isupper((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_'))
			return false;
	return true;
}

/* flags (parent): what --help and the environment need of them. */
void perch_cf_check_flags(perch_cf_run *run, perch_cf_verdict *v)
{
	const perch_backend *e = run->plugin->entry;
	size_t count = 0;
	if (e->flags == NULL) {
		fprintf(stderr, "perch-conformance: the plugin declares no flags\n");
		return;
	}
	for (const perch_flag *const *f = e->flags; *f; f++, count++) {
		const perch_flag *fl = *f;
		if (fl->usage == NULL || *fl->usage == '\0') {
			perch_cf_fail(v, "flag --%s has no usage text (perch --help prints it)", fl->name);
			return;
		}
		if (!one_line(fl->usage)) {
			perch_cf_fail(v, "the usage of flag --%s must be one line", fl->name);
			return;
		}
		for (const char *const *env = fl->env; env && *env; env++) {
			if (!env_name_ok(*env)) {
				perch_cf_fail(v, "flag --%s: \"%s\" is not an environment variable name "
					      "([A-Z_][A-Z0-9_]*)", fl->name, *env);
				return;
			}
			/* A variable that feeds two flags sets both by surprise. */
			for (const perch_flag *const *g = e->flags; g != f; g++)
				for (const char *const *o = (*g)->env; o && *o; o++)
					if (strcmp(*o, *env) == 0) {
						perch_cf_fail(v, "environment variable %s feeds both "
							      "--%s and --%s", *env, (*g)->name,
							      fl->name);
						return;
					}
		}
		const perch_flagdef *d = perch_cli_find(run->cli, fl->name);
		if (d != NULL)
			fprintf(stderr, "perch-conformance: --%s = \"%s\" (%s)\n", fl->name,
				d->str ? d->str : "", d->where ? d->where : "unset");
	}
	if (count == 0)
		fprintf(stderr, "perch-conformance: the plugin declares no flags\n");
}

/* available: is_available answers, and answers the same twice. */
void perch_cf_check_available(perch_cf_run *run, perch_cf_verdict *v)
{
	perch_error why1 = perch_cf_error(), why2 = perch_cf_error();
	bool a1 = perch_cf_call_available(run, run->root, &why1);
	bool a2 = perch_cf_call_available(run, run->root, &why2);
	if (a1 != a2) {
		perch_cf_fail(v, "is_available answered %s, then %s (it must be side-effect free)",
			      a1 ? "true" : "false", a2 ? "true" : "false");
		return;
	}
	if (!a1) {
		if (why1.message[0] == '\0')
			perch_cf_fail(v, "not available here, and is_available gave no reason (fill why)");
		else
			perch_cf_fail(v, "not available here: %s (the remaining checks need an "
				      "available backend)", why1.message);
	}
}

/* load: with the CLI context; then a second instance after unload. */
void perch_cf_check_load(perch_cf_run *run, perch_cf_verdict *v)
{
	if (!perch_cf_load(run, v))
		return;
	const perch_plugin *p = run->plugin;
	fprintf(stderr, "perch-conformance: loaded: platform \"%s\"\n", p->info.platform);
	if (p->info.platform[0] == '\0')
		perch_cf_fail(v, "load left the platform in perch_backend_info empty "
			      "(\"<os>/<arch>\", e.g. linux/amd64)");
	perch_cf_call_unload(run);
	/* A host reloads: the same plugin, a fresh instance. */
	char *err = NULL;
	if (perch_cf_call_load(run, run->root, &err) != 0) {
		perch_cf_fail(v, "a second load after unload failed: %s", err);
		free(err);
		return;
	}
	perch_cf_call_unload(run);
}

/* load-without-cli: either it loads, or it fails with exactly the seed's
 * error. */
void perch_cf_check_load_without_cli(perch_cf_run *run, perch_cf_verdict *v)
{
	const perch_backend *e = run->plugin->entry;
	perch_ctx *bare = perch_ctx_new(NULL);
	perch_backend_info info;
	memset(&info, 0, sizeof info);
	info.struct_size = sizeof info;
	perch_instance *inst = NULL;
	perch_error err = perch_cf_error();
	int w = perch_cf_watch_begin(run, run->opts->call_timeout_ms,
				     "load without a CLI context did not return within %ld s",
				     (long)(run->opts->call_timeout_ms / 1000));
	perch_status st = e->load(&run->plugin->table, bare, &inst, &info, &err);
	perch_cf_watch_end(run, w);
	if (st == PERCH_OK) {
		w = perch_cf_watch_begin(run, run->opts->call_timeout_ms,
					 "unload did not return within %ld s",
					 (long)(run->opts->call_timeout_ms / 1000));
		e->unload(inst);
		perch_cf_watch_end(run, w);
	} else if (st != PERCH_ERR_NO_CLI_CONTEXT) {
		perch_cf_fail(v, "load without a CLI context failed with %s; expected success or "
			      "no-cli-context \"%s\"", perch_cf_why(st, &err), PERCH_NO_CLI_CONTEXT_MESSAGE);
	} else if (strcmp(err.message, PERCH_NO_CLI_CONTEXT_MESSAGE) != 0) {
		perch_cf_fail(v, "load without a CLI context returned no-cli-context with \"%s\"; the "
			      "message must be exactly \"%s\" (use perch_ctx_cli())",
			      err.message, PERCH_NO_CLI_CONTEXT_MESSAGE);
	}
	perch_ctx_free(bare);
}

/* capabilities: unknown ids answer NULL, offered tables are well-formed. */
void perch_cf_check_capabilities(perch_cf_run *run, perch_cf_verdict *v)
{
	if (!perch_cf_load(run, v))
		return;
	const perch_backend *e = run->plugin->entry;
	perch_instance *inst = run->plugin->inst;
	if (e->get_capability == NULL) {
		fprintf(stderr, "perch-conformance: capabilities: none (no get_capability)\n");
		goto out;
	}
	static const char *const unknown[] = {"org.perch.conformance.no-such-capability/1",
					      "perch.workflow-discoverer/999", ""};
	for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
		int w = perch_cf_watch_begin(run, run->opts->call_timeout_ms,
					     "get_capability did not return within %ld s",
					     (long)(run->opts->call_timeout_ms / 1000));
		const void *t = e->get_capability(inst, unknown[i]);
		perch_cf_watch_end(run, w);
		if (t != NULL) {
			perch_cf_fail(v, "get_capability(\"%s\") returned a table for an id it cannot "
				      "know", unknown[i]);
			goto out;
		}
	}
	static const struct {
		const char *id;
		size_t size, fn;
	} known[] = {
		{PERCH_CAP_WORKFLOW_DISCOVERER, sizeof(perch_workflow_discoverer_v1),
		 offsetof(perch_workflow_discoverer_v1, discover_workflows)},
		{PERCH_CAP_WORKFLOW_RESUMER, sizeof(perch_workflow_resumer_v1),
		 offsetof(perch_workflow_resumer_v1, resume_step)},
	};
	perch_buf offered = {0};
	for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
		int w = perch_cf_watch_begin(run, run->opts->call_timeout_ms,
					     "get_capability did not return within %ld s",
					     (long)(run->opts->call_timeout_ms / 1000));
		const uint32_t *t = e->get_capability(inst, known[i].id);
		perch_cf_watch_end(run, w);
		if (t == NULL)
			continue;
		void *fn = NULL;
		if (*t < known[i].size) {
			perch_cf_fail(v, "the %s table has struct_size %u, smaller than its v1 size %zu",
				      known[i].id, *t, known[i].size);
			break;
		}
		memcpy(&fn, (const char *)t + known[i].fn, sizeof fn);
		if (fn == NULL) {
			perch_cf_fail(v, "the %s table has no function", known[i].id);
			break;
		}
		perch_buf_printf(&offered, "%s%s", offered.len ? ", " : "", known[i].id);
	}
	fprintf(stderr, "perch-conformance: capabilities: %s\n",
		offered.len ? offered.data : "none");
	perch_buf_free(&offered);
out:
	perch_cf_call_unload(run);
}
