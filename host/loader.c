/* loader.c - see loader.h. */
#include "config.h"

#include "loader.h"
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * libltdl keeps process-global state (its handle list, lt_dlerror) and is
 * not thread-safe; its manual asks callers to lock around every call.  This
 * lock is the one piece of global mutable state in the loader, and it exists
 * because the library's state is global already.
 */
static pthread_mutex_t ltdl_lock = PTHREAD_MUTEX_INITIALIZER;

/* The v1.0 size of the entry: what every v1 plugin provides at least. */
#define ENTRY_V1_0_SIZE (offsetof(perch_backend, get_capability) + sizeof(void *))

perch_registry *perch_registry_new(perch_cli *cli)
{
	perch_registry *reg = perch_xcalloc(1, sizeof *reg);
	reg->cli = cli;
	reg->log_level = PERCH_LOG_INFO;
	pthread_mutex_lock(&ltdl_lock);
	lt_dlinit(); /* reference-counted by libltdl */
	pthread_mutex_unlock(&ltdl_lock);
	return reg;
}

void perch_plugin_pin(perch_plugin *p) { atomic_store(&p->pinned, true); }

bool perch_plugin_pinned(const perch_plugin *p)
{
	return atomic_load((atomic_bool *)&p->pinned);
}

static void close_handle(perch_plugin *p)
{
	if (p->handle && !perch_plugin_pinned(p)) {
		pthread_mutex_lock(&ltdl_lock);
		lt_dlclose((lt_dlhandle)p->handle);
		pthread_mutex_unlock(&ltdl_lock);
		p->handle = NULL;
		p->entry = NULL;
	}
}

static void plugin_free(perch_plugin *p)
{
	if (p == NULL)
		return;
	perch_plugin_unload(p);
	close_handle(p);
	free(p->path);
	free(p->name);
	free(p->error);
	free(p->unavailable_why);
	free(p->load_error);
	free(p);
}

void perch_registry_free(perch_registry *reg)
{
	if (reg == NULL)
		return;
	/* A pinned plugin keeps everything it may reach: its perch_plugin
	 * (which holds its host table), the registry (which the table's
	 * functions read) and libltdl (whose last lt_dlexit would close it). */
	bool pinned = false;
	for (size_t i = 0; i < reg->n; i++) {
		if (perch_plugin_pinned(reg->plugins[i]))
			pinned = true;
		else
			plugin_free(reg->plugins[i]);
	}
	for (size_t i = 0; i < reg->n_refused; i++)
		plugin_free(reg->refused[i]);
	reg->n_refused = 0;
	if (pinned)
		return;
	free(reg->plugins);
	free(reg->refused);
	for (size_t i = 0; i < reg->n_dirs; i++)
		free(reg->dirs[i]);
	free(reg->dirs);
	pthread_mutex_lock(&ltdl_lock);
	lt_dlexit();
	pthread_mutex_unlock(&ltdl_lock);
	free(reg);
}

void perch_registry_release(perch_registry *reg)
{
	for (size_t i = 0; i < reg->n; i++) {
		perch_plugin_unload(reg->plugins[i]);
		close_handle(reg->plugins[i]);
	}
	for (size_t i = 0; i < reg->n_refused; i++)
		close_handle(reg->refused[i]);
}

bool perch_loader_is_mapped(const char *path)
{
	pthread_mutex_lock(&ltdl_lock);
	void *h = dlopen(path, RTLD_LAZY | RTLD_LOCAL | RTLD_NOLOAD);
	if (h)
		dlclose(h); /* NOLOAD took a reference: give it back */
	pthread_mutex_unlock(&ltdl_lock);
	return h != NULL;
}

void perch_registry_add_dir(perch_registry *reg, const char *dir)
{
	if (dir == NULL || *dir == '\0')
		return;
	for (size_t i = 0; i < reg->n_dirs; i++)
		if (strcmp(reg->dirs[i], dir) == 0)
			return;
	reg->dirs = perch_xrealloc(reg->dirs, (reg->n_dirs + 1) * sizeof *reg->dirs);
	reg->dirs[reg->n_dirs++] = perch_xstrdup(dir);
}

char *perch_installed_plugindir(void)
{
	/* A DESTDIR install puts perch at <destdir>$(bindir)/perch; find the
	 * plugins at <destdir>$(pkglibdir)/plugins, so that a staged install
	 * works exactly like a real one. */
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		const char *suffix = PERCH_BINDIR "/perch";
		size_t sl = strlen(suffix), el = (size_t)n;
		if (el > sl && strcmp(exe + el - sl, suffix) == 0) {
			exe[el - sl] = '\0';
			return perch_xasprintf("%s%s", exe, PERCH_PLUGINDIR);
		}
	}
	return perch_xstrdup(PERCH_PLUGINDIR);
}

