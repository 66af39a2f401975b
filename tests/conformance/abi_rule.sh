#!/bin/sh
# The rule of `make abi-check` (sdk/abi/abi-check.sh), without libabigail:
# canned abidiff leaf reports of real header edits (sdk/abi/rule-tests/,
# named <ok|bad>-<edit>.<abidiff status>.txt) go through the script via a
# stand-in abidiff.  Appending to a growable struct, adding a type: fine.
# Inserting in the middle or into tail padding, growing a frozen struct,
# retyping a member or a call, changing an enumerator, removing a symbol:
# a break.
. "${abs_top_srcdir}/tests/integration/lib.sh"

script="$abs_top_srcdir/sdk/abi/abi-check.sh"
cat >"$T/abidiff" <<'EOS'
#!/bin/sh
cat "$CANNED_REPORT"
exit "$CANNED_STATUS"
EOS
chmod +x "$T/abidiff"

n=0
for report in "$abs_top_srcdir"/sdk/abi/rule-tests/*.txt; do
	name=$(basename "$report" .txt)
	status=${name##*.}
	want=${name%%-*}
	set +e
	CANNED_REPORT="$report" CANNED_STATUS="$status" ABIDIFF="$T/abidiff" \
		sh "$script" baseline.abi anchor.abi >"$T/out" 2>&1
	rc=$?
	set -e
	case "$want" in
	ok) [ "$rc" -eq 0 ] || { cat "$T/out"; fail "$name: an allowed change was refused"; }
	    expect_grep "only additions at the end" "$T/out" "$name";;
	bad) [ "$rc" -eq 1 ] || { cat "$T/out"; fail "$name: a break was accepted (exit $rc)"; };;
	*) fail "$name: name it ok-... or bad-...";;
	esac
	n=$((n + 1))
done
[ "$n" -ge 11 ] || fail "only $n canned reports found"

# No change at all, and no abidiff at all.
printf '' >"$T/empty"
CANNED_REPORT="$T/empty" CANNED_STATUS=0 ABIDIFF="$T/abidiff" sh "$script" b a >"$T/out" 2>&1 ||
	fail "an unchanged ABI was refused"
expect_grep "the v1 ABI is unchanged" "$T/out"
set +e
ABIDIFF="$T/no-such-abidiff" sh "$script" b a >"$T/out" 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "a missing abidiff exited $rc, expected 2"
expect_grep "apt-get install abigail-tools" "$T/out"
