/*
 * load_bench.c - what does it cost perch to load and negotiate a plugin?
 *
 * Copies one plugin to N unique paths (the dynamic loader caches by path, so
 * each copy is a real load, as during a hot swap), then times, in the same
 * run and on the same files:
 *   baseline: dlopen(RTLD_NOW|RTLD_LOCAL) + dlsym + dlclose - the floor any
 *             loader pays;
 *   perch:    perch_registry_open (eager bind, libltdl open, entry
 *             validation, flag registration) + perch_plugin_load (the
 *             plugin's load + capability negotiation) + unload + close.
 * Each is repeated ROUNDS times; the median round is reported per plugin.
 *
 * usage: load_bench PLUGIN.so N [ROUNDS]
 */
#include "config.h"

#include "ctx.h"
#include "flags.h"
#include "loader.h"
#include "util.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void copy_file(const char *from, const char *to)
{
	size_t len = 0;
	char *err = NULL;
	char *data = perch_read_file(from, &len, &err);
	if (data == NULL) {
		fprintf(stderr, "load_bench: %s\n", err);
		exit(2);
	}
	int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (fd < 0 || perch_write_all(fd, data, len) != 0 || close(fd) != 0) {
		perror(to);
		exit(2);
	}
	free(data);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t baseline_round(char **paths, int n)
{
	void **h = perch_xcalloc((size_t)n, sizeof *h);
	int64_t t0 = perch_mono_ns();
	for (int i = 0; i < n; i++) {
		h[i] = dlopen(paths[i], RTLD_NOW | RTLD_LOCAL);
		if (h[i] == NULL || dlsym(h[i], "perch_backend_v1") == NULL) {
			fprintf(stderr, "load_bench: %s\n", dlerror());
			exit(2);
		}
	}
	for (int i = 0; i < n; i++)
		dlclose(h[i]);
	int64_t t = perch_mono_ns() - t0;
	free(h);
	return t;
}

static int64_t perch_round(char **paths, int n)
{
	/* One registry per copy: every copy has the same plugin name, and a
	 * registry keeps the first of a name (later ones are shadowed). */
	perch_cli **cli = perch_xcalloc((size_t)n, sizeof *cli);
	perch_registry **reg = perch_xcalloc((size_t)n, sizeof *reg);
	perch_ctx *ctx = perch_ctx_new(NULL);
	int64_t t0 = perch_mono_ns();
	for (int i = 0; i < n; i++) {
		cli[i] = perch_cli_new();
		reg[i] = perch_registry_new(cli[i]);
		perch_plugin *p = perch_registry_open(reg[i], paths[i]);
		char *err = NULL;
		if (p->error || perch_cli_resolve(cli[i], NULL, &err) != 0) {
			fprintf(stderr, "load_bench: %s: %s\n", paths[i], p->error ? p->error : err);
			exit(2);
		}
		perch_ctx_set_value(ctx, PERCH_CTX_CLI_COMMAND, cli[i]);
		if (perch_plugin_load(p, ctx, &err) != 0) {
			fprintf(stderr, "load_bench: %s\n", err);
			exit(2);
		}
	}
	for (int i = 0; i < n; i++) {
		perch_registry_free(reg[i]); /* unload + close */
		perch_cli_free(cli[i]);
	}
	int64_t t = perch_mono_ns() - t0;
	perch_ctx_free(ctx);
	free(cli);
	free(reg);
	return t;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: load_bench PLUGIN.so N [ROUNDS]\n");
		return 2;
	}
	int n = atoi(argv[2]), rounds = argc > 3 ? atoi(argv[3]) : 15;
	if (n <= 0 || rounds <= 0) {
		fprintf(stderr, "load_bench: N and ROUNDS must be positive\n");
		return 2;
	}
	char dir[] = "/tmp/perch-load-bench.XXXXXX";
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	char **paths = perch_xcalloc((size_t)n, sizeof *paths);
	for (int i = 0; i < n; i++) {
		paths[i] = perch_xasprintf("%s/copy-%d.so", dir, i);
		copy_file(argv[1], paths[i]);
	}
	int64_t *base = perch_xcalloc((size_t)rounds, sizeof *base);
	int64_t *mine = perch_xcalloc((size_t)rounds, sizeof *mine);
	/* Interleave rounds so that machine noise hits both alike. */
	for (int r = 0; r < rounds; r++) {
		base[r] = baseline_round(paths, n);
		mine[r] = perch_round(paths, n);
	}
	qsort(base, (size_t)rounds, sizeof *base, cmp_i64);
	qsort(mine, (size_t)rounds, sizeof *mine, cmp_i64);
	double b = (double)base[rounds / 2] / n / 1e3, m = (double)mine[rounds / 2] / n / 1e3;
	printf("plugins=%d rounds=%d  baseline %.1f us/plugin  perch %.1f us/plugin  "
	       "ratio %.2f\n", n, rounds, b, m, m / b);
	for (int i = 0; i < n; i++) {
		unlink(paths[i]);
		free(paths[i]);
	}
	rmdir(dir);
	free(paths);
	free(base);
	free(mine);
	return 0;
}
