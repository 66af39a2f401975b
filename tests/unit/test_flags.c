/*
 * test_flags.c - the flag registry: declarations checked, values resolved
 * (command line > environment, first variable set wins > config file >
 * default), every kind parsed, every bad value reported with the flag and
 * where the value came from; the config file's backends.* keys checked
 * against the declared flags; and the SDK's perch_parse_duration.
 */
#include "config.h"

#include "core_test.h"

#include "conf.h"
#include "flags.h"
#include "loader.h"

#include <stdlib.h>
#include <string.h>

#define ENV_S1 "PERCH_TEST_X_S1"
#define ENV_S2 "PERCH_TEST_X_S2"
#define ENV_B "PERCH_TEST_X_B"
#define ENV_N "PERCH_TEST_X_N"
#define ENV_D "PERCH_TEST_X_D"
#define ENV_L "PERCH_TEST_X_L"
#define ENV_BACKEND "PERCH_TEST_BACKEND"

static const char *const all_env[] = {ENV_S1, ENV_S2, ENV_B, ENV_N, ENV_D, ENV_L, ENV_BACKEND};

static const char *const s_env[] = {ENV_S1, ENV_S2, NULL};
static const char *const b_env[] = {ENV_B, NULL};
static const char *const n_env[] = {ENV_N, NULL};
static const char *const d_env[] = {ENV_D, NULL};
static const char *const l_env[] = {ENV_L, NULL};

static const perch_flag f_s = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING,
			       .name = "backend-x-s", .env = s_env, .default_value = "def",
			       .usage = "a string"};
static const perch_flag f_b = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_BOOL,
			       .name = "backend-x-b", .env = b_env, .default_value = "false",
			       .usage = "a bool"};
static const perch_flag f_n = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
			       .name = "backend-x-n", .env = n_env, .usage = "an int"};
static const perch_flag f_d = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_DURATION,
			       .name = "backend-x-d", .env = d_env, .default_value = "1m30s",
			       .usage = "a duration"};
static const perch_flag f_l = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING_LIST,
			       .name = "backend-x-l", .env = l_env, .default_value = "a,b",
			       .usage = "a list"};
static const perch_flag *const x_flags[] = {&f_s, &f_b, &f_n, &f_d, &f_l, NULL};

#define X_PATH "/plugins/x.so"

/* A config file for plugin x, one setting per line (the line numbers are
 * part of the expected messages). */
static const char x_conf[] =
	"backends: {\n"          /* 1 */
	"  x: {\n"               /* 2 */
	"    s = \"conf\";\n"    /* 3 */
	"    b = true;\n"        /* 4 */
	"    n = 7;\n"           /* 5 */
	"    d = \"250ms\";\n"   /* 6 */
	"    l = [ \"p\", \"q\" ];\n" /* 7 */
	"  };\n"
	"};\n";

struct fx {
	char *dir;
	perch_cli *cli;
	perch_conf *conf;
	char *conf_path;
};

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof all_env / sizeof *all_env; i++)
		unsetenv(all_env[i]);
}

