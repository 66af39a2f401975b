/*
 * hosttable.c - the perch_host table plugins call into.  Each plugin gets its
 * own copy whose host_data points at its perch_plugin, so log lines carry
 * the plugin's name.  Every function here is thread-safe: contexts are
 * thread-safe, the CLI registry is read-only once resolved, and log lines
 * are written with one write(2) each.
 */
#include "config.h"

#include "ctx.h"
#include "flags.h"
#include "loader.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void host_log(const perch_host *host, int32_t level, const char *message)
{
	const perch_plugin *p = host->host_data;
	static const char *const names[] = {"error", "warning", "info", "debug"};
	/* An unknown level is treated as the least important one. */
	if (level < PERCH_LOG_ERROR || level > PERCH_LOG_DEBUG)
		level = PERCH_LOG_DEBUG;
	if (level > p->reg->log_level)
		return;
	char line[1400];
	int n = snprintf(line, sizeof line, "perch: %s: %s: %s", p->name ? p->name : "plugin",
			 names[level], message ? message : "");
	if (n < 0)
		return;
	if ((size_t)n >= sizeof line - 1)
		n = sizeof line - 2;
	/* One line, whatever the plugin sent: trailing newlines dropped,
	 * inner ones and other control characters made visible as spaces. */
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t')
			line[i] = ' ';
	line[n++] = '\n';
	/* One write per line: concurrent plugin threads never interleave. */
	perch_write_all(2, line, (size_t)n);
}

static bool host_cancelled(const perch_ctx *c) { return c ? perch_ctx_cancelled(c) : false; }
static int host_cancel_fd(const perch_ctx *c) { return c ? perch_ctx_cancel_fd(c) : -1; }
static int64_t host_deadline(const perch_ctx *c) { return c ? perch_ctx_deadline_ms(c) : INT64_MAX; }
static const void *host_value(const perch_ctx *c, const char *key)
{
	return c && key ? perch_ctx_value(c, key) : NULL;
}

static const perch_flagdef *flag(const perch_cli *cli, const char *name, uint32_t kind)
{
	if (cli == NULL || name == NULL)
		return NULL;
	const perch_flagdef *d = perch_cli_find(cli, name);
	if (d == NULL || d->kind != kind || d->source == PERCH_SRC_NONE)
		return NULL;
	return d;
}

static const char *cli_string(const perch_cli *cli, const char *name)
{
	const perch_flagdef *d = flag(cli, name, PERCH_FLAG_STRING);
	return d ? d->str : NULL;
}

static bool cli_bool(const perch_cli *cli, const char *name)
{
	const perch_flagdef *d = flag(cli, name, PERCH_FLAG_BOOL);
	return d ? d->b : false;
}

static int64_t cli_int(const perch_cli *cli, const char *name)
{
	const perch_flagdef *d = flag(cli, name, PERCH_FLAG_INT);
	return d ? d->i : 0;
}

static int64_t cli_duration(const perch_cli *cli, const char *name)
{
	const perch_flagdef *d = flag(cli, name, PERCH_FLAG_DURATION);
	return d ? d->i : 0;
}

static size_t cli_list(const perch_cli *cli, const char *name, const char *const **items)
{
	const perch_flagdef *d = flag(cli, name, PERCH_FLAG_STRING_LIST);
	*items = d ? (const char *const *)d->list : NULL;
	return d ? d->n_list : 0;
}

static bool cli_is_set(const perch_cli *cli, const char *name)
{
	if (cli == NULL || name == NULL)
		return false;
	const perch_flagdef *d = perch_cli_find(cli, name);
	return d && d->source > PERCH_SRC_DEFAULT;
}

static const void *host_get_capability(const perch_host *host, const char *id)
{
	return NULL; /* perch 1.0 offers no host capabilities yet */
}

void perch_host_table_init(perch_host *t, perch_plugin *p)
{
	memset(t, 0, sizeof *t);
	t->struct_size = sizeof *t;
	t->abi_major = PERCH_ABI_MAJOR;
	t->abi_minor = PERCH_ABI_MINOR;
	t->host_version = PACKAGE_VERSION;
	t->host_data = p;
	t->log = host_log;
	t->ctx_cancelled = host_cancelled;
	t->ctx_cancel_fd = host_cancel_fd;
	t->ctx_deadline_ms = host_deadline;
	t->ctx_value = host_value;
	t->cli_string = cli_string;
	t->cli_bool = cli_bool;
	t->cli_int = cli_int;
	t->cli_duration_ms = cli_duration;
	t->cli_list = cli_list;
	t->cli_is_set = cli_is_set;
	t->get_capability = host_get_capability;
}
