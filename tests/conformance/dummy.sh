#!/bin/sh
# perch-conformance on the installed dummy backend.  Its steps are its
# environment knobs (--profile dummy); with a state dir, a fresh instance
# can discover and resume, so every check but missing-image runs.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/conformance/lib.sh"

plugin="$PERCH_TEST_INSTALLED_PLUGINDIR/dummy.so"
[ -f "$plugin" ] || fail "$plugin is missing (the dummy backend was not installed)"

mkdir "$T/state"
conformance --profile dummy --flag backend-dummy-state-dir="$T/state" \
	--skip missing-image="the dummy runs no images" "$plugin"
expect_all_pass 1
expect_line "PASS discover-resume"
expect_line "PASS cancel-wait"
expect_line "SKIP missing-image: the dummy runs no images"
# Every workflow the checks set up was destroyed: nothing is left to adopt.
left=$(find "$T/state" -mindepth 1 | head -n 5)
[ -z "$left" ] || fail "the dummy's state dir still holds: $left"

# In memory only, a fresh instance finds nothing: the check fails and says
# what to do about it.
conformance --profile dummy --only discover-resume "$plugin"
expect_rc 1 "perch-conformance without a state dir"
expect_line_prefix "FAIL discover-resume: a fresh instance did not discover workflow conformance-discover-resume-"
expect_grep "backend-dummy-state-dir" "$T/out"
expect_line "SKIP step-lifecycle: not selected (--only)"