static int setup(void **state)
{
	struct fx *f = perch_xcalloc(1, sizeof *f);
	clear_env();
	f->dir = ct_tmpdir();
	f->cli = perch_cli_new();
	char *err = NULL;
	if (perch_cli_add_plugin(f->cli, "x", X_PATH, x_flags, &err) != 0)
		fail_msg("%s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	clear_env();
	perch_cli_free(f->cli);
	perch_conf_free(f->conf);
	free(f->conf_path);
	ct_rm_rf(f->dir);
	free(f);
	return 0;
}

/* Writes text as the config file and opens it into f->conf. */
static void use_conf(struct fx *f, const char *text)
{
	char *err = NULL;
	perch_conf_free(f->conf);
	free(f->conf_path);
	f->conf_path = ct_write(f->dir, "perch.conf", text);
	f->conf = perch_conf_open(f->conf_path, &err);
	if (f->conf == NULL)
		fail_msg("%s", err);
}

static void resolve_ok(struct fx *f)
{
	char *err = NULL;
	if (perch_cli_resolve(f->cli, f->conf, &err) != 0)
		fail_msg("resolve: %s", err);
}

static char *resolve_err(struct fx *f)
{
	char *err = NULL;
	assert_int_equal(perch_cli_resolve(f->cli, f->conf, &err), -1);
	assert_non_null(err);
	assert_null(strchr(err, '\n'));
	return err;
}

static const perch_flagdef *get(struct fx *f, const char *name)
{
	const perch_flagdef *d = perch_cli_find(f->cli, name);
	if (d == NULL)
		fail_msg("flag %s not registered", name);
	return d;
}

static char *at_line(struct fx *f, int line)
{
	return perch_xasprintf("%s:%d", f->conf_path, line);
}

/* --- resolution order --------------------------------------------------- */

static void test_registered(void **state)
{
	struct fx *f = *state;
	assert_int_equal(f->cli->n, 5);
	const perch_flagdef *d = get(f, "backend-x-s");
	assert_string_equal(d->owner, "x");
	assert_string_equal(d->owner_path, X_PATH);
	assert_string_equal(d->config_key, "backends.x.s");
	assert_int_equal(d->n_env, 2);
	assert_string_equal(d->env[0], ENV_S1);
	assert_string_equal(d->usage, "a string");
	assert_null(perch_cli_find(f->cli, "backend-x-nope"));
}

static void test_defaults(void **state)
{
	struct fx *f = *state;
	resolve_ok(f);
	const perch_flagdef *s = get(f, "backend-x-s");
	assert_int_equal(s->source, PERCH_SRC_DEFAULT);
	assert_string_equal(s->where, "default");
	assert_string_equal(s->str, "def");
	assert_int_equal(get(f, "backend-x-b")->source, PERCH_SRC_DEFAULT);
	assert_false(get(f, "backend-x-b")->b);
	/* No default, no value: unset. */
	const perch_flagdef *n = get(f, "backend-x-n");
	assert_int_equal(n->source, PERCH_SRC_NONE);
	assert_null(n->str);
	assert_null(n->where);
	assert_int_equal(get(f, "backend-x-d")->i, 90000);
	const perch_flagdef *l = get(f, "backend-x-l");
	assert_int_equal(l->n_list, 2);
	assert_string_equal(l->list[0], "a");
	assert_string_equal(l->list[1], "b");
}

static void test_config_overrides_default(void **state)
{
	struct fx *f = *state;
	use_conf(f, x_conf);
	resolve_ok(f);
	const perch_flagdef *s = get(f, "backend-x-s");
	assert_int_equal(s->source, PERCH_SRC_CONFIG);
	assert_string_equal(s->str, "conf");
	char *w = at_line(f, 3);
	assert_string_equal(s->where, w);
	free(w);
	assert_true(get(f, "backend-x-b")->b);
	assert_int_equal(get(f, "backend-x-n")->i, 7);
	assert_int_equal(get(f, "backend-x-n")->source, PERCH_SRC_CONFIG);
	assert_int_equal(get(f, "backend-x-d")->i, 250);
	const perch_flagdef *l = get(f, "backend-x-l");
	assert_int_equal(l->source, PERCH_SRC_CONFIG);
	assert_int_equal(l->n_list, 2);
	assert_string_equal(l->list[0], "p");
	assert_string_equal(l->list[1], "q");
}

static void test_env_overrides_config(void **state)
{
	struct fx *f = *state;
	use_conf(f, x_conf);
	setenv(ENV_S2, "env2", 1);
	setenv(ENV_B, "no", 1);
	setenv(ENV_N, "42", 1);
	setenv(ENV_D, "2s", 1);
	setenv(ENV_L, "u,v,w", 1);
	resolve_ok(f);
	const perch_flagdef *s = get(f, "backend-x-s");
	assert_int_equal(s->source, PERCH_SRC_ENV);
	assert_string_equal(s->str, "env2");
	assert_string_equal(s->where, "environment variable " ENV_S2);
	assert_false(get(f, "backend-x-b")->b);
	assert_int_equal(get(f, "backend-x-b")->source, PERCH_SRC_ENV);
	assert_int_equal(get(f, "backend-x-n")->i, 42);
	assert_int_equal(get(f, "backend-x-d")->i, 2000);
	const perch_flagdef *l = get(f, "backend-x-l");
	assert_int_equal(l->n_list, 3);
	assert_string_equal(l->list[2], "w");

	/* The first variable that is set wins, whatever the order of setting. */
	setenv(ENV_S1, "env1", 1);
	resolve_ok(f);
	s = get(f, "backend-x-s");
	assert_string_equal(s->str, "env1");
	assert_string_equal(s->where, "environment variable " ENV_S1);
	/* Set but empty still counts as set (as in Go's urfave/cli). */
	setenv(ENV_S1, "", 1);
	resolve_ok(f);
	assert_string_equal(get(f, "backend-x-s")->str, "");
	assert_int_equal(get(f, "backend-x-s")->source, PERCH_SRC_ENV);

	/* Unset again: back to the config file. */
	clear_env();
	resolve_ok(f);
	assert_string_equal(get(f, "backend-x-s")->str, "conf");
	assert_int_equal(get(f, "backend-x-n")->i, 7);
}

static void test_cli_overrides_env(void **state)
{
	struct fx *f = *state;
	char *err = NULL;
	use_conf(f, x_conf);
	setenv(ENV_S1, "env1", 1);
	setenv(ENV_N, "42", 1);
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-s", "cli", &err), 0);
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-n", "-3", &err), 0);
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-l", "a,b,c", &err), 0);
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-b", "false", &err), 0);
	resolve_ok(f);
	const perch_flagdef *s = get(f, "backend-x-s");
	assert_int_equal(s->source, PERCH_SRC_CLI);
	assert_string_equal(s->str, "cli");
	assert_string_equal(s->where, "--backend-x-s");
	assert_int_equal(get(f, "backend-x-n")->i, -3);
	const perch_flagdef *l = get(f, "backend-x-l");
	assert_int_equal(l->n_list, 3);
	assert_string_equal(l->list[0], "a");
	assert_string_equal(l->list[1], "b");
	assert_string_equal(l->list[2], "c");
	/* The config file said true; the command line's false wins. */
	assert_false(get(f, "backend-x-b")->b);
	/* Untouched flags still come from the config file. */
	assert_int_equal(get(f, "backend-x-d")->source, PERCH_SRC_CONFIG);

	/* A second value for the same option replaces the first. */
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-s", "again", &err), 0);
	resolve_ok(f);
	assert_string_equal(get(f, "backend-x-s")->str, "again");
}

static void test_set_arg_unknown(void **state)
{
	struct fx *f = *state;
	char *err = NULL;
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-nope", "1", &err), -1);
	ct_assert_msg(err, "unknown option --backend-x-nope");
}

/* perch's own flags resolve from their top-level config key. */
static void test_host_flag_from_config(void **state)
{
	struct fx *f = *state;
	static const char *const env[] = {ENV_BACKEND, NULL};
	static const perch_flag backend = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING,
					   .name = "backend", .env = env,
					   .default_value = "auto-detect", .usage = "u"};
	static const perch_flag config = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING,
					  .name = "config", .usage = "u"};
	perch_cli_add_host(f->cli, &backend, "backend");
	perch_cli_add_host(f->cli, &config, NULL);
	resolve_ok(f);
	assert_string_equal(get(f, "backend")->str, "auto-detect");
	assert_int_equal(get(f, "config")->source, PERCH_SRC_NONE);
	assert_string_equal(get(f, "backend")->owner, "perch");
	assert_null(get(f, "backend")->owner_path);

	char *path = ct_conf_fixture("good.conf");
	char *err = NULL;
	f->conf = perch_conf_open(path, &err);
	assert_non_null(f->conf);
	f->conf_path = path;
	resolve_ok(f);
	assert_string_equal(get(f, "backend")->str, "good");
	char *w = at_line(f, 2);
	assert_string_equal(get(f, "backend")->where, w);
	free(w);
	setenv(ENV_BACKEND, "local", 1);
	resolve_ok(f);
	assert_string_equal(get(f, "backend")->str, "local");
}

