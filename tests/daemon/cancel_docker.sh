#!/bin/sh
# Cancelling a docker step whose container never stops printing: the step
# has not ended in the engine when its wait returns cancelled (destroy_step
# stops it), so its log never falls silent.  perch must stop reading after
# its linger time and go on to destroy_step: the workflow ends killed
# (exit 130), under perch cancel in the daemon and under perch run
# --timeout, and nothing is left on the engine.  It used to wait for the
# silence for good.  Needs the engine (.ci/docker.sh): fails, never skips,
# without it.
. "${abs_top_srcdir}/tests/daemon/lib.sh"
need_docker

chatty() {
	printf '{"pipeline":[{"steps":[{"name":"chatty","uuid":"%s","type":"commands","image":"%s","entrypoint":["sh","-c","echo started; while :; do echo tick; usleep 100000; done"],"network_mode":"none","environment":{},"on_success":true}]}],"network":"","volume":"","secrets":[]}\n' \
		"$1" "$DOCKER_IMAGE"
}

# The daemon: perch cancel.
write_conf 'max_workflows = 2;'
start_daemon
chatty "chat1-$$" >"$T/c1.json"
submit "$T/c1.json" --backend docker
C=$id
talking() { grep -q tick "$STATE/workflows/$C/steps/0.log"; }
wait_until "the chatty step to print" talking
pc cancel "$C" >/dev/null || fail_log "perch cancel $C"
ended() { [ "$(ps_field "$C" .state)" = finished ]; }
wait_until "the cancelled chatty workflow to end" ended
expect_wait "$C" 130
jq_check '.status == "killed" and .steps[0].cancelled' "$STATE/workflows/$C/result.json"
stop_daemon

# perch run --timeout (the stop timeout shortened: sh as PID 1 ignores
# SIGTERM, so the engine kills it when that runs out).
chatty "chat2-$$" >"$T/c2.json"
"$PERCH" --backend docker --backend-docker-host-id "$MARK" --backend-docker-stop-timeout 1 \
	run --timeout 3s "$T/c2.json" >"$T/run.out" 2>"$T/run.err" &
RUN_PID=$!
n=0
while kill -0 "$RUN_PID" 2>/dev/null; do
	n=$((n + 1))
	if [ $n -ge 600 ]; then
		kill -KILL "$RUN_PID" 2>/dev/null || true
		cat "$T/run.err"
		fail "perch run --timeout 3s still ran 60 s later"
	fi
	sleep 0.1
done
set +e
wait "$RUN_PID"
rc=$?
set -e
[ "$rc" = 130 ] || { cat "$T/run.err"; fail "perch run exited $rc, expected 130"; }
grep -q tick "$T/run.out" || fail "perch run printed none of the step's lines"

left=$(docker ps -aq --filter "label=io.perch.host-id=$MARK" | wc -l)
[ "$left" = 0 ] || fail "$left containers of this test are left on the engine"
