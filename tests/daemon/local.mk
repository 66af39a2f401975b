# tests/daemon: unit tests of the state directory, the runtime's resume
# mode and what adoption needs of a new backend instance, and integration
# tests that drive the installed perch daemon.
check_PROGRAMS += tests/daemon/test_state tests/daemon/test_resume tests/daemon/test_restart \
	tests/daemon/ctlraw tests/daemon/holdproxy
TESTS += tests/daemon/test_state tests/daemon/test_resume tests/daemon/test_restart

tests_daemon_test_state_SOURCES = tests/daemon/test_state.c
tests_daemon_test_state_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_daemon_test_state_LDADD = $(PERCH_UNIT_LIBS)

tests_daemon_test_resume_SOURCES = tests/daemon/test_resume.c
tests_daemon_test_resume_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_daemon_test_resume_LDADD = $(PERCH_UNIT_LIBS)

tests_daemon_test_restart_SOURCES = tests/daemon/test_restart.c
tests_daemon_test_restart_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_daemon_test_restart_LDADD = $(PERCH_UNIT_LIBS) -ldl

# A raw client for malformed and oversized requests.
tests_daemon_ctlraw_SOURCES = tests/daemon/ctlraw.c
tests_daemon_ctlraw_CFLAGS = $(AM_CFLAGS)

# A proxy in front of the Docker engine that holds chosen requests, so
# that the daemon can be killed inside exactly that engine call.
tests_daemon_holdproxy_SOURCES = tests/daemon/holdproxy.c
tests_daemon_holdproxy_CFLAGS = $(AM_CFLAGS)

DAEMON_TESTS = \
	tests/daemon/basic.sh \
	tests/daemon/reload.sh \
	tests/daemon/reload_docker.sh \
	tests/daemon/adopt.sh \
	tests/daemon/adopt_phases.sh \
	tests/daemon/adopt_docker.sh \
	tests/daemon/cancel_docker.sh \
	tests/daemon/shutdown.sh \
	tests/daemon/swap.sh \
	tests/daemon/remove.sh
TESTS += $(DAEMON_TESTS)
EXTRA_DIST += tests/daemon/lib.sh $(DAEMON_TESTS)