/* --- kinds and bad values ----------------------------------------------- */

static void test_bool_values(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *text;
		bool want;
	} cases[] = {
		{"true", true}, {"false", false}, {"1", true}, {"0", false},
		{"yes", true},  {"no", false},    {"on", true}, {"off", false},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		setenv(ENV_B, cases[i].text, 1);
		resolve_ok(f);
		if (get(f, "backend-x-b")->b != cases[i].want)
			fail_msg("bool \"%s\" read as %d", cases[i].text, !cases[i].want);
	}
	setenv(ENV_B, "maybe", 1);
	ct_assert_msg(resolve_err(f), "invalid value \"maybe\" for --backend-x-b (from "
				      "environment variable " ENV_B "): not a boolean (true or "
				      "false)");
}

static void test_int_values(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *text;
		int64_t want;
	} good[] = {
		{"0", 0}, {"10", 10}, {"-5", -5}, {"+7", 7},
		{"9223372036854775807", INT64_MAX}, {"-9223372036854775808", INT64_MIN},
	};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
		setenv(ENV_N, good[i].text, 1);
		resolve_ok(f);
		assert_int_equal(get(f, "backend-x-n")->i, good[i].want);
	}
	setenv(ENV_N, "ten", 1);
	ct_assert_msg(resolve_err(f), "invalid value \"ten\" for --backend-x-n (from environment "
				      "variable " ENV_N "): not an integer");
	static const char *const bad[] = {"", " 5", "5 ", "1.5", "0x10", "12abc"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		setenv(ENV_N, bad[i], 1);
		char *want = perch_xasprintf("invalid value \"%s\" for --backend-x-n (from "
					     "environment variable " ENV_N "): not an integer",
					     bad[i]);
		ct_assert_msg(resolve_err(f), want);
		free(want);
	}
	setenv(ENV_N, "99999999999999999999", 1);
	ct_assert_msg(resolve_err(f), "invalid value \"99999999999999999999\" for --backend-x-n "
				      "(from environment variable " ENV_N "): integer out of range");
	setenv(ENV_N, "-9223372036854775809", 1);
	ct_assert_msg(resolve_err(f), "invalid value \"-9223372036854775809\" for --backend-x-n "
				      "(from environment variable " ENV_N "): integer out of range");
}

