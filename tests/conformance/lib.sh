# lib.sh - helpers for the conformance tests (sourced after
# tests/integration/lib.sh, POSIX sh).
#
# CONFORMANCE is the staged perch-conformance, installed beside $PERCH.
CONFORMANCE="$(dirname "$PERCH")/perch-conformance"
[ -x "$CONFORMANCE" ] || fail "$CONFORMANCE is not an executable (did tests/inst.stamp install it?)"

# A generous hang bound around every run: the tool bounds each plugin call
# itself, so reaching this means perch-conformance itself is broken.
if command -v timeout >/dev/null 2>&1; then
	BOUND="timeout 900"
else
	BOUND=""
fi

# conformance ARGS... - runs perch-conformance; stdout in $T/out, stderr in
# $T/err, exit status in $rc.
conformance() {
	set +e
	$BOUND "$CONFORMANCE" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	set -e
	[ "$rc" -ne 124 ] || { cat "$T/out" "$T/err"; fail "perch-conformance hung (killed after 900 s)"; }
}

# expect_line LINE - stdout has exactly this line.
expect_line() {
	grep -qxF -- "$1" "$T/out" || {
		echo "--- stdout"; cat "$T/out"; echo "--- stderr"; cat "$T/err"
		fail "perch-conformance did not print the line: $1"
	}
}

# expect_line_prefix PREFIX - stdout has a line starting with PREFIX.
expect_line_prefix() {
	awk -v p="$1" 'index($0, p) == 1 { found = 1 } END { exit !found }' "$T/out" || {
		echo "--- stdout"; cat "$T/out"; echo "--- stderr"; cat "$T/err"
		fail "perch-conformance printed no line starting with: $1"
	}
}

# expect_all_pass N_SKIPPED - exit 0, no FAIL line, every check reported,
# and the final count says so.
expect_all_pass() {
	n_checks=$("$CONFORMANCE" --list | wc -l)
	expect_rc 0 "perch-conformance"
	expect_no_grep "FAIL " "$T/out" "the report"
	n_lines=$(grep -c -E '^(PASS|SKIP) ' "$T/out")
	[ "$n_lines" -eq "$n_checks" ] || { cat "$T/out"; fail "expected $n_checks check lines, got $n_lines"; }
	expect_line "$((n_checks - $1)) passed, 0 failed, $1 skipped"
}
