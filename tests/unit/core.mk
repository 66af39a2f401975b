# Tests of the host core: config file, flags, loader, contexts, and the
# `perch backends` command line end to end.
#
# The tests find their fixtures through $abs_top_srcdir / $abs_top_builddir
# (exported by tests/local.mk); the compiled-in paths below are the fallback
# for running a test binary by hand (valgrind, gdb).
PERCH_CORE_TEST_CFLAGS = $(PERCH_UNIT_CFLAGS) \
	-DPERCH_TEST_SRCDIR='"$(abs_top_srcdir)"' \
	-DPERCH_TEST_BUILDDIR='"$(abs_top_builddir)"'

check_PROGRAMS += tests/unit/test_conf
TESTS += tests/unit/test_conf
tests_unit_test_conf_SOURCES = tests/unit/test_conf.c tests/unit/core_test.h
tests_unit_test_conf_CFLAGS = $(PERCH_CORE_TEST_CFLAGS)
tests_unit_test_conf_LDADD = $(PERCH_UNIT_LIBS)

check_PROGRAMS += tests/unit/test_flags
TESTS += tests/unit/test_flags
tests_unit_test_flags_SOURCES = tests/unit/test_flags.c tests/unit/core_test.h
tests_unit_test_flags_CFLAGS = $(PERCH_CORE_TEST_CFLAGS)
tests_unit_test_flags_LDADD = $(PERCH_UNIT_LIBS)

check_PROGRAMS += tests/unit/test_ctx
TESTS += tests/unit/test_ctx
tests_unit_test_ctx_SOURCES = tests/unit/test_ctx.c
tests_unit_test_ctx_CFLAGS = $(PERCH_CORE_TEST_CFLAGS)
tests_unit_test_ctx_LDADD = $(PERCH_UNIT_LIBS)

# test_loader opens the fixture plugins, so they must be built first
# (check_LTLIBRARIES are, before any test runs).
check_PROGRAMS += tests/unit/test_loader
TESTS += tests/unit/test_loader
tests_unit_test_loader_SOURCES = tests/unit/test_loader.c tests/unit/core_test.h
tests_unit_test_loader_CFLAGS = $(PERCH_CORE_TEST_CFLAGS)
tests_unit_test_loader_LDADD = $(PERCH_UNIT_LIBS)

# The config files the tests read.
EXTRA_DIST += \
	tests/fixtures/conf/good.conf \
	tests/fixtures/conf/syntax.conf \
	tests/fixtures/conf/unknown-key.conf \
	tests/fixtures/conf/backends.conf

# Integration: the real perch binary with real and fixture plugins.
# jsonflat prints a JSON document one leaf per line, so that a shell test
# can check `perch backends --json` with grep and no python/jq.
check_PROGRAMS += tests/integration/jsonflat
tests_integration_jsonflat_SOURCES = tests/integration/jsonflat.c
tests_integration_jsonflat_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_integration_jsonflat_LDADD = $(JSONC_LIBS)
TESTS += tests/integration/backends.sh
EXTRA_DIST += tests/integration/backends.sh