static void test_duration_values(void **state)
{
	struct fx *f = *state;
	char *err = NULL;
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-d", "1m30s", &err), 0);
	resolve_ok(f);
	assert_int_equal(get(f, "backend-x-d")->i, 90000);
	assert_string_equal(get(f, "backend-x-d")->str, "1m30s");
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-d", "250ms", &err), 0);
	resolve_ok(f);
	assert_int_equal(get(f, "backend-x-d")->i, 250);
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-d", "10", &err), 0);
	ct_assert_msg(resolve_err(f), "invalid value \"10\" for --backend-x-d (from "
				      "--backend-x-d): not a duration (for example 30s, 1m30s, "
				      "250ms)");
}

/* A bad value in the config file is reported with file:line. */
static void test_bad_value_from_config(void **state)
{
	struct fx *f = *state;
	use_conf(f, "backends: {\n  x: {\n    d = \"10\";\n  };\n};\n");
	char *want = perch_xasprintf("invalid value \"10\" for --backend-x-d (from %s:3): not a "
				     "duration (for example 30s, 1m30s, 250ms)", f->conf_path);
	ct_assert_msg(resolve_err(f), want);
	free(want);
}

/* The config file's own types must match the flag's kind. */
static void test_config_wrong_types(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *setting;
		const char *want;
	} cases[] = {
		{"n = \"ten\";", "backends.x.n: expected an integer, got a string"},
		{"n = 1.5;", "backends.x.n: expected an integer, got a number"},
		{"b = \"yes\";", "backends.x.b: expected a boolean, got a string"},
		{"s = 3;", "backends.x.s: expected a string, got an integer"},
		{"d = 30;", "backends.x.d: expected a duration string such as \"30s\", got an "
			    "integer"},
		{"l = { a = 1; };", "backends.x.l: expected a list of strings, got a group"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *text = perch_xasprintf("backends: {\n  x: {\n    %s\n  };\n};\n",
					     cases[i].setting);
		use_conf(f, text);
		free(text);
		char *want = perch_xasprintf("%s:3: %s", f->conf_path, cases[i].want);
		ct_assert_msg(resolve_err(f), want);
		free(want);
	}
	/* A list with a non-string element. */
	use_conf(f, "backends: {\n  x: {\n    l = [ 1, 2 ];\n  };\n};\n");
	char *err = resolve_err(f);
	char *want = perch_xasprintf("%s:3: backends.x.l: expected a list of strings", f->conf_path);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("got: %s\nwant a message starting: %s", err, want);
	free(err);
	free(want);
}

static void test_list_values(void **state)
{
	struct fx *f = *state;
	/* A single string in the config file is split like the CLI's. */
	use_conf(f, "backends: { x: { l = \"m,n\"; }; };\n");
	resolve_ok(f);
	const perch_flagdef *l = get(f, "backend-x-l");
	assert_int_equal(l->n_list, 2);
	assert_string_equal(l->list[0], "m");
	assert_string_equal(l->list[1], "n");
	/* An empty config list is an empty list, not the default. */
	use_conf(f, "backends: { x: { l = [ ]; }; };\n");
	resolve_ok(f);
	assert_int_equal(get(f, "backend-x-l")->source, PERCH_SRC_CONFIG);
	assert_int_equal(get(f, "backend-x-l")->n_list, 0);
	/* One item, from the environment. */
	setenv(ENV_L, "solo", 1);
	resolve_ok(f);
	assert_int_equal(get(f, "backend-x-l")->n_list, 1);
	assert_string_equal(get(f, "backend-x-l")->list[0], "solo");
	/* Empty in the environment: no items. */
	setenv(ENV_L, "", 1);
	resolve_ok(f);
	assert_int_equal(get(f, "backend-x-l")->n_list, 0);
}

