/*
 * test_conf.c - perch.conf: which file is read, what it may contain, and
 * the one-line file:line errors for everything it may not.
 */
#include "config.h"

#include "core_test.h"

#include "conf.h"

#include <stdlib.h>
#include <string.h>

/* Every test runs with PERCH_CONFIG unset and a private temp folder. */
static int setup(void **state)
{
	unsetenv("PERCH_CONFIG");
	*state = ct_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	unsetenv("PERCH_CONFIG");
	ct_rm_rf(*state);
	return 0;
}

/* Opens path, which must fail, and returns the error (malloc'd). */
static char *open_err(const char *path)
{
	char *err = NULL;
	perch_conf *c = perch_conf_open(path, &err);
	if (c != NULL) {
		perch_conf_free(c);
		fail_msg("%s: opened, but an error was expected", path);
	}
	assert_non_null(err);
	assert_null(strchr(err, '\n'));
	return err;
}

/* Writes text as dir/perch.conf and returns the error opening it. */
static char *write_err(const char *dir, const char *text, char **path)
{
	*path = ct_write(dir, "perch.conf", text);
	return open_err(*path);
}

static void test_good_file(void **state)
{
	char *path = ct_conf_fixture("good.conf");
	char *err = NULL;
	perch_conf *c = perch_conf_open(path, &err);
	assert_null(err);
	assert_non_null(c);
	assert_string_equal(c->path, path);
	assert_string_equal(c->backend, "good");
	assert_int_equal(c->n_plugin_path, 2);
	assert_string_equal(c->plugin_path[0], "/opt/perch/plugins");
	assert_string_equal(c->plugin_path[1], "/usr/lib/perch/extra");
	assert_int_equal(c->n_auto_detect, 2);
	assert_string_equal(c->auto_detect[0], "docker");
	assert_string_equal(c->auto_detect[1], "local");
	assert_non_null(c->backends);
	assert_int_equal(config_setting_length(c->backends), 1);
	config_setting_t *count = config_lookup(&c->cfg, "backends.good.count");
	assert_non_null(count);
	assert_int_equal(config_setting_get_int(count), 3);
	/* perch_conf_where names the file and the setting's line. */
	char *where = perch_conf_where(c, count);
	char *want = perch_xasprintf("%s:7", path);
	assert_string_equal(where, want);
	free(where);
	free(want);
	assert_string_equal(perch_conf_type_name(count), "an integer");
	perch_conf_free(c);
	free(path);
}

static void test_empty_file(void **state)
{
	char *path = ct_write(*state, "empty.conf", "# nothing but a comment\n");
	char *err = NULL;
	perch_conf *c = perch_conf_open(path, &err);
	assert_non_null(c);
	assert_null(err);
	assert_string_equal(c->path, path);
	assert_null(c->backend);
	assert_int_equal(c->n_plugin_path, 0);
	assert_int_equal(c->n_auto_detect, 0);
	assert_null(c->backends);
	perch_conf_free(c);
	free(path);
}

/* `plugin_path = "/x";` is an easy thing to write and means a list of one. */
static void test_lone_string_is_a_list(void **state)
{
	char *path = ct_write(*state, "perch.conf",
			      "plugin_path = \"/x\";\nauto_detect = \"local\";\n");
	char *err = NULL;
	perch_conf *c = perch_conf_open(path, &err);
	assert_non_null(c);
	assert_int_equal(c->n_plugin_path, 1);
	assert_string_equal(c->plugin_path[0], "/x");
	assert_int_equal(c->n_auto_detect, 1);
	assert_string_equal(c->auto_detect[0], "local");
	perch_conf_free(c);
	free(path);
}

static void test_syntax_error(void **state)
{
	char *path = ct_conf_fixture("syntax.conf");
	char *want = perch_xasprintf("%s:4: syntax error", path);
	ct_assert_msg(open_err(path), want);
	free(want);
	free(path);
}

static void test_unknown_top_level_key(void **state)
{
	char *path = ct_conf_fixture("unknown-key.conf");
	char *want = perch_xasprintf("%s:3: unknown key \"plugins\" (known: backend, "
				     "plugin_path, auto_detect, backends)", path);
	ct_assert_msg(open_err(path), want);
	free(want);
	free(path);
}

static void test_backend_not_a_string(void **state)
{
	char *path, *want;
	char *err = write_err(*state, "# perch\nbackend = 3;\n", &path);
	want = perch_xasprintf("%s:2: backend: expected a string, got an integer", path);
	ct_assert_msg(err, want);
	free(want);
	free(path);
}

static void test_plugin_path_not_a_list(void **state)
{
	char *path, *want;
	char *err = write_err(*state, "plugin_path = 3;\n", &path);
	want = perch_xasprintf("%s:1: plugin_path: expected a list of strings, got an integer",
			       path);
	ct_assert_msg(err, want);
	free(want);
	free(path);
}

static void test_plugin_path_group(void **state)
{
	char *path, *want;
	char *err = write_err(*state, "plugin_path = { a = \"/x\"; };\n", &path);
	want = perch_xasprintf("%s:1: plugin_path: expected a list of strings, got a group",
			       path);
	ct_assert_msg(err, want);
	free(want);
	free(path);
}

