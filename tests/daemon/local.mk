# tests/daemon: unit tests of the state directory and the runtime's resume
# mode, and integration tests that drive the installed perch daemon.
check_PROGRAMS += tests/daemon/test_state tests/daemon/test_resume tests/daemon/ctlraw
TESTS += tests/daemon/test_state tests/daemon/test_resume

tests_daemon_test_state_SOURCES = tests/daemon/test_state.c
tests_daemon_test_state_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_daemon_test_state_LDADD = $(PERCH_UNIT_LIBS)

tests_daemon_test_resume_SOURCES = tests/daemon/test_resume.c
tests_daemon_test_resume_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_daemon_test_resume_LDADD = $(PERCH_UNIT_LIBS)

# A raw client for malformed and oversized requests.
tests_daemon_ctlraw_SOURCES = tests/daemon/ctlraw.c
tests_daemon_ctlraw_CFLAGS = $(AM_CFLAGS)

DAEMON_TESTS = \
	tests/daemon/basic.sh \
	tests/daemon/reload.sh \
	tests/daemon/adopt.sh \
	tests/daemon/shutdown.sh \
	tests/daemon/swap.sh \
	tests/daemon/remove.sh
TESTS += $(DAEMON_TESTS)
EXTRA_DIST += tests/daemon/lib.sh $(DAEMON_TESTS)