/* Plugins read resolved values through their host table. */
static void test_host_table_reads(void **state)
{
	struct fx *f = *state;
	char *err = NULL;
	use_conf(f, x_conf);
	assert_int_equal(perch_cli_set_arg(f->cli, "backend-x-s", "cli", &err), 0);
	resolve_ok(f);
	perch_registry reg = {.log_level = PERCH_LOG_INFO};
	perch_plugin p = {.reg = &reg};
	perch_host t;
	perch_host_table_init(&t, &p);
	assert_int_equal(t.struct_size, sizeof(perch_host));
	assert_int_equal(t.abi_major, PERCH_ABI_MAJOR);
	assert_string_equal(t.cli_string(f->cli, "backend-x-s"), "cli");
	assert_true(t.cli_bool(f->cli, "backend-x-b"));
	assert_int_equal(t.cli_int(f->cli, "backend-x-n"), 7);
	assert_int_equal(t.cli_duration_ms(f->cli, "backend-x-d"), 250);
	const char *const *items = NULL;
	assert_int_equal(t.cli_list(f->cli, "backend-x-l", &items), 2);
	assert_string_equal(items[0], "p");
	assert_true(t.cli_is_set(f->cli, "backend-x-s"));
	assert_true(t.cli_is_set(f->cli, "backend-x-n"));
	/* Wrong kind or undeclared: the zero value. */
	assert_null(t.cli_string(f->cli, "backend-x-n"));
	assert_int_equal(t.cli_int(f->cli, "backend-x-s"), 0);
	assert_false(t.cli_bool(f->cli, "backend-x-nope"));
	assert_int_equal(t.cli_list(f->cli, "backend-x-s", &items), 0);
	assert_null(items);
	assert_false(t.cli_is_set(f->cli, "backend-x-nope"));
	assert_null(t.cli_string(NULL, "backend-x-s"));

	/* A default is not "set"; an unset flag without default reads as zero. */
	perch_conf_free(f->conf);
	f->conf = NULL;
	perch_cli_remove_owner(f->cli, "x");
	assert_int_equal(perch_cli_add_plugin(f->cli, "x", X_PATH, x_flags, &err), 0);
	resolve_ok(f);
	assert_string_equal(t.cli_string(f->cli, "backend-x-s"), "def");
	assert_false(t.cli_is_set(f->cli, "backend-x-s"));
	assert_int_equal(t.cli_int(f->cli, "backend-x-n"), 0);
	assert_false(t.cli_is_set(f->cli, "backend-x-n"));
	assert_int_equal(t.cli_duration_ms(f->cli, "backend-x-d"), 90000);
	assert_null(t.get_capability(&t, "perch.anything/1"));
}

/* --- declarations -------------------------------------------------------- */

static char *add_err(perch_cli *cli, const char *plugin, const char *path,
		     const perch_flag *const *flags)
{
	char *err = NULL;
	size_t before = cli->n;
	assert_int_equal(perch_cli_add_plugin(cli, plugin, path, flags, &err), -1);
	assert_non_null(err);
	assert_null(strchr(err, '\n'));
	/* All or none: a refused declaration adds nothing. */
	assert_int_equal(cli->n, before);
	return err;
}

static void test_duplicate_across_plugins(void **state)
{
	/* "dup" may call its flag backend-dup-x-level (key x_level), and so
	 * may "dup-x" (key level): the naming rule alone does not prevent
	 * a clash. */
	static const perch_flag level = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
					 .name = "backend-dup-x-level", .usage = "u"};
	static const perch_flag *const flags[] = {&level, NULL};
	perch_cli *cli = perch_cli_new();
	char *err = NULL;
	assert_int_equal(perch_cli_add_plugin(cli, "dup", "/a/dup.so", flags, &err), 0);
	assert_string_equal(perch_cli_find(cli, "backend-dup-x-level")->config_key,
			    "backends.dup.x_level");
	ct_assert_msg(add_err(cli, "dup-x", "/b/dupx.so", flags),
		      "flag --backend-dup-x-level is declared by both dup (/a/dup.so) and "
		      "dup-x (/b/dupx.so)");
	ct_assert_msg(add_err(cli, "dup-x", NULL, flags),
		      "flag --backend-dup-x-level is declared by both dup (/a/dup.so) and "
		      "dup-x (?)");
	assert_string_equal(perch_cli_find(cli, "backend-dup-x-level")->owner, "dup");
	perch_cli_free(cli);
}

