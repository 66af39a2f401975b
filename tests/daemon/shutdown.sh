#!/bin/sh
# SIGTERM: no more submissions; running workflows may finish within
# shutdown_timeout; after it, those whose backend can resume are left for
# the next daemon (which adopts them) and the others are cancelled; a
# second signal cancels at once.  Queued workflows wait for the next start.
. "${abs_top_srcdir}/tests/daemon/lib.sh"

# 1. Drain: what runs finishes, what waits stays queued, nothing new comes in.
write_conf 'max_workflows = 1;
shutdown_timeout = "10m";'
start_daemon
workflow "$(step drain r1 '{"SLEEP":"1500ms"}')" >"$T/drain.json"
submit "$T/drain.json"
D=$id
workflow "$(step later q1 '{}')" >"$T/later.json"
submit "$T/later.json"
Q=$id
kill -TERM "$DAEMON_PID"
refused() {
	! pc submit "$T/later.json" >"$T/out" 2>"$T/err" && grep -q "shutting down" "$T/err"
}
wait_until "submissions to be refused" refused
set +e
pc submit "$T/later.json" >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 3 "a submission while draining"
pc status --json >"$T/status.json"
jq_check '.draining' "$T/status.json"
wait_exit
[ "$daemon_rc" = 0 ] || fail "the daemon exited $daemon_rc after draining"
start_daemon
expect_wait "$D" 0
[ "$(ps_field "$D" .adopted)" = false ] || fail "a drained workflow was adopted"
expect_wait "$Q" 0
stop_daemon

# 2. The timeout: the dummy workflow is left for adoption, the local one is
# cancelled; the next daemon completes the first.
write_conf 'max_workflows = 4;
shutdown_timeout = "500ms";'
start_daemon
workflow "$(step long l1 '{"SLEEP":"10s","STEP_EXIT_CODE":"0"}')" "$(step after l2 '{}')" >"$T/long.json"
submit "$T/long.json"
DL=$id
printf '{"pipeline":[{"steps":[{"name":"sleeper","uuid":"s1","type":"commands","image":"sh","commands":["sleep 60"],"environment":{"PERCH_TEST_MARK":"%s"},"on_success":true}]}],"network":"","volume":"","secrets":[]}\n' "$MARK" >"$T/local.json"
submit "$T/local.json" --backend local
LL=$id
started() { [ "$(ps_field "$DL" .steps_started)" = 1 ] && [ "$(ps_field "$LL" .steps_started)" = 1 ]; }
wait_until "both to run" started
stop_daemon
[ "$daemon_rc" = 0 ] || fail "the daemon exited $daemon_rc after the shutdown timeout"
grep -q "leaving workflow $DL running on dummy" "$DAEMON_LOG" || fail "the dummy workflow was not left for adoption"
grep -q "cancelling workflow $LL" "$DAEMON_LOG" || fail "the local workflow was not cancelled"
wait_until "the local step's processes to be gone" no_marked
start_daemon
expect_wait "$DL" 0
[ "$(ps_field "$DL" .adopted)" = true ] || fail "the left workflow was not adopted"
pc logs "$DL" | strip_log >"$T/got.txt"
{ dummy_log long l1; dummy_log after l2; } | diff -u - "$T/got.txt" || fail "the logs of the left workflow"
expect_wait "$LL" 130
stop_daemon

# 3. A second signal cancels at once.
write_conf 'max_workflows = 4;
shutdown_timeout = "10m";'
start_daemon
workflow "$(step forever f1 '{"SLEEP":"10m"}')" >"$T/forever.json"
submit "$T/forever.json"
F=$id
runs() { [ "$(ps_field "$F" .steps_started)" = 1 ]; }
wait_until "it to run" runs
seen=$(grep -c "accepting no workflows" "$DAEMON_LOG" || true)
kill -TERM "$DAEMON_PID"
# (Two signals sent at once may arrive as one: wait for the first.)
drain_began() { [ "$(grep -c "accepting no workflows" "$DAEMON_LOG")" -gt "$seen" ]; }
wait_until "the drain to begin" drain_began
kill -TERM "$DAEMON_PID"
wait_exit
[ "$daemon_rc" = 0 ] || fail "the daemon exited $daemon_rc after a second signal"
start_daemon
expect_wait "$F" 130
[ -z "$(ls "$T/dummy")" ] || fail "the dummy still has: $(ls "$T/dummy")"
stop_daemon
