# lib.sh - shared by the benchmark scripts (sourced).  Run the scripts from a
# configured build tree; they stage an install in a temp dir and measure the
# installed perch, as a user would run it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
B=$(mktemp -d "${TMPDIR:-/tmp}/perch-bench.XXXXXX")
trap 'rm -rf "$B"' EXIT INT TERM
make -s -j"$(nproc)" >/dev/null
make -s bench/runstat >/dev/null
make -s install DESTDIR="$B/inst" >/dev/null
bindir=$(sed -n 's/^bindir = //p' Makefile | sed "s|\${exec_prefix}|$(sed -n 's/^exec_prefix = //p' Makefile)|; s|\${prefix}|$(sed -n 's/^prefix = //p' Makefile)|")
PERCH="$B/inst$bindir/perch"
RUNSTAT="$PWD/bench/runstat"
[ -x "$PERCH" ] || { echo "bench: no staged perch at $PERCH" >&2; exit 1; }

# ms CMD... - wall milliseconds of one run (stdout/stderr discarded).
ms() {
	"$RUNSTAT" "$@" 2>"$B/stat" >/dev/null || { cat "$B/stat"; echo "bench: failed: $*" >&2; exit 1; }
	sed -n 's/.*wall_ms=\([0-9]*\).*/\1/p' "$B/stat"
}

# median of the numbers on stdin
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
