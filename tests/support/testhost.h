/*
 * testhost.h - a minimal perch host for unit tests of plugins and of host
 * parts: a perch_host table, contexts from host/ctx.c, and a CLI context
 * whose flag values are plain strings set by the test.
 *
 * Typical use:
 *   testhost *th = testhost_new();
 *   testhost_set_flag(th, "backend-dummy-state-dir", dir);
 *   const perch_backend *be = testhost_open(th, "/path/to/plugin.so");
 *   perch_ctx *ctx = testhost_ctx(th);          // carries the CLI context
 *   be->load(testhost_table(th), ctx, &inst, &info, &err);
 *   ...
 *   testhost_free(th);                            // closes the plugin too
 */
#ifndef PERCH_TESTHOST_H
#define PERCH_TESTHOST_H

#include <perch/perch.h>

#include "ctx.h"

typedef struct testhost testhost;

testhost *testhost_new(void);
void testhost_free(testhost *th);

/* Sets the textual value of a flag (string lists: comma-separated). */
void testhost_set_flag(testhost *th, const char *name, const char *value);

const perch_host *testhost_table(testhost *th);
/* A root context carrying the CLI context; owned by th. */
perch_ctx *testhost_ctx(testhost *th);
/* A root context without the CLI context; owned by th. */
perch_ctx *testhost_bare_ctx(testhost *th);

/* dlopen()s path (RTLD_NOW|RTLD_LOCAL) and returns its perch_backend_v1, or
 * NULL (and prints why).  Closed by testhost_free. */
const perch_backend *testhost_open(testhost *th, const char *path);

/* The path of a built plugin: $PERCH_TEST_PLUGINDIR/<name>/.libs/<name>.so
 * (malloc'd). */
char *testhost_plugin_path(const char *name);

/* The last line the plugin logged, or "" (host-owned, replaced on log). */
const char *testhost_last_log(testhost *th);

/* Reads fd to end of stream into a malloc'd NUL-terminated string and
 * closes it. */
char *testhost_read_all(int fd);

/* Zeroed, struct_size set. */
perch_error testhost_error(void);

#endif
