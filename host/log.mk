# log part of the host: the log pipeline (line splitting, numbering,
# secret masking) and its sinks, with their tests.
host_libperchhost_la_SOURCES += \
	host/mask.c host/mask.h \
	host/logsink.c host/logsink_dir.c host/logsink.h \
	host/logpipe.c host/logpipe.h

check_PROGRAMS += tests/unit/test_mask tests/unit/test_logpipe tests/unit/test_logsink
TESTS += tests/unit/test_mask tests/unit/test_logpipe tests/unit/test_logsink

tests_unit_test_mask_SOURCES = tests/unit/test_mask.c
tests_unit_test_mask_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_unit_test_mask_LDADD = $(PERCH_UNIT_LIBS)

tests_unit_test_logpipe_SOURCES = tests/unit/test_logpipe.c
tests_unit_test_logpipe_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_unit_test_logpipe_LDADD = $(PERCH_UNIT_LIBS)

tests_unit_test_logsink_SOURCES = tests/unit/test_logsink.c
tests_unit_test_logsink_CFLAGS = $(PERCH_UNIT_CFLAGS)
tests_unit_test_logsink_LDADD = $(PERCH_UNIT_LIBS) $(JSONC_LIBS)
