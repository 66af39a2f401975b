/* testhost.c - see testhost.h. */
#include "config.h"

#include "testhost.h"
#include "util.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct flagval {
	char *name;
	char *value;
	char **list;
	size_t n_list;
};

struct perch_cli {
	struct flagval *v;
	size_t n;
};

struct testhost {
	perch_host table;
	struct perch_cli cli;
	perch_ctx *ctx;
	perch_ctx *bare;
	void *dl[16];
	size_t n_dl;
	pthread_mutex_t log_lock;
	char last_log[1024];
};

static const struct flagval *find(const perch_cli *cli, const char *name)
{
	for (size_t i = 0; i < cli->n; i++)
		if (strcmp(cli->v[i].name, name) == 0)
			return &cli->v[i];
	return NULL;
}

static void th_log(const perch_host *h, int32_t level, const char *msg)
{
	testhost *th = h->host_data;
	pthread_mutex_lock(&th->log_lock);
	snprintf(th->last_log, sizeof th->last_log, "%s", msg);
	pthread_mutex_unlock(&th->log_lock);
	if (getenv("TESTHOST_VERBOSE"))
		fprintf(stderr, "[plugin %d] %s\n", level, msg);
}

static bool th_cancelled(const perch_ctx *c) { return perch_ctx_cancelled(c); }
static int th_cancel_fd(const perch_ctx *c) { return perch_ctx_cancel_fd(c); }
static int64_t th_deadline(const perch_ctx *c) { return perch_ctx_deadline_ms(c); }
static const void *th_value(const perch_ctx *c, const char *k) { return perch_ctx_value(c, k); }

static const char *th_string(const perch_cli *cli, const char *name)
{
	const struct flagval *f = find(cli, name);
	return f ? f->value : NULL;
}

static bool th_bool(const perch_cli *cli, const char *name)
{
	const char *s = th_string(cli, name);
	return s && (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "on"));
}

static int64_t th_int(const perch_cli *cli, const char *name)
{
	const char *s = th_string(cli, name);
	return s ? strtoll(s, NULL, 10) : 0;
}

static int64_t th_duration(const perch_cli *cli, const char *name)
{
	const char *s = th_string(cli, name);
	int64_t ms = 0;
	if (s && !perch_parse_duration(s, &ms))
		ms = 0;
	return ms;
}

static size_t th_list(const perch_cli *cli, const char *name, const char *const **items)
{
	const struct flagval *f = find(cli, name);
	*items = f ? (const char *const *)f->list : NULL;
	return f ? f->n_list : 0;
}

static bool th_is_set(const perch_cli *cli, const char *name) { return find(cli, name) != NULL; }

static const void *th_get_cap(const perch_host *h, const char *id) { return NULL; }

testhost *testhost_new(void)
{
	testhost *th = perch_xcalloc(1, sizeof *th);
	pthread_mutex_init(&th->log_lock, NULL);
	th->table = (perch_host){
		.struct_size = sizeof(perch_host),
		.abi_major = PERCH_ABI_MAJOR,
		.abi_minor = PERCH_ABI_MINOR,
		.host_version = "test",
		.host_data = th,
		.log = th_log,
		.ctx_cancelled = th_cancelled,
		.ctx_cancel_fd = th_cancel_fd,
		.ctx_deadline_ms = th_deadline,
		.ctx_value = th_value,
		.cli_string = th_string,
		.cli_bool = th_bool,
		.cli_int = th_int,
		.cli_duration_ms = th_duration,
		.cli_list = th_list,
		.cli_is_set = th_is_set,
		.get_capability = th_get_cap,
	};
	th->ctx = perch_ctx_new(NULL);
	perch_ctx_set_value(th->ctx, PERCH_CTX_CLI_COMMAND, &th->cli);
	th->bare = perch_ctx_new(NULL);
	return th;
}

static void free_flagval(struct flagval *f)
{
	free(f->name);
	free(f->value);
	for (size_t i = 0; i < f->n_list; i++)
		free(f->list[i]);
	free(f->list);
}

void testhost_set_flag(testhost *th, const char *name, const char *value)
{
	struct flagval *f = (struct flagval *)find(&th->cli, name);
	if (f == NULL) {
		th->cli.v = perch_xrealloc(th->cli.v, (th->cli.n + 1) * sizeof *th->cli.v);
		f = &th->cli.v[th->cli.n++];
		memset(f, 0, sizeof *f);
		f->name = perch_xstrdup(name);
	} else {
		char *keep = f->name;
		f->name = NULL;
		free_flagval(f);
		memset(f, 0, sizeof *f);
		f->name = keep;
	}
	f->value = perch_xstrdup(value);
	const char *p = value;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		f->list = perch_xrealloc(f->list, (f->n_list + 1) * sizeof *f->list);
		f->list[f->n_list++] = perch_xstrndup(p, n);
		p += n + (comma ? 1 : 0);
	}
}

void testhost_free(testhost *th)
{
	if (th == NULL)
		return;
	for (size_t i = 0; i < th->n_dl; i++)
		dlclose(th->dl[i]);
	for (size_t i = 0; i < th->cli.n; i++)
		free_flagval(&th->cli.v[i]);
	free(th->cli.v);
	perch_ctx_free(th->ctx);
	perch_ctx_free(th->bare);
	pthread_mutex_destroy(&th->log_lock);
	free(th);
}

const perch_host *testhost_table(testhost *th) { return &th->table; }
perch_ctx *testhost_ctx(testhost *th) { return th->ctx; }
perch_ctx *testhost_bare_ctx(testhost *th) { return th->bare; }

const perch_backend *testhost_open(testhost *th, const char *path)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		fprintf(stderr, "testhost: %s\n", dlerror());
		return NULL;
	}
	const perch_backend *be = dlsym(h, PERCH_BACKEND_SYMBOL);
	if (be == NULL || th->n_dl == sizeof th->dl / sizeof th->dl[0]) {
		fprintf(stderr, "testhost: %s: no %s\n", path, PERCH_BACKEND_SYMBOL);
		dlclose(h);
		return NULL;
	}
	th->dl[th->n_dl++] = h;
	return be;
}

char *testhost_plugin_path(const char *name)
{
	const char *dir = getenv("PERCH_TEST_PLUGINDIR");
	if (dir == NULL)
		dir = "plugins";
	return perch_xasprintf("%s/%s/.libs/%s.so", dir, name, name);
}

const char *testhost_last_log(testhost *th) { return th->last_log; }

char *testhost_read_all(int fd)
{
	perch_buf b = {0};
	char tmp[4096];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof tmp);
		if (n <= 0)
			break;
		perch_buf_append(&b, tmp, (size_t)n);
	}
	close(fd);
	return perch_buf_steal(&b);
}

perch_error testhost_error(void)
{
	perch_error e;
	memset(&e, 0, sizeof e);
	e.struct_size = sizeof e;
	return e;
}
