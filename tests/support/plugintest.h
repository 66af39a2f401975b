/*
 * plugintest.h - what the plugin suites (test_dummy, test_local,
 * test_docker, test_docker_convert) share on top of the test host: a step
 * as the host hands it over, with room for the lists a test fills in, and
 * opening, loading and scratch folders that fail the test loudly.
 *
 * Typical use:
 *   plugintest_step t;
 *   plugintest_step_init(&t, "build", "u1", PERCH_STEP_COMMANDS, "sh");
 *   plugintest_cmd(&t, "echo hi");
 *   plugintest_env(&t, "CI", "woodpecker");
 *   be->start_step(inst, ctx, &t.step, task, &err);
 *
 * Every helper fails the running cmocka test (never skips) when it cannot
 * do its job.  Not thread-safe except where said.
 */
#ifndef PERCH_PLUGINTEST_H
#define PERCH_PLUGINTEST_H

#include <perch/perch.h>

#include "testhost.h"

/* A step and the storage its lists point into.  Not copyable: the lists
 * point into the struct itself. */
typedef struct plugintest_step {
	perch_step step;
	perch_kv env[16];
	const char *cmds[16];
	const char *vols[8];
	const char *tmpfs[4];
	const char *devs[4];
	const char *dns[4];
	const char *dns_search[4];
	const char *ep[8];
	perch_host_alias hosts[4];
	perch_conn nets[4];
	const char *aliases[4][4]; /* aliases[i]: nets[i]'s */
	perch_port ports[4];
	perch_kv wlabels[4];
	char uuid[64]; /* room for a uuid a test makes up */
} plugintest_step;

/* Zeroes t and fills it as the host would for a step that sets nothing
 * else: struct_size, name, uuid (name when NULL), type and image as given,
 * every other string "" (never NULL), every list empty and pointing into
 * t.  The strings are borrowed: they must outlive t's use. */
void plugintest_step_init(plugintest_step *t, const char *name,
			  const char *uuid, const char *type,
			  const char *image);

/* Appends key=value to the environment, a command, a volume. */
void plugintest_env(plugintest_step *t, const char *key, const char *value);
void plugintest_cmd(plugintest_step *t, const char *cmd);

/* A config without stages, network, volume or secrets (static). */
const perch_config *plugintest_empty_config(void);

/* testhost_open of the built plugin called name (plugins/<name>). */
const perch_backend *plugintest_open(testhost *th, const char *name);

/* be->load with th's table and ctx; the instance.  info (NULL: none
 * wanted) gets the backend info. */
perch_instance *plugintest_load(testhost *th, const perch_backend *be,
				perch_ctx *ctx, perch_backend_info *info);

/* Fails unless the shared object at path exports exactly one symbol,
 * perch_backend_v1 (read with `nm -D --defined-only`; ASan's ODR markers
 * aside): everything else, plugins/common included, must stay hidden. */
void plugintest_assert_only_entry(const char *path);

/* A new folder $TMPDIR/perch-test-<what>-XXXXXX (default /tmp), its path
 * resolved (malloc'd). */
char *plugintest_tmpdir(const char *what);

/* rm -rf dir (folders made accessible first), then frees dir.  NULL is
 * fine. */
void plugintest_rm_tree(char *dir);

#endif