static void test_duplicate_within_plugin(void **state)
{
	static const perch_flag a = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
				     .name = "backend-x-a", .usage = "u"};
	static const perch_flag a2 = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_STRING,
				      .name = "backend-x-a", .usage = "u"};
	static const perch_flag *const flags[] = {&a, &a2, NULL};
	perch_cli *cli = perch_cli_new();
	ct_assert_msg(add_err(cli, "x", "/x.so", flags), "flag --backend-x-a is declared twice");
	perch_cli_free(cli);
}

static void test_malformed_flags(void **state)
{
	static const perch_flag ok = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
				      .name = "backend-x-ok", .usage = "u"};
	static const perch_flag upper = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
					 .name = "backend-x-Level", .usage = "u"};
	static const perch_flag noname = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT, .usage = "u"};
	static const perch_flag dash = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
					.name = "-backend-x-a", .usage = "u"};
	static const perch_flag under = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
					 .name = "backend-x-a.b", .usage = "u"};
	static const perch_flag other = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
					 .name = "backend-y-level", .usage = "u"};
	static const perch_flag prefix_only = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
					       .name = "backend-x-", .usage = "u"};
	static const perch_flag longer = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
					  .name = "backend-xy-level", .usage = "u"};
	static const perch_flag kind0 = {PERCH_FLAG_INIT, .kind = 0, .name = "backend-x-k",
					 .usage = "u"};
	static const perch_flag kind9 = {PERCH_FLAG_INIT, .kind = 9, .name = "backend-x-k",
					 .usage = "u"};
	static const perch_flag bad_int = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
					   .name = "backend-x-n", .default_value = "ten",
					   .usage = "u"};
	static const perch_flag bad_dur = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_DURATION,
					   .name = "backend-x-d", .default_value = "10",
					   .usage = "u"};
	static const perch_flag bad_bool = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_BOOL,
					    .name = "backend-x-b", .default_value = "maybe",
					    .usage = "u"};
	static const perch_flag small = {.struct_size = 8, .kind = PERCH_FLAG_INT,
					 .name = "backend-x-small"};
	static const struct {
		const perch_flag *flag;
		const char *want;
	} cases[] = {
		{&upper, "flag #1 has an invalid name \"backend-x-Level\" (want lower-case letters, "
			 "digits, '-' and '_')"},
		{&noname, "flag #1 has an invalid name \"(null)\" (want lower-case letters, digits, "
			  "'-' and '_')"},
		{&dash, "flag #1 has an invalid name \"-backend-x-a\" (want lower-case letters, "
			"digits, '-' and '_')"},
		{&under, "flag #1 has an invalid name \"backend-x-a.b\" (want lower-case letters, "
			 "digits, '-' and '_')"},
		{&other, "flag --backend-y-level must be named backend-x-<key>"},
		{&prefix_only, "flag --backend-x- must be named backend-x-<key>"},
		{&longer, "flag --backend-xy-level must be named backend-x-<key>"},
		{&kind0, "flag --backend-x-k has unknown kind 0"},
		{&kind9, "flag --backend-x-k has unknown kind 9"},
		{&bad_int, "flag --backend-x-n has a bad default \"ten\": not an integer"},
		{&bad_dur, "flag --backend-x-d has a bad default \"10\": not a duration (for "
			   "example 30s, 1m30s, 250ms)"},
		{&bad_bool, "flag --backend-x-b has a bad default \"maybe\": not a boolean (true "
			    "or false)"},
		{&small, "flag #1 has struct_size 8, smaller than the v1.0 size 40"},
	};
	perch_cli *cli = perch_cli_new();
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		/* The good flag first: it must not be added either. */
		const perch_flag *const flags[] = {&ok, cases[i].flag, NULL};
		ct_assert_msg(add_err(cli, "x", "/x.so", flags), cases[i].want);
	}
	perch_cli_free(cli);
}

static void test_no_flags(void **state)
{
	static const perch_flag *const none[] = {NULL};
	perch_cli *cli = perch_cli_new();
	char *err = NULL;
	assert_int_equal(perch_cli_add_plugin(cli, "x", "/x.so", NULL, &err), 0);
	assert_int_equal(perch_cli_add_plugin(cli, "x", "/x.so", none, &err), 0);
	assert_int_equal(cli->n, 0);
	assert_null(err);
	perch_cli_free(cli);
}

