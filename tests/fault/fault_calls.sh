#!/bin/sh
# A backend call fails: setup_workflow, start_step, tail_step or wait_step.
# perch must exit 3 (a backend error, README), say so in one line that
# names the call, skip what follows, still call destroy_step for the step
# it launched and destroy_workflow exactly once, and leave no descriptor
# open behind it.  (Failing cleanup calls, and the same at --log-level
# error: fault_cleanup.sh.)
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

two_stages >"$T/wf.json"

for call in setup start tail wait; do
	case $call in
	setup) fn=setup_workflow ;;
	*) fn=${call}_step ;;
	esac
	: >"$T/calls"
	PERCH_FAULTY_FAIL=$call PERCH_FAULTY_LOG=$T/calls \
		run_bounded 60 --backend faulty run --result "$T/result.json" "$T/wf.json"
	expect_ended "a failing $fn"
	expect_rc 3 "a failing $fn"
	expect_lines 1 "injected failure in $fn" "$T/err"
	expect_calls destroy_workflow 1
	expect_calls setup_workflow 1
	expect_no_fd_leak
	if [ $call = setup ]; then
		expect_lines 1 "setup_workflow failed: faulty: injected failure in setup_workflow" "$T/err"
		expect_calls start_step 0
		expect_calls destroy_step 0
		jq_check '.status == "error" and all(.steps[]; .skipped)' "$T/result.json"
	else
		expect_lines 1 "step \"a\" failed: faulty: injected failure in $fn" "$T/err"
		expect_calls start_step 1 # b never starts
		expect_calls destroy_step 1 # a is destroyed, even when it never started
		jq_check '.status == "error" and (.steps[0].error | contains("injected failure")) and .steps[1].skipped' "$T/result.json"
	fi
	# The destroy calls come after every other call.
	[ "$(tail -n 2 "$T/calls" | head -n 1 | cut -d' ' -f1)" = destroy_workflow ] ||
		{ cat "$T/calls"; fail "destroy_workflow was not the last call before unload ($fn)"; }
done
