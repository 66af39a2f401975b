# lib.sh - helpers for perch's integration tests (sourced, POSIX sh).
#
# Every test gets a private temp dir ($T) removed on exit, checks its
# outcome explicitly and fails loudly: `fail MESSAGE` prints and exits 1.
# Tests drive the staged install ($PERCH, set by the test environment).
set -eu

: "${PERCH:?PERCH is not set: run this through make check}"
[ -x "$PERCH" ] || { echo "FAIL: $PERCH is not an executable (did tests/inst.stamp run?)" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/perch-test.XXXXXX")
cleanup_hooks=""
on_exit() {
	rc=$?
	for h in $cleanup_hooks; do $h || true; done
	rm -rf "$T"
	exit $rc
}
trap on_exit EXIT
trap 'exit 130' INT TERM
add_cleanup() { cleanup_hooks="$cleanup_hooks $1"; }

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# run_perch OUT ERR ARGS... - runs perch, stores stdout/stderr, sets $rc.
run_perch() {
	_out=$1 _err=$2
	shift 2
	set +e
	"$PERCH" "$@" >"$_out" 2>"$_err"
	rc=$?
	set -e
}

expect_rc() {
	[ "$rc" = "$1" ] || {
		echo "--- stdout"; cat "$T/out" 2>/dev/null || true
		echo "--- stderr"; cat "$T/err" 2>/dev/null || true
		fail "${2:-perch} exited $rc, expected $1"
	}
}

# expect_grep PATTERN FILE [WHAT] - the file must contain the fixed string.
expect_grep() {
	grep -qF -- "$1" "$2" || {
		echo "--- $2"; cat "$2"
		fail "${3:-$2} does not contain: $1"
	}
}

expect_no_grep() {
	if grep -qF -- "$1" "$2"; then
		echo "--- $2"; cat "$2"
		fail "${3:-$2} unexpectedly contains: $1"
	fi
}

# One line: the stderr of a failing command must be exactly one line.
expect_one_line() {
	n=$(wc -l <"$1")
	[ "$n" -eq 1 ] || { echo "--- $1"; cat "$1"; fail "expected one line in $1, got $n"; }
}

# jq_check FILTER FILE - the JSON file satisfies the jq filter (true).
jq_check() {
	command -v jq >/dev/null || fail "jq is required for this test (apt-get install jq)"
	jq -e "$1" "$2" >/dev/null || { echo "--- $2"; cat "$2"; fail "jq: $1"; }
}

# jq_check_lines FILTER FILE - for a JSON-lines file, slurped into an array.
jq_check_lines() {
	command -v jq >/dev/null || fail "jq is required for this test (apt-get install jq)"
	jq -s -e "$1" "$2" >/dev/null || { echo "--- $2"; head -n 20 "$2"; fail "jq -s: $1"; }
}

# Counts processes whose environment carries the marker (leak checks).
count_marked() {
	n=0
	for e in /proc/[0-9]*/environ; do
		if { tr '\0' '\n' <"$e"; } 2>/dev/null | grep -qx "PERCH_TEST_MARK=$1"; then
			n=$((n + 1))
		fi
	done
	echo $n
}
