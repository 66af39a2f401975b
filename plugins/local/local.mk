# plugins/local: runs steps as host processes.  Like a third-party plugin
# it sees only the SDK headers (no host/, no config.h) and links only libc
# and pthread (and, statically, plugins/common).
pkgplugin_LTLIBRARIES += plugins/local/local.la
plugins_local_local_la_SOURCES = \
	plugins/local/local.h \
	plugins/local/backend.c \
	plugins/local/steps.c \
	plugins/local/registry.c \
	plugins/local/plan.c \
	plugins/local/script.c \
	plugins/local/env.c \
	plugins/local/spawn.c \
	plugins/local/proc.c \
	plugins/local/fs.c \
	plugins/local/leftover.c \
	plugins/local/util.c
plugins_local_local_la_CPPFLAGS = -I$(top_srcdir)/sdk/include $(PERCH_PLUGIN_COMMON_CPPFLAGS)
plugins_local_local_la_CFLAGS = $(AM_CFLAGS) $(PLUGIN_CFLAGS)
plugins_local_local_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS) -module
plugins_local_local_la_LIBADD = $(PERCH_PLUGIN_COMMON)
EXTRA_DIST += plugins/local/README.md

check_PROGRAMS += tests/unit/test_local
TESTS += tests/unit/test_local
tests_unit_test_local_SOURCES = tests/unit/test_local.c
tests_unit_test_local_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_unit_test_local_LDADD = $(PERCH_UNIT_LIBS) -ldl
