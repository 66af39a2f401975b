#!/bin/sh
# abi-check.sh BASELINE.abi ANCHOR.so - compares the anchor library built
# from the current headers with the committed v1.0 baseline (libabigail),
# and fails unless every difference is one that a minor release may make.
#
# abidiff's exit status is a bit field: 1 error, 2 usage error, 4 the ABI
# changed, 8 an incompatible change.  1, 2 and 8 are fatal.  4 is fatal
# too, unless the leaf report consists only of:
#   - a growable struct (one that starts with struct_size) that got bigger
#     by members inserted at or after its old size: appended, never in the
#     middle and never into its old tail padding (a reader cannot tell
#     whether an old writer zeroed the padding);
#   - new enumerators (abidiff does not even report those by default);
#   - new anchor objects (new types of a new minor).
# Everything else - a frozen struct that changed at all, a member that
# moved, changed type or vanished, a changed function-pointer signature, a
# changed enumerator value, a removed symbol - is a break.
#
# ABIDIFF names the abidiff to run (tests/conformance/abi_rule.sh feeds the
# rule canned reports through it).
set -eu
baseline=$1
anchor=$2
ABIDIFF=${ABIDIFF:-abidiff}
command -v "$ABIDIFF" >/dev/null 2>&1 || {
	echo "abi-check: $ABIDIFF not found (Debian: apt-get install abigail-tools)" >&2
	exit 2
}
report=${TMPDIR:-/tmp}/perch-abi-check.$$
trap 'rm -f "$report"' EXIT
set +e
"$ABIDIFF" --leaf-changes-only "$baseline" "$anchor" >"$report" 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ]; then
	echo "abi-check: the v1 ABI is unchanged"
	exit 0
fi
if [ $((rc & 11)) -ne 0 ]; then
	cat "$report"
	echo "abi-check: abidiff exit status $rc: error or incompatible ABI change" >&2
	exit 1
fi

# Status 4: only the changes listed above may appear.  Growable structs:
growable='perch_step perch_stage perch_config perch_state perch_backend_info
perch_discovered_step perch_discovered_workflow perch_flag perch_host perch_backend
perch_workflow_discoverer_v1 perch_workflow_resumer_v1 perch_resume_point'
if awk -v growable="$growable" '
function bad(why) { printf "abi-check: not an append-only change (%s):\n  %s\n", why, $0; failed = 1 }
BEGIN { n = split(growable, g, /[ \n]+/); for (i = 1; i <= n; i++) grows[g[i]] = 1 }
/^$/ { next }
/^Leaf changes summary:/ || /^Changed leaf types summary:/ { next }
/^Removed\/Changed\/Added (functions|variables) summary:/ {
	if ($0 !~ /: 0 Removed,/) bad("something was removed"); next }
/^[0-9]+ (Changed|Added) (variable|function)s?:$/ { next }
/^ *\[A\] / { next }
/^ *\[C\] .* was changed/ { next }
/^ *type of variable changed:$/ { next }
/^ *details were reported earlier$/ { next }
/^ *size of symbol changed from [0-9]+ to [0-9]+$/ {
	if ($(NF) + 0 < $(NF - 2) + 0) bad("an object shrank"); next }
/underlying type .struct [a-z0-9_]+. .* changed:$/ || /^.struct [a-z0-9_]+ at .*. changed:$/ {
	s = $0; sub(/.*struct /, "", s); sub(/[ '"'"'].*/, "", s); cur = s
	if (!(cur in grows)) bad(cur " is frozen: it never changes in v1"); next }
/^ *type size changed from [0-9]+ to [0-9]+ \(in bits\)$/ {
	old[cur] = $5 + 0; if ($7 + 0 < $5 + 0) bad(cur " shrank"); next }
/^ *type size hasn.t changed$/ { next }
/^ *[0-9]+ data member insertions?:$/ { next }
/^ *.*, at offset [0-9]+ \(in bits\)/ {
	s = $0; sub(/.*, at offset /, "", s); off = s + 0
	if (!(cur in old)) bad("a member was inserted but " cur " did not grow")
	else if (off < old[cur]) bad("inserted inside the old size of " cur)
	next }
/^.enum [a-z0-9_]+ at .*. changed:$/ { next }
/^ *[0-9]+ enumerator insertions?:$/ { next }
/^ *.[a-z0-9_]+::[A-Z0-9_]+. value / { next }
{ bad("change") }
END { exit failed }
' "$report"; then
	cat "$report"
	echo "abi-check: only additions at the end: fine for a minor release (bump PERCH_ABI_MINOR)"
	exit 0
fi
cat "$report"
exit 1
