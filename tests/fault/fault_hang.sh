#!/bin/sh
# A plugin call that never returns and ignores cancellation.  perch cannot
# kill a thread, but it must still end within a bounded time once the
# workflow is cancelled: exit 130 and one line naming the stuck call, so
# that a CI agent is never wedged by one bad plugin.  The runtime gives up
# on a call 10 s after the workflow was cancelled (a --timeout), or 1 s
# after a second signal cut cleanup short (runtime.h, "stuck calls"):
#  - setup_workflow or wait_step hangs; --timeout 1s cancels the workflow;
#  - start_step, tail_step or wait_step hangs; SIGTERM, then SIGTERM again;
#  - destroy_step, destroy_workflow hang past their cleanup contexts;
#    SIGTERM twice;
#  - a service's wait_step outlives destroy_workflow; SIGTERM twice.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

# How long perch may take after cancellation: the 1 s timeout plus a grace
# period for calls that do return.
BOUND=${PERCH_FAULT_HANG_BOUND:-20}
printf '{"pipeline":[{"steps":[{"name":"stuck","uuid":"us","type":"commands","on_success":true}]}]}\n' \
	>"$T/wf.json"
printf '{"pipeline":[{"steps":[{"name":"svc","uuid":"sv","type":"service","detach":true,"on_success":true}]},{"steps":[{"name":"after","uuid":"af","type":"commands","on_success":true}]}]}\n' \
	>"$T/svc.json"
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

for call in setup wait; do
	: >"$T/calls"
	PERCH_FAULTY_MODE=hang-$call PERCH_FAULTY_LOG=$T/calls \
		run_bounded $((BOUND + 1)) --backend faulty run --timeout 1s "$T/wf.json"
	case $call in setup) name=setup_workflow ;; *) name=${call}_step ;; esac
	check "$name hangs, --timeout 1s" "$name call did not return 10 s after the workflow was cancelled"
done
for call in start tail; do
	: >"$T/calls"
	PERCH_FAULTY_MODE=hang-$call PERCH_FAULTY_LOG=$T/calls signals="10:TERM 20:TERM" \
		run_bounded $((BOUND + 2)) --backend faulty run "$T/wf.json"
	check "${call}_step hangs, SIGTERM twice" "${call}_step call did not return 1 s after cleanup"
done

: >"$T/calls"
PERCH_FAULTY_MODE=hang-wait PERCH_FAULTY_LOG=$T/calls signals="10:TERM 20:TERM" \
	run_bounded $((BOUND + 2)) --backend faulty run "$T/wf.json"
check "wait_step hangs, SIGTERM twice" "wait_step call did not return 1 s after cleanup"

for call in destroy-step destroy-workflow; do
	: >"$T/calls"
	PERCH_FAULTY_MODE=hang-$call PERCH_FAULTY_LOG=$T/calls signals="10:TERM 20:TERM" \
		run_bounded $((BOUND + 2)) --backend faulty run "$T/wf.json"
	name=$(echo "$call" | tr - _)
	check "$name hangs, SIGTERM twice" "$name call did not return 1 s after cleanup"
done

# The service's wait outlives destroy_workflow (which ran: it was called
# once) and is given up on.
: >"$T/calls"
PERCH_FAULTY_MODE=hang-service PERCH_FAULTY_LOG=$T/calls signals="10:TERM 20:TERM" \
	run_bounded $((BOUND + 2)) --backend faulty run "$T/svc.json"
check "a service's wait_step hangs, SIGTERM twice" 'step "svc": the backend.s wait_step call did not return'
[ "$(grep -c '^destroy_workflow' "$T/calls")" = 1 ] || {
	echo "destroy_workflow was not called exactly once:"; cat "$T/calls"; bad="$bad [service]"; }

[ -z "$bad" ] || fail "perch did not end properly:$bad"
