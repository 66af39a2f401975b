/*
 * loader.h - finding, opening and validating backend plugins.
 *
 * Search order: the config's plugin_path, then $PERCH_PLUGIN_PATH
 * (colon-separated), then the installed $(pkglibdir)/plugins.  In each
 * folder every *.so file is a candidate, in name order.  The first plugin
 * of a name wins; a later file with the same name is refused as shadowed.
 *
 * A candidate is opened with libltdl in local scope (one lock guards every
 * lt_dl* call: libltdl is not thread-safe), bound eagerly (so an undefined
 * symbol is reported now, not at the first call), and its entry object is
 * validated: ABI major, struct_size, name, version, every required call,
 * its flags.  A file that fails is refused with one line naming the file and
 * the reason, and never stops perch from using the valid ones.
 *
 * Threads: everything here runs on the control thread.
 */
#ifndef PERCH_HOST_LOADER_H
#define PERCH_HOST_LOADER_H

#include <perch/perch.h>

#include <stdatomic.h>

#include "conf.h"
#include "flags.h"

typedef struct perch_registry perch_registry;

typedef struct perch_plugin {
	char *path;
	char *name;            /* copy of the entry's name (NULL if refused early) */
	char *error;           /* non-NULL: refused, this is why */
	void *handle;          /* lt_dlhandle */
	const perch_backend *entry;
	perch_host table;      /* the host table this plugin receives */
	perch_registry *reg;
	/* availability, asked once */
	int available;         /* -1: not asked yet */
	char *unavailable_why;
	/* the instance, when loaded */
	perch_instance *inst;
	perch_backend_info info;
	bool loaded;
	char *load_error;
	const perch_workflow_discoverer_v1 *discoverer;
	const perch_workflow_resumer_v1 *resumer;
	/* A call of it never returned (runtime.h, "stuck calls"): its code
	 * and instance stay as they are until the process exits. */
	atomic_bool pinned;
} perch_plugin;

struct perch_registry {
	perch_plugin **plugins; /* valid ones, in search order */
	size_t n;
	perch_plugin **refused;
	size_t n_refused;
	char **dirs;            /* searched folders, in order */
	size_t n_dirs;
	perch_cli *cli;         /* not owned; plugins' flags are added to it */
	int log_level;          /* plugin log lines above this are dropped */
};

/* A registry that adds plugin flags to cli (which must outlive it). */
perch_registry *perch_registry_new(perch_cli *cli);
/* Unloads every instance and closes every plugin. */
void perch_registry_free(perch_registry *reg);

/* Appends the search folders: conf->plugin_path, $PERCH_PLUGIN_PATH, the
 * installed folder. */
void perch_registry_default_dirs(perch_registry *reg, const perch_conf *conf);
void perch_registry_add_dir(perch_registry *reg, const char *dir);
/* The installed plugin folder; when perch runs from a DESTDIR staging tree
 * (its own path ends in $(bindir)/perch), the same folder inside it.
 * malloc'd. */
char *perch_installed_plugindir(void);

/* Opens every candidate in the folders.  Refusals are recorded (and, with
 * verbose, printed); this never fails as a whole. */
void perch_registry_scan(perch_registry *reg);
/* Opens and validates one file; returns the plugin (valid or refused). */
perch_plugin *perch_registry_open(perch_registry *reg, const char *path);

perch_plugin *perch_registry_find(const perch_registry *reg, const char *name);

/* is_available, asked once and cached.  ctx carries the CLI context. */
bool perch_plugin_available(perch_plugin *p, const perch_ctx *ctx);

/* Calls load and negotiates capabilities.  0, or -1 with *err. */
int perch_plugin_load(perch_plugin *p, const perch_ctx *ctx, char **err);
/* Calls unload (if loaded), unless the plugin is pinned. */
void perch_plugin_unload(perch_plugin *p);
/* Keeps p loaded and mapped for the rest of the process: unload and the
 * registry's closing of handles leave it alone.  Any thread; idempotent. */
void perch_plugin_pin(perch_plugin *p);
bool perch_plugin_pinned(const perch_plugin *p);

/*
 * Chooses the backend: name is a plugin name or "auto-detect".  Auto-detect
 * takes the first available plugin in conf->auto_detect order if set, else
 * by declared priority (higher first), then by name.  On success sets
 * *explain to a malloc'd sentence saying what was chosen and why.  On
 * failure returns NULL, sets *err and *exit_code (2: no such backend,
 * 3: not available).
 */
perch_plugin *perch_registry_select(perch_registry *reg, const char *name,
				    const perch_conf *conf, const perch_ctx *ctx,
				    char **explain, char **err, int *exit_code);

/* Unloads every instance and closes every plugin's handle, keeping the
 * records (path, name, error) readable; entries become NULL.  For a
 * registry that was scanned only to learn which plugins exist (the
 * daemon loads its own copies).  Control thread. */
void perch_registry_release(perch_registry *reg);

/* True when the dynamic loader still has the object at path mapped
 * (dlopen with RTLD_NOLOAD): after unloading a version, this verifies
 * that it is really gone.  Control thread. */
bool perch_loader_is_mapped(const char *path);

/* Fills the host table given to a plugin (hosttable.c). */
void perch_host_table_init(perch_host *table, perch_plugin *p);

#endif
