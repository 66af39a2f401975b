# bench: benchmark programs (built on demand: make bench/load_bench) and the
# scripts that run them.  Results: docs/benchmarks.md.
EXTRA_PROGRAMS = bench/load_bench
bench_load_bench_SOURCES = bench/load_bench.c
bench_load_bench_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS) $(LIBCONFIG_CFLAGS)
bench_load_bench_LDADD = host/libperchhost.la
CLEANFILES += $(EXTRA_PROGRAMS)
EXTRA_DIST += bench/load.sh
EXTRA_PROGRAMS += bench/runstat
bench_runstat_SOURCES = bench/runstat.c
EXTRA_DIST += bench/lib.sh bench/step_overhead.sh bench/fanout.sh bench/log_throughput.sh
# The docker engine's floor (create, start, wait, remove over one
# connection): the baseline of bench/docker_steps.sh.
EXTRA_PROGRAMS += bench/docker_floor
bench_docker_floor_SOURCES = bench/docker_floor.c
bench_docker_floor_CFLAGS = $(AM_CFLAGS) $(LIBCURL_CFLAGS) $(JSONC_CFLAGS)
bench_docker_floor_LDADD = $(LIBCURL_LIBS) $(JSONC_LIBS)
EXTRA_DIST += bench/docker_steps.sh bench/docker_logs.sh
# Probes of the daemon's timing (reply lines stamped on arrival, polls
# without client start-up): bench/swap_gap.sh and bench/adopt_docker.sh.
EXTRA_PROGRAMS += bench/ctlwatch
bench_ctlwatch_SOURCES = bench/ctlwatch.c
EXTRA_DIST += bench/reload.sh bench/swap_gap.sh bench/adopt_docker.sh
