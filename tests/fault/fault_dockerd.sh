#!/bin/sh
# The Docker engine stopped and started again while a workflow runs.
#
# The test runs a private dockerd of its own, so that the system engine,
# which other tests use at the same time, is never touched: its own data
# root, exec root, pid file, socket, containerd (and containerd
# namespaces), and its own network namespace (unshare --net), so that its
# docker0, its networks' bridges and its firewall rules are its own and
# vanish with it.  (Not --bridge=none: with it dockerd deletes the host's
# docker0, the system engine's default bridge.)  The test image is built
# into it with tests/docker/image.sh.  Then, with the docker backend
# pointed at it:
#
#  1. perch run: a step sleeps; the engine gets SIGTERM (with no
#     live-restore it kills the step's container) and is started again.
#     perch must exit 3 (an infrastructure error, not the step's exit
#     code) within a bound, with one line naming the step and the engine;
#     the next perch run on the restarted engine must succeed.
#  2. the same through perch daemon, one long-lived process: its
#     descriptors and threads when idle after a first workflow; the engine
#     restarted during a second (perch wait: 3); a third succeeds; once
#     idle again it holds as many descriptors and threads as before.
#
# Nothing labelled by perch may be left on the engine, except what perch
# reported it could not remove (its cleanup ran while the engine was
# going down and could no longer remove networks and volumes); those the
# test removes.
#
# Needs root, dockerd (Debian: docker.io), busybox-static, jq and unshare
# (util-linux), as on the CI of .ci/docker.sh.  A machine where the
# private engine cannot start fails the test, with the engine's log.
. "${abs_top_srcdir}/tests/daemon/lib.sh"

[ "$(id -u)" = 0 ] || fail "this test starts a Docker engine of its own: it needs root"
command -v dockerd >/dev/null 2>&1 || fail "dockerd is not installed (apt-get install docker.io; see .ci/docker.sh)"
command -v docker >/dev/null 2>&1 || fail "the docker client is not installed (apt-get install docker.io)"
command -v timeout >/dev/null 2>&1 || fail "timeout (coreutils) is required"
command -v unshare >/dev/null 2>&1 || fail "unshare (util-linux) is required"
command -v jq >/dev/null 2>&1 || fail "jq is required (apt-get install jq)"

# How long perch may take to end once the engine was told to stop: the
# engine itself takes the container's stop timeout (10 s) to go.
BOUND=${PERCH_FAULT_DOCKERD_BOUND:-60}

# ---- the private engine ----

E=$T/engine
DSOCK=$E/docker.sock
DPID=
ENGINE_STARTED=
RUN_PIDS= # perch runs in the background, killed on exit
HOSTID=perch-fault-dockerd-$$
mkdir -p "$E"
printf '{}\n' >"$E/daemon.json" # not /etc/docker/daemon.json
# Every docker command of this test, and perch's docker backend, talk to
# the private engine only.
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION \
	WOODPECKER_BACKEND_DOCKER_HOST PERCH_BACKEND_DOCKER_HOST \
	PERCH_BACKEND_DOCKER_HOST_ID || :
DOCKER_HOST=unix://$DSOCK
export DOCKER_HOST

engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# gone PID: the process has ended (a child of ours may be a zombie).
gone() {
	! kill -0 "$1" 2>/dev/null ||
		[ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" = Z ]
}

start_engine() {
	echo "--- start $(date +%T)" >>"$E/dockerd.log"
	ENGINE_STARTED=1
	engine_cmd
	_n=0
	until engine_up; do
		if gone "$DPID" || [ $_n -ge 300 ]; then
			tail -n 40 "$E/dockerd.log" >&2
			fail "the private dockerd did not start (see its log above)"
		fi
		_n=$((_n + 1))
		sleep 0.1
	done
}

# stop_engine: SIGTERM, then waits until the engine has gone.
stop_engine() {
	kill -TERM "$DPID"
	_n=0
	until gone "$DPID"; do
		_n=$((_n + 1))
		[ $_n -lt 600 ] || { tail -n 20 "$E/dockerd.log" >&2; fail "the private dockerd did not stop within 60 s of SIGTERM"; }
		sleep 0.1
	done
	wait "$DPID" 2>/dev/null || :
	DPID=
}

# engine_pids: the processes of the private engine: dockerd (its command
# line names $E/data), its containerd and the containerd shims ($E/exec).
engine_pids() {
	for _c in /proc/[0-9]*/cmdline; do
		_p=${_c#/proc/}
		_p=${_p%/cmdline}
		[ "$_p" != $$ ] || continue
		if { tr '\0' ' ' <"$_c"; } 2>/dev/null |
			grep -qE -e "--data-root $E/data |$E/exec/containerd/"; then
			echo "$_p"
		fi
	done
}

# labelled: what perch left on the engine (containers, networks, volumes
# with this test's host id), one "kind name" a line.
labelled() {
	_f="label=io.perch.host-id=$HOSTID${1:+ label=io.perch.task-uuid=$1}"
	_a=
	for _l in $_f; do _a="$_a --filter $_l"; done
	# shellcheck disable=SC2086
	{
		docker ps -a --format 'container {{.Names}}' $_a
		docker network ls --format 'network {{.Name}}' $_a
		docker volume ls --format 'volume {{.Name}}' $_a
	}
}

# remove_labelled: removes what labelled lists.
remove_labelled() {
	labelled "$@" | while read -r _k _n; do
		case $_k in
		container) docker rm -f -v "$_n" >/dev/null ;;
		network) docker network rm "$_n" >/dev/null ;;
		volume) docker volume rm -f "$_n" >/dev/null ;;
		esac
	done
}

# engine_cmd: starts the private engine in the background ($DPID), in a
# network namespace of its own.  It needs no NAT or forwarding (the steps
# reach nothing outside), so its firewall is left alone too.
engine_cmd() {
	unshare --net -- dockerd --config-file "$E/daemon.json" \
		--data-root "$E/data" --exec-root "$E/exec" \
		--pidfile "$E/dockerd.pid" -H "unix://$DSOCK" \
		--containerd-namespace "perch-fault-$$" \
		--containerd-plugins-namespace "perch-fault-$$-plugins" \
		--iptables=false --ip-masq=false --ip-forward=false \
		>>"$E/dockerd.log" 2>&1 </dev/null &
	DPID=$!
}

# end_engine: SIGTERM, up to 30 s, then SIGKILL to whatever of the
# engine is left (dockerd, containerd, shims).
end_engine() {
	[ -z "$DPID" ] || kill -TERM "$DPID" 2>/dev/null
	_n=0
	until [ -z "$DPID" ] || gone "$DPID" || [ $_n -ge 300 ]; do
		_n=$((_n + 1))
		sleep 0.1
	done
	for _p in $DPID $(engine_pids); do
		kill -KILL "$_p" 2>/dev/null
	done
	[ -z "$DPID" ] || wait "$DPID" 2>/dev/null
	DPID=
}

# cleanup_engine: on every exit.  Empties the engine when it answers,
# stops it, ends whatever of it survived (and of the steps), unmounts what
# it left mounted under $E.  Its network namespace, with every interface
# of its networks, goes with its last process.
cleanup_engine() {
	[ -n "$ENGINE_STARTED" ] || return 0
	for _p in $RUN_PIDS; do
		kill -KILL "$_p" 2>/dev/null
		wait "$_p" 2>/dev/null
	done
	if [ -n "$DPID" ] && engine_up; then
		_c=$(docker ps -aq)
		# shellcheck disable=SC2086
		[ -z "$_c" ] || docker rm -f -v $_c >/dev/null 2>&1
		_c=$(docker network ls -q --filter type=custom)
		# shellcheck disable=SC2086
		[ -z "$_c" ] || docker network rm $_c >/dev/null 2>&1
		_c=$(docker volume ls -q)
		# shellcheck disable=SC2086
		[ -z "$_c" ] || docker volume rm -f $_c >/dev/null 2>&1
	fi
	end_engine
	for _p in $(marked_pids); do
		kill -KILL "$_p" 2>/dev/null
	done
	# Mount points under $E, deepest first (dockerd makes its data root
	# a private mount; a killed one leaves it).
	grep -F " $E/" /proc/self/mounts | awk '{print $2}' | sort -r |
		while read -r _m; do umount -l "$_m" 2>/dev/null; done
	rm -rf "$E"
	return 0
}
add_cleanup cleanup_engine

