#!/bin/sh
# SIGKILL of the daemon in every phase of a docker workflow, then a
# restart.  At the kill:
#   S  is inside setup_workflow: its volume is made, its network not yet;
#   M  is mid-step: a container waits between its lines (for a file that
#      the test removes after the kill: it ends while no perch runs);
#   B  is between two stages: its first stage ended, the start_step of the
#      second is creating its container;
#   D  is inside destroy_workflow: its containers and volume are removed,
#      its network not yet.
# The daemon talks to the engine through holdproxy (tests/daemon/
# holdproxy.c), which never passes on the engine calls named above, so each
# workflow stays in its phase for as long as the test wants, without
# sleeps; the test waits until all four are there, kills the daemon and
# the proxy (the held calls never reach the engine), and restarts the
# daemon on the engine's own socket.  Then S is set up anew and runs, M's
# container is resumed, B's second stage runs, D is destroyed with its
# results standing: all four end with their real results (exit codes from
# perch wait, result.json), every log line is there exactly once, and
# nothing of this test's host id is left on the engine.  Needs the engine
# (.ci/docker.sh): it fails, never skips, without it.
. "${abs_top_srcdir}/tests/daemon/lib.sh"
need_docker
PROXY="${abs_top_builddir}/tests/daemon/holdproxy"
[ -x "$PROXY" ] || fail "$PROXY is missing (make check builds it)"

U=$$ # step uuids name containers (wp_<uuid>): unique on this engine
HELD="$T/held.log"
: >"$HELD"
"$PROXY" "$T/docker.sock" "$DOCKER_SOCK" "$HELD" \
	"\"Name\":\"$MARK-nS\"" \
	"/containers/create\\?name=wp_b2-$U" \
	"^DELETE [^ ]*/networks/$MARK-nD" 2>>"$T/proxy.err" &
PROXY_PID=$!
stop_proxy() {
	if [ -n "$PROXY_PID" ]; then
		kill -TERM "$PROXY_PID" 2>/dev/null || true
		wait "$PROXY_PID" 2>/dev/null || true
		PROXY_PID=
	fi
}
add_cleanup stop_proxy
wait_until "the proxy to listen" test -S "$T/docker.sock"

DOCKER_HOST_CONF="host = \"unix://$T/docker.sock\";" write_conf 'max_workflows = 8;
max_queue = 10;'
start_daemon

# dwf NAME STAGE...: a workflow with network $MARK-nNAME and volume
# $MARK-vNAME, which each step mounts.
dwf() {
	_n=$1
	shift
	dworkflow "$MARK-n$_n" "$MARK-v$_n" "$@"
}
# vol NAME [EXTRA-JSON [BIND]]: the step mounts the volume (and BIND).
vol() { printf '"volumes":["%s:/data"%s]%s' "$MARK-v$1" "${3:+,\"$3\"}" "${2:+,$2}"; }

# S: two stages; its network is never created in the first life.
dwf S "$(dstep "$MARK-nS" s1 "s1-$U" 3 0 : "$(vol S)")" \
	"$(dstep "$MARK-nS" s2 "s2-$U" 2 0 : "$(vol S)")" >"$T/s.json"
submit "$T/s.json" --backend docker
S=$id
# M: m1 prints 2 lines, waits while the gate file (bind-mounted from the
# host) exists, prints 2 more and exits 5; m2 runs on failure.
mkdir -p "$T/gate"
: >"$T/gate/m"
dwf M "$(dstep "$MARK-nM" m1 "m1-$U" 4 5 "while [ -e /gate/m ]; do sleep 0.1; done" \
		"$(vol M '' "$T/gate:/gate")")" \
	"$(dstep "$MARK-nM" m2 "m2-$U" 2 0 : "$(vol M '"on_failure":true')")" >"$T/m.json"
submit "$T/m.json" --backend docker
M=$id
# B: b1 fails (exit 1); b2 runs on failure only (so it is not created ahead)
# and exits 2; b3 runs on failure.
dwf B "$(dstep "$MARK-nB" b1 "b1-$U" 2 1 : "$(vol B)")" \
	"$(dstep "$MARK-nB" b2 "b2-$U" 3 2 : "$(vol B '"on_success":false,"on_failure":true')")" \
	"$(dstep "$MARK-nB" b3 "b3-$U" 1 0 : "$(vol B '"on_failure":true')")" >"$T/b.json"
