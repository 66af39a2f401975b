# plugins/docker: runs steps as Docker containers through the Engine API.
# Like a third-party plugin it sees only the SDK headers (no host/, no
# config.h); it links libcurl and json-c (dynamically) besides libc and
# pthread (and, statically, plugins/common), and still exports nothing but
# perch_backend_v1.
pkgplugin_LTLIBRARIES += plugins/docker/docker.la
PERCH_DOCKER_CORE = \
	plugins/docker/docker.h \
	plugins/docker/url.c \
	plugins/docker/script.c \
	plugins/docker/convert.c \
	plugins/docker/demux.c \
	plugins/docker/errors.c \
	plugins/docker/engine.c \
	plugins/docker/http.c
plugins_docker_docker_la_SOURCES = \
	$(PERCH_DOCKER_CORE) \
	plugins/docker/backend.c \
	plugins/docker/flags.c \
	plugins/docker/pull.c \
	plugins/docker/steps.c \
	plugins/docker/worker.c \
	plugins/docker/logs.c \
	plugins/docker/workflow.c \
	plugins/docker/discover.c
plugins_docker_docker_la_CPPFLAGS = -I$(top_srcdir)/sdk/include $(PERCH_PLUGIN_COMMON_CPPFLAGS)
plugins_docker_docker_la_CFLAGS = $(AM_CFLAGS) $(PLUGIN_CFLAGS) $(LIBCURL_CFLAGS) $(JSONC_CFLAGS)
plugins_docker_docker_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS) -module
plugins_docker_docker_la_LIBADD = $(PERCH_PLUGIN_COMMON) $(LIBCURL_LIBS) $(JSONC_LIBS)

# Pure parts (script, conversion, demux, error words), no engine needed.
check_PROGRAMS += tests/unit/test_docker_convert
TESTS += tests/unit/test_docker_convert
tests_unit_test_docker_convert_SOURCES = tests/unit/test_docker_convert.c $(PERCH_DOCKER_CORE)
tests_unit_test_docker_convert_CPPFLAGS = -I$(top_srcdir)/plugins/docker $(PERCH_PLUGIN_COMMON_CPPFLAGS) $(AM_CPPFLAGS)
tests_unit_test_docker_convert_CFLAGS = $(PERCH_UNIT_CFLAGS) $(LIBCURL_CFLAGS)
tests_unit_test_docker_convert_LDADD = $(PERCH_PLUGIN_COMMON) $(PERCH_UNIT_LIBS) $(LIBCURL_LIBS) $(JSONC_LIBS)

# The plugin against a real engine (.ci/docker.sh starts one).  Fails,
# never skips, when the engine is not reachable.
check_PROGRAMS += tests/unit/test_docker
TESTS += tests/unit/test_docker
tests_unit_test_docker_SOURCES = tests/unit/test_docker.c $(PERCH_DOCKER_CORE)
tests_unit_test_docker_CPPFLAGS = -I$(top_srcdir)/plugins/docker $(PERCH_PLUGIN_COMMON_CPPFLAGS) $(AM_CPPFLAGS)
tests_unit_test_docker_CFLAGS = $(PERCH_UNIT_CFLAGS) $(LIBCURL_CFLAGS)
tests_unit_test_docker_LDADD = $(PERCH_PLUGIN_COMMON) $(PERCH_UNIT_LIBS) $(LIBCURL_LIBS) $(JSONC_LIBS) -ldl

EXTRA_DIST += .ci/docker.sh tests/docker/image.sh plugins/docker/README.md