# ---- perch ----

# describe_threads PID: one line per thread (name, state, kernel wait).
# (As in fault_lib.sh, which cannot be sourced beside tests/daemon/lib.sh:
# both make $T/plugins.)
describe_threads() {
	for _t in /proc/"$1"/task/*; do
		printf '%s %s %s\n' "$(cat "$_t/comm" 2>/dev/null)" \
			"$(sed -n 's/^State:[[:space:]]*//p' "$_t/status" 2>/dev/null)" \
			"$(cat "$_t/wchan" 2>/dev/null)"
	done
}

# expect_lines N PATTERN FILE: exactly N lines of FILE hold PATTERN.
expect_lines() {
	_c=$(grep -cF -- "$2" "$3" || :)
	[ "${_c:-0}" -eq "$1" ] || { echo "--- $3"; cat "$3"; fail "expected $1 line(s) with \"$2\" in $3, got ${_c:-0}"; }
}

# wf NET STAGE...: a docker workflow (network and volume perch_fault_NET);
# each STAGE is one step, "name:command;command".  Its processes carry
# PERCH_TEST_MARK=$MARK (so marked, from tests/daemon/lib.sh, counts them
# and cleanup_daemon kills them).
wf() {
	_net=$1
	shift
	printf '{"pipeline":['
	_sep=
	for _s in "$@"; do
		_name=${_s%%:*}
		_cmds=$(printf '%s' "${_s#*:}" | jq -R -c 'split(";")')
		printf '%s{"steps":[{"name":"%s","uuid":"u-%s-%s","type":"commands","image":"perch-test/busybox:latest","commands":%s,"environment":{"PERCH_TEST_MARK":"%s"},"on_success":true,"failure":"fail"}]}' \
			"$_sep" "$_name" "$_net" "$_name" "$_cmds" "$MARK"
		_sep=,
	done
	printf '],"network":"perch_fault_%s","volume":"perch_fault_%s","secrets":[]}\n' "$_net" "$_net"
}

# wait_running WHAT STEP-NAME [PID]: polls (up to 60 s) until a container
# of STEP-NAME runs its commands (its processes are seen).  With PID (a
# perch run), fails when that ends first.
wait_running() {
	_n=0
	while :; do
		_id=$(docker ps -q --filter "label=io.perch.host-id=$HOSTID" \
			--filter "label=io.perch.step-name=$2" --filter status=running)
		[ -z "$_id" ] || [ "$(marked)" -eq 0 ] || return 0
		if [ -n "${3:-}" ] && gone "$3"; then
			cat "$T/err" >&2
			fail "$1: perch ended before its step ran"
		fi
		_n=$((_n + 1))
		[ $_n -lt 600 ] || fail "$1: the step's container did not start within 60 s"
		sleep 0.1
	done
}

# restart_engine WHAT: stops the engine while a step runs, checks that
# the stop killed the step's processes and left no process of the engine,
# starts it again.
restart_engine() {
	stop_engine
	[ "$(marked)" -eq 0 ] || fail "$1: $(marked) processes of the step outlived the engine"
	_left=$(engine_pids)
	[ -z "$_left" ] || { ps -o pid,args -p "$(echo "$_left" | tr '\n' , | sed 's/,$//')" >&2; fail "$1: processes of the stopped engine remain"; }
	start_engine
}

