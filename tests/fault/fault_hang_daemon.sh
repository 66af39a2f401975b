#!/bin/sh
# A plugin call that never returns, in the daemon: the daemon must give up
# on it (runtime.h, "stuck calls") and go on serving.  A cancelled workflow
# whose wait_step hangs ends as killed (perch wait exits 130) with one line
# naming the call; the daemon still answers, runs the next workflow, keeps
# the stuck plugin loaded when a reload retires it (a call may still run
# in its code), and shuts down when asked.  A shutdown that finds a hung
# wait (shutdown_timeout passes, the backend cannot resume, so the
# workflow is cancelled) stays bounded too.
# (tests/daemon/lib.sh, not fault_lib.sh: both make $T/plugins.)
. "${abs_top_srcdir}/tests/daemon/lib.sh"

faulty_so=$abs_top_builddir/tests/fault/.libs/faulty.so
[ -f "$faulty_so" ] || fail "$faulty_so is missing: make check builds it"
cp "$faulty_so" "$T/plugins/faulty.so"

write_conf 'max_workflows = 4;'
PERCH_FAULTY_MODE=hang-wait start_daemon

printf '{"pipeline":[{"steps":[{"name":"stuck","uuid":"us","type":"commands","on_success":true}]}]}\n' \
	>"$T/wf.json"
submit "$T/wf.json" --backend faulty
S=$id
started() { [ "$(ps_field "$S" .steps_started)" = 1 ]; }
wait_until "the stuck step to start" started
pc cancel "$S" >/dev/null || fail_log "perch cancel $S"

# The runtime gives up 10 s after the cancellation; wait_until allows 60.
ended() { [ "$(ps_field "$S" .state)" = finished ]; }
wait_until "the cancelled workflow to end although its wait_step hangs" ended
expect_wait "$S" 130
grep -q "workflow $S: step \"stuck\": the backend's wait_step call did not return 10 s after the workflow was cancelled; gave up on it" \
	"$DAEMON_LOG" || fail_log "no line naming the stuck call"
jq_check '.status == "killed" and .steps[0].cancelled' "$STATE/workflows/$S/result.json"

# The daemon goes on: a dummy workflow passes.
workflow "$(step ok ok1 '{}')" >"$T/ok.json"
submit "$T/ok.json"
expect_wait "$id" 0

# A reload that replaces faulty.so retires the version with the stuck call:
# it is kept loaded, and says so.
cp "$faulty_so" "$T/plugins/.faulty.so.new"
touch -d "@$(($(date +%s) + 5))" "$T/plugins/.faulty.so.new"
mv "$T/plugins/.faulty.so.new" "$T/plugins/faulty.so"
pc reload >/dev/null || fail_log "perch reload"
kept() { grep -q "plugin faulty .*kept loaded for good: a call of it never returned" "$DAEMON_LOG"; }
wait_until "the retired faulty version to be kept loaded" kept
grep -q "plugin faulty .* unloaded" "$DAEMON_LOG" && fail_log "the stuck plugin was unloaded"

# SIGTERM still stops it (the stuck thread is no reason to stay).
stop_daemon
[ "$daemon_rc" = 0 ] || fail_log "the daemon exited $daemon_rc after SIGTERM"

# Shutdown with a hung wait running: after shutdown_timeout the workflow is
# cancelled (faulty cannot resume), its wait is given up on 10 s later,
# and the daemon exits (wait_exit allows 60 s).
write_conf 'max_workflows = 4;
shutdown_timeout = "1s";'
PERCH_FAULTY_MODE=hang-wait start_daemon
submit "$T/wf.json" --backend faulty
S=$id
wait_until "the second stuck step to start" started
kill -TERM "$DAEMON_PID"
wait_exit
[ "$daemon_rc" = 0 ] || fail_log "the daemon exited $daemon_rc after SIGTERM with a hung wait"
grep -q "workflow $S: step \"stuck\": the backend's wait_step call did not return" "$DAEMON_LOG" ||
	fail_log "no line naming the stuck call at shutdown"
jq_check '.status == "killed"' "$STATE/workflows/$S/result.json"