static void test_plugin_path_array_of_ints(void **state)
{
	char *path, *want;
	char *err = write_err(*state, "plugin_path = [ 1 ];\n", &path);
	want = perch_xasprintf("%s:1: plugin_path[0]: expected a string, got an integer", path);
	ct_assert_msg(err, want);
	free(want);
	free(path);
}

/* A list may mix types; the second element is the bad one, on line 3. */
static void test_auto_detect_list_bad_element(void **state)
{
	char *path, *want;
	char *err = write_err(*state, "auto_detect = (\n  \"docker\",\n  true\n);\n", &path);
	want = perch_xasprintf("%s:3: auto_detect[1]: expected a string, got a boolean", path);
	ct_assert_msg(err, want);
	free(want);
	free(path);
}

static void test_backends_not_a_group(void **state)
{
	char *path, *want;
	char *err = write_err(*state, "backend = \"x\";\nbackends = \"docker\";\n", &path);
	want = perch_xasprintf("%s:2: backends: expected a group, got a string", path);
	ct_assert_msg(err, want);
	free(want);
	free(path);
}

static void test_missing_explicit_file(void **state)
{
	char *path = perch_xasprintf("%s/does-not-exist.conf", (char *)*state);
	char *want = perch_xasprintf("%s: cannot read config file: No such file or directory",
				     path);
	ct_assert_msg(open_err(path), want);
	free(want);
	free(path);
}

/* A symlink to nowhere is a missing file, reported under the name given. */
static void test_dangling_symlink(void **state)
{
	char *path = perch_xasprintf("%s/dangling.conf", (char *)*state);
	assert_int_equal(symlink("/nonexistent/perch.conf", path), 0);
	char *want = perch_xasprintf("%s: cannot read config file: No such file or directory",
				     path);
	ct_assert_msg(open_err(path), want);
	free(want);
	free(path);
}

static void test_directory_as_config(void **state)
{
	const char *dir = *state;
	char *want = perch_xasprintf("%s: cannot read config file: is a directory", dir);
	ct_assert_msg(open_err(dir), want);
	free(want);
}

/* No --config, no PERCH_CONFIG: the sysconfdir default, which may be absent. */
static void test_missing_default_is_fine(void **state)
{
	const char *def = perch_conf_default_path();
	assert_non_null(strstr(def, "/perch/perch.conf"));
	if (access(def, F_OK) == 0)
		fail_msg("%s exists on this machine, so the absent-default case cannot be "
			 "tested here", def);
	char *err = NULL;
	perch_conf *c = perch_conf_open(NULL, &err);
	assert_non_null(c);
	assert_null(err);
	assert_null(c->path);
	assert_null(c->backend);
	assert_null(c->backends);
	perch_conf_free(c);
	/* An empty explicit path means "not given", too. */
	c = perch_conf_open("", &err);
	assert_non_null(c);
	assert_null(c->path);
	perch_conf_free(c);
}

static void test_perch_config_env(void **state)
{
	char *path = ct_write(*state, "env.conf", "backend = \"from-env\";\n");
	setenv("PERCH_CONFIG", path, 1);
	char *err = NULL;
	perch_conf *c = perch_conf_open(NULL, &err);
	assert_non_null(c);
	assert_string_equal(c->path, path);
	assert_string_equal(c->backend, "from-env");
	perch_conf_free(c);

	/* An explicit file wins over the environment. */
	char *other = ct_write(*state, "explicit.conf", "backend = \"explicit\";\n");
	c = perch_conf_open(other, &err);
	assert_non_null(c);
	assert_string_equal(c->backend, "explicit");
	perch_conf_free(c);
	free(other);
	free(path);
}

/* A file named by PERCH_CONFIG must exist: only the default may be absent. */
static void test_perch_config_env_missing(void **state)
{
	char *path = perch_xasprintf("%s/nope.conf", (char *)*state);
	setenv("PERCH_CONFIG", path, 1);
	char *want = perch_xasprintf("%s: cannot read config file: No such file or directory",
				     path);
	ct_assert_msg(open_err(NULL), want);
	free(want);
	free(path);
}

/* PERCH_CONFIG="" is the same as unset. */
static void test_perch_config_env_empty(void **state)
{
	if (access(perch_conf_default_path(), F_OK) == 0)
		fail_msg("%s exists on this machine", perch_conf_default_path());
	setenv("PERCH_CONFIG", "", 1);
	char *err = NULL;
	perch_conf *c = perch_conf_open(NULL, &err);
	assert_non_null(c);
	assert_null(c->path);
	perch_conf_free(c);
}

static void test_free_null(void **state)
{
	perch_conf_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lone_string_is_a_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_top_level_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backend_not_a_string, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plugin_path_not_a_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plugin_path_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plugin_path_array_of_ints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_auto_detect_list_bad_element, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_backends_not_a_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_explicit_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dangling_symlink, setup, teardown),
		cmocka_unit_test_setup_teardown(test_directory_as_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_default_is_fine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_perch_config_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_perch_config_env_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_perch_config_env_empty, setup, teardown),
		cmocka_unit_test(test_free_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
