/*
 * daemon_plugins.c - configuration generations and plugin versions.
 *
 * A generation is the configuration as of the start or of one reload: a
 * whole perch_app built from the daemon's own command line, so that the
 * config file, the environment and the command line resolve exactly as at
 * start.  Its plugin scan only says which plugins exist where; the daemon
 * then closes those handles and loads each plugin from a copy of its own,
 * <state_dir>/plugins/<name>-<n>.so: the dynamic loader caches objects by
 * path, so a changed file under the same name would otherwise come back as
 * the old object, and a file overwritten in place under a mapped object
 * would corrupt running code.
 *
 * A version is (re)loaded when its file changed (device, inode, size,
 * mtime) or its flags resolve differently; the version it replaces is
 * retired: new workflows go to the new one at once, running ones stay
 * (or are handed over, daemon_adopt.c), and it is unloaded when its last
 * run is joined, after which dlopen(RTLD_NOLOAD) must no longer find it.
 */
#include "config.h"

#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void perch_daemon_settings(perch_daemon *d, const perch_conf *c)
{
	d->max_workflows = c->max_workflows >= 1 ? c->max_workflows : PERCH_DAEMON_MAX_WORKFLOWS;
	d->max_queue = c->max_queue >= 0 ? c->max_queue : PERCH_DAEMON_MAX_QUEUE;
	d->shutdown_ms = c->shutdown_timeout_ms >= 0 ? c->shutdown_timeout_ms
						     : PERCH_DAEMON_SHUTDOWN_MS;
	d->adopt_grace_ms = c->adopt_grace_ms >= 0 ? c->adopt_grace_ms : PERCH_DAEMON_ADOPT_GRACE_MS;
	d->retention_count = -1;
	d->retention_ms = -1;
	if (c->retention_ms >= 0)
		d->retention_ms = c->retention_ms;
	else
		d->retention_count = c->retention_count >= 0 ? c->retention_count
							      : PERCH_DAEMON_RETENTION;
	d->swap_adopt = c->swap && strcmp(c->swap, "adopt") == 0;
}

char *perch_daemon_caps_json(const dversion *v)
{
	perch_buf b = {0};
	perch_buf_putc(&b, '[');
	if (v->p->discoverer)
		perch_buf_puts(&b, "\"" PERCH_CAP_WORKFLOW_DISCOVERER "\"");
	if (v->p->resumer)
		perch_buf_printf(&b, "%s\"" PERCH_CAP_WORKFLOW_RESUMER "\"",
				 v->p->discoverer ? "," : "");
	perch_buf_putc(&b, ']');
	return perch_buf_steal(&b);
}

/* The resolved values of a plugin's flags: a changed setting loads the
 * plugin anew, since plugins read their flags at load. */
