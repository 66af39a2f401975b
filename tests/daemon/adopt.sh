#!/bin/sh
# SIGKILL of the daemon mid-step, then a restart: workflows on the dummy
# (which keeps state in a folder, --backend-dummy-state-dir) are adopted
# and complete with their real results, resumed steps' logs continue
# without a line lost or repeated, a step that ended while perch was down
# reports its real exit code, a queued workflow still runs; workflows on
# local (which cannot resume) are reported lost with the reason, nothing of
# them is left running and their workflow folder is removed.
. "${abs_top_srcdir}/tests/daemon/lib.sh"

write_conf 'max_workflows = 4;
max_queue = 10;'
start_daemon

# A: three stages; killed while the second (b, 10 s, exit 3; c quick)
# runs; d runs on failure.
workflow "$(step a a1 '{}')" \
	"$(step b b1 '{"SLEEP":"10s","STEP_EXIT_CODE":"3"}'),$(step c c1 '{}')" \
	"$(step d d1 '{}' '"on_success":false,"on_failure":true')" >"$T/a.json"
submit "$T/a.json"
A=$id
# B: one step that ends (exit 5) while perch is down.
workflow "$(step e e1 '{"SLEEP":"5s","STEP_EXIT_CODE":"5"}')" >"$T/b.json"
submit "$T/b.json"
B=$id
# C: a long service-less step that succeeds after the restart.
workflow "$(step f f1 '{"SLEEP":"8s"}')" "$(step g g1 '{}')" >"$T/c.json"
submit "$T/c.json"
C=$id
# L: local, a real process that would run for a minute.
printf '{"pipeline":[{"steps":[{"name":"sleeper","uuid":"l1","type":"commands","image":"sh","commands":["echo sleeping","sleep 60"],"environment":{"PERCH_TEST_MARK":"%s"},"on_success":true}]}],"network":"","volume":"","secrets":[]}\n' "$MARK" >"$T/l.json"
submit "$T/l.json" --backend local
L=$id
# Q: queued behind them (max_workflows 4).
workflow "$(step q q1 '{}')" >"$T/q.json"
submit "$T/q.json"
Q=$id
expect_grep "queued" "$T/submit.out"

# Kill once every long step runs (and A's c has ended): one ps for all.
running() {
	pc ps --json >"$T/ps.json" || return 1
	jq -e --arg a "$A" --arg b "$B" --arg c "$C" --arg l "$L" '
		def w($id): .[] | select(.id == $id);
		(w($a) | .steps_done >= 2 and .steps_started >= 3) and
		(w($b) | .steps_started == 1 and .steps_done == 0) and
		(w($c) | .steps_started == 1 and .steps_done == 0) and
		(w($l) | .steps_started == 1)' "$T/ps.json" >/dev/null &&
		[ "$(marked)" -ge 1 ]
}
wait_until "the long steps to run" running
# Let A's b and the local step write their lines to the state dir (a local
# step's last 250 ms of output may be lost to a SIGKILL: it cannot be sent
# again).
wait_until "b's log" test -s "$STATE/workflows/$A/steps/1.log"
wait_until "the local step's log" grep -q sleeping "$STATE/workflows/$L/steps/0.log"
[ -n "$(local_folders)" ] || fail "the local workflow has no folder in $T/ltmp"
kill9_daemon
[ "$(marked)" -ge 1 ] || fail "the local step did not outlive the daemon (the test needs it to)"
# B's step ends while nobody watches: wait until its end (its start, from
# the state directory, plus its 5 s) has passed.
b_start=$(jq -r '.started_ns' "$STATE/workflows/$B/steps/0.json")
b_over() { [ "$(date +%s%N)" -gt $((b_start + 5500000000)) ]; }
wait_until "B's step to end" b_over

start_daemon
pc status --json >"$T/status.json"
jq_check '.adoption.workflows == 3 and .adoption.lost == 1 and .adoption.steps == 3' "$T/status.json"
expect_wait "$A" 1
expect_wait "$B" 1
expect_wait "$C" 0
expect_wait "$L" 3
expect_wait "$Q" 0

# Real results.
jq_check '.status == "failure" and .adopted and .steps[1].exit_code == 3 and (.steps[3].skipped | not) and .steps[3].exit_code == 0' "$STATE/workflows/$A/result.json"
jq_check '.steps[0].exit_code == 5 and .steps[0].exited' "$STATE/workflows/$B/result.json"
jq_check '.status == "success" and (.steps[1].skipped | not)' "$STATE/workflows/$C/result.json"
[ "$(ps_field "$L" .status)" = lost ] || fail "the local workflow is $(ps_field "$L" .status), not lost"
ps_field "$L" .error >"$T/lerr"
expect_grep "cannot resume workflows" "$T/lerr"
expect_grep "what it left was destroyed" "$T/lerr"
jq_check '.status == "lost" and .exit_code == 3' "$STATE/workflows/$L/result.json"

# Every line exactly once, also for the resumed steps.
pc logs "$A" | strip_log >"$T/got.txt"
{ dummy_log a a1; dummy_log b b1; dummy_log c c1; dummy_log d d1; } >"$T/want.txt"
diff -u "$T/want.txt" "$T/got.txt" || fail "the logs of A"
pc logs "$B" | strip_log >"$T/got.txt"
dummy_log e e1 | diff -u - "$T/got.txt" || fail "the logs of B"
pc logs "$C" | strip_log >"$T/got.txt"
{ dummy_log f f1; dummy_log g g1; } | diff -u - "$T/got.txt" || fail "the logs of C"
pc logs "$L" >"$T/got.txt"
expect_grep "sleeping" "$T/got.txt"

# Nothing left running: the local step's processes are gone, the dummy
# has nothing left.
wait_until "the local step's processes to be gone" no_marked
[ -z "$(ls "$T/dummy")" ] || fail "the dummy still has: $(ls "$T/dummy")"
[ -z "$(local_folders)" ] || fail "the lost local workflow's folder is left: $(local_folders)"

# A restart with nothing running adopts nothing and keeps the history.
stop_daemon
start_daemon
pc status --json >"$T/status.json"
jq_check '.adoption.workflows == 0 and .adoption.lost == 0' "$T/status.json"
[ "$(ps_field "$A" .status)" = failure ] || fail "A's result after another restart"
pc logs "$A" | strip_log | diff -u "$T/want.txt" - || fail "A's logs after another restart"
stop_daemon

# Leftovers the state directory does not know (here: a perch run killed
# mid-step, on the dummy's folder) are destroyed after adopt_grace.
"$PERCH" --backend dummy --backend-dummy-state-dir "$T/dummy" run --task-uuid ORPHAN1 \
	--log-format none "$T/c.json" >/dev/null 2>&1 &
run_pid=$!
wait_until "perch run's step to start" test -d "$T/dummy/ORPHAN1/steps"
orphan_step() { [ -n "$(ls "$T/dummy/ORPHAN1/steps")" ]; }
wait_until "perch run's step to start" orphan_step
kill -KILL "$run_pid"
wait "$run_pid" 2>/dev/null || true
ADOPT_GRACE=1s write_conf 'max_workflows = 4;'
start_daemon
grep -q "backend dummy has workflow ORPHAN1, which the state directory does not know" "$DAEMON_LOG" ||
	fail "the orphan was not reported"
wait_until "the orphan to be destroyed" test ! -e "$T/dummy/ORPHAN1"
grep -q "destroying workflow ORPHAN1 on dummy" "$DAEMON_LOG" || fail "no message for the orphan"
pc status --json >"$T/status.json"
jq_check '.adoption.orphans_pending == 0' "$T/status.json"
stop_daemon
