#!/bin/sh
# A plugin call that never returns and ignores cancellation.  perch cannot
# kill a thread, but it must still end within a bounded time once the
# workflow is cancelled: exit 130 and one line naming the stuck call, so
# that a CI agent is never wedged by one bad plugin.
#  - wait_step hangs; --timeout 1s cancels the workflow;
#  - wait_step hangs; SIGTERM, then SIGTERM again ("cut cleanup short");
#  - destroy_step hangs past its cleanup context; SIGTERM twice.
# Expected to fail (XFAIL_TESTS) until the runtime abandons stuck calls;
# see docs/reliability.md for where it blocks.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

# How long perch may take after cancellation: the 1 s timeout plus a grace
# period for calls that do return.
BOUND=${PERCH_FAULT_HANG_BOUND:-20}
printf '{"pipeline":[{"steps":[{"name":"stuck","uuid":"us","type":"commands","on_success":true}]}]}\n' \
	>"$T/wf.json"
bad=""

# check WHAT CALL: the last run ended, exit 130, naming CALL.
check() {
	if [ "$rc" = hung ]; then
		echo "$1: perch still ran $BOUND s after cancellation; killed it. Its threads:"
		cat "$T/hung"
		echo "--- stderr"
		cat "$T/err"
		bad="$bad [$1]"
	elif [ "$rc" != 130 ] || ! grep -q "$2" "$T/err"; then
		echo "$1: exit $rc (expected 130) and stderr (expected a line naming $2):"
		cat "$T/err"
		bad="$bad [$1]"
	fi
}

: >"$T/calls"
PERCH_FAULTY_MODE=hang-wait PERCH_FAULTY_LOG=$T/calls \
	run_bounded $((BOUND + 1)) --backend faulty run --timeout 1s "$T/wf.json"
check "wait_step hangs, --timeout 1s" wait_step

: >"$T/calls"
PERCH_FAULTY_MODE=hang-wait PERCH_FAULTY_LOG=$T/calls signals="10:TERM 20:TERM" \
	run_bounded $((BOUND + 2)) --backend faulty run "$T/wf.json"
check "wait_step hangs, SIGTERM twice" wait_step

: >"$T/calls"
PERCH_FAULTY_MODE=hang-destroy-step PERCH_FAULTY_LOG=$T/calls signals="10:TERM 20:TERM" \
	run_bounded $((BOUND + 2)) --backend faulty run "$T/wf.json"
check "destroy_step hangs, SIGTERM twice" destroy_step

[ -z "$bad" ] || fail "perch did not end properly:$bad"
