# tests/conformance: perch-conformance run against the shipped plugins
# (which must pass), a deliberately broken fixture (which must fail, with
# the exact FAIL lines), the plugin template built out of tree against the
# staged SDK, and a plugin built from the frozen v1.0 headers.  Every script
# drives the *installed* (staged) perch-conformance.
check_LTLIBRARIES += tests/conformance/broken.la
tests_conformance_broken_la_SOURCES = tests/conformance/broken.c
# Like a third-party plugin: the SDK headers only.
tests_conformance_broken_la_CPPFLAGS = -I$(top_srcdir)/sdk/include
tests_conformance_broken_la_CFLAGS = $(AM_CFLAGS) $(PLUGIN_CFLAGS)
tests_conformance_broken_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS) -module -avoid-version -rpath /nowhere

CONFORMANCE_TESTS = \
	tests/conformance/dummy.sh \
	tests/conformance/local.sh \
	tests/conformance/broken.sh \
	tests/conformance/template.sh \
	tests/conformance/abi_v1_0.sh \
	tests/conformance/abi_rule.sh
TESTS += $(CONFORMANCE_TESTS)
# The docker backend, against the engine .ci/docker.sh starts.
TESTS += tests/conformance/docker.sh
EXTRA_DIST += $(CONFORMANCE_TESTS) tests/conformance/docker.sh tests/conformance/lib.sh