# leftovers WHAT TASK LOG: what perch left of TASK must have been reported
# in LOG as a failed cleanup; it is removed.
leftovers() {
	_l=$(labelled "$2")
	[ -n "$_l" ] || return 0
	if ! grep -Eq 'destroy_(workflow|step) failed' "$3"; then
		echo "--- $3"; cat "$3"
		echo "--- left on the engine"; echo "$_l"
		fail "$1: perch left these on the engine and did not say so"
	fi
	echo "$1: left behind, as perch reported (its cleanup ran while the engine went down):" \
		"$(echo "$_l" | tr '\n' ' ')"
	remove_labelled "$2"
}

# nothing_left WHAT: no perch-labelled container, network or volume.
nothing_left() {
	_l=$(labelled)
	[ -z "$_l" ] || { echo "$_l"; fail "$1: perch left the above on the engine"; }
}

# ---- the engine and its image ----

# The host's docker0 (the system engine's) must survive this test.
had_docker0=
[ ! -e /sys/class/net/docker0 ] || had_docker0=1
start_engine
sh "${abs_top_srcdir}/tests/docker/image.sh" perch-test/busybox:latest >/dev/null ||
	fail "cannot build the test image in the private engine"
echo "private engine: $(docker version --format '{{.Server.Version}}') at $DSOCK"

# ---- 1. perch run ----

wf r1 "long:echo started;sleep 300" "after:echo after" >"$T/long.json"
wf r2 "hello:echo hello-after-restart" >"$T/hello.json"
RUN="--backend docker --backend-docker-host unix://$DSOCK --backend-docker-host-id $HOSTID"
# shellcheck disable=SC2086
"$PERCH" $RUN run --task-uuid perch-fault-r1 "$T/long.json" >"$T/out" 2>"$T/err" &
rpid=$!
RUN_PIDS=$rpid
wait_running "perch run" long "$rpid"
stopped=$(date +%s)
restart_engine "perch run"
_n=0
until gone "$rpid"; do
	_n=$((_n + 1))
	if [ $_n -ge $((BOUND * 10)) ]; then
		describe_threads "$rpid" >"$T/hung"
		kill -KILL "$rpid" 2>/dev/null
		wait "$rpid" 2>/dev/null || :
		echo "--- stderr"; cat "$T/err"
		echo "--- perch's threads when it was killed"; cat "$T/hung"
		fail "perch run did not end within $BOUND s of the engine's stop; killed it"
	fi
	sleep 0.1
done
set +e
wait "$rpid"
rc=$?
set -e
RUN_PIDS=
echo "perch run ended $(($(date +%s) - stopped)) s after the engine was told to stop, exit $rc"
expect_rc 3 "perch run with the engine restarted mid-step"
# One line says what happened to the step, naming the engine.
expect_lines 1 'step "long" failed:' "$T/err"
grep 'step "long" failed:' "$T/err" | grep -qF "docker engine not reachable at unix://$DSOCK" ||
	{ cat "$T/err"; fail "the step's error does not name the engine"; }
expect_no_grep "exit code 137" "$T/err" "perch run's stderr"
leftovers "perch run" perch-fault-r1 "$T/err"

# shellcheck disable=SC2086
timeout "$BOUND" "$PERCH" $RUN run --task-uuid perch-fault-r2 "$T/hello.json" >"$T/out" 2>"$T/err" || {
	rc=$?
	cat "$T/err"
	fail "perch run on the restarted engine exited $rc (124: did not end within $BOUND s)"
}
expect_grep "[hello:L1:" "$T/out"
expect_grep "hello-after-restart" "$T/out"
nothing_left "perch run"

# ---- 2. perch daemon ----

cat >"$CONF" <<EOF
control_socket = "$SOCK";
state_dir = "$STATE";
plugin_path = [ "$T/plugins" ];
adopt_grace = "1000h";
backends: {
  docker: { host_id = "$HOSTID"; host = "unix://$DSOCK"; };
};
EOF
start_daemon

