#!/bin/sh
# perch-conformance on the installed local backend, with real processes:
# shell steps (the default sh profile, image "sh").  Afterwards nothing may
# be left: no workflow folder in its temp dir, no step process.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/conformance/lib.sh"

plugin="$PERCH_TEST_INSTALLED_PLUGINDIR/local.so"
[ -f "$plugin" ] || fail "$plugin is missing (the local backend was not installed)"

mkdir "$T/tmp"
mark="conformance-local-$$"
conformance --flag backend-local-temp-dir="$T/tmp" \
	--workflow-env PERCH_TEST_MARK="$mark" "$plugin"
expect_all_pass 1
expect_line "PASS exit-codes"
expect_line "PASS missing-image"
expect_line "PASS cancel-wait"
expect_line "PASS detached-step"
expect_line "SKIP discover-resume: the plugin offers neither perch.workflow-discoverer/1 nor perch.workflow-resumer/1"
left=$(find "$T/tmp" -mindepth 1 -maxdepth 1 | head -n 5)
[ -z "$left" ] || fail "the local backend left workflow folders: $left"
n=$(count_marked "$mark")
[ "$n" -eq 0 ] || fail "$n step processes outlived perch-conformance"
