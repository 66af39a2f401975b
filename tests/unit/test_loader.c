/*
 * test_loader.c - finding, opening and validating plugins; choosing one.
 *
 * Every deliberately broken fixture plugin (tests/fixtures/plugins) gets a
 * test that checks the exact one-line reason perch_registry_open() gives.
 * Then: a folder of good and broken plugins scanned at once, shadowing
 * between folders, auto-detection, load failures, capability negotiation
 * and the host table each plugin receives.
 */
#include "config.h"

#include "core_test.h"

#include "conf.h"
#include "ctx.h"
#include "flags.h"
#include "loader.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ENGINE_WHY "fixture engine at unix:///nowhere/engine.sock is unreachable"

static const char *const fixture_env[] = {"PERCH_GOOD_AVAILABLE", "PERCH_GOOD_COUNT",
					  "FIXTURE_GOOD_COUNT", "PERCH_PLUGIN_PATH"};

struct fx {
	perch_cli *cli;
	perch_registry *reg;
	perch_ctx *ctx;  /* carries the CLI context */
	char *tmp;       /* a private folder, made on demand */
};

static int setup(void **state)
{
	struct fx *f = perch_xcalloc(1, sizeof *f);
	for (size_t i = 0; i < sizeof fixture_env / sizeof *fixture_env; i++)
		unsetenv(fixture_env[i]);
	f->cli = perch_cli_new();
	f->reg = perch_registry_new(f->cli);
	f->ctx = perch_ctx_new(NULL);
	perch_ctx_set_value(f->ctx, PERCH_CTX_CLI_COMMAND, f->cli);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	perch_registry_free(f->reg);
	perch_ctx_free(f->ctx);
	perch_cli_free(f->cli);
	if (f->tmp)
		ct_rm_rf(f->tmp);
	for (size_t i = 0; i < sizeof fixture_env / sizeof *fixture_env; i++)
		unsetenv(fixture_env[i]);
	free(f);
	return 0;
}

static const char *tmp(struct fx *f)
{
	if (f->tmp == NULL)
		f->tmp = ct_tmpdir();
	return f->tmp;
}

static bool in_list(perch_plugin **list, size_t n, const perch_plugin *p)
{
	for (size_t i = 0; i < n; i++)
		if (list[i] == p)
			return true;
	return false;
}

/* Opens path, which must be refused, and checks the reason. */
static perch_plugin *expect_refused_path(struct fx *f, const char *path, const char *why)
{
	size_t valid = f->reg->n, flags = f->cli->n;
	perch_plugin *p = perch_registry_open(f->reg, path);
	assert_non_null(p);
	assert_string_equal(p->path, path);
	if (p->error == NULL)
		fail_msg("%s was accepted; want refused: %s", path, why);
	if (strcmp(p->error, why) != 0)
		fail_msg("%s refused\n  got:  %s\n  want: %s", path, p->error, why);
	assert_true(in_list(f->reg->refused, f->reg->n_refused, p));
	assert_false(in_list(f->reg->plugins, f->reg->n, p));
	assert_int_equal(f->reg->n, valid);
	/* A refused plugin leaves nothing behind: no handle, no flags. */
	assert_null(p->handle);
	assert_null(p->entry);
	assert_int_equal(f->cli->n, flags);
	return p;
}

/* Opens the fixture <name>, which must be refused with exactly why. */
static perch_plugin *expect_refused(struct fx *f, const char *name, const char *why)
{
	char *path = ct_fixture_plugin(name);
	perch_plugin *p = expect_refused_path(f, path, why);
	free(path);
	return p;
}

/* Opens the fixture <name>, which must be valid. */
static perch_plugin *expect_valid(struct fx *f, const char *name)
{
	char *path = ct_fixture_plugin(name);
	perch_plugin *p = perch_registry_open(f->reg, path);
	assert_non_null(p);
	if (p->error)
		fail_msg("%s refused: %s", path, p->error);
	assert_true(in_list(f->reg->plugins, f->reg->n, p));
	assert_non_null(p->entry);
	assert_non_null(p->handle);
	free(path);
	return p;
}

static void resolve(struct fx *f, const perch_conf *conf)
{
	char *err = NULL;
	if (perch_cli_resolve(f->cli, conf, &err) != 0)
		fail_msg("resolve: %s", err);
}

/* --- stderr capture, for the loader's and the host table's own lines ---- */

struct capture {
	int saved;
	int rd;
};

static struct capture capture_stderr(void)
{
	struct capture c;
	int p[2];
	fflush(stderr);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	c.saved = dup(2);
	assert_true(c.saved >= 0);
	assert_int_equal(dup2(p[1], 2), 2);
	close(p[1]);
	c.rd = p[0];
	return c;
}