submit "$T/b.json" --backend docker
B=$id
# D: two steps side by side, both succeed.
dwf D "$(dstep "$MARK-nD" d1 "d1-$U" 2 0 : "$(vol D)"),$(dstep "$MARK-nD" d2 "d2-$U" 3 0 : "$(vol D)")" >"$T/d.json"
submit "$T/d.json" --backend docker
D=$id

m_runs() { grep -qx "[0-9]* m1 line 2" "$STATE/workflows/$M/steps/0.log"; }
wait_until "S's network create to be held" grep -qF "\"Name\":\"$MARK-nS\"" "$HELD"
wait_until "M's step to print its first lines" m_runs
wait_until "B's second stage to be held" grep -qF "name=wp_b2-$U" "$HELD"
wait_until "D's network removal to be held" grep -qF "/networks/$MARK-nD" "$HELD"
[ "$(ps_field "$M" '.steps_done')" = 0 ] || fail "M's step ended before the kill (the test needs it running)"
[ "$(ps_field "$B" '.steps_done')" = 1 ] || fail "B's first stage did not end before the kill"
[ "$(ps_field "$D" '.steps_done')" = 2 ] || fail "D's steps did not end before the kill"
# What the kill leaves on the engine: S's volume without its network, D's
# network without its volume.
[ -n "$(docker volume ls -q --filter "name=^$MARK-vS\$")" ] || fail "S has no volume"
[ -z "$(docker network ls -q --filter "name=^$MARK-nS\$")" ] || fail "S has a network"
[ -n "$(docker network ls -q --filter "name=^$MARK-nD\$")" ] || fail "D has no network"
[ -z "$(docker volume ls -q --filter "name=^$MARK-vD\$")" ] || fail "D still has its volume"
kill9_daemon
stop_proxy
# M's step ends while no perch runs: its last lines and its exit code come
# from the engine after the restart.
rm -f "$T/gate/m"
[ "$(docker wait "wp_m1-$U")" = 5 ] || fail "M's container did not exit 5"

DOCKER_HOST_CONF= write_conf 'max_workflows = 8;
max_queue = 10;'
start_daemon
pc status --json >"$T/status.json"
jq_check '.adoption.workflows == 4 and .adoption.lost == 0 and .adoption.steps == 1' "$T/status.json"
expect_wait "$S" 0
expect_wait "$M" 1
expect_wait "$B" 1
expect_wait "$D" 0

# Real results.
jq_check '.status == "success" and .adopted and .steps[0].exit_code == 0 and .steps[1].exit_code == 0' \
	"$STATE/workflows/$S/result.json"
jq_check '.status == "failure" and .adopted and .steps[0].exit_code == 5 and .steps[0].resumed and (.steps[1].skipped | not) and .steps[1].exit_code == 0' \
	"$STATE/workflows/$M/result.json"
jq_check '.status == "failure" and .adopted and .steps[0].exit_code == 1 and .steps[1].exit_code == 2 and (.steps[1].resumed | not) and .steps[2].exit_code == 0' \
	"$STATE/workflows/$B/result.json"
jq_check '.status == "success" and .adopted and .steps[0].exit_code == 0 and .steps[1].exit_code == 0' \
	"$STATE/workflows/$D/result.json"

# Every line exactly once (a step that failed to start has no lines: the
# daemon's log says why).
pc logs "$S" | strip_log >"$T/got.txt"
{ dstep_log s1 3; dstep_log s2 2; } | diff -u - "$T/got.txt" || fail_log "the logs of S"
pc logs "$M" | strip_log >"$T/got.txt"
{ dstep_log m1 4; dstep_log m2 2; } | diff -u - "$T/got.txt" || fail_log "the logs of M"
pc logs "$B" | strip_log >"$T/got.txt"
{ dstep_log b1 2; dstep_log b2 3; dstep_log b3 1; } | diff -u - "$T/got.txt" || fail_log "the logs of B"
pc logs "$D" | strip_log >"$T/got.txt"
{ dstep_log d1 2; dstep_log d2 3; } | diff -u - "$T/got.txt" || fail_log "the logs of D"

# Nothing is left on the engine.
wait_until "the engine to have nothing of this test" no_docker_leftovers
stop_daemon
[ "$daemon_rc" = 0 ] || fail "the daemon exited $daemon_rc"
