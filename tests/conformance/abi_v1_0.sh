#!/bin/sh
# A plugin built from the frozen copy of the v1.0 headers
# (sdk/abi/v1.0/include) keeps loading and passing in the current host:
# the promise of every v1.x release.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/conformance/lib.sh"

dir="$abs_top_builddir/sdk/abi/.libs"
plugin="$dir/v1_0_template.so"
[ -f "$plugin" ] || fail "$plugin is missing (check_LTLIBRARIES not built?)"

set +e
PERCH_PLUGIN_PATH="$dir" "$PERCH" backends --json >"$T/backends.json" 2>"$T/err"
rc=$?
set -e
expect_rc 0 "perch backends"
jq_check "any(.[]; .path == \"$plugin\" and .available and .abi == \"1.0\" and .error == null)" "$T/backends.json"

conformance --skip missing-image="the template ignores images" "$plugin"
expect_all_pass 2
