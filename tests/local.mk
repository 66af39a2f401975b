# Test infrastructure shared by every suite.
#
# Integration tests drive the *installed* perch: before any test runs,
# tests/inst.stamp installs the build into tests/inst (a DESTDIR staging
# tree).  The staged perch finds its staged plugins by itself (loader.c), so
# tests set no plugin path unless they mean to.
PERCH_TEST_DESTDIR = $(abs_top_builddir)/tests/inst
AM_TESTS_ENVIRONMENT = \
	abs_top_srcdir='$(abs_top_srcdir)'; export abs_top_srcdir; \
	abs_top_builddir='$(abs_top_builddir)'; export abs_top_builddir; \
	PERCH_TEST_PLUGINDIR='$(abs_top_builddir)/plugins'; export PERCH_TEST_PLUGINDIR; \
	PERCH_TEST_DESTDIR='$(PERCH_TEST_DESTDIR)'; export PERCH_TEST_DESTDIR; \
	PERCH='$(PERCH_TEST_DESTDIR)$(bindir)/perch'; export PERCH; \
	PERCH_TEST_PKGCONFIGDIR='$(PERCH_TEST_DESTDIR)$(pkgconfigdir)'; export PERCH_TEST_PKGCONFIGDIR; \
	PERCH_TEST_INSTALLED_PLUGINDIR='$(PERCH_TEST_DESTDIR)$(pkgplugindir)'; export PERCH_TEST_INSTALLED_PLUGINDIR; \
	CC='$(CC)'; export CC; \
	unset PERCH_CONFIG PERCH_PLUGIN_PATH PERCH_BACKEND WOODPECKER_BACKEND;
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)

check_DATA += tests/inst.stamp
tests/inst.stamp: $(bin_PROGRAMS) $(pkgplugin_LTLIBRARIES) $(perchinclude_HEADERS) $(pkgconfig_DATA)
	$(AM_V_GEN)rm -rf '$(PERCH_TEST_DESTDIR)' && \
	$(MAKE) $(AM_MAKEFLAGS) install DESTDIR='$(PERCH_TEST_DESTDIR)' >/dev/null && \
	touch $@
CLEANFILES += tests/inst.stamp
clean-local: clean-test-inst
clean-test-inst:
	rm -rf '$(PERCH_TEST_DESTDIR)'
.PHONY: clean-test-inst

# Shell helpers sourced by the integration tests.
EXTRA_DIST += tests/integration/lib.sh

# cmocka tests link the host library and the test host stub.
check_LTLIBRARIES += tests/support/libtestsupport.la
tests_support_libtestsupport_la_SOURCES = tests/support/testhost.c tests/support/testhost.h \
	tests/support/plugintest.c tests/support/plugintest.h
tests_support_libtestsupport_la_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_support_libtestsupport_la_LIBADD = host/libperchhost.la $(CMOCKA_LIBS) -ldl
PERCH_UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JSONC_CFLAGS) $(LIBCONFIG_CFLAGS) $(LTDLINCL) -I$(top_srcdir)/tests/support
PERCH_UNIT_LIBS = tests/support/libtestsupport.la host/libperchhost.la $(CMOCKA_LIBS)

include tests/integration/local.mk
