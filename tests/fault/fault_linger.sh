#!/bin/sh
# A step whose log descriptor never reaches end of stream (a daemon the
# step left behind still holds it): once wait_step returned, the runtime
# reads on for PERCH_LOG_LINGER_MS (2 s) of silence, then closes the
# descriptor with a warning, and the workflow ends normally.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

two_stages >"$T/wf.json"
: >"$T/calls"
PERCH_FAULTY_MODE=open-tail PERCH_FAULTY_LOG=$T/calls \
	run_bounded 60 --backend faulty run --result "$T/result.json" "$T/wf.json"
expect_ended "a log that never ends"
expect_rc 0 "a log that never ends"
# Both steps' output got through, then each log was closed with a warning.
expect_grep '[a:L0:0s] faulty: a ran' "$T/out"
expect_grep '[b:L0:0s] faulty: b ran' "$T/out"
expect_lines 1 'step "a": its log stayed open 2000 ms after the step ended' "$T/err"
expect_lines 1 'step "b": its log stayed open 2000 ms after the step ended' "$T/err"
jq_check '.status == "success" and all(.steps[]; .exited and .exit_code == 0)' "$T/result.json"
expect_calls destroy_workflow 1
expect_no_fd_leak