void perch_registry_default_dirs(perch_registry *reg, const perch_conf *conf)
{
	for (size_t i = 0; conf && i < conf->n_plugin_path; i++)
		perch_registry_add_dir(reg, conf->plugin_path[i]);
	const char *env = getenv("PERCH_PLUGIN_PATH");
	if (env) {
		char *copy = perch_xstrdup(env), *save = NULL;
		for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
			perch_registry_add_dir(reg, d);
		free(copy);
	}
	char *inst = perch_installed_plugindir();
	perch_registry_add_dir(reg, inst);
	free(inst);
}

static void push(perch_plugin ***arr, size_t *n, perch_plugin *p)
{
	*arr = perch_xrealloc(*arr, (*n + 1) * sizeof **arr);
	(*arr)[(*n)++] = p;
}

static bool valid_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

/* Why an entry object is not usable, or NULL. */
static char *check_entry(const perch_backend *e)
{
	if (e->struct_size < 3 * sizeof(uint32_t))
		return perch_xasprintf("entry is truncated (struct_size %u)", e->struct_size);
	if (e->abi_major != PERCH_ABI_MAJOR)
		return perch_xasprintf("built for perch ABI %u.%u; this perch speaks ABI %d",
				       e->abi_major, e->abi_minor, PERCH_ABI_MAJOR);
	if (e->struct_size < ENTRY_V1_0_SIZE)
		return perch_xasprintf("entry struct_size %u is smaller than the ABI 1.0 size %zu",
				       e->struct_size, (size_t)ENTRY_V1_0_SIZE);
	if (e->name == NULL || *e->name == '\0')
		return perch_xstrdup("entry has no name");
	if (!valid_name(e->name))
		return perch_xasprintf("entry name \"%s\" is not made of [a-z0-9_-]", e->name);
	if (e->version == NULL || *e->version == '\0')
		return perch_xstrdup("entry has no version");
	static const struct {
		const char *name;
		size_t off;
	} required[] = {
#define REQ(f) {#f, offsetof(perch_backend, f)}
		REQ(is_available), REQ(load), REQ(setup_workflow), REQ(start_step),
		REQ(tail_step), REQ(wait_step), REQ(destroy_step), REQ(destroy_workflow),
		REQ(unload),
#undef REQ
	};
	for (size_t i = 0; i < sizeof required / sizeof *required; i++) {
		void *fn;
		memcpy(&fn, (const char *)e + required[i].off, sizeof fn);
		if (fn == NULL)
			return perch_xasprintf("required call %s is missing", required[i].name);
	}
	return NULL;
}

static perch_plugin *refuse(perch_registry *reg, perch_plugin *p, char *why)
{
	p->error = why;
	close_handle(p);
	push(&reg->refused, &reg->n_refused, p);
	return p;
}

