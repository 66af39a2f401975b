# tests/fuzz: libFuzzer harnesses for the parts of perch that read input
# from outside (docs/reliability.md):
#   workflow  the workflow JSON parser, with a round-trip oracle
#   conf      the config file and flag resolution
#   logpipe   line splitting and secret masking, with the text/JSON sinks
#   docker    every parser of the docker backend that reads the engine's
#             answers, through the plugin's entry points against a scripted
#             engine (fuzz_docker.c replaces plugins/docker/http.c)
#   ctl       the daemon's control requests: line framing and its limit,
#             JSON decoding and each command's fields (host/daemon_ctl.h)
#
# Two builds of the same harness sources:
#  - `make check` replays the committed seeds (corpus/<name>/) and every
#    input that once found a bug (regress/<name>/) through each harness,
#    with the project's compiler and a plain main (regress_main.c);
#  - `make fuzz` builds each harness with clang's libFuzzer, ASan and UBSan
#    straight from the host sources it needs, and fuzzes each for
#    FUZZ_SECONDS.  It needs `./configure CC=clang` (or FUZZ_CC=clang) and
#    libFuzzer (Debian: libclang-rt-14-dev); it says so when either is
#    missing.

FUZZ_NAMES = workflow conf logpipe docker ctl

# ---- make check: replay ------------------------------------------------------
FUZZ_REGRESS_CFLAGS = $(PERCH_UNIT_CFLAGS) -I$(top_srcdir)/tests/fuzz \
	-DFUZZ_SRCDIR='"$(abs_top_srcdir)"'

check_PROGRAMS += tests/fuzz/regress_workflow tests/fuzz/regress_conf tests/fuzz/regress_logpipe
TESTS += tests/fuzz/regress_workflow tests/fuzz/regress_conf tests/fuzz/regress_logpipe

tests_fuzz_regress_workflow_SOURCES = tests/fuzz/fuzz_workflow.c tests/fuzz/regress_main.c \
	tests/fuzz/fuzz.h
tests_fuzz_regress_workflow_CFLAGS = $(FUZZ_REGRESS_CFLAGS) -DFUZZ_NAME='"workflow"'
tests_fuzz_regress_workflow_LDADD = host/libperchhost.la $(JSONC_LIBS)

tests_fuzz_regress_conf_SOURCES = tests/fuzz/fuzz_conf.c tests/fuzz/regress_main.c \
	tests/fuzz/fuzz.h
tests_fuzz_regress_conf_CFLAGS = $(FUZZ_REGRESS_CFLAGS) -DFUZZ_NAME='"conf"'
tests_fuzz_regress_conf_LDADD = host/libperchhost.la $(LIBCONFIG_LIBS)

tests_fuzz_regress_logpipe_SOURCES = tests/fuzz/fuzz_logpipe.c tests/fuzz/regress_main.c \
	tests/fuzz/fuzz.h
tests_fuzz_regress_logpipe_CFLAGS = $(FUZZ_REGRESS_CFLAGS) -DFUZZ_NAME='"logpipe"'
tests_fuzz_regress_logpipe_LDADD = host/libperchhost.la $(JSONC_LIBS)

# The docker plugin's files but http.c (the harness is the engine), linked
# like its unit tests link it.  A file added to the plugin must be added
# here too (the link says so).
FUZZ_DOCKER_PARTS = plugins/docker/docker.h plugins/docker/url.c \
	plugins/docker/script.c plugins/docker/convert.c plugins/docker/demux.c \
	plugins/docker/errors.c plugins/docker/engine.c plugins/docker/backend.c \
	plugins/docker/flags.c plugins/docker/pull.c plugins/docker/steps.c \
	plugins/docker/worker.c plugins/docker/logs.c plugins/docker/workflow.c \
	plugins/docker/discover.c
check_PROGRAMS += tests/fuzz/regress_docker tests/fuzz/regress_ctl
TESTS += tests/fuzz/regress_docker tests/fuzz/regress_ctl
tests_fuzz_regress_docker_SOURCES = tests/fuzz/fuzz_docker.c tests/fuzz/regress_main.c \
	tests/fuzz/fuzz.h $(FUZZ_DOCKER_PARTS)
tests_fuzz_regress_docker_CPPFLAGS = -I$(top_srcdir)/plugins/docker \
	$(PERCH_PLUGIN_COMMON_CPPFLAGS) $(AM_CPPFLAGS)
tests_fuzz_regress_docker_CFLAGS = $(FUZZ_REGRESS_CFLAGS) $(LIBCURL_CFLAGS) -DFUZZ_NAME='"docker"'
tests_fuzz_regress_docker_LDADD = $(PERCH_PLUGIN_COMMON) host/libperchhost.la $(LIBCURL_LIBS) \
	$(JSONC_LIBS) -lpthread

