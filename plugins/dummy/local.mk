# plugins/dummy: Woodpecker's test backend, in C, with a state directory so
# that it can stand in for a real backend in perch's swap and adoption tests.
# It sees only the SDK headers (no host/, no config.h) and links only libc
# and pthread (and, statically, plugins/common), like a third-party plugin
# would.
pkgplugin_LTLIBRARIES += plugins/dummy/dummy.la
plugins_dummy_dummy_la_SOURCES = \
	plugins/dummy/dummy.h \
	plugins/dummy/backend.c \
	plugins/dummy/env.c \
	plugins/dummy/steps.c \
	plugins/dummy/tail.c \
	plugins/dummy/store.c \
	plugins/dummy/resume.c \
	plugins/dummy/hold.c
plugins_dummy_dummy_la_CPPFLAGS = -I$(top_srcdir)/sdk/include $(PERCH_PLUGIN_COMMON_CPPFLAGS)
plugins_dummy_dummy_la_CFLAGS = $(AM_CFLAGS) $(PLUGIN_CFLAGS)
plugins_dummy_dummy_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS) -module
plugins_dummy_dummy_la_LIBADD = $(PERCH_PLUGIN_COMMON)

check_PROGRAMS += tests/unit/test_dummy
TESTS += tests/unit/test_dummy
tests_unit_test_dummy_SOURCES = tests/unit/test_dummy.c
tests_unit_test_dummy_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_unit_test_dummy_LDADD = $(PERCH_UNIT_LIBS) -ldl
EXTRA_DIST += plugins/dummy/README.md