static void test_remove_owner(void **state)
{
	struct fx *f = *state;
	static const perch_flag y = {PERCH_FLAG_INIT, .kind = PERCH_FLAG_INT,
				     .name = "backend-y-n", .usage = "u"};
	static const perch_flag *const yf[] = {&y, NULL};
	char *err = NULL;
	assert_int_equal(perch_cli_add_plugin(f->cli, "y", "/y.so", yf, &err), 0);
	assert_int_equal(f->cli->n, 6);
	perch_cli_remove_owner(f->cli, "x");
	assert_int_equal(f->cli->n, 1);
	assert_string_equal(f->cli->defs[0].name, "backend-y-n");
	/* x may declare its flags again now. */
	assert_int_equal(perch_cli_add_plugin(f->cli, "x", X_PATH, x_flags, &err), 0);
	assert_int_equal(f->cli->n, 6);
}

static void test_config_key(void **state)
{
	static const struct {
		const char *plugin, *flag, *want;
	} cases[] = {
		{"docker", "backend-docker-stop-timeout", "stop_timeout"},
		{"x", "backend-x-a", "a"},
		{"dup", "backend-dup-x-level", "x_level"},
		{"dup-x", "backend-dup-x-level", "level"},
		{"x", "backend-xy-z", NULL},
		{"x", "backend-x-", NULL},
		{"x", "backend-x", NULL},
		{"x", "other-x-a", NULL},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char *key = perch_flag_config_key(cases[i].plugin, cases[i].flag);
		if (cases[i].want == NULL) {
			if (key != NULL)
				fail_msg("%s of %s: got \"%s\", want none", cases[i].flag,
					 cases[i].plugin, key);
		} else {
			if (key == NULL || strcmp(key, cases[i].want) != 0)
				fail_msg("%s of %s: got \"%s\", want \"%s\"", cases[i].flag,
					 cases[i].plugin, key ? key : "(none)", cases[i].want);
		}
		free(key);
	}
}

static void test_kind_names(void **state)
{
	assert_string_equal(perch_flag_kind_name(PERCH_FLAG_STRING), "string");
	assert_string_equal(perch_flag_kind_name(PERCH_FLAG_BOOL), "bool");
	assert_string_equal(perch_flag_kind_name(PERCH_FLAG_INT), "int");
	assert_string_equal(perch_flag_kind_name(PERCH_FLAG_DURATION), "duration");
	assert_string_equal(perch_flag_kind_name(PERCH_FLAG_STRING_LIST), "list");
	assert_string_equal(perch_flag_kind_name(77), "unknown");
}

/* --- backends.* keys in the config file --------------------------------- */

static char *check_err(struct fx *f)
{
	char *err = NULL;
	assert_int_equal(perch_cli_check_conf(f->cli, f->conf, &err), -1);
	assert_non_null(err);
	assert_null(strchr(err, '\n'));
	return err;
}

static void test_check_conf_accepts_declared_keys(void **state)
{
	struct fx *f = *state;
	char *err = NULL;
	assert_int_equal(perch_cli_check_conf(f->cli, NULL, &err), 0);
	use_conf(f, x_conf);
	assert_int_equal(perch_cli_check_conf(f->cli, f->conf, &err), 0);
	use_conf(f, "backend = \"x\";\n");
	assert_int_equal(perch_cli_check_conf(f->cli, f->conf, &err), 0);
	use_conf(f, "backends: { };\n");
	assert_int_equal(perch_cli_check_conf(f->cli, f->conf, &err), 0);
	assert_null(err);
}

static void test_check_conf_unknown_key(void **state)
{
	struct fx *f = *state;
	use_conf(f, "backends: {\n  x: {\n    s = \"a\";\n    stop_timeout = \"3s\";\n  };\n};\n");
	char *want = perch_xasprintf("%s:4: unknown key \"backends.x.stop_timeout\": backend x "
				     "has no flag --backend-x-stop-timeout", f->conf_path);
	ct_assert_msg(check_err(f), want);
	free(want);
}

static void test_check_conf_unknown_backend(void **state)
{
	struct fx *f = *state;
	use_conf(f, "backends: {\n  x: { s = \"a\"; };\n  dokcer: {\n    stop_timeout = \"3s\";\n"
		    "  };\n};\n");
	char *want = perch_xasprintf("%s:4: backends.dokcer.stop_timeout: no installed backend "
				     "\"dokcer\" declares flags", f->conf_path);
	ct_assert_msg(check_err(f), want);
	free(want);
}