/* Restores stderr and returns what was written (malloc'd). */
static char *captured(struct capture c)
{
	fflush(stderr);
	assert_int_equal(dup2(c.saved, 2), 2);
	close(c.saved);
	perch_buf b = {0};
	char buf[4096];
	ssize_t n;
	while ((n = read(c.rd, buf, sizeof buf)) > 0)
		perch_buf_append(&b, buf, (size_t)n);
	close(c.rd);
	perch_buf_puts(&b, "");
	return perch_buf_steal(&b);
}

/* --- each broken fixture ------------------------------------------------- */

static void test_wrong_major(void **state)
{
	expect_refused(*state, "wrong_major", "built for perch ABI 2.3; this perch speaks ABI 1");
}

static void test_abi2_only(void **state)
{
	expect_refused(*state, "abi2_only",
		       "built for perch ABI 2 (exports perch_backend_v2); this perch speaks ABI 1");
}

static void test_short_struct_size(void **state)
{
	expect_refused(*state, "short_size",
		       "entry struct_size 64 is smaller than the ABI 1.0 size 128");
}

static void test_truncated_entry(void **state)
{
	expect_refused(*state, "truncated", "entry is truncated (struct_size 8)");
}

static void test_misnamed_entry(void **state)
{
	expect_refused(*state, "no_entry", "not a perch plugin: no perch_backend_v1 symbol");
}

static void test_hidden_entry(void **state)
{
	expect_refused(*state, "hidden_entry", "not a perch plugin: no perch_backend_v1 symbol");
}

static void test_plain_library(void **state)
{
	expect_refused(*state, "plain", "not a perch plugin: no perch_backend_v1 symbol");
}

static void test_required_call_missing(void **state)
{
	expect_refused(*state, "no_wait", "required call wait_step is missing");
}

static void test_empty_name(void **state)
{
	perch_plugin *p = expect_refused(*state, "empty_name", "entry has no name");
	assert_null(p->name);
}

static void test_bad_name(void **state)
{
	expect_refused(*state, "bad_name", "entry name \"Bad Name\" is not made of [a-z0-9_-]");
}

static void test_no_version(void **state)
{
	expect_refused(*state, "no_version", "entry has no version");
}

static void test_flag_outside_prefix(void **state)
{
	expect_refused(*state, "bad_flag",
		       "flag --backend-other-level must be named backend-badflag-<key>");
}

/* "dup" and "dup-x" both declare --backend-dup-x-level, each within the
 * naming rule: the second is refused, naming both. */
static void test_duplicate_flag_across_plugins(void **state)
{
	struct fx *f = *state;
	perch_plugin *a = expect_valid(f, "dupflag_a");
	assert_string_equal(a->name, "dup");
	assert_int_equal(f->cli->n, 1);
	char *b_path = ct_fixture_plugin("dupflag_b");
	char *want = perch_xasprintf("flag --backend-dup-x-level is declared by both dup (%s) "
				     "and dup-x (%s)", a->path, b_path);
	perch_plugin *b = expect_refused_path(f, b_path, want);
	assert_string_equal(b->name, "dup-x");
	assert_null(perch_registry_find(f->reg, "dup-x"));
	assert_string_equal(perch_cli_find(f->cli, "backend-dup-x-level")->owner, "dup");
	free(want);
	free(b_path);
}

/* Two files, one plugin name: the first found wins. */
static void test_same_name_two_files(void **state)
{
	struct fx *f = *state;
	perch_plugin *a = expect_valid(f, "twin_a");
	assert_string_equal(a->entry->version, "1.0.0-a");
	char *b_path = ct_fixture_plugin("twin_b");
	char *want = perch_xasprintf("shadowed: a plugin named \"twin\" was already found at %s",
				     a->path);
	expect_refused_path(f, b_path, want);
	assert_ptr_equal(perch_registry_find(f->reg, "twin"), a);
	free(want);
	free(b_path);
}

/* The same file twice is shadowed by itself, and must not be closed
 * under the first (dlopen hands out the same object). */
static void test_same_file_twice(void **state)
{
	struct fx *f = *state;
	perch_plugin *a = expect_valid(f, "good");
	char *want = perch_xasprintf("shadowed: a plugin named \"good\" was already found at %s",
				     a->path);
	expect_refused_path(f, a->path, want);
	free(want);
	/* The first is still usable. */
	assert_string_equal(a->entry->name, "good");
	char *err = NULL;
	resolve(f, NULL);
	if (perch_plugin_load(a, f->ctx, &err) != 0)
		fail_msg("%s", err);
}

static void test_undefined_symbol(void **state)
{
	char *path = ct_fixture_plugin("undef_sym");
	char *want = perch_xasprintf("cannot load: %s: undefined symbol: perch_fixture_missing_fn",
				     path);
	expect_refused_path(*state, path, want);
	free(want);
	free(path);
}

static void test_text_file_named_so(void **state)
{
	struct fx *f = *state;
	char *path = ct_write(tmp(f), "x.so",
			      "This is a text file, not a shared object, even though its name\n"
			      "ends in .so.  The loader must refuse it without crashing.\n");
	char *want = perch_xasprintf("cannot load: %s: invalid ELF header", path);
	expect_refused_path(f, path, want);
	free(want);
	free(path);
}

