#!/bin/sh
# perch-conformance must catch a broken plugin: the fixture
# (tests/conformance/broken.c) has five defects, and each must show up as
# its own FAIL line while everything it does right still passes.  Its
# wait_step ignores cancellation, so this also shows that the tool gives up
# after its bound instead of hanging.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/conformance/lib.sh"

plugin="$abs_top_builddir/tests/conformance/.libs/broken.so"
[ -f "$plugin" ] || fail "$plugin is missing (check_LTLIBRARIES not built?)"

conformance --profile dummy --skip missing-image="the fixture runs no images" "$plugin"
expect_rc 1 "perch-conformance on a broken plugin"
expect_line "FAIL exports: exports 1 symbol besides perch_backend_v1 (broken_helper_exported): build with -fvisibility=hidden so that plugins never bind to each other"
expect_line 'FAIL load-without-cli: load without a CLI context returned no-cli-context with "no cli context"; the message must be exactly "no CliContext in context found" (use perch_ctx_cli())'
expect_line "FAIL exit-codes: step 'killed' reported exit code 1, expected 137"
expect_line_prefix "FAIL destroy-twice: a second destroy_step of the same step failed: not-found: step conformance-destroy-twice-"
expect_line "FAIL cancel-wait: wait_step did not return within 5 s of the cancellation of its context (backend.h: it must return cancelled promptly)"
for c in entry flags available load capabilities workflow-empty step-lifecycle \
	tail-after-destroy destroy-before-start destroy-unknown-workflow \
	parallel-workflows detached-step; do
	expect_line "PASS $c"
done
expect_line "SKIP discover-resume: the plugin offers neither perch.workflow-discoverer/1 nor perch.workflow-resumer/1"
expect_line "12 passed, 5 failed, 2 skipped"

# A file the loader refuses: its reason, word for word, and nothing runs.
refused="$abs_top_builddir/tests/fixtures/plugins/.libs/wrong_major.so"
[ -f "$refused" ] || fail "$refused is missing"
conformance "$refused"
expect_rc 1 "perch-conformance on a refused plugin"
expect_line_prefix "FAIL entry: refused by the loader: built for perch ABI 2"
expect_line "SKIP load: the plugin was refused"
expect_line "0 passed, 1 failed, 18 skipped"

# Usage errors are exit 2 with one reason.
conformance --skip no-such-check "$plugin"
expect_rc 2 "an unknown check name"
expect_grep 'unknown check "no-such-check" (see --list)' "$T/err"
conformance --flag backend-broken-nope=1 "$plugin"
expect_rc 2 "a flag the plugin does not declare"
expect_grep "unknown option --backend-broken-nope" "$T/err"
conformance "$T/no-such.so"
expect_rc 2 "a missing file"
