/* plugintest.c - see plugintest.h. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "plugintest.h"
#include "util.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ROOM(a) (sizeof(a) / sizeof((a)[0]))

void plugintest_step_init(plugintest_step *t, const char *name,
			  const char *uuid, const char *type,
			  const char *image)
{
	perch_step *s = &t->step;

	memset(t, 0, sizeof *t);
	s->struct_size = sizeof *s;
	s->name = name;
	s->uuid = uuid != NULL ? uuid : name;
	s->type = type;
	s->image = image;
	s->working_dir = "";
	s->workspace_base = "";
	s->failure = "";
	s->auth_config.username = "";
	s->auth_config.password = "";
	s->network_mode = "";
	s->backend_options = "";
	s->container_name_scheme = "";
	s->environment.items = t->env;
	s->commands.items = t->cmds;
	s->volumes.items = t->vols;
	s->tmpfs.items = t->tmpfs;
	s->devices.items = t->devs;
	s->dns.items = t->dns;
	s->dns_search.items = t->dns_search;
	s->entrypoint.items = t->ep;
	s->extra_hosts = t->hosts;
	s->networks = t->nets;
	s->ports = t->ports;
	s->workflow_labels.items = t->wlabels;
}

void plugintest_env(plugintest_step *t, const char *key, const char *value)
{
	assert_true(t->step.environment.len < ROOM(t->env));
	t->env[t->step.environment.len++] = (perch_kv){key, value};
}

void plugintest_cmd(plugintest_step *t, const char *cmd)
{
	assert_true(t->step.commands.len < ROOM(t->cmds));
	t->cmds[t->step.commands.len++] = cmd;
}

const perch_config *plugintest_empty_config(void)
{
	static const perch_config c = {.struct_size = sizeof(perch_config)};
	return &c;
}

const perch_backend *plugintest_open(testhost *th, const char *name)
{
	char *path = testhost_plugin_path(name);
	const perch_backend *be = testhost_open(th, path);

	if (be == NULL)
		fail_msg("cannot open %s (is it built?)", path);
	free(path);
	return be;
}

perch_instance *plugintest_load(testhost *th, const perch_backend *be,
				perch_ctx *ctx, perch_backend_info *info)
{
	perch_backend_info mine = {.struct_size = sizeof mine};
	perch_error err = testhost_error();
	perch_instance *inst = NULL;
	perch_status st;

	st = be->load(testhost_table(th), ctx, &inst, info ? info : &mine, &err);
	if (st != PERCH_OK)
		fail_msg("load: %s (%s)", err.message, perch_status_name(st));
	assert_non_null(inst);
	return inst;
}

void plugintest_assert_only_entry(const char *path)
{
	char *cmd = perch_xasprintf("nm -D --defined-only '%s'", path);
	FILE *p = popen(cmd, "r");
	char line[512];
	int n = 0;

	free(cmd);
	assert_non_null(p);
	while (fgets(line, sizeof line, p) != NULL) {
		const char *sym = strrchr(line, ' ');
		sym = sym ? sym + 1 : line;
		if (strncmp(sym, "__odr_asan", 10) == 0)
			continue;
		if (strcmp(sym, "perch_backend_v1\n") == 0) {
			n++;
		} else {
			fprintf(stderr, "%s exports %s", path, sym);
			n += 1000; /* anything else exported is wrong */
		}
	}
	assert_int_equal(pclose(p), 0);
	assert_int_equal(n, 1);
}

char *plugintest_tmpdir(const char *what)
{
	const char *base = getenv("TMPDIR");
	char *tmpl = perch_xasprintf("%s/perch-test-%s-XXXXXX",
				     base && *base ? base : "/tmp", what);
	char resolved[PATH_MAX];

	if (mkdtemp(tmpl) == NULL)
		fail_msg("mkdtemp %s: %s", tmpl, strerror(errno));
	assert_non_null(realpath(tmpl, resolved));
	free(tmpl);
	return perch_xstrdup(resolved);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		chmod(path, 0700);
	return remove(path);
}

void plugintest_rm_tree(char *dir)
{
	if (dir == NULL)
		return;
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}
