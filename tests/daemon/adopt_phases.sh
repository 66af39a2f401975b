#!/bin/sh
# SIGKILL of the daemon in every phase of a workflow, then a restart.  At
# the kill, on the dummy (state in a folder):
#   S  is inside setup_workflow: its folder is made, not yet complete;
#   M  is mid-step: a step sleeps;
#   B  is between two stages: its first stage ended, the start_step of the
#      second is in flight;
#   D  is inside destroy_workflow: every step ended, its folder still there;
#   E  is like D, but the test removes its folder after the kill, as if
#      destroy_workflow had finished just before it (and the daemon had not
#      yet recorded the result);
# and on local:
#   L  is mid-step: a real process runs.
# The dummy's hold knobs (SETUP_/START_/DESTROY_HOLD_FILE: the call waits
# while the file exists, and says so in the daemon's log) put each
# workflow in its phase deterministically; the test waits until all are
# there, kills, removes the files and restarts.  Then S is set up anew and
# runs, M's step is resumed, B's next stage runs on the new instance (which
# did not set it up), D's and E's results stand and D is destroyed; all
# five end with their real results and every log line exactly once; L is
# reported
# lost, its processes are stopped and its folder removed; nothing is left
# in the dummy's folder.
. "${abs_top_srcdir}/tests/daemon/lib.sh"

write_conf 'max_workflows = 8;
max_queue = 10;'
start_daemon
G="$T/gates"
mkdir -p "$G"
: >"$G/setup"
: >"$G/start"
: >"$G/destroy"

# S: two stages; setup held.
workflow "$(step s1 s1 "{\"SETUP_HOLD_FILE\":\"$G/setup\"}")" "$(step s2 s2 '{}')" >"$T/s.json"
submit "$T/s.json"
S=$id
# M: m1 sleeps 20 s (long enough for the rest to get in place on a loaded
# machine) and exits 3; m2 runs on failure.
workflow "$(step m1 m1 '{"SLEEP":"20s","STEP_EXIT_CODE":"3"}')" \
	"$(step m2 m2 '{}' '"on_failure":true')" >"$T/m.json"
submit "$T/m.json"
M=$id
# B: b1 ends; b2's start is held; b2 exits 2; b3 runs on failure.
workflow "$(step b1 b1 '{}')" \
	"$(step b2 b2 "{\"START_HOLD_FILE\":\"$G/start\",\"STEP_EXIT_CODE\":\"2\"}")" \
	"$(step b3 b3 '{}' '"on_failure":true')" >"$T/b.json"
submit "$T/b.json"
B=$id
# D: d1 exits 4 beside d2; d3 is then skipped; destroy held.
workflow "$(step d1 d1 "{\"DESTROY_HOLD_FILE\":\"$G/destroy\",\"STEP_EXIT_CODE\":\"4\"}"),$(step d2 d2 '{}')" \
	"$(step d3 d3 '{}')" >"$T/d.json"
submit "$T/d.json"
D=$id
# E: one step, exit 0; destroy held.
workflow "$(step e1 e1 "{\"DESTROY_HOLD_FILE\":\"$G/destroy\"}")" >"$T/e.json"
submit "$T/e.json"
E=$id
# L: local, a real process that would run for a minute.
printf '{"pipeline":[{"steps":[{"name":"sleeper","uuid":"l1","type":"commands","image":"sh","commands":["echo sleeping","sleep 60"],"environment":{"PERCH_TEST_MARK":"%s"},"on_success":true}]}],"network":"","volume":"","secrets":[]}\n' "$MARK" >"$T/l.json"
submit "$T/l.json" --backend local
L=$id

held() { grep -qF "dummy: $1 held while" "$DAEMON_LOG"; }
m_runs() {
	[ "$(ps_field "$M" '.steps_started == 1 and .steps_done == 0')" = true ] &&
		test -s "$STATE/workflows/$M/steps/0.log"
}
# M first: its step runs for 20 s from its start; the held ones stay.
wait_until "M's step to run" m_runs
wait_until "S to be held in setup" held "setup_workflow of workflow $S"
wait_until "B to be held starting b2" held "start_step of step 'b2' (b2) of workflow $B"
wait_until "D to be held in destroy" held "destroy_workflow of workflow $D"
wait_until "E to be held in destroy" held "destroy_workflow of workflow $E"
wait_until "the local step to run" grep -q sleeping "$STATE/workflows/$L/steps/0.log"
[ "$(marked)" -ge 1 ] || fail "the local step has no process"
m_runs || fail "M's step ended before everything else was in place (20 s)"