static void test_empty_file_named_so(void **state)
{
	struct fx *f = *state;
	char *path = ct_write(tmp(f), "empty.so", "");
	char *want = perch_xasprintf("cannot load: %s: file too short", path);
	expect_refused_path(f, path, want);
	free(want);
	free(path);
}

static void test_missing_file(void **state)
{
	struct fx *f = *state;
	char *path = perch_xasprintf("%s/gone.so", tmp(f));
	char *want = perch_xasprintf("cannot load: %s: cannot open shared object file: No such "
				     "file or directory", path);
	expect_refused_path(f, path, want);
	free(want);
	free(path);
}

/* --- the good fixture and capabilities ----------------------------------- */

static void test_good_plugin(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "good");
	assert_string_equal(p->name, "good");
	assert_string_equal(p->entry->version, "1.2.3");
	assert_int_equal(p->entry->abi_major, 1);
	assert_ptr_equal(perch_registry_find(f->reg, "good"), p);
	assert_null(perch_registry_find(f->reg, "nope"));
	assert_int_equal(p->available, -1);
	assert_false(p->loaded);
	/* Its three flags joined the command line, with its path. */
	assert_int_equal(f->cli->n, 3);
	const perch_flagdef *d = perch_cli_find(f->cli, "backend-good-count");
	assert_non_null(d);
	assert_string_equal(d->owner, "good");
	assert_string_equal(d->owner_path, p->path);
	assert_string_equal(d->config_key, "backends.good.count");
	/* Its host table. */
	assert_int_equal(p->table.struct_size, sizeof(perch_host));
	assert_int_equal(p->table.abi_major, PERCH_ABI_MAJOR);
	assert_int_equal(p->table.abi_minor, PERCH_ABI_MINOR);
	assert_string_equal(p->table.host_version, PACKAGE_VERSION);
	assert_ptr_equal(p->table.host_data, p);
}

static void test_capabilities_negotiated(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "good");
	resolve(f, NULL);
	char *err = NULL;
	assert_true(perch_plugin_available(p, f->ctx));
	if (perch_plugin_load(p, f->ctx, &err) != 0)
		fail_msg("%s", err);
	assert_true(p->loaded);
	assert_non_null(p->inst);
	assert_string_equal(p->info.platform, "fixture/none");
	assert_non_null(p->discoverer);
	assert_non_null(p->resumer);
	/* The tables work through the instance. */
	perch_error e = {.struct_size = sizeof e};
	assert_int_equal(p->discoverer->discover_workflows(p->inst, f->ctx, NULL, NULL, &e),
			 PERCH_OK);
	perch_step step = {.struct_size = sizeof step, .uuid = "u1"};
	assert_int_equal(p->resumer->resume_step(p->inst, f->ctx, &step, "t1", NULL, &e),
			 PERCH_ERR_NOT_FOUND);
	assert_string_equal(e.message, "no step u1");
	/* Loading again is a no-op; unloading forgets the tables. */
	assert_int_equal(perch_plugin_load(p, f->ctx, &err), 0);
	perch_plugin_unload(p);
	assert_false(p->loaded);
	assert_null(p->inst);
	assert_null(p->discoverer);
	assert_null(p->resumer);
	perch_plugin_unload(p); /* idempotent */
}

static void test_malformed_capabilities_are_absent(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "caps_bad");
	char *err = NULL;
	struct capture c = capture_stderr();
	int rc = perch_plugin_load(p, f->ctx, &err);
	char *out = captured(c);
	if (rc != 0)
		fail_msg("%s", err);
	assert_true(p->loaded);
	assert_null(p->discoverer);
	assert_null(p->resumer);
	assert_string_equal(out,
			    "perch: capsbad: ignoring malformed capability "
			    "perch.workflow-discoverer/1 (table too small)\n"
			    "perch: capsbad: ignoring malformed capability "
			    "perch.workflow-resumer/1 (call missing)\n");
	free(out);
}

/* A plugin without get_capability simply has none, silently. */
static void test_no_get_capability(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "twin_a");
	char *err = NULL;
	struct capture c = capture_stderr();
	int rc = perch_plugin_load(p, f->ctx, &err);
	char *out = captured(c);
	assert_int_equal(rc, 0);
	assert_null(p->discoverer);
	assert_null(p->resumer);
	assert_string_equal(out, "");
	free(out);
}

static void test_load_fails(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "load_fails");
	resolve(f, NULL);
	char *err = NULL;
	assert_true(perch_plugin_available(p, f->ctx));
	assert_int_equal(perch_plugin_load(p, f->ctx, &err), -1);
	ct_assert_msg(err, "backend loadfail: load failed: cannot reach the fixture engine at "
			   "unix:///nowhere/engine.sock");
	assert_false(p->loaded);
	assert_null(p->inst);
	assert_string_equal(p->load_error,
			    "cannot reach the fixture engine at unix:///nowhere/engine.sock");
	/* Failing again replaces the message (valgrind: without a leak). */
	err = NULL;
	assert_int_equal(perch_plugin_load(p, f->ctx, &err), -1);
	free(err);
}