static void test_check_conf_backend_not_a_group(void **state)
{
	struct fx *f = *state;
	use_conf(f, "backends: {\n  x = 3;\n};\n");
	char *want = perch_xasprintf("%s:2: backends.x: expected a group, got an integer",
				     f->conf_path);
	ct_assert_msg(check_err(f), want);
	free(want);
}

/*
 * flags.h promises that perch_cli_check_conf checks every backends.* key
 * "with the right libconfig type".  A wrong type must be reported even when
 * the environment overrides the setting (resolution never looks at the
 * file then): a config file that is wrong must not pass because of the
 * environment perch happened to run in.
 */
static void test_check_conf_wrong_type_under_env_override(void **state)
{
	struct fx *f = *state;
	use_conf(f, "backends: {\n  x: {\n    n = \"ten\";\n  };\n};\n");
	setenv(ENV_N, "5", 1);
	resolve_ok(f);
	assert_int_equal(get(f, "backend-x-n")->i, 5);
	char *err = NULL;
	if (perch_cli_check_conf(f->cli, f->conf, &err) == 0)
		fail_msg("backends.x.n = \"ten\" (a string for an int flag) passed the check");
	char *want = perch_xasprintf("%s:3: backends.x.n: expected an integer, got a string",
				     f->conf_path);
	ct_assert_msg(err, want);
	free(want);
}

/* --- perch_parse_duration (SDK) ----------------------------------------- */

static void test_parse_duration_good(void **state)
{
	static const struct {
		const char *text;
		int64_t ms;
	} cases[] = {
		{"0", 0},
		{"-0", 0},
		{"+0", 0},
		{"1h2m3s", 3723000},
		{"2h45m", 9900000},
		{"1.5s", 1500},
		{"1.5h", 5400000},
		{".5s", 500},
		{"300ms", 300},
		{"1ms", 1},
		{"1us", 0},
		{"1500us", 1},
		{"1\xc2\xb5s", 0}, /* micro sign */
		{"2000000ns", 2},
		{"-1s", -1000},
		{"-1.5ms", -1},
		{"+5s", 5000},
		{"1m30s", 90000},
		{"30s", 30000},
		{"0s", 0},
		{"1h0m0s", 3600000},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int64_t ms = 12345;
		if (!perch_parse_duration(cases[i].text, &ms))
			fail_msg("\"%s\" refused", cases[i].text);
		if (ms != cases[i].ms)
			fail_msg("\"%s\": got %lld ms, want %lld", cases[i].text, (long long)ms,
				 (long long)cases[i].ms);
	}
}

static void test_parse_duration_bad(void **state)
{
	static const char *const cases[] = {
		"", "10", "-10", "1x", "s", "ms", "-", "+", "1s2", "1 s", " 1s", "1s ",
		"1e3s", "1.s.", "abc", "1d", "1S", "1sec", "99999999999h",
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int64_t ms = 12345;
		if (perch_parse_duration(cases[i], &ms))
			fail_msg("\"%s\" accepted as %lld ms", cases[i], (long long)ms);
		/* A refused text leaves the output alone. */
		assert_int_equal(ms, 12345);
	}
	int64_t ms = 0;
	assert_false(perch_parse_duration(NULL, &ms));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_registered),
		T(test_defaults),
		T(test_config_overrides_default),
		T(test_env_overrides_config),
		T(test_cli_overrides_env),
		T(test_set_arg_unknown),
		T(test_host_flag_from_config),
		T(test_bool_values),
		T(test_int_values),
		T(test_duration_values),
		T(test_bad_value_from_config),
		T(test_config_wrong_types),
		T(test_list_values),
		T(test_host_table_reads),
		cmocka_unit_test(test_duplicate_across_plugins),
		cmocka_unit_test(test_duplicate_within_plugin),
		cmocka_unit_test(test_malformed_flags),
		cmocka_unit_test(test_no_flags),
		T(test_remove_owner),
		cmocka_unit_test(test_config_key),
		cmocka_unit_test(test_kind_names),
		T(test_check_conf_accepts_declared_keys),
		T(test_check_conf_unknown_key),
		T(test_check_conf_unknown_backend),
		T(test_check_conf_backend_not_a_group),
		T(test_check_conf_wrong_type_under_env_override),
		cmocka_unit_test(test_parse_duration_good),
		cmocka_unit_test(test_parse_duration_bad),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