perch_plugin *perch_registry_open(perch_registry *reg, const char *path)
{
	perch_plugin *p = perch_xcalloc(1, sizeof *p);
	p->path = perch_xstrdup(path);
	p->reg = reg;
	p->available = -1;

	/* Open once with eager binding first: libltdl binds lazily, and glibc
	 * does not re-bind an object that is already open, so this is the only
	 * way to turn an undefined symbol into a refusal here instead of a
	 * crash at the first call.  dlerror() also names the problem better
	 * than lt_dlerror() ("invalid ELF header", "undefined symbol: x"). */
	void *now = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (now == NULL) {
		const char *e = dlerror();
		return refuse(reg, p, perch_xasprintf("cannot load: %s", e ? e : "unknown error"));
	}
	pthread_mutex_lock(&ltdl_lock);
	lt_dladvise advise;
	lt_dladvise_init(&advise);
	/* Local scope: two versions of one plugin must not resolve each
	 * other's symbols. */
	lt_dladvise_local(&advise);
	lt_dlhandle h = lt_dlopenadvise(path, advise);
	lt_dladvise_destroy(&advise);
	char *why = NULL;
	if (h == NULL) {
		const char *e = lt_dlerror();
		why = perch_xasprintf("cannot load: %s", e ? e : "unknown error");
	}
	pthread_mutex_unlock(&ltdl_lock);
	/* h (if any) keeps the object mapped; the eager handle was only a check. */
	dlclose(now);
	if (why)
		return refuse(reg, p, why);
	p->handle = h;

	pthread_mutex_lock(&ltdl_lock);
	const perch_backend *entry = lt_dlsym(h, PERCH_BACKEND_SYMBOL);
	int other_major = 0;
	if (entry == NULL) {
		for (int m = 2; m < 10 && !other_major; m++) {
			char sym[32];
			snprintf(sym, sizeof sym, "perch_backend_v%d", m);
			if (lt_dlsym(h, sym))
				other_major = m;
		}
	}
	pthread_mutex_unlock(&ltdl_lock);
	if (entry == NULL) {
		if (other_major)
			return refuse(reg, p, perch_xasprintf("built for perch ABI %d (exports "
							     "perch_backend_v%d); this perch "
							     "speaks ABI %d",
							     other_major, other_major,
							     PERCH_ABI_MAJOR));
		return refuse(reg, p, perch_xstrdup("not a perch plugin: no " PERCH_BACKEND_SYMBOL
						    " symbol"));
	}
	why = check_entry(entry);
	if (why)
		return refuse(reg, p, why);
	p->entry = entry;
	p->name = perch_xstrdup(entry->name);

	perch_plugin *prev = perch_registry_find(reg, entry->name);
	if (prev)
		return refuse(reg, p, perch_xasprintf("shadowed: a plugin named \"%s\" was "
						     "already found at %s",
						     entry->name, prev->path));
	char *ferr = NULL;
	if (perch_cli_add_plugin(reg->cli, entry->name, path, entry->flags, &ferr) != 0)
		return refuse(reg, p, ferr);
	perch_host_table_init(&p->table, p);
	push(&reg->plugins, &reg->n, p);
	return p;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void perch_registry_scan(perch_registry *reg)
{
	for (size_t d = 0; d < reg->n_dirs; d++) {
		DIR *dir = opendir(reg->dirs[d]);
		if (dir == NULL)
			continue; /* a folder that does not exist holds no plugins */
		char **names = NULL;
		size_t n = 0;
		struct dirent *de;
		while ((de = readdir(dir)) != NULL) {
			size_t len = strlen(de->d_name);
			if (len > 3 && strcmp(de->d_name + len - 3, ".so") == 0) {
				names = perch_xrealloc(names, (n + 1) * sizeof *names);
				names[n++] = perch_xstrdup(de->d_name);
			}
		}
		closedir(dir);
		if (n > 1)
			qsort(names, n, sizeof *names, cmp_str);
		for (size_t i = 0; i < n; i++) {
			char *path = perch_xasprintf("%s/%s", reg->dirs[d], names[i]);
			struct stat st;
			if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
				perch_registry_open(reg, path);
			free(path);
			free(names[i]);
		}
		free(names);
	}
}

perch_plugin *perch_registry_find(const perch_registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->plugins[i]->name, name) == 0)
			return reg->plugins[i];
	return NULL;
}

static perch_error new_error(void)
{
	perch_error e;
	memset(&e, 0, sizeof e);
	e.struct_size = sizeof e;
	return e;
}

bool perch_plugin_available(perch_plugin *p, const perch_ctx *ctx)
{
	if (p->available < 0) {
		perch_error why = new_error();
		p->available = p->entry->is_available(&p->table, ctx, &why) ? 1 : 0;
		if (!p->available)
			p->unavailable_why = perch_xstrdup(why.message[0] ? why.message
									 : "the plugin says so");
	}
	return p->available == 1;
}

/* A capability table is used only if it is big enough and its call is set;
 * otherwise it is treated as absent, with a warning. */
static const void *negotiate(perch_plugin *p, const char *id, size_t min_size, size_t fn_off)
{
	if (p->entry->get_capability == NULL)
		return NULL;
	const uint32_t *t = p->entry->get_capability(p->inst, id);
	if (t == NULL)
		return NULL;
	void *fn = NULL;
	if (*t >= min_size)
		memcpy(&fn, (const char *)t + fn_off, sizeof fn);
	if (fn == NULL) {
		fprintf(stderr, "perch: %s: ignoring malformed capability %s (%s)\n", p->name, id,
			*t < min_size ? "table too small" : "call missing");
		return NULL;
	}
	return t;
}

