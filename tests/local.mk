# Test infrastructure shared by every suite.
AM_TESTS_ENVIRONMENT = \
	abs_top_srcdir='$(abs_top_srcdir)'; export abs_top_srcdir; \
	abs_top_builddir='$(abs_top_builddir)'; export abs_top_builddir; \
	PERCH_TEST_PLUGINDIR='$(abs_top_builddir)/plugins'; export PERCH_TEST_PLUGINDIR;
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)

# cmocka tests link the host library and the test host stub.
check_LTLIBRARIES += tests/support/libtestsupport.la
tests_support_libtestsupport_la_SOURCES = tests/support/testhost.c tests/support/testhost.h
tests_support_libtestsupport_la_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_support_libtestsupport_la_LIBADD = host/libperchhost.la $(CMOCKA_LIBS)
PERCH_UNIT_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JSONC_CFLAGS) $(LIBCONFIG_CFLAGS) $(LTDLINCL) -I$(top_srcdir)/tests/support
PERCH_UNIT_LIBS = tests/support/libtestsupport.la host/libperchhost.la $(CMOCKA_LIBS)
