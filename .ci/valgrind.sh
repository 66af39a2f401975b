#!/bin/sh
# valgrind.sh BUILDDIR - every unit test under valgrind; any report fails.
#
# BUILDDIR is a configured build tree (plain, not --enable-sanitizers:
# valgrind and ASan do not mix).  Builds what `make check` needs, then runs
# every cmocka test binary (tests/unit/test_*) and the fuzz replayers
# (tests/fuzz/regress_*) through the test harness, so that each gets the
# environment it gets under `make check`, with
#   libtool --mode=execute valgrind --leak-check=full
#     --errors-for-leak-kinds=definite,indirect --error-exitcode=1
#     --track-fds=yes
# A test fails on a memory error or a definite/indirect leak (valgrind's
# exit code), and this script fails too on any descriptor left open at exit
# that the test did not inherit (valgrind reports those but does not count
# them as errors).  Reports are kept in BUILDDIR/valgrind/.
#
# Called by .ci/run after the plain build; by hand:
#   sh .ci/valgrind.sh /tmp/build
set -eu
[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$1" && pwd)
[ -f "$B/Makefile" ] && [ -x "$B/libtool" ] || {
	echo "valgrind.sh: $B is not a configured perch build tree" >&2
	exit 2
}
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }
if grep -q '^SAN_CFLAGS = .*-fsanitize' "$B/Makefile"; then
	echo "valgrind.sh: $B is a sanitizer build; valgrind needs a plain one" >&2
	exit 2
fi

jobs=$(nproc 2>/dev/null || echo 2)
# Builds the test programs (and the staged install they may use), runs none.
make -C "$B" -j"$jobs" check TESTS= >/dev/null

cd "$B"
tests=""
for t in tests/unit/test_* tests/fuzz/regress_*; do
	case $t in *.*) continue ;; esac # .o, .log, .trs, .c
	[ -f "$t" ] && [ -x "$t" ] && tests="$tests $t"
done
[ -n "$tests" ] || { echo "valgrind.sh: no test binaries in $B" >&2; exit 1; }

V="$B/valgrind"
rm -rf "$V" && mkdir -p "$V"
# One report per process (its "Command:" line names the test); a test that
# forks without exec leaves one per child.
vg="$B/libtool --mode=execute valgrind --leak-check=full"
vg="$vg --errors-for-leak-kinds=definite,indirect --error-exitcode=1 --track-fds=yes"
vg="$vg --num-callers=30 --log-file=$V/%p.log --suppressions=$V/libconfig.supp"

# libconfig 1.5 (Debian bookworm) leaks in its scanner when a syntax error
# follows a string token (`a "x";`): not perch's leak (tests/fuzz/fuzz_conf.c
# says more).  Only these two allocation sites are let through.
cat >"$V/libconfig.supp" <<'SUPP'
{
   libconfig-1.5-scanner-strbuf
   Memcheck:Leak
   match-leak-kinds: definite,indirect
   ...
   fun:strbuf_append
}
{
   libconfig-1.5-scanner-string
   Memcheck:Leak
   match-leak-kinds: definite,indirect
   ...
   fun:libconfig_yylex
}
SUPP

# LOG_COMPILER runs each test through valgrind, with the environment of
# `make check` (AM_TESTS_ENVIRONMENT in tests/local.mk).
rc=0
if ! make -j"$jobs" check TESTS="$tests" LOG_COMPILER="$vg" >"$V/make.out" 2>&1; then
	grep -E '^(FAIL|ERROR|XPASS)' "$V/make.out" || tail -n 30 "$V/make.out"
	rc=1
fi
for f in "$V"/*.log; do
	[ -f "$f" ] || continue
	# A child that exec'd something else stops being traced: its report
	# has no summary, and nothing to say.
	if grep -q 'ERROR SUMMARY: [1-9]' "$f"; then
		echo "valgrind.sh: $(sed -n 's/.*Command: //p' "$f" | head -n 1):"
		cat "$f"
		rc=1
	fi
done

# Descriptors left open: an "Open ..." entry whose next line is not
# "<inherited from parent>", in the report of a test process.  A child a
# test forked (without exec) holds copies of its parent's descriptors,
# which valgrind lists with the parent's stack: its report is skipped.
tops=""
for f in "$V"/*.log; do
	[ -f "$f" ] || continue
	parent=$(sed -n 's/^==[0-9]*== Parent PID: //p' "$f" | head -n 1)
	[ -f "$V/$parent.log" ] || tops="$tops $f"
done
leaks=""
[ -z "$tops" ] || leaks=$(awk '
	/Open (file descriptor|AF_[A-Z0-9]+ socket) [0-9]+/ { pending = FILENAME ": " $0; next }
	pending != "" { if ($0 !~ /inherited from parent/) print pending; pending = "" }
' $tops)
if [ -n "$leaks" ]; then
	echo "valgrind.sh: descriptors left open at exit:"
	echo "$leaks"
	rc=1
fi
n=$(ls "$V"/*.log 2>/dev/null | wc -l)
[ "$n" -gt 0 ] || { echo "valgrind.sh: valgrind wrote no report" >&2; exit 1; }
echo "valgrind.sh: $(echo $tests | wc -w) test programs, $n processes checked"
exit $rc
