#!/bin/sh
# The installed SDK and plugins, as a user meets them after `make install`:
#  - the installed perch finds the shipped plugins with no path set;
#  - a plugin compiled outside the tree with nothing but
#    `cc -shared -fPIC $(pkg-config --cflags perch)` loads and runs.
. "${abs_top_srcdir}/tests/integration/lib.sh"
: "${PERCH_TEST_DESTDIR:?}" "${PERCH_TEST_PKGCONFIGDIR:?}"

unset PERCH_PLUGIN_PATH PERCH_CONFIG
run_perch "$T/out" "$T/err" backends --json
expect_rc 0 "perch backends"
jq_check '[.[] | select(.name == "dummy" and .available and (.capabilities | index("perch.workflow-discoverer/1")) and (.capabilities | index("perch.workflow-resumer/1")))] | length == 1' "$T/out"
jq_check '[.[] | select(.name == "local" and .available and .capabilities == [])] | length == 1' "$T/out"
jq_check 'all(.[]; .error == null)' "$T/out"

# An out-of-tree plugin: pkg-config resolves the staged install (the
# sysroot variable prefixes its -I with the staging folder).
command -v pkg-config >/dev/null || fail "pkg-config is required"
cflags=$(PKG_CONFIG_PATH="$PERCH_TEST_PKGCONFIGDIR" PKG_CONFIG_SYSROOT_DIR="$PERCH_TEST_DESTDIR" pkg-config --cflags perch) ||
	fail "pkg-config --cflags perch failed"
case "$cflags" in *"$PERCH_TEST_DESTDIR"*) ;; *) fail "cflags do not point into the staged install: $cflags" ;; esac
mkdir -p "$T/plugins"
cat >"$T/oot.c" <<'C'
#include <perch/perch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct perch_instance { int unused; };
static bool avail(const perch_host *h, const perch_ctx *c, perch_error *e) { return true; }
static perch_status load(const perch_host *h, const perch_ctx *c, perch_instance **out,
			 perch_backend_info *info, perch_error *e)
{
	const perch_cli *cli;
	perch_status st = perch_ctx_cli(h, c, &cli, e);
	if (st != PERCH_OK)
		return st;
	const char *greeting = h->cli_string(cli, "backend-oot-greeting");
	if (greeting == NULL || strcmp(greeting, "hi") != 0)
		return perch_error_set(e, PERCH_ERR_INVALID_INPUT, "greeting flag not resolved");
	*out = calloc(1, sizeof **out);
	strcpy(info->platform, "oot/none");
	return PERCH_OK;
}
static perch_status setup(perch_instance *i, const perch_ctx *c, const perch_config *cf, const char *t, perch_error *e) { return PERCH_OK; }
static perch_status start(perch_instance *i, const perch_ctx *c, const perch_step *s, const char *t, perch_error *e) { return PERCH_OK; }
static perch_status tail(perch_instance *i, const perch_ctx *c, const perch_step *s, const char *t, int *fd, perch_error *e)
{
	int p[2];
	if (pipe(p) != 0)
		return perch_error_set(e, PERCH_ERR_IO, "pipe failed");
	static const char msg[] = "out-of-tree says hello\n";
	if (write(p[1], msg, sizeof msg - 1) < 0) {}
	close(p[1]);
	*fd = p[0];
	return PERCH_OK;
}
static perch_status wait_(perch_instance *i, const perch_ctx *c, const perch_step *s, const char *t, perch_state *st, perch_error *e)
{
	st->exited = true;
	st->exit_code = 0;
	return PERCH_OK;
}
static perch_status destroy_step(perch_instance *i, const perch_ctx *c, const perch_step *s, const char *t, perch_error *e) { return PERCH_OK; }
static perch_status destroy_wf(perch_instance *i, const perch_ctx *c, const perch_config *cf, const char *t, perch_error *e) { return PERCH_OK; }
static void unload(perch_instance *i) { free(i); }
static const char *const greeting_env[] = {"OOT_GREETING", NULL};
static const perch_flag greeting = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING,
	.name = "backend-oot-greeting", .env = greeting_env, .default_value = "hello", .usage = "what to say"};
static const perch_flag *const flags[] = {&greeting, NULL};
PERCH_BACKEND_ENTRY = {
	PERCH_BACKEND_INIT,
	.name = "oot", .version = "0.0.1", .description = "built outside the tree", .flags = flags,
	.is_available = avail, .load = load, .setup_workflow = setup, .start_step = start,
	.tail_step = tail, .wait_step = wait_, .destroy_step = destroy_step,
	.destroy_workflow = destroy_wf, .unload = unload,
};
C
# shellcheck disable=SC2086 # cflags is a word list
${CC:-cc} -shared -fPIC -fvisibility=hidden -Wall -Wextra -Wno-unused-parameter -Werror $cflags -o "$T/plugins/oot.so" "$T/oot.c" ||
	fail "the out-of-tree plugin does not compile against the installed headers"
syms=$(nm -D --defined-only "$T/plugins/oot.so" | awk '{ print $3 }' | grep -v '^_' | tr '\n' ' ')
[ "$syms" = "perch_backend_v1 " ] || fail "the plugin exports more than its entry: $syms"

export PERCH_PLUGIN_PATH="$T/plugins"
run_perch "$T/out" "$T/err" backends --json
expect_rc 0 "perch backends with the out-of-tree plugin"
jq_check '[.[] | select(.name == "oot" and .available and .version == "0.0.1" and .abi == "1.0")] | length == 1' "$T/out"

printf '{"pipeline":[{"steps":[{"name":"x","uuid":"1","environment":{},"on_success":true}]}],"network":"","volume":"","secrets":null}\n' >"$T/wf.json"
OOT_GREETING=hi run_perch "$T/out" "$T/err" --backend oot run "$T/wf.json"
expect_rc 0 "a run on the out-of-tree plugin"
expect_grep "[x:L0:0s] out-of-tree says hello" "$T/out"
# Its flag resolves from its environment variable; without it, load refuses.
run_perch "$T/out" "$T/err" --backend oot run "$T/wf.json"
expect_rc 3 "a run whose plugin refuses to load"
expect_grep "backend oot: load failed: greeting flag not resolved" "$T/err"
echo "install: all passed"