static char *flags_sig(const perch_cli *cli, const char *plugin)
{
	perch_buf b = {0};
	for (size_t i = 0; i < cli->n; i++) {
		const perch_flagdef *f = &cli->defs[i];
		if (strcmp(f->owner, plugin) != 0)
			continue;
		perch_buf_printf(&b, "%s=", f->name);
		if (f->str)
			perch_buf_puts(&b, f->str);
		for (size_t k = 0; k < f->n_list; k++)
			perch_buf_printf(&b, "%s%s", k ? "," : "", f->list[k]);
		perch_buf_putc(&b, '\n');
	}
	if (b.data == NULL)
		perch_buf_puts(&b, "");
	return perch_buf_steal(&b);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Copies src to dst (mode 0700 via a temporary name); *st gets src's
 * identity as read. */
static int copy_file(const char *src, const char *dst, struct stat *st, char **err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0) {
		*err = perch_xasprintf("cannot read %s: %s", src, strerror(errno));
		return -1;
	}
	if (fstat(in, st) != 0) {
		*err = perch_xasprintf("cannot stat %s: %s", src, strerror(errno));
		close(in);
		return -1;
	}
	char *tmp = perch_xasprintf("%s.tmp", dst);
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
	int rc = -1;
	if (out < 0) {
		*err = perch_xasprintf("cannot create %s: %s", tmp, strerror(errno));
		goto done;
	}
	char buf[65536];
	for (;;) {
		ssize_t n = read(in, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = perch_xasprintf("cannot read %s: %s", src, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (perch_write_all(out, buf, (size_t)n) != 0) {
			*err = perch_xasprintf("cannot write %s: %s", tmp, strerror(errno));
			goto fail;
		}
	}
	if (close(out) != 0 || rename(tmp, dst) != 0) {
		out = -1;
		*err = perch_xasprintf("cannot create %s: %s", dst, strerror(errno));
		goto fail;
	}
	out = -1;
	rc = 0;
	goto done;
fail:
	if (out >= 0)
		close(out);
	unlink(tmp);
done:
	free(tmp);
	close(in);
	return rc;
}

static void version_free(dversion *v)
{
	if (v == NULL)
		return;
	free(v->name);
	free(v->origin);
	free(v->copy);
	free(v->flags_sig);
	free(v->unavailable_why);
	free(v->retired_why);
	free(v);
}

/* Loads a new version of the plugin scanned at origin (control thread, no
 * lock held).  NULL with *err when the copy cannot be opened or loaded. */
static dversion *version_new(perch_daemon *d, dgen *g, const perch_plugin *scanned, char **err)
{
	dversion *v = perch_xcalloc(1, sizeof *v);
	pthread_mutex_lock(&d->lock);
	v->number = ++d->next_version;
	pthread_mutex_unlock(&d->lock);
	v->name = perch_xstrdup(scanned->name);
	v->origin = perch_xstrdup(scanned->path);
	v->copy = perch_xasprintf("%s/%s-%u.so", perch_store_plugin_dir(d->store), v->name, v->number);
	v->flags_sig = flags_sig(g->app->cli, v->name);
	if (copy_file(v->origin, v->copy, &v->origin_st, err) != 0) {
		version_free(v);
		return NULL;
	}
	v->scratch = perch_cli_new();
	v->reg = perch_registry_new(v->scratch);
	v->reg->log_level = d->log_level;
	v->p = perch_registry_open(v->reg, v->copy);
	v->gen = g;
	if (v->p->error || v->p->name == NULL || strcmp(v->p->name, v->name) != 0) {
		*err = v->p->error ? perch_xasprintf("%s (copied from %s): %s", v->copy, v->origin,
						     v->p->error)
				   : perch_xasprintf("%s changed while it was copied", v->origin);
		goto fail;
	}
	if (!perch_plugin_available(v->p, g->app->root)) {
		v->available = false;
		v->unavailable_why = perch_xstrdup(v->p->unavailable_why);
	} else {
		char *e = NULL;
		if (perch_plugin_load(v->p, g->app->root, &e) != 0) {
			*err = e;
			goto fail;
		}
		v->available = true;
	}
	v->can_adopt = v->p->discoverer && v->p->resumer;
	return v;
fail:
	perch_registry_free(v->reg);
	perch_cli_free(v->scratch);
	unlink(v->copy);
	version_free(v);
	return NULL;
}

/* Unloads v (retired, unused) and checks that it is gone. */
static void version_unload(perch_daemon *d, dversion *v)
{
	const char *ver = v->p->entry ? v->p->entry->version : "?";
	char *label = perch_xasprintf("%s %s #%u", v->name, ver, v->number);
	bool pinned = perch_plugin_pinned(v->p);
	perch_registry_free(v->reg); /* unload, then close the handle */
	if (!pinned)
		perch_cli_free(v->scratch); /* the plugin may hold its flag values */
	bool mapped = perch_loader_is_mapped(v->copy);
	if (pinned)
		/* A call of it never returned (runtime.h, "stuck calls"). */
		perch_daemon_log(d, PERCH_LOG_WARN, "plugin %s: kept loaded for good: a call of it "
				 "never returned", label);
	else if (mapped)
		perch_daemon_log(d, PERCH_LOG_WARN, "plugin %s: still mapped after unloading (%s)",
				 label, v->copy);
	else
		perch_daemon_log(d, PERCH_LOG_INFO, "plugin %s unloaded (%s no longer mapped)", label,
				 v->copy);
	/* The file may go either way: a mapping keeps its inode alive. */
	unlink(v->copy);
	free(label);
}

dversion *perch_daemon_current(perch_daemon *d, const char *name)
{
	for (dversion *v = d->versions; v; v = v->next)
		if (!v->retired && strcmp(v->name, name) == 0)
			return v;
	return NULL;
}

dversion *perch_daemon_select(perch_daemon *d, const char *req, char **err)
{
	const char *name = req;
	if (name == NULL || *name == '\0')
		name = perch_app_string(d->gen->app, "backend");
	if (name && *name && strcmp(name, "auto-detect") != 0) {
		dversion *v = perch_daemon_current(d, name);
		if (v == NULL) {
			perch_buf b = {0};
			perch_buf_printf(&b, "backend \"%s\" not found (loaded:", name);
			bool any = false;
			for (dversion *o = d->versions; o; o = o->next)
				if (!o->retired) {
					perch_buf_printf(&b, "%s %s", any ? "," : "", o->name);
					any = true;
				}
			perch_buf_puts(&b, any ? ")" : " none)");
			*err = perch_buf_steal(&b);
			return NULL;
		}
		if (!v->available) {
			*err = perch_xasprintf("backend \"%s\" is not available: %s", name,
					       v->unavailable_why ? v->unavailable_why : "unknown");
			return NULL;
		}
		return v;
	}
	/* Auto-detect, as perch run does: the auto_detect list, else by
	 * priority (higher first), then by name. */
	const perch_conf *conf = d->gen->app->conf;
	dversion *best = NULL;
	if (conf->n_auto_detect) {
		for (size_t i = 0; i < conf->n_auto_detect && !best; i++) {
			dversion *v = perch_daemon_current(d, conf->auto_detect[i]);
			if (v && v->available)
				best = v;
		}
	} else {
		for (dversion *v = d->versions; v; v = v->next) {
			if (v->retired || !v->available)
				continue;
			int32_t pv = v->p->entry->priority, pb = best ? best->p->entry->priority : 0;
			if (best == NULL || pv > pb || (pv == pb && strcmp(v->name, best->name) < 0))
				best = v;
		}
	}
	if (best == NULL)
		*err = perch_xstrdup("auto-detect found no available backend (see perch status)");
	return best;
}

static void retire(perch_daemon *d, dversion *v, char *why)
{
	pthread_mutex_lock(&d->lock);
	v->retired = true;
	free(v->retired_why);
	v->retired_why = why;
	pthread_mutex_unlock(&d->lock);
	perch_daemon_log(d, PERCH_LOG_INFO, "plugin %s #%u retired: %s (%u workflow%s still on it)",
			 v->name, v->number, why, v->refs, v->refs == 1 ? "" : "s");
}

static void json_item(perch_buf *b, const char *name, const char *version, unsigned number,
		      const char *extra)
{
	if (b == NULL)
		return;
	if (b->len)
		perch_buf_putc(b, ',');
	perch_buf_puts(b, "{\"name\":");
	perch_json_str(b, name);
	perch_buf_puts(b, ",\"version\":");
	perch_json_str(b, version);
	perch_buf_printf(b, ",\"number\":%u", number);
	if (extra) {
		perch_buf_puts(b, ",\"why\":");
		perch_json_str(b, extra);
	}
	perch_buf_putc(b, '}');
}

static void warn(perch_daemon *d, perch_buf *warnings, char *msg)
{
	perch_daemon_log(d, PERCH_LOG_WARN, "%s", msg);
	if (warnings) {
		if (warnings->len)
			perch_buf_putc(warnings, ',');
		perch_json_str(warnings, msg);
	}
	free(msg);
}

void perch_daemon_sync_plugins(perch_daemon *d, perch_buf *loaded, perch_buf *retired,
			       perch_buf *warnings)
{
	dgen *g = d->gen;
	perch_registry *scan = g->app->reg;
	for (size_t i = 0; i < scan->n; i++) {
		const perch_plugin *sp = scan->plugins[i];
		struct stat st;
		if (stat(sp->path, &st) != 0)
			continue; /* gone since the scan: handled as removed below */
		pthread_mutex_lock(&d->lock);
		dversion *cur = perch_daemon_current(d, sp->name);
		pthread_mutex_unlock(&d->lock);
		char *sig = flags_sig(g->app->cli, sp->name);
		bool same = cur && strcmp(cur->origin, sp->path) == 0 && same_file(&cur->origin_st, &st) &&
			    strcmp(cur->flags_sig, sig) == 0;
		free(sig);
		if (same)
			continue;
		char *err = NULL;
		dversion *v = version_new(d, g, sp, &err);
		if (v == NULL) {
			warn(d, warnings, perch_xasprintf("plugin %s: new version not loaded%s: %s",
							  sp->name, cur ? " (the old one stays)" : "",
							  err));
			free(err);
			continue;
		}
		pthread_mutex_lock(&d->lock);
		g->refs++;
		v->next = d->versions;
		d->versions = v;
		pthread_mutex_unlock(&d->lock);
		perch_daemon_log(d, PERCH_LOG_INFO, "plugin %s %s #%u loaded from %s%s%s", v->name,
				 v->p->entry->version, v->number, v->origin,
				 v->available ? "" : "; not available: ",
				 v->available ? "" : v->unavailable_why);
		json_item(loaded, v->name, v->p->entry->version, v->number, NULL);
		if (cur) {
			char *why = perch_xasprintf("replaced by #%u", v->number);
			json_item(retired, cur->name, cur->p->entry ? cur->p->entry->version : NULL,
				  cur->number, why);
			retire(d, cur, why);
		}
	}
	/* Plugins that are gone.  A file that is now refused (a broken
	 * build, or one caught mid-copy) keeps its old version. */
	for (dversion *v = d->versions; v; v = v->next) {
		if (v->retired || perch_registry_find(scan, v->name))
			continue;
		const char *refused = NULL;
		for (size_t i = 0; i < scan->n_refused; i++)
			if (strcmp(scan->refused[i]->path, v->origin) == 0)
				refused = scan->refused[i]->error;
		if (refused) {
			warn(d, warnings, perch_xasprintf("plugin %s: %s is refused now (%s); version "
							  "#%u stays", v->name, v->origin, refused,
							  v->number));
			continue;
		}
		char *why = perch_xasprintf("%s is gone", v->origin);
		json_item(retired, v->name, v->p->entry ? v->p->entry->version : NULL, v->number, why);
		retire(d, v, why);
	}
	for (size_t i = 0; i < scan->n_refused; i++) {
		bool known = false;
		for (dversion *v = d->versions; v; v = v->next)
			known |= strcmp(v->origin, scan->refused[i]->path) == 0;
		/* A shadowed file is the normal way to override a plugin. */
		if (!known && warnings && strncmp(scan->refused[i]->error, "shadowed:", 9) != 0)
			warn(d, warnings, perch_xasprintf("refused plugin %s: %s",
							  scan->refused[i]->path,
							  scan->refused[i]->error));
	}
	/* The scan's own handles are not used: drop them (and the mappings
	 * of the original files). */
	perch_registry_release(scan);
}

static void gen_free(dgen *g)
{
	if (g->owned) {
		perch_app_free(g->app);
		free(g->app);
	}
	free(g);
}

void perch_daemon_collect(perch_daemon *d)
{
	for (;;) {
		dversion *v = NULL;
		pthread_mutex_lock(&d->lock);
		for (dversion **pp = &d->versions; *pp; pp = &(*pp)->next)
			if ((*pp)->retired && (*pp)->refs == 0) {
				v = *pp;
				*pp = v->next;
				break;
			}
		pthread_mutex_unlock(&d->lock);
		if (v == NULL)
			break;
		version_unload(d, v);
		pthread_mutex_lock(&d->lock);
		v->gen->refs--;
		pthread_mutex_unlock(&d->lock);
		version_free(v);
	}
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->n_old_gens;) {
		dgen *g = d->old_gens[i];
		if (g->refs == 0) {
			d->old_gens[i] = d->old_gens[--d->n_old_gens];
			pthread_mutex_unlock(&d->lock);
			gen_free(g);
			pthread_mutex_lock(&d->lock);
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

void perch_daemon_free_plugins(perch_daemon *d, bool force)
{
	pthread_mutex_lock(&d->lock);
	for (dversion *v = d->versions; v; v = v->next)
		if (force || v->refs == 0)
			v->retired = true;
	pthread_mutex_unlock(&d->lock);
	perch_daemon_collect(d);
	pthread_mutex_lock(&d->lock);
	if (d->gen && (d->versions == NULL || force)) {
		dgen *g = d->gen;
		d->gen = NULL;
		g->refs--;
		if (g->refs == 0) {
			pthread_mutex_unlock(&d->lock);
			gen_free(g);
			pthread_mutex_lock(&d->lock);
		} else {
			d->old_gens = perch_xrealloc(d->old_gens,
						     (d->n_old_gens + 1) * sizeof *d->old_gens);
			d->old_gens[d->n_old_gens++] = g;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

/* The --config argument of the daemon's command line, as perch_app_init
 * finds it. */
static const char *config_arg(const perch_app *app)
{
	const char *path = NULL;
	for (int i = 1; i < app->argc; i++) {
		if (strcmp(app->argv[i], "--") == 0)
			break;
		if (strcmp(app->argv[i], "--config") == 0 && i + 1 < app->argc)
			path = app->argv[++i];
		else if (strncmp(app->argv[i], "--config=", 9) == 0)
			path = app->argv[i] + 9;
	}
	return path;
}

static char *refusal(const char *code, const char *detail)
{
	char *msg = perch_xasprintf("reload refused, the old configuration stays in force: %s",
				    detail);
	perch_buf b = {0};
	perch_buf_printf(&b, "{\"ok\":false,\"code\":\"%s\",\"error\":", code);
	perch_json_str(&b, msg);
	perch_buf_putc(&b, '}');
	free(msg);
	return perch_buf_steal(&b);
}

char *perch_daemon_reload(perch_daemon *d)
{
	int64_t t0 = perch_mono_ns();
	char *err = NULL;
	/* The file first, for a precise file:line: a broken one changes
	 * nothing. */
	perch_conf *check = perch_conf_open(config_arg(d->app), &err);
	if (check == NULL) {
		perch_daemon_log(d, PERCH_LOG_ERROR, "reload refused, the old configuration stays: %s",
				 err);
		char *r = refusal("invalid", err);
		free(err);
		return r;
	}
	perch_conf_free(check);
	perch_app *app = perch_xcalloc(1, sizeof *app);
	int rc = perch_app_init(app, d->app->argc, d->app->argv);
	if (rc != PERCH_EXIT_OK) {
		perch_app_free(app);
		free(app);
		perch_daemon_log(d, PERCH_LOG_ERROR, "reload refused, the old configuration stays "
						     "(the reason is above)");
		return refusal("invalid", "the new settings do not resolve (see the daemon's log)");
	}
	dgen *g = perch_xcalloc(1, sizeof *g);
	g->app = app;
	g->owned = true;
	g->refs = 1;
	perch_buf warnings = {0}, loaded = {0}, retired = {0}, handed = {0};
	pthread_mutex_lock(&d->lock);
	g->number = ++d->next_gen;
	dgen *old = d->gen;
	d->gen = g;
	old->refs--;
	d->old_gens = perch_xrealloc(d->old_gens, (d->n_old_gens + 1) * sizeof *d->old_gens);
	d->old_gens[d->n_old_gens++] = old;
	perch_daemon_settings(d, app->conf);
	pthread_mutex_unlock(&d->lock);
	const char *sock = app->conf->control_socket;
	if (sock && !perch_app_is_set(app, "socket") && strcmp(sock, d->socket_path) != 0)
		warn(d, &warnings, perch_xasprintf("control_socket changed to %s: it takes effect "
						   "at the next start", sock));
	const char *sd = app->conf->state_dir;
	if (sd && strcmp(sd, perch_store_dir(d->store)) != 0)
		warn(d, &warnings, perch_xasprintf("state_dir changed to %s: it takes effect at the "
						   "next start", sd));
	perch_daemon_sync_plugins(d, &loaded, &retired, &warnings);
	if (d->swap_adopt)
		perch_daemon_handover(d, &handed);
	pthread_mutex_lock(&d->lock);
	perch_daemon_schedule(d);
	pthread_mutex_unlock(&d->lock);
	perch_daemon_collect(d);
	int64_t ms = (perch_mono_ns() - t0) / 1000000;
	perch_daemon_log(d, PERCH_LOG_INFO, "reloaded %s as generation %u in %lld ms",
			 app->conf->path ? app->conf->path : "(no config file)", g->number,
			 (long long)ms);
	perch_buf b = {0};
	perch_buf_printf(&b, "{\"ok\":true,\"generation\":%u,\"duration_ms\":%lld,\"config\":",
			 g->number, (long long)ms);
	perch_json_str(&b, app->conf->path);
	perch_buf_printf(&b, ",\"loaded\":[%s],\"retired\":[%s],\"handed_over\":[%s],"
			     "\"warnings\":[%s]}",
			 loaded.data ? loaded.data : "", retired.data ? retired.data : "",
			 handed.data ? handed.data : "", warnings.data ? warnings.data : "");
	perch_buf_free(&warnings);
	perch_buf_free(&loaded);
	perch_buf_free(&retired);
	perch_buf_free(&handed);
	return perch_buf_steal(&b);
}
