/*
 * fuzz_conf.c - the config file (host/conf.c) and flag resolution
 * (host/flags.c) as `perch` start-up runs them.
 *
 * Input: a config file, optionally followed by a line "%%" and then
 * command-line values, one "name=value" per line (the name without the
 * dashes).  The file goes through perch_conf_open; the flags of perch and
 * of two fake plugins ("fake": one flag of every kind, and "other-one")
 * through perch_cli_set_arg, perch_cli_resolve and perch_cli_check_conf,
 * in app.c's order.
 *
 * Oracle: no crash or leak; every refusal is one non-empty line; a value
 * that resolved has the kind's typed form (a bool reads back the same, an
 * integer prints back as its text, a list has as many items as commas + 1)
 * and says where it came from.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "flags.h"
#include "fuzz.h"
#include "util.h"

static const char *const fake_name_env[] = {"PERCH_FUZZ_FAKE_NAME", NULL};

static const perch_flag fake_flags_data[] = {
	{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "backend-fake-name", fake_name_env, "x", "string"},
	{PERCH_FLAG_INIT, PERCH_FLAG_BOOL, "backend-fake-on", NULL, "false", "bool"},
	{PERCH_FLAG_INIT, PERCH_FLAG_INT, "backend-fake-count", NULL, "3", "int"},
	{PERCH_FLAG_INIT, PERCH_FLAG_DURATION, "backend-fake-stop-timeout", NULL, "10s", "dur"},
	{PERCH_FLAG_INIT, PERCH_FLAG_STRING_LIST, "backend-fake-hosts", NULL, NULL, "list"},
	{PERCH_FLAG_INIT, PERCH_FLAG_INT, "backend-other-one-level", NULL, NULL, "int"},
};
static const perch_flag *const fake_flags[] = {
	&fake_flags_data[0], &fake_flags_data[1], &fake_flags_data[2],
	&fake_flags_data[3], &fake_flags_data[4], NULL,
};
static const perch_flag *const other_flags[] = {&fake_flags_data[5], NULL};

static const perch_flag host_flags[] = {
	{PERCH_FLAG_INIT, PERCH_FLAG_STRING, "backend", NULL, "auto-detect", "backend"},
	{PERCH_FLAG_INIT, PERCH_FLAG_DURATION, "timeout", NULL, NULL, "timeout"},
	{PERCH_FLAG_INIT, PERCH_FLAG_BOOL, "json", NULL, NULL, "json"},
};

/*
 * libconfig 1.5 (Debian bookworm) leaks in its scanner when a syntax error
 * follows a string token: `a "x";` loses the string buffer (strbuf_append),
 * `a = 3sy""e;` a string (libconfig_yylex).  A few bytes per bad file, in
 * libconfig, whatever its caller does; they must not drown the fuzzer.
 * LeakSanitizer asks for this hook.  Setting nodes are not suppressed, so
 * a missing config_destroy in perch is still caught.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

static void check_one_line(const char *err, const char *what)
{
	FUZZ_CHECK(err != NULL && err[0] != '\0', "%s failed without a message", what);
	/* A value quoted in a message may hold anything; the message must
	 * still be one line, or a log reader splits it. */
	FUZZ_CHECK(strpbrk(err, "\n\r") == NULL, "%s: message is not one line: %s", what, err);
}

/* The config text goes to a file: perch_conf_open takes a path.  One file
 * per process, rewritten for every input, removed at exit. */
static char conf_file[64];

static void remove_conf(void)
{
	unlink(conf_file);
}

