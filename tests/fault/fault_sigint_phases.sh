#!/bin/sh
# SIGINT in each phase of a run reaches the blocked backend call through its
# context: during setup_workflow and during start_step (while a step runs
# and during destroy: tests/integration/run_local.sh).  Each time perch
# exits 130, skips what follows, still calls destroy_workflow exactly once,
# and leaves no descriptor open.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

two_stages >"$T/wf.json"
for phase in setup start; do
	: >"$T/calls"
	signals="10:INT" PERCH_FAULTY_MODE=block-$phase PERCH_FAULTY_LOG=$T/calls \
		run_bounded 30 --backend faulty run --result "$T/result.json" "$T/wf.json"
	expect_ended "SIGINT during $phase"
	expect_rc 130 "SIGINT during $phase"
	expect_calls destroy_workflow 1
	expect_no_fd_leak
	jq_check '.status == "killed" and all(.steps[]; .cancelled or .skipped)' "$T/result.json"
	if [ $phase = setup ]; then
		expect_calls start_step 0
	else
		expect_calls start_step 1
		# the step whose start was interrupted is still destroyed
		expect_calls destroy_step 1
	fi
done
echo "fault_sigint_phases: all passed"