/* A failure without a message is reported by its status name. */
static void test_load_fails_silently(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "load_fails");
	char *err = NULL;
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-loadfail-silent", "true", &err), 0);
	resolve(f, NULL);
	assert_int_equal(perch_plugin_load(p, f->ctx, &err), -1);
	ct_assert_msg(err, "backend loadfail: load failed: unavailable");
	assert_string_equal(p->load_error, "unavailable");
}

/* Freeing the registry unloads what is loaded (valgrind: the instance is
 * freed by the plugin's unload). */
static void test_free_unloads(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "good");
	char *err = NULL;
	resolve(f, NULL);
	assert_int_equal(perch_plugin_load(p, f->ctx, &err), 0);
	assert_true(p->loaded);
	/* teardown frees the registry with p still loaded */
}

/* --- the host table ------------------------------------------------------ */

static void test_host_table(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "good");
	char *err = NULL;
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-good-count", "12", &err), 0);
	resolve(f, NULL);
	const perch_host *t = &p->table;
	const perch_cli *cli = NULL;
	assert_int_equal(perch_ctx_cli(t, f->ctx, &cli, NULL), PERCH_OK);
	assert_ptr_equal(cli, f->cli);
	assert_int_equal(t->cli_int(cli, "backend-good-count"), 12);
	assert_true(t->cli_is_set(cli, "backend-good-count"));
	assert_string_equal(t->cli_string(cli, "backend-good-greeting"), "hello");
	assert_false(t->cli_is_set(cli, "backend-good-greeting"));
	assert_true(t->cli_bool(cli, "backend-good-available"));
	assert_false(t->ctx_cancelled(f->ctx));
	assert_int_equal(t->ctx_cancel_fd(f->ctx), perch_ctx_cancel_fd(f->ctx));
	assert_int_equal(t->ctx_deadline_ms(f->ctx), INT64_MAX);
	perch_ctx_cancel(f->ctx);
	assert_true(t->ctx_cancelled(f->ctx));
	/* NULL contexts read as "nothing". */
	assert_false(t->ctx_cancelled(NULL));
	assert_int_equal(t->ctx_cancel_fd(NULL), -1);
	assert_int_equal(t->ctx_deadline_ms(NULL), INT64_MAX);
	assert_null(t->ctx_value(NULL, PERCH_CTX_CLI_COMMAND));
	assert_null(t->ctx_value(f->ctx, NULL));
	/* The CLI accessor's error is the Go contract's exact text. */
	perch_ctx *bare = perch_ctx_new(NULL);
	perch_error e = {.struct_size = sizeof e};
	assert_int_equal(perch_ctx_cli(t, bare, &cli, &e), PERCH_ERR_NO_CLI_CONTEXT);
	assert_string_equal(e.message, "no CliContext in context found");
	perch_ctx_free(bare);
	assert_null(t->get_capability(t, "perch.anything/1"));
}

static void test_host_log(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "good");
	const perch_host *t = &p->table;
	char longmsg[2000];
	memset(longmsg, 'x', sizeof longmsg - 1);
	longmsg[sizeof longmsg - 1] = '\0';

	struct capture c = capture_stderr();
	t->log(t, PERCH_LOG_ERROR, "disk full");
	t->log(t, PERCH_LOG_WARN, "slow");
	t->log(t, PERCH_LOG_INFO, "hello");
	t->log(t, PERCH_LOG_DEBUG, "dropped at the default level");
	perch_logf(t, PERCH_LOG_INFO, "%d steps", 3);
	char *out = captured(c);
	assert_string_equal(out, "perch: good: error: disk full\n"
				 "perch: good: warning: slow\n"
				 "perch: good: info: hello\n"
				 "perch: good: info: 3 steps\n");
	free(out);

	f->reg->log_level = PERCH_LOG_DEBUG;
	c = capture_stderr();
	t->log(t, PERCH_LOG_DEBUG, "now shown");
	t->log(t, PERCH_LOG_INFO, longmsg);
	out = captured(c);
	const char *first = "perch: good: debug: now shown\n";
	assert_true(strncmp(out, first, strlen(first)) == 0);
	/* A long line is cut, but still one line. */
	const char *second = out + strlen(first);
	assert_true(strncmp(second, "perch: good: info: xxx", 22) == 0);
	assert_ptr_equal(strchr(second, '\n'), second + strlen(second) - 1);
	assert_true(strlen(second) < sizeof longmsg);
	free(out);

	f->reg->log_level = PERCH_LOG_ERROR;
	c = capture_stderr();
	t->log(t, PERCH_LOG_WARN, "dropped");
	out = captured(c);
	assert_string_equal(out, "");
	free(out);
}

/* --- scanning ------------------------------------------------------------ */

/* Every file in the fixture folder, in name order, and what the loader must
 * say about it: the plugin name if valid, else the reason.  (This is the
 * complete list of fixtures: a new fixture must be added here.) */
