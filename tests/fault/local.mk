# tests/fault: perch against backends that fail, hang or hold on, and
# against a hostile environment (few descriptors, a closed stdout, a full
# disk).  Each test drives the staged perch ($PERCH) with the "faulty"
# fixture backend (faulty.c) or the shipped ones.  docs/reliability.md says
# what is survived.
check_LTLIBRARIES += tests/fault/faulty.la
tests_fault_faulty_la_SOURCES = tests/fault/faulty.c
tests_fault_faulty_la_CPPFLAGS = -I$(top_srcdir)/sdk/include
tests_fault_faulty_la_CFLAGS = $(AM_CFLAGS) $(PLUGIN_CFLAGS)
# -module spelled out: automake accepts a .la name without "lib" only when
# it sees it; -rpath makes libtool build a real .so for a library never
# installed.
tests_fault_faulty_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS) -module -avoid-version \
	-rpath /nowhere

FAULT_TESTS = \
	tests/fault/fault_calls.sh \
	tests/fault/fault_linger.sh \
	tests/fault/fault_fdlimit.sh \
	tests/fault/fault_emfile.sh \
	tests/fault/fault_epipe.sh \
	tests/fault/fault_fullfs.sh \
	tests/fault/fault_cleanup.sh \
	tests/fault/fault_sigint_phases.sh \
	tests/fault/fault_hang.sh \
	tests/fault/fault_dockerd.sh \
	tests/fault/fault_hang_daemon.sh
TESTS += $(FAULT_TESTS)
EXTRA_DIST += $(FAULT_TESTS) tests/fault/fault_lib.sh

# Not part of `make check`: the soak (minutes), the valgrind run of the unit
# tests (.ci/run calls it) and what they measured.
EXTRA_DIST += tests/soak/soak.sh .ci/valgrind.sh docs/reliability.md
