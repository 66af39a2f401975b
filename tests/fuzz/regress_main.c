/*
 * regress_main.c - replays inputs through a fuzz harness without libFuzzer.
 *
 *   regress_<name> [FILE|DIR]...
 *
 * Runs LLVMFuzzerTestOneInput once per file (a directory means every
 * regular file in it).  Without arguments, as under `make check`, it
 * replays $abs_top_srcdir/tests/fuzz/corpus/<name> (the seeds) and
 * .../regress/<name> (every input that once broke perch); finding no input
 * at all is a failure, not a pass.  A broken oracle aborts, so the test
 * fails with the harness's message and the file name printed before it.
 *
 * FUZZ_NAME (the harness name) and FUZZ_SRCDIR (a fallback for running the
 * binary by hand) come from the build.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "util.h"

static int replay_file(const char *path)
{
	char *err = NULL;
	size_t len = 0;
	char *data = perch_read_file(path, &len, &err);
	if (data == NULL) {
		fprintf(stderr, "regress_%s: %s\n", FUZZ_NAME, err);
		free(err);
		return -1;
	}
	fprintf(stderr, "regress_%s: %s (%zu bytes)\n", FUZZ_NAME, path, len);
	/* A private copy of exactly len bytes, so that ASan sees a read past
	 * the end of the input as it would under libFuzzer. */
	uint8_t *copy = perch_xmalloc(len ? len : 1);
	memcpy(copy, data, len);
	free(data);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file in dir, in name order; counts them in *n. */
static int replay_dir(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "regress_%s: %s: %s\n", FUZZ_NAME, dir, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t count = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		names = perch_xrealloc(names, (count + 1) * sizeof *names);
		names[count++] = perch_xasprintf("%s/%s", dir, e->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof *names, cmp_str);
	int rc = 0;
	for (size_t i = 0; i < count; i++) {
		struct stat st;
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(names[i]) != 0)
				rc = -1;
			(*n)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

static int replay_path(const char *path, size_t *n)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "regress_%s: %s: %s\n", FUZZ_NAME, path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return replay_dir(path, n);
	(*n)++;
	return replay_file(path);
}

int main(int argc, char **argv)
{
	size_t n = 0;
	int rc = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (replay_path(argv[i], &n) != 0)
				rc = 1;
	} else {
		const char *src = getenv("abs_top_srcdir");
		if (src == NULL || *src == '\0')
			src = FUZZ_SRCDIR;
		static const char *const kinds[] = {"corpus", "regress"};
		for (size_t k = 0; k < 2; k++) {
			char *dir = perch_xasprintf("%s/tests/fuzz/%s/%s", src, kinds[k], FUZZ_NAME);
			struct stat st;
			/* regress/<name> exists only once something was found. */
			if (k == 0 || stat(dir, &st) == 0)
				if (replay_dir(dir, &n) != 0)
					rc = 1;
			free(dir);
		}
	}
	if (n == 0) {
		fprintf(stderr, "regress_%s: no input replayed\n", FUZZ_NAME);
		rc = 1;
	}
	if (rc == 0)
		fprintf(stderr, "regress_%s: %zu inputs replayed, all oracles held\n", FUZZ_NAME,
			n);
	return rc;
}