static const struct {
	const char *file;
	const char *name; /* valid: the plugin name */
	const char *why;  /* refused: the reason; %1$s is the folder */
} fixture_folder[] = {
	{"abi2_only.so", NULL, "built for perch ABI 2 (exports perch_backend_v2); this perch "
			       "speaks ABI 1"},
	{"bad_flag.so", NULL, "flag --backend-other-level must be named backend-badflag-<key>"},
	{"bad_name.so", NULL, "entry name \"Bad Name\" is not made of [a-z0-9_-]"},
	{"caps_bad.so", "capsbad", NULL},
	{"dupflag_a.so", "dup", NULL},
	{"dupflag_b.so", NULL, "flag --backend-dup-x-level is declared by both dup "
			       "(%1$s/dupflag_a.so) and dup-x (%1$s/dupflag_b.so)"},
	{"empty_name.so", NULL, "entry has no name"},
	{"good.so", "good", NULL},
	{"hidden_entry.so", NULL, "not a perch plugin: no perch_backend_v1 symbol"},
	{"load_fails.so", "loadfail", NULL},
	{"no_entry.so", NULL, "not a perch plugin: no perch_backend_v1 symbol"},
	{"no_version.so", NULL, "entry has no version"},
	{"no_wait.so", NULL, "required call wait_step is missing"},
	{"plain.so", NULL, "not a perch plugin: no perch_backend_v1 symbol"},
	{"short_size.so", NULL, "entry struct_size 64 is smaller than the ABI 1.0 size 128"},
	{"truncated.so", NULL, "entry is truncated (struct_size 8)"},
	{"twin_a.so", "twin", NULL},
	{"twin_b.so", NULL, "shadowed: a plugin named \"twin\" was already found at "
			    "%1$s/twin_a.so"},
	{"unavail.so", "unavail", NULL},
	{"undef_sym.so", NULL, "cannot load: %1$s/undef_sym.so: undefined symbol: "
			       "perch_fixture_missing_fn"},
	{"wrong_major.so", NULL, "built for perch ABI 2.3; this perch speaks ABI 1"},
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static char *expand(const char *fmt, const char *dir)
{
	return perch_xasprintf(fmt, dir);
}
#pragma GCC diagnostic pop

static void test_scan_fixture_folder(void **state)
{
	struct fx *f = *state;
	char *dir = ct_fixture_plugin_dir();
	perch_registry_add_dir(f->reg, dir);
	perch_registry_scan(f->reg);
	size_t vi = 0, ri = 0;
	for (size_t i = 0; i < sizeof fixture_folder / sizeof *fixture_folder; i++) {
		char *path = perch_xasprintf("%s/%s", dir, fixture_folder[i].file);
		if (fixture_folder[i].name) {
			if (vi >= f->reg->n)
				fail_msg("%s: want valid plugin %s, but only %zu were found", path,
					 fixture_folder[i].name, f->reg->n);
			perch_plugin *p = f->reg->plugins[vi++];
			assert_string_equal(p->path, path);
			assert_string_equal(p->name, fixture_folder[i].name);
		} else {
			if (ri >= f->reg->n_refused)
				fail_msg("%s: want refused, but only %zu were refused", path,
					 f->reg->n_refused);
			perch_plugin *p = f->reg->refused[ri++];
			assert_string_equal(p->path, path);
			char *why = expand(fixture_folder[i].why, dir);
			if (strcmp(p->error, why) != 0)
				fail_msg("%s\n  got:  %s\n  want: %s", path, p->error, why);
			free(why);
		}
		free(path);
	}
	if (vi != f->reg->n || ri != f->reg->n_refused)
		fail_msg("the fixture folder holds %zu valid and %zu refused plugins; this test "
			 "knows %zu and %zu (add new fixtures to fixture_folder[])",
			 f->reg->n, f->reg->n_refused, vi, ri);
	/* The valid ones are usable in spite of all the refusals. */
	resolve(f, NULL);
	perch_plugin *good = perch_registry_find(f->reg, "good");
	assert_non_null(good);
	char *err = NULL;
	assert_true(perch_plugin_available(good, f->ctx));
	if (perch_plugin_load(good, f->ctx, &err) != 0)
		fail_msg("%s", err);
	assert_non_null(good->discoverer);
	free(dir);
}

/* A folder with one good plugin and things that are not plugins. */
static void test_scan_mixed_folder(void **state)
{
	struct fx *f = *state;
	const char *d = tmp(f);
	char *good_src = ct_fixture_plugin("good");
	char *good = ct_copy(good_src, d, "good.so");
	char *text = ct_write(d, "x.so", "not an ELF file, but long enough to have a header\n"
					"...............................................\n");
	char *readme = ct_write(d, "README", "plugins go here\n");
	char *notso = ct_copy(good_src, d, "good.so.bak");
	char *link = perch_xasprintf("%s/link.so", d);
	assert_int_equal(symlink(good, link), 0);
	char *sub = perch_xasprintf("%s/sub.so", d);
	assert_int_equal(mkdir(sub, 0755), 0);

	perch_registry_add_dir(f->reg, d);
	perch_registry_scan(f->reg);
	assert_int_equal(f->reg->n, 1);
	assert_string_equal(f->reg->plugins[0]->path, good);
	/* link.so: the same object under another name; x.so: text.  The
	 * folder sub.so, README and good.so.bak are not candidates. */
	assert_int_equal(f->reg->n_refused, 2);
	char *want_link = perch_xasprintf("shadowed: a plugin named \"good\" was already found "
					  "at %s", good);
	assert_string_equal(f->reg->refused[0]->path, link);
	assert_string_equal(f->reg->refused[0]->error, want_link);
	char *want_text = perch_xasprintf("cannot load: %s: invalid ELF header", text);
	assert_string_equal(f->reg->refused[1]->path, text);
	assert_string_equal(f->reg->refused[1]->error, want_text);
	/* The surviving good plugin still works after its twin was closed. */
	char *err = NULL;
	resolve(f, NULL);
	if (perch_plugin_load(f->reg->plugins[0], f->ctx, &err) != 0)
		fail_msg("%s", err);
	free(want_link);
	free(want_text);
	free(sub);
	free(link);
	free(notso);
	free(readme);
	free(text);
	free(good);
	free(good_src);
}

/* A folder with no candidates at all (and an empty one) holds no plugins
 * and refuses nothing. */
static void test_scan_empty_folder(void **state)
{
	struct fx *f = *state;
	char *sub = perch_xasprintf("%s/empty", tmp(f));
	assert_int_equal(mkdir(sub, 0755), 0);
	char *readme = ct_write(tmp(f), "README", "no plugins here\n");
	perch_registry_add_dir(f->reg, tmp(f));
	perch_registry_add_dir(f->reg, sub);
	perch_registry_scan(f->reg);
	assert_int_equal(f->reg->n, 0);
	assert_int_equal(f->reg->n_refused, 0);
	free(readme);
	free(sub);
}

/* The same plugin in two folders: the first folder searched wins. */
static void shadow_between(struct fx *f, bool first_a)
{
	const char *d = tmp(f);
	char *a = perch_xasprintf("%s/a", d), *b = perch_xasprintf("%s/b", d);
	if (mkdir(a, 0755) != 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", a, strerror(errno));
	if (mkdir(b, 0755) != 0 && errno != EEXIST)
		fail_msg("mkdir %s: %s", b, strerror(errno));
	char *src = ct_fixture_plugin("good");
	free(ct_copy(src, a, "good.so"));
	free(ct_copy(src, b, "good.so"));
	perch_registry_add_dir(f->reg, first_a ? a : b);
	perch_registry_add_dir(f->reg, first_a ? b : a);
	perch_registry_add_dir(f->reg, a); /* already there: ignored */
	perch_registry_add_dir(f->reg, "/nonexistent/perch/plugins");
	assert_int_equal(f->reg->n_dirs, 3);
	perch_registry_scan(f->reg);
	char *winner = perch_xasprintf("%s/good.so", first_a ? a : b);
	char *loser = perch_xasprintf("%s/good.so", first_a ? b : a);
	assert_int_equal(f->reg->n, 1);
	assert_string_equal(f->reg->plugins[0]->path, winner);
	assert_int_equal(f->reg->n_refused, 1);
	assert_string_equal(f->reg->refused[0]->path, loser);
	char *want = perch_xasprintf("shadowed: a plugin named \"good\" was already found at %s",
				     winner);
	assert_string_equal(f->reg->refused[0]->error, want);
	/* The loser's flags were not added twice. */
	assert_int_equal(f->cli->n, 3);
	free(want);
	free(winner);
	free(loser);
	free(src);
	free(a);
	free(b);
}

static void test_shadow_first_dir_wins(void **state)
{
	shadow_between(*state, true);
}

static void test_shadow_first_dir_wins_reversed(void **state)
{
	shadow_between(*state, false);
}

static void test_default_dirs(void **state)
{
	struct fx *f = *state;
	char *path = ct_write(tmp(f), "perch.conf", "plugin_path = [ \"/p/a\", \"/p/b\" ];\n");
	char *err = NULL;
	perch_conf *conf = perch_conf_open(path, &err);
	assert_non_null(conf);
	setenv("PERCH_PLUGIN_PATH", "/p/c::/p/a:/p/d:", 1);
	perch_registry_default_dirs(f->reg, conf);
	char *inst = perch_installed_plugindir();
	assert_string_equal(inst, PERCH_PLUGINDIR);
	const char *want[] = {"/p/a", "/p/b", "/p/c", "/p/d", inst};
	assert_int_equal(f->reg->n_dirs, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(f->reg->dirs[i], want[i]);
	/* Scanning folders that do not exist finds nothing, refuses nothing. */
	perch_registry_scan(f->reg);
	assert_int_equal(f->reg->n_refused, 0);
	free(inst);
	perch_conf_free(conf);
	free(path);
}

/* --- choosing a backend -------------------------------------------------- */

/* good (50), unavail (100), loadfail (20), capsbad (5), in that order. */
static void open_selection(struct fx *f)
{
	expect_valid(f, "good");
	expect_valid(f, "unavail");
	expect_valid(f, "load_fails");
	expect_valid(f, "caps_bad");
}

struct sel {
	perch_plugin *p;
	char *explain;
	char *err;
	int exit_code;
};

static struct sel selectb(struct fx *f, const char *name, const perch_conf *conf,
			  const perch_ctx *ctx)
{
	struct sel s = {.exit_code = -1};
	s.p = perch_registry_select(f->reg, name, conf, ctx ? ctx : f->ctx, &s.explain, &s.err,
				    &s.exit_code);
	if (s.p) {
		assert_non_null(s.explain);
		assert_null(s.err);
		assert_int_equal(s.exit_code, -1);
	} else {
		assert_null(s.explain);
		assert_non_null(s.err);
	}
	return s;
}

static void test_select_by_name(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	resolve(f, NULL);
	struct sel s = selectb(f, "capsbad", NULL, NULL);
	assert_string_equal(s.p->name, "capsbad");
	ct_assert_msg(s.explain, "using backend \"capsbad\" (selected by name)");
	/* By name, priority does not matter, and an unavailable plugin of
	 * higher priority is never asked. */
	assert_int_equal(perch_registry_find(f->reg, "unavail")->available, -1);
}

static void test_select_not_found(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	resolve(f, NULL);
	struct sel s = selectb(f, "dokcer", NULL, NULL);
	assert_null(s.p);
	assert_int_equal(s.exit_code, 2);
	ct_assert_msg(s.err, "backend \"dokcer\" not found (installed: good, unavail, loadfail, "
			     "capsbad)");
}

static void test_select_not_found_none_installed(void **state)
{
	struct fx *f = *state;
	struct sel s = selectb(f, "docker", NULL, NULL);
	assert_int_equal(s.exit_code, 2);
	ct_assert_msg(s.err, "backend \"docker\" not found (installed: none)");
}

static void test_select_not_available(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	resolve(f, NULL);
	struct sel s = selectb(f, "unavail", NULL, NULL);
	assert_null(s.p);
	assert_int_equal(s.exit_code, 3);
	ct_assert_msg(s.err, "backend \"unavail\" is not available: " ENGINE_WHY);
}

static void test_select_not_available_no_reason(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	char *err = NULL;
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-unavail-silent", "true", &err), 0);
	resolve(f, NULL);
	struct sel s = selectb(f, "unavail", NULL, NULL);
	assert_int_equal(s.exit_code, 3);
	ct_assert_msg(s.err, "backend \"unavail\" is not available: the plugin says so");
}

/* Without the CLI context in ctx, good cannot read its flags. */
static void test_select_without_cli_context(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	resolve(f, NULL);
	perch_ctx *bare = perch_ctx_new(NULL);
	struct sel s = selectb(f, "good", NULL, bare);
	assert_int_equal(s.exit_code, 3);
	ct_assert_msg(s.err, "backend \"good\" is not available: no CliContext in context found");
	perch_ctx_free(bare);
}

static void test_auto_detect_by_priority(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	resolve(f, NULL);
	struct sel s = selectb(f, "auto-detect", NULL, NULL);
	assert_string_equal(s.p->name, "good");
	ct_assert_msg(s.explain, "auto-detect chose backend \"good\": first available by plugin "
				 "priority (skipped unavail: " ENGINE_WHY ")");
	/* Lower priorities were not asked. */
	assert_int_equal(perch_registry_find(f->reg, "loadfail")->available, -1);
}

/* No name at all means auto-detect too. */
static void test_auto_detect_null_name(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	resolve(f, NULL);
	struct sel s = selectb(f, NULL, NULL, NULL);
	assert_string_equal(s.p->name, "good");
	free(s.explain);
	s = selectb(f, "", NULL, NULL);
	assert_string_equal(s.p->name, "good");
	free(s.explain);
}

static void test_auto_detect_skips_switched_off(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	setenv("PERCH_GOOD_AVAILABLE", "false", 1);
	resolve(f, NULL);
	struct sel s = selectb(f, "auto-detect", NULL, NULL);
	/* loadfail is available (it fails only at load): it is chosen. */
	assert_string_equal(s.p->name, "loadfail");
	ct_assert_msg(s.explain, "auto-detect chose backend \"loadfail\": first available by "
				 "plugin priority (skipped unavail: " ENGINE_WHY "; good: switched "
				 "off by --backend-good-available)");
}

/* Equal priorities are ordered by name, not by the order files were found:
 * twin and capsbad both have priority 5, dup has 0. */
static void test_auto_detect_ties_by_name(void **state)
{
	struct fx *f = *state;
	expect_valid(f, "dupflag_a");
	expect_valid(f, "twin_a");
	expect_valid(f, "caps_bad");
	resolve(f, NULL);
	struct sel s = selectb(f, "auto-detect", NULL, NULL);
	assert_string_equal(s.p->name, "capsbad");
	ct_assert_msg(s.explain, "auto-detect chose backend \"capsbad\": first available by "
				 "plugin priority");
}

static void test_auto_detect_list_from_config(void **state)
{
	struct fx *f = *state;
	open_selection(f);
	char *path = ct_write(tmp(f), "perch.conf",
			      "auto_detect = [ \"missing\", \"unavail\", \"capsbad\", \"good\" ];\n");
	char *err = NULL;
	perch_conf *conf = perch_conf_open(path, &err);
	assert_non_null(conf);
	resolve(f, conf);
	struct sel s = selectb(f, "auto-detect", conf, NULL);
	/* The list's order, not priority: capsbad before good. */
	assert_string_equal(s.p->name, "capsbad");
	ct_assert_msg(s.explain, "auto-detect chose backend \"capsbad\": first available by the "
				 "auto_detect list (skipped missing: not installed; unavail: "
				 ENGINE_WHY ")");
	perch_conf_free(conf);
	free(path);
}

static void test_auto_detect_nothing_available(void **state)
{
	struct fx *f = *state;
	expect_valid(f, "unavail");
	resolve(f, NULL);
	struct sel s = selectb(f, "auto-detect", NULL, NULL);
	assert_null(s.p);
	assert_int_equal(s.exit_code, 3);
	ct_assert_msg(s.err, "auto-detect found no available backend (by plugin priority): "
			     "unavail: " ENGINE_WHY);
}

static void test_auto_detect_nothing_installed(void **state)
{
	struct fx *f = *state;
	struct sel s = selectb(f, "auto-detect", NULL, NULL);
	assert_int_equal(s.exit_code, 3);
	ct_assert_msg(s.err, "auto-detect found no available backend (by plugin priority)");
}

static void test_auto_detect_list_nothing_installed(void **state)
{
	struct fx *f = *state;
	expect_valid(f, "good");
	resolve(f, NULL);
	char *path = ct_write(tmp(f), "perch.conf", "auto_detect = [ \"docker\", \"local\" ];\n");
	char *err = NULL;
	perch_conf *conf = perch_conf_open(path, &err);
	assert_non_null(conf);
	struct sel s = selectb(f, "auto-detect", conf, NULL);
	assert_int_equal(s.exit_code, 3);
	ct_assert_msg(s.err, "auto-detect found no available backend (by the auto_detect list): "
			     "docker: not installed; local: not installed");
	perch_conf_free(conf);
	free(path);
}

/* Availability is asked once and remembered. */
static void test_availability_cached(void **state)
{
	struct fx *f = *state;
	perch_plugin *p = expect_valid(f, "good");
	resolve(f, NULL);
	assert_true(perch_plugin_available(p, f->ctx));
	setenv("PERCH_GOOD_AVAILABLE", "false", 1);
	resolve(f, NULL);
	assert_true(perch_plugin_available(p, f->ctx));
	assert_int_equal(p->available, 1);
	assert_null(p->unavailable_why);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_wrong_major),
		T(test_abi2_only),
		T(test_short_struct_size),
		T(test_truncated_entry),
		T(test_misnamed_entry),
		T(test_hidden_entry),
		T(test_plain_library),
		T(test_required_call_missing),
		T(test_empty_name),
		T(test_bad_name),
		T(test_no_version),
		T(test_flag_outside_prefix),
		T(test_duplicate_flag_across_plugins),
		T(test_same_name_two_files),
		T(test_same_file_twice),
		T(test_undefined_symbol),
		T(test_text_file_named_so),
		T(test_empty_file_named_so),
		T(test_missing_file),
		T(test_good_plugin),
		T(test_capabilities_negotiated),
		T(test_malformed_capabilities_are_absent),
		T(test_no_get_capability),
		T(test_load_fails),
		T(test_load_fails_silently),
		T(test_free_unloads),
		T(test_host_table),
		T(test_host_log),
		T(test_scan_fixture_folder),
		T(test_scan_mixed_folder),
		T(test_scan_empty_folder),
		T(test_shadow_first_dir_wins),
		T(test_shadow_first_dir_wins_reversed),
		T(test_default_dirs),
		T(test_select_by_name),
		T(test_select_not_found),
		T(test_select_not_found_none_installed),
		T(test_select_not_available),
		T(test_select_not_available_no_reason),
		T(test_select_without_cli_context),
		T(test_auto_detect_by_priority),
		T(test_auto_detect_null_name),
		T(test_auto_detect_skips_switched_off),
		T(test_auto_detect_ties_by_name),
		T(test_auto_detect_list_from_config),
		T(test_auto_detect_nothing_available),
		T(test_auto_detect_nothing_installed),
		T(test_auto_detect_list_nothing_installed),
		T(test_availability_cached),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