tests_fuzz_regress_ctl_SOURCES = tests/fuzz/fuzz_ctl.c tests/fuzz/regress_main.c \
	tests/fuzz/fuzz.h
tests_fuzz_regress_ctl_CFLAGS = $(FUZZ_REGRESS_CFLAGS) -DFUZZ_NAME='"ctl"'
tests_fuzz_regress_ctl_LDADD = host/libperchhost.la $(JSONC_LIBS)

EXTRA_DIST += tests/fuzz/corpus tests/fuzz/regress \
	tests/fuzz/workflow.dict tests/fuzz/conf.dict tests/fuzz/docker.dict \
	tests/fuzz/ctl.dict \
	tests/fuzz/mkseeds.sh .ci/fuzz.sh

# ---- make fuzz: libFuzzer ----------------------------------------------------
# Override on the command line: make fuzz FUZZ_CC=clang FUZZ_SECONDS=600
FUZZ_CC = $(CC)
FUZZ_SECONDS = 30
# Extra libFuzzer options for every harness, e.g. FUZZ_ARGS=-jobs=4
FUZZ_ARGS =
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -std=gnu11 -pthread \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(WARN_CFLAGS) $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz
FUZZ_BINS = tests/fuzz/fuzz_workflow tests/fuzz/fuzz_conf tests/fuzz/fuzz_logpipe \
	tests/fuzz/fuzz_docker tests/fuzz/fuzz_ctl

FUZZ_WORKFLOW_SRCS = $(top_srcdir)/tests/fuzz/fuzz_workflow.c $(top_srcdir)/host/util.c \
	$(top_srcdir)/host/workflow_arena.c $(top_srcdir)/host/workflow_text.c \
	$(top_srcdir)/host/workflow_check.c $(top_srcdir)/host/workflow_decode.c \
	$(top_srcdir)/host/workflow_json.c $(top_srcdir)/host/workflow_emit.c
FUZZ_CONF_SRCS = $(top_srcdir)/tests/fuzz/fuzz_conf.c $(top_srcdir)/host/util.c \
	$(top_srcdir)/host/conf.c $(top_srcdir)/host/flags.c
FUZZ_LOGPIPE_SRCS = $(top_srcdir)/tests/fuzz/fuzz_logpipe.c $(top_srcdir)/host/util.c \
	$(top_srcdir)/host/mask.c $(top_srcdir)/host/logpipe.c $(top_srcdir)/host/logsink.c

# docker: the plugin's files but http.c, and plugins/common.  ctl: the
# whole host library, since daemon_ctl.c (which holds the request parser)
# calls into the rest of the daemon.  Prerequisites are found through VPATH;
# the recipes prefix $(top_srcdir) to the .c files themselves.
FUZZ_DOCKER_DEPS = tests/fuzz/fuzz_docker.c $(FUZZ_DOCKER_PARTS) \
	$(plugins_common_libperchplugin_la_SOURCES)
FUZZ_CTL_DEPS = tests/fuzz/fuzz_ctl.c $(host_libperchhost_la_SOURCES)

# Fails with the remedy when the compiler is not clang or has no libFuzzer
# (a libFuzzer link needs libclang_rt.fuzzer, which Debian ships in
# libclang-rt-<version>-dev, only recommended by clang).
fuzz-toolchain:
	@$(MKDIR_P) tests/fuzz; \
	if ! $(FUZZ_CC) --version 2>/dev/null | grep -qi clang; then \
		echo "make fuzz: FUZZ_CC=$(FUZZ_CC) is not clang; libFuzzer needs clang:" \
		     "run ./configure CC=clang, or make fuzz FUZZ_CC=clang" >&2; \
		exit 1; \
	fi; \
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
		>tests/fuzz/probe.c; \
	if ! $(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o tests/fuzz/probe \
		tests/fuzz/probe.c >tests/fuzz/probe.log 2>&1; then \
		cat tests/fuzz/probe.log >&2; \
		echo "make fuzz: $(FUZZ_CC) cannot link a libFuzzer harness" \
		     "(-fsanitize=fuzzer,address,undefined); on Debian install" \
		     "libclang-rt-$$($(FUZZ_CC) -dumpversion | cut -d. -f1)-dev" >&2; \
		rm -f tests/fuzz/probe tests/fuzz/probe.c; \
		exit 1; \
	fi; \
	rm -f tests/fuzz/probe tests/fuzz/probe.c tests/fuzz/probe.log

# config.h must exist: the harnesses include it like the host does.
tests/fuzz/fuzz_workflow: $(FUZZ_WORKFLOW_SRCS) $(top_srcdir)/tests/fuzz/fuzz.h config.h
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) $(JSONC_CFLAGS) -o $@ $(FUZZ_WORKFLOW_SRCS) \
		$(JSONC_LIBS)