int perch_plugin_load(perch_plugin *p, const perch_ctx *ctx, char **err)
{
	if (p->loaded)
		return 0;
	perch_error e = new_error();
	memset(&p->info, 0, sizeof p->info);
	p->info.struct_size = sizeof p->info;
	perch_instance *inst = NULL;
	perch_status st = p->entry->load(&p->table, ctx, &inst, &p->info, &e);
	if (st != PERCH_OK) {
		free(p->load_error);
		p->load_error = perch_xasprintf("%s", e.message[0] ? e.message
								  : perch_status_name(st));
		*err = perch_xasprintf("backend %s: load failed: %s", p->name, p->load_error);
		return -1;
	}
	p->info.platform[sizeof p->info.platform - 1] = '\0';
	p->inst = inst;
	p->loaded = true;
	p->discoverer = negotiate(p, PERCH_CAP_WORKFLOW_DISCOVERER,
				  sizeof(perch_workflow_discoverer_v1),
				  offsetof(perch_workflow_discoverer_v1, discover_workflows));
	p->resumer = negotiate(p, PERCH_CAP_WORKFLOW_RESUMER, sizeof(perch_workflow_resumer_v1),
			       offsetof(perch_workflow_resumer_v1, resume_step));
	return 0;
}

void perch_plugin_unload(perch_plugin *p)
{
	if (p->loaded && !perch_plugin_pinned(p)) {
		p->entry->unload(p->inst);
		p->inst = NULL;
		p->loaded = false;
		p->discoverer = NULL;
		p->resumer = NULL;
	}
}

static int cmp_priority(const void *a, const void *b)
{
	const perch_plugin *x = *(perch_plugin *const *)a, *y = *(perch_plugin *const *)b;
	if (x->entry->priority != y->entry->priority)
		return x->entry->priority > y->entry->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

perch_plugin *perch_registry_select(perch_registry *reg, const char *name,
				    const perch_conf *conf, const perch_ctx *ctx,
				    char **explain, char **err, int *exit_code)
{
	perch_buf b = {0};
	if (name && *name && strcmp(name, "auto-detect") != 0) {
		perch_plugin *p = perch_registry_find(reg, name);
		if (p == NULL) {
			perch_buf_printf(&b, "backend \"%s\" not found (installed:", name);
			for (size_t i = 0; i < reg->n; i++)
				perch_buf_printf(&b, "%s %s", i ? "," : "", reg->plugins[i]->name);
			perch_buf_puts(&b, reg->n ? ")" : " none)");
			*err = perch_buf_steal(&b);
			*exit_code = 2;
			return NULL;
		}
		if (!perch_plugin_available(p, ctx)) {
			*err = perch_xasprintf("backend \"%s\" is not available: %s", name,
					       p->unavailable_why);
			*exit_code = 3;
			return NULL;
		}
		*explain = perch_xasprintf("using backend \"%s\" (selected by name)", name);
		return p;
	}

	/* Auto-detect: a fixed, documented order, every skip explained. */
	perch_plugin **order = NULL;
	size_t n = 0;
	const char *how;
	perch_buf skipped = {0};
	if (conf && conf->n_auto_detect) {
		how = "the auto_detect list";
		for (size_t i = 0; i < conf->n_auto_detect; i++) {
			perch_plugin *p = perch_registry_find(reg, conf->auto_detect[i]);
			if (p)
				push(&order, &n, p);
			else
				perch_buf_printf(&skipped, "%s%s: not installed",
						 skipped.len ? "; " : "", conf->auto_detect[i]);
		}
	} else {
		how = "plugin priority";
		for (size_t i = 0; i < reg->n; i++)
			push(&order, &n, reg->plugins[i]);
		if (n > 1)
			qsort(order, n, sizeof *order, cmp_priority);
	}
	perch_plugin *chosen = NULL;
	for (size_t i = 0; i < n && !chosen; i++) {
		if (perch_plugin_available(order[i], ctx))
			chosen = order[i];
		else
			perch_buf_printf(&skipped, "%s%s: %s", skipped.len ? "; " : "",
					 order[i]->name, order[i]->unavailable_why);
	}
	free(order);
	if (chosen == NULL) {
		*err = perch_xasprintf("auto-detect found no available backend (by %s)%s%s", how,
				       skipped.len ? ": " : "", skipped.len ? skipped.data : "");
		*exit_code = 3;
	} else {
		*explain = perch_xasprintf("auto-detect chose backend \"%s\": first available "
					   "by %s%s%s%s",
					   chosen->name, how, skipped.len ? " (skipped " : "",
					   skipped.len ? skipped.data : "", skipped.len ? ")" : "");
	}
	perch_buf_free(&skipped);
	perch_buf_free(&b);
	return chosen;
}