static const char *conf_path(void)
{
	if (conf_file[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		snprintf(conf_file, sizeof conf_file, "%s/perch-fuzz-conf.XXXXXX",
			 tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
		int fd = mkstemp(conf_file);
		FUZZ_CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
		close(fd);
		atexit(remove_conf);
	}
	return conf_file;
}

static void write_conf(const uint8_t *data, size_t n)
{
	int fd = open(conf_path(), O_WRONLY | O_TRUNC | O_CLOEXEC);
	FUZZ_CHECK(fd >= 0, "open %s: %s", conf_path(), strerror(errno));
	FUZZ_CHECK(perch_write_all(fd, data, n) == 0, "write: %s", strerror(errno));
	close(fd);
}

static void apply_args(perch_cli *cli, const char *p, const char *end)
{
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = nl ? nl : end;
		const char *eq = memchr(p, '=', (size_t)(line_end - p));
		if (eq) {
			char *name = perch_xstrndup(p, (size_t)(eq - p));
			char *value = perch_xstrndup(eq + 1, (size_t)(line_end - eq - 1));
			char *err = NULL;
			/* An unknown name is refused; the message quotes argv
			 * as typed (app.c reports unknown options itself). */
			if (perch_cli_set_arg(cli, name, value, &err) != 0) {
				FUZZ_CHECK(err != NULL && err[0], "set_arg: no message");
				free(err);
			}
			free(name);
			free(value);
		}
		p = line_end + (nl != NULL);
	}
}

static void check_resolved(const perch_cli *cli)
{
	for (size_t i = 0; i < cli->n; i++) {
		const perch_flagdef *d = &cli->defs[i];
		if (d->source == PERCH_SRC_NONE) {
			FUZZ_CHECK(d->where == NULL, "--%s unset but has a source", d->name);
			continue;
		}
		FUZZ_CHECK(d->where != NULL && d->str != NULL, "--%s resolved without text",
			   d->name);
		switch (d->kind) {
		case PERCH_FLAG_BOOL: {
			perch_flagdef again = {.kind = PERCH_FLAG_BOOL};
			char *why = perch_flag_parse(&again, d->b ? "true" : "false");
			FUZZ_CHECK(why == NULL && again.b == d->b, "--%s bool", d->name);
			free(again.str);
			break;
		}
		case PERCH_FLAG_INT: {
			char buf[32];
			snprintf(buf, sizeof buf, "%lld", (long long)d->i);
			/* strtoll accepts "+5" and "007": compare values. */
			FUZZ_CHECK(strtoll(d->str, NULL, 10) == d->i, "--%s: \"%s\" read as %s",
				   d->name, d->str, buf);
			break;
		}
		case PERCH_FLAG_STRING_LIST: {
			if (d->source == PERCH_SRC_CONFIG && d->str[0] == '\0')
				break; /* a libconfig list: items came from the file */
			size_t commas = 0;
			for (const char *c = d->str; *c; c++)
				commas += *c == ',';
			size_t want = d->str[0] ? commas + 1 : 0;
			FUZZ_CHECK(d->n_list == want, "--%s: \"%s\" gave %zu items", d->name, d->str,
				   d->n_list);
			break;
		}
		default:
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Resolution reads the environment: keep it out of the input's way. */
	unsetenv("PERCH_FUZZ_FAKE_NAME");

	const char *text = (const char *)data, *end = text + size, *args = end;
	for (const char *p = text; p + 3 <= end; p++)
		if (p[0] == '%' && p[1] == '%' && p[2] == '\n' && (p == text || p[-1] == '\n')) {
			args = p;
			break;
		}
	write_conf(data, (size_t)(args - text));

	perch_cli *cli = perch_cli_new();
	for (size_t i = 0; i < sizeof host_flags / sizeof *host_flags; i++)
		perch_cli_add_host(cli, &host_flags[i], i == 0 ? "backend" : NULL);
	char *err = NULL;
	FUZZ_CHECK(perch_cli_add_plugin(cli, "fake", "/fuzz/fake.so", fake_flags, &err) == 0,
		   "fake flags refused: %s", err);
	FUZZ_CHECK(perch_cli_add_plugin(cli, "other-one", "/fuzz/other.so", other_flags, &err) ==
			   0,
		   "other flags refused: %s", err);

	perch_conf *conf = perch_conf_open(conf_path(), &err);
	if (conf == NULL) {
		check_one_line(err, "conf_open");
		free(err);
		perch_cli_free(cli);
		return 0;
	}
	FUZZ_CHECK(conf->path != NULL, "conf without a path");
	for (size_t i = 0; i < conf->n_plugin_path; i++)
		FUZZ_CHECK(conf->plugin_path[i] != NULL, "plugin_path[%zu] NULL", i);
	for (size_t i = 0; i < conf->n_auto_detect; i++)
		FUZZ_CHECK(conf->auto_detect[i] != NULL, "auto_detect[%zu] NULL", i);

	if (args < end)
		apply_args(cli, args + 3, end);
	if (perch_cli_resolve(cli, conf, &err) != 0) {
		check_one_line(err, "resolve");
		free(err);
	} else {
		check_resolved(cli);
		if (perch_cli_check_conf(cli, conf, &err) != 0) {
			check_one_line(err, "check_conf");
			free(err);
		}
	}
	perch_conf_free(conf);
	perch_cli_free(cli);
	return 0;
}