tests/fuzz/fuzz_conf: $(FUZZ_CONF_SRCS) $(top_srcdir)/tests/fuzz/fuzz.h config.h
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) $(LIBCONFIG_CFLAGS) -o $@ $(FUZZ_CONF_SRCS) \
		$(LIBCONFIG_LIBS)
tests/fuzz/fuzz_logpipe: $(FUZZ_LOGPIPE_SRCS) $(top_srcdir)/tests/fuzz/fuzz.h config.h
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) $(JSONC_CFLAGS) -o $@ $(FUZZ_LOGPIPE_SRCS) \
		$(JSONC_LIBS)

tests/fuzz/fuzz_docker: $(FUZZ_DOCKER_DEPS) $(top_srcdir)/tests/fuzz/fuzz.h config.h
	$(AM_V_CCLD)srcs=""; for f in $(FUZZ_DOCKER_DEPS); do \
		case $$f in *.c) srcs="$$srcs $(top_srcdir)/$$f";; esac; \
	done; \
	$(FUZZ_CC) $(FUZZ_CFLAGS) -I$(top_srcdir)/plugins/docker $(PERCH_PLUGIN_COMMON_CPPFLAGS) \
		$(LIBCURL_CFLAGS) $(JSONC_CFLAGS) -o $@ $$srcs $(LIBCURL_LIBS) $(JSONC_LIBS)
tests/fuzz/fuzz_ctl: $(FUZZ_CTL_DEPS) $(top_srcdir)/tests/fuzz/fuzz.h config.h
	$(AM_V_CCLD)srcs=""; for f in $(FUZZ_CTL_DEPS); do \
		case $$f in *.c) srcs="$$srcs $(top_srcdir)/$$f";; esac; \
	done; \
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(JSONC_CFLAGS) $(LIBCONFIG_CFLAGS) $(LTDLINCL) -o $@ $$srcs \
		$(JSONC_LIBS) $(LIBCONFIG_LIBS) $(LIBLTDL) -ldl

fuzz-build: fuzz-toolchain
	@$(MAKE) $(AM_MAKEFLAGS) $(FUZZ_BINS)

# Each harness runs FUZZ_SECONDS from its seeds (and past regressions),
# new inputs going to tests/fuzz/work/<name>; a crash is kept as
# tests/fuzz/artifacts/<name>-crash-<sha1> and fails the target after every
# harness had its turn.  tests/fuzz/<name>.log holds libFuzzer's output.
fuzz: fuzz-build
	@failed=""; \
	for h in $(FUZZ_NAMES); do \
		$(MKDIR_P) tests/fuzz/work/$$h tests/fuzz/artifacts; \
		dict=""; \
		test -f $(top_srcdir)/tests/fuzz/$$h.dict && dict="-dict=$(top_srcdir)/tests/fuzz/$$h.dict"; \
		regress=""; \
		test -d $(top_srcdir)/tests/fuzz/regress/$$h && regress="$(top_srcdir)/tests/fuzz/regress/$$h"; \
		echo "fuzz: $$h for $(FUZZ_SECONDS) s"; \
		if ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
		   UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1} \
		   tests/fuzz/fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
			-rss_limit_mb=3072 -print_final_stats=1 $$dict \
			-artifact_prefix=tests/fuzz/artifacts/$$h- $(FUZZ_ARGS) \
			tests/fuzz/work/$$h $(top_srcdir)/tests/fuzz/corpus/$$h $$regress \
			>tests/fuzz/$$h.log 2>&1; then \
			grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' \
				tests/fuzz/$$h.log | sed "s/^/fuzz: $$h: /"; \
		else \
			tail -n 60 tests/fuzz/$$h.log; \
			echo "fuzz: $$h FAILED; input saved as:"; \
			ls tests/fuzz/artifacts/$$h-* 2>/dev/null; \
			failed="$$failed $$h"; \
		fi; \
	done; \
	if test -n "$$failed"; then echo "fuzz: failed:$$failed" >&2; exit 1; fi

clean-local: clean-fuzz
clean-fuzz:
	rm -rf $(FUZZ_BINS) tests/fuzz/work tests/fuzz/artifacts tests/fuzz/probe.c \
		tests/fuzz/probe tests/fuzz/probe.log tests/fuzz/workflow.log \
		tests/fuzz/conf.log tests/fuzz/logpipe.log tests/fuzz/docker.log \
		tests/fuzz/ctl.log
.PHONY: fuzz fuzz-build fuzz-toolchain clean-fuzz