# What the kill leaves: S half set up, D whole, L's folder.
[ -d "$T/dummy/$S/steps" ] && [ ! -e "$T/dummy/$S/workflow" ] || fail "S is not half set up"
[ -e "$T/dummy/$D/workflow" ] || fail "D's folder is gone before the kill"
[ "$(ps_field "$B" .steps_done)" = 1 ] || fail "B: b1 did not end before the kill"
[ "$(ps_field "$D" .steps_done)" = 2 ] || fail "D: d1 and d2 did not end before the kill"
[ -n "$(local_folders)" ] || fail "the local workflow has no folder"
kill9_daemon
jq_check '.started and (.done | not)' "$STATE/workflows/$M/steps/0.json"
[ "$(marked)" -ge 1 ] || fail "the local step did not outlive the daemon (the test needs it to)"
rm -f "$G/setup" "$G/start" "$G/destroy"
rm -rf "$T/dummy/$E"

start_daemon
pc status --json >"$T/status.json"
jq_check '.adoption.workflows == 5 and .adoption.lost == 1 and .adoption.steps == 1' "$T/status.json"
expect_wait "$S" 0
expect_wait "$M" 1
expect_wait "$B" 1
expect_wait "$D" 1
expect_wait "$E" 0
expect_wait "$L" 3

# Real results.
jq_check '.status == "success" and .adopted and .steps[0].exit_code == 0 and .steps[1].exit_code == 0' \
	"$STATE/workflows/$S/result.json"
jq_check '.status == "failure" and .adopted and .steps[0].exit_code == 3 and .steps[0].resumed and (.steps[1].skipped | not) and .steps[1].exit_code == 0' \
	"$STATE/workflows/$M/result.json"
jq_check '.status == "failure" and .adopted and .steps[0].exit_code == 0 and .steps[1].exit_code == 2 and (.steps[1].resumed | not) and (.steps[2].skipped | not) and .steps[2].exit_code == 0' \
	"$STATE/workflows/$B/result.json"
jq_check '.status == "failure" and .adopted and .steps[0].exit_code == 4 and .steps[1].exit_code == 0 and .steps[2].skipped' \
	"$STATE/workflows/$D/result.json"
jq_check '.status == "success" and .adopted and .steps[0].exit_code == 0' "$STATE/workflows/$E/result.json"
[ "$(ps_field "$L" .status)" = lost ] || fail "the local workflow is $(ps_field "$L" .status), not lost"
ps_field "$L" .error >"$T/lerr"
expect_grep "cannot resume workflows" "$T/lerr"
jq_check '.status == "lost" and .exit_code == 3' "$STATE/workflows/$L/result.json"
grep -q "workflow $S adopted on dummy" "$DAEMON_LOG" || fail "S was not adopted"

# Every line exactly once.
pc logs "$S" | strip_log >"$T/got.txt"
{ dummy_log s1 s1; dummy_log s2 s2; } | diff -u - "$T/got.txt" || fail "the logs of S"
pc logs "$M" | strip_log >"$T/got.txt"
{ dummy_log m1 m1; dummy_log m2 m2; } | diff -u - "$T/got.txt" || fail "the logs of M"
pc logs "$B" | strip_log >"$T/got.txt"
{ dummy_log b1 b1; dummy_log b2 b2; dummy_log b3 b3; } | diff -u - "$T/got.txt" || fail "the logs of B"
pc logs "$D" | strip_log >"$T/got.txt"
{ dummy_log d1 d1; dummy_log d2 d2; } | diff -u - "$T/got.txt" || fail "the logs of D"
pc logs "$E" | strip_log >"$T/got.txt"
dummy_log e1 e1 | diff -u - "$T/got.txt" || fail "the logs of E"
pc logs "$L" | strip_log >"$T/got.txt"
[ "$(grep -cx sleeping "$T/got.txt")" = 1 ] || { cat "$T/got.txt"; fail "the local step's line is not there exactly once"; }

# Nothing left: no local process or folder, nothing in the dummy's folder.
wait_until "the local step's processes to be gone" no_marked
[ -z "$(local_folders)" ] || fail "the lost local workflow's folder is left: $(local_folders)"
no_dummy_state || fail "the dummy still has: $(ls -A "$T/dummy")"
stop_daemon
[ "$daemon_rc" = 0 ] || fail "the daemon exited $daemon_rc"
