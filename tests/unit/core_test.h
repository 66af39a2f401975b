/*
 * core_test.h - small helpers shared by the host-core unit tests: where the
 * fixtures are, temporary folders and files.  Header-only and static: each
 * test program is one translation unit.
 *
 * A fixture that cannot be found fails the test loudly (cmocka fail_msg):
 * a test that silently skips proves nothing.
 */
#ifndef PERCH_CORE_TEST_H
#define PERCH_CORE_TEST_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define CT_UNUSED __attribute__((unused))

/* $abs_top_srcdir / $abs_top_builddir as exported by `make check`, else the
 * paths this test was built with. */
CT_UNUSED static const char *ct_srcdir(void)
{
	const char *s = getenv("abs_top_srcdir");
	return s && *s ? s : PERCH_TEST_SRCDIR;
}

CT_UNUSED static const char *ct_builddir(void)
{
	const char *s = getenv("abs_top_builddir");
	return s && *s ? s : PERCH_TEST_BUILDDIR;
}

/* The built fixture plugin <name>.so (malloc'd); fails if it is missing. */
CT_UNUSED static char *ct_fixture_plugin(const char *name)
{
	char *p = perch_xasprintf("%s/tests/fixtures/plugins/.libs/%s.so", ct_builddir(), name);
	if (access(p, R_OK) != 0)
		fail_msg("fixture plugin %s is missing (%s): build with `make check`", p,
			 strerror(errno));
	return p;
}

/* The fixture plugin folder (malloc'd). */
CT_UNUSED static char *ct_fixture_plugin_dir(void)
{
	return perch_xasprintf("%s/tests/fixtures/plugins/.libs", ct_builddir());
}

/* A config fixture from the source tree (malloc'd); fails if missing. */
CT_UNUSED static char *ct_conf_fixture(const char *name)
{
	char *p = perch_xasprintf("%s/tests/fixtures/conf/%s", ct_srcdir(), name);
	if (access(p, R_OK) != 0)
		fail_msg("config fixture %s is missing: %s", p, strerror(errno));
	return p;
}

/* A fresh private folder (malloc'd); remove it with ct_rm_rf. */
CT_UNUSED static char *ct_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *t = perch_xasprintf("%s/perch-test.XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(t) == NULL)
		fail_msg("mkdtemp %s: %s", t, strerror(errno));
	return t;
}

static int ct_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Removes dir and everything in it, and frees the string. */
CT_UNUSED static void ct_rm_rf(char *dir)
{
	if (dir == NULL)
		return;
	if (nftw(dir, ct_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fail_msg("cannot remove %s: %s", dir, strerror(errno));
	free(dir);
}

/* Writes text to dir/name and returns the path (malloc'd). */
CT_UNUSED static char *ct_write(const char *dir, const char *name, const char *text)
{
	char *p = perch_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (f == NULL)
		fail_msg("cannot write %s: %s", p, strerror(errno));
	fputs(text, f);
	if (fclose(f) != 0)
		fail_msg("cannot write %s: %s", p, strerror(errno));
	return p;
}

/* Copies src to dir/name (returns the new path, malloc'd). */
CT_UNUSED static char *ct_copy(const char *src, const char *dir, const char *name)
{
	size_t len = 0;
	char *err = NULL;
	char *data = perch_read_file(src, &len, &err);
	if (data == NULL)
		fail_msg("%s", err);
	char *p = perch_xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		fail_msg("cannot copy %s to %s: %s", src, p, strerror(errno));
	free(data);
	return p;
}

/* Asserts that a malloc'd message equals the expected text, shows both
 * when not, and frees it. */
#define ct_assert_msg(got, want)                                               \
	do {                                                                   \
		char *ct_got_ = (got);                                         \
		const char *ct_want_ = (want);                                 \
		if (ct_got_ == NULL)                                           \
			fail_msg("no message; want \"%s\"", ct_want_);         \
		if (strcmp(ct_got_, ct_want_) != 0)                            \
			fail_msg("message\n  got:  %s\n  want: %s", ct_got_,   \
				 ct_want_);                                    \
		free(ct_got_);                                                 \
	} while (0)

#endif /* PERCH_CORE_TEST_H */
