# plugins/common: what the shipped plugins share (DESIGN.md §1), a libtool
# convenience library linked statically into each of them.  Built like a
# plugin: SDK headers only, libc and pthread only, hidden visibility, so
# nothing of it is exported by the plugins that carry it.  Included before
# the plugins' fragments, which add it to their LIBADD.
noinst_LTLIBRARIES += plugins/common/libperchplugin.la
plugins_common_libperchplugin_la_SOURCES = \
	plugins/common/perchplugin.h \
	plugins/common/buf.c \
	plugins/common/clock.c \
	plugins/common/ctx.c \
	plugins/common/script.c \
	plugins/common/fs.c \
	plugins/common/thread.c
plugins_common_libperchplugin_la_CPPFLAGS = -I$(top_srcdir)/sdk/include
plugins_common_libperchplugin_la_CFLAGS = $(AM_CFLAGS) $(PLUGIN_CFLAGS)
PERCH_PLUGIN_COMMON = plugins/common/libperchplugin.la
PERCH_PLUGIN_COMMON_CPPFLAGS = -I$(top_srcdir)/plugins/common

check_PROGRAMS += tests/unit/test_perchplugin
TESTS += tests/unit/test_perchplugin
tests_unit_test_perchplugin_SOURCES = tests/unit/test_perchplugin.c
tests_unit_test_perchplugin_CPPFLAGS = $(PERCH_PLUGIN_COMMON_CPPFLAGS) $(AM_CPPFLAGS)
tests_unit_test_perchplugin_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_unit_test_perchplugin_LDADD = $(PERCH_PLUGIN_COMMON) $(PERCH_UNIT_LIBS)