# bounded_wait ID RC: perch wait exits RC, within the bound.
bounded_wait() {
	set +e
	timeout "$BOUND" "$PERCH" --config "$CONF" wait "$1" >"$T/wait.out" 2>"$T/wait.err"
	_rc=$?
	set -e
	[ "$_rc" != 124 ] || { tail -n 30 "$DAEMON_LOG"; fail "perch wait $1 did not return within $BOUND s"; }
	[ "$_rc" = "$2" ] || { cat "$T/wait.err"; tail -n 30 "$DAEMON_LOG"; fail "wait $1 exited $_rc, expected $2"; }
}
idle() { [ "$(pc status --json | jq .running)" = 0 ]; }
fds() { ls "/proc/$DAEMON_PID/fd" | wc -l; }
threads() { ls "/proc/$DAEMON_PID/task" | wc -l; }
snapshot() {
	ls -l "/proc/$DAEMON_PID/fd" | sed -n 's/.* \([0-9][0-9]*\) -> /\1 -> /p' >"$1"
	describe_threads "$DAEMON_PID" >>"$1"
}
# settle: idle, and the same figures twice half a second apart.
settle() {
	wait_until "the daemon to be idle" idle
	_n=0
	_prev=
	while :; do
		_now="$(fds) $(threads)"
		[ "$_now" != "$_prev" ] || break
		_prev=$_now
		_n=$((_n + 1))
		[ $_n -lt 40 ] || break
		sleep 0.5
	done
}

wf da "hello:echo hello-a" >"$T/a.json"
wf db "long:echo started;sleep 300" "after:echo after" >"$T/b.json"
wf dc "hello:echo hello-c" >"$T/c.json"

submit "$T/a.json" --backend docker
bounded_wait "$id" 0
settle
fd0=$(fds)
th0=$(threads)
snapshot "$T/before"

submit "$T/b.json" --backend docker
b=$id
wait_running "the daemon's workflow" long
fd1=$(fds)
th1=$(threads)
restart_engine "the daemon's workflow"
bounded_wait "$b" 3
jq_check '.status == "error" and (.steps[0].error | test("docker engine not reachable"))' \
	"$STATE/workflows/$b/result.json"
# The daemon's task id is the workflow id.
leftovers "the daemon's workflow" "$b" "$DAEMON_LOG"

submit "$T/c.json" --backend docker
bounded_wait "$id" 0
pc logs "$id" >"$T/logs.txt"
expect_grep "hello-c" "$T/logs.txt"
nothing_left "the daemon"

# Descriptors and threads once idle again: as many as before (async
# removals and connection teardown get a few seconds).
_n=0
while :; do
	settle
	fd2=$(fds)
	th2=$(threads)
	[ "$fd2" != "$fd0" ] || [ "$th2" != "$th0" ] || break
	_n=$((_n + 1))
	[ $_n -lt 10 ] || break
	sleep 0.5
done
echo "daemon: idle after the 1st workflow: $fd0 fds, $th0 threads;" \
	"while the 2nd ran: $fd1 fds, $th1 threads;" \
	"idle after the 3rd: $fd2 fds, $th2 threads"
if [ "$fd2" != "$fd0" ] || [ "$th2" != "$th0" ]; then
	snapshot "$T/after"
	diff "$T/before" "$T/after" || :
	fail "the daemon holds $fd2 descriptors and $th2 threads, $fd0 and $th0 before the engine restart"
fi

stop_daemon
[ "$daemon_rc" = 0 ] || { tail -n 20 "$DAEMON_LOG"; fail "the daemon exited $daemon_rc on SIGTERM"; }
nothing_left "the end"
[ -z "$had_docker0" ] || [ -e /sys/class/net/docker0 ] ||
	fail "the host's docker0 is gone (the private engine must not touch the host's network)"
