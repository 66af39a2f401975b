# lib.sh - helpers for the perch daemon's integration tests (sourced, POSIX
# sh, on top of tests/integration/lib.sh).
#
# Each test runs its own daemon with a socket and a state directory under
# $T (never /run or /var/lib), a private copy of the dummy plugin in
# $T/plugins (so that replacing it touches nothing else), the dummy's state
# directory in $T/dummy, the local backend's workflow folders in $T/ltmp,
# and a docker host id of its own with a long
# adopt_grace (so that a daemon here never claims, or destroys, containers
# of anything else on this machine).  No timing assertions: waits are
# bounded polls that fail loudly after a generous limit.  Tests that need
# the Docker engine call need_docker, which fails (never skips) when it is
# not there.
. "${abs_top_srcdir}/tests/integration/lib.sh"

CTLRAW="${abs_top_builddir}/tests/daemon/ctlraw"
[ -x "$CTLRAW" ] || fail "$CTLRAW is missing (make check builds it)"
: "${PERCH_TEST_INSTALLED_PLUGINDIR:?not set: run this through make check}"

SOCK="$T/run/perch.sock"
STATE="$T/state"
CONF="$T/perch.conf"
DAEMON_PID=
DAEMON_LOG="$T/daemon.log"
MARK="perch-daemon-test-$$"

mkdir -p "$T/plugins" "$T/run" "$T/ltmp"
cp "$PERCH_TEST_INSTALLED_PLUGINDIR/dummy.so" "$T/plugins/dummy.so"

# write_conf [EXTRA-LINES]: the daemon's config; extra lines are appended.
# $ADOPT_GRACE (default 1000h) sets adopt_grace; NO_DUMMY_STATE=1 leaves the
# dummy in memory (and the config without a section for it);
# $DOCKER_HOST_CONF is added to the docker section (host = "unix://...").
write_conf() {
	_dummy="dummy: { state_dir = \"$T/dummy\"; };"
	[ -z "${NO_DUMMY_STATE:-}" ] || _dummy=
	cat >"$CONF" <<EOF
control_socket = "$SOCK";
state_dir = "$STATE";
plugin_path = [ "$T/plugins" ];
adopt_grace = "${ADOPT_GRACE:-1000h}";
backends: {
  $_dummy
  local: { temp_dir = "$T/ltmp"; };
  docker: { host_id = "$MARK"; ${DOCKER_HOST_CONF:-} };
};
${1:-}
EOF
}

# pc ARGS...: the installed perch with the test's config.
pc() { "$PERCH" --config "$CONF" "$@"; }

# wait_until WHAT COMMAND...: polls (every 0.1 s, up to 60 s) until the
# command succeeds.
wait_until() {
	_what=$1
	shift
	_n=0
	while ! "$@" >/dev/null 2>&1; do
		_n=$((_n + 1))
		[ $_n -lt 600 ] || { [ -f "$DAEMON_LOG" ] && tail -n 30 "$DAEMON_LOG"; fail "timed out waiting for $_what"; }
		sleep 0.1
	done
}

# start_daemon [ARGS...]: starts the daemon (appending to $DAEMON_LOG) and
# waits until it answers.
start_daemon() {
	echo "--- start $*" >>"$DAEMON_LOG"
	"$PERCH" --config "$CONF" --backend dummy "$@" daemon >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	wait_until "the daemon to answer" pc status
}

daemon_alive() { [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; }

# stop_daemon: SIGTERM, then waits for it to exit (its status in $daemon_rc).
stop_daemon() {
	kill -TERM "$DAEMON_PID"
	wait_exit
}

wait_exit() {
	_n=0
	while daemon_alive && [ "$(ps -o stat= -p "$DAEMON_PID" 2>/dev/null | cut -c1)" != Z ]; do
		_n=$((_n + 1))
		[ $_n -lt 600 ] || { tail -n 30 "$DAEMON_LOG"; fail "the daemon did not exit"; }
		sleep 0.1
	done
	set +e
	wait "$DAEMON_PID"
	daemon_rc=$?
	set -e
	DAEMON_PID=
}

# fail_log MESSAGE: fails after showing the end of the daemon's log.
fail_log() {
	tail -n 40 "$DAEMON_LOG" >&2
	fail "$@"
}

kill9_daemon() {
	kill -KILL "$DAEMON_PID"
	wait_exit
}

cleanup_daemon() {
	if daemon_alive; then
		kill -KILL "$DAEMON_PID" 2>/dev/null || true
		wait "$DAEMON_PID" 2>/dev/null || true
	fi
	# Processes a local step left (each carries the test's marker).
	for p in $(marked_pids); do
		kill -KILL "$p" 2>/dev/null || true
	done
}
add_cleanup cleanup_daemon

# step NAME UUID ENV-JSON [EXTRA-JSON]: a dummy step object.
step() {
	printf '{"name":"%s","uuid":"%s","type":"commands","commands":["echo %s"],"environment":%s,"on_success":true%s}' \
		"$1" "$2" "$1" "$3" "${4:+,$4}"
}
# workflow STAGE...: each argument is the comma-joined steps of one stage.
workflow() {
	printf '{"pipeline":['
	_sep=
	for _s in "$@"; do printf '%s{"steps":[%s]}' "$_sep" "$_s"; _sep=,; done
	printf '],"network":"net","volume":"vol","secrets":[{"name":"token","value":"hunter2hunter2"}]}\n'
}
# dummy_log NAME UUID: the dummy's output for a step made by `step`, as
# perch logs prints it (the [name:Ln:...] prefix stripped).
dummy_log() {
	printf 'StepName: %s\nStepType: commands\nStepUUID: %s\nStepCommands:\n------------------\necho %s\n------------------\n' "$1" "$2" "$1"
}

# submit FILE [ARGS...]: submits; the id goes to $id.
submit() {
	_f=$1
	shift
	pc "$@" submit "$_f" >"$T/submit.out" 2>"$T/submit.err" || { cat "$T/submit.err"; fail "submit $_f"; }
	id=$(tail -n 1 "$T/submit.out" | awk '{print $NF}')
	[ -n "$id" ] || fail "submit printed no id"
}

# expect_wait ID RC: perch wait exits RC.
expect_wait() {
	set +e
	pc wait "$1" >"$T/wait.out" 2>"$T/wait.err"
	_rc=$?
	set -e
	[ "$_rc" = "$2" ] || { cat "$T/wait.err"; pc ps; fail "wait $1 exited $_rc, expected $2"; }
}

# ps_field ID JQ-EXPR: one field of a workflow in ps --json.
ps_field() { pc ps --json | jq -r --arg id "$1" ".[] | select(.id == \$id) | $2"; }

# strip_log: perch logs' text lines without the [name:Ln:Ns] prefix.
strip_log() { sed 's/^\[[^]]*:L[0-9]*:[0-9]*s\] //'; }

# marked_pids: processes carrying this test's marker (PERCH_TEST_MARK).
marked_pids() {
	for _e in /proc/[0-9]*/environ; do
		if { tr '\0' '\n' <"$_e"; } 2>/dev/null | grep -qx "PERCH_TEST_MARK=$MARK"; then
			_p=${_e#/proc/}
			echo "${_p%/environ}"
		fi
	done
}
# marked: how many there are.
marked() { marked_pids | wc -l; }
no_marked() { [ "$(marked)" -eq 0 ]; }

# replace_plugin NAME N: a new copy of the installed NAME.so in $T/plugins
# under the same name (new inode, mtime N s ahead), the way a package
# upgrade or an install does it: written aside, then renamed.
replace_plugin() {
	cp "$PERCH_TEST_INSTALLED_PLUGINDIR/$1.so" "$T/plugins/.$1.so.new"
	touch -d "@$(( $(date +%s) + $2 ))" "$T/plugins/.$1.so.new"
	mv "$T/plugins/.$1.so.new" "$T/plugins/$1.so"
}

# current_number NAME: the number of the current version of plugin NAME.
current_number() {
	pc status --json | jq -r --arg n "$1" '[.backends[] | select(.name == $n and .current)][0].number'
}

# no_dummy_state: the dummy's state directory holds nothing.
no_dummy_state() { [ -z "$(ls -A "$T/dummy" 2>/dev/null)" ]; }
# local_folders: the local backend's workflow folders (names).
local_folders() { ls -A "$T/ltmp"; }

# ---- Docker ------------------------------------------------------------------

DOCKER_IMAGE=${PERCH_TEST_DOCKER_IMAGE:-perch-test/busybox:latest}
DOCKER_SOCK=/var/run/docker.sock

# need_docker: the system engine ($DOCKER_SOCK) answers and has the step
# image, else the test fails (.ci/docker.sh sets both up); copies docker.so
# into $T/plugins and removes, at exit, whatever this test's host id still
# has on the engine (the test checks that there is nothing first).  The
# environment variables that would override the config's docker settings
# (and point the CLI elsewhere) are unset.
need_docker() {
	unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH DOCKER_API_VERSION \
		WOODPECKER_BACKEND_DOCKER_HOST PERCH_BACKEND_DOCKER_HOST \
		PERCH_BACKEND_DOCKER_HOST_ID || :
	command -v docker >/dev/null 2>&1 || fail "the docker CLI is missing (run .ci/docker.sh)"
	docker version >/dev/null 2>&1 || fail "the Docker engine does not answer at $DOCKER_SOCK (run .ci/docker.sh)"
	docker image inspect "$DOCKER_IMAGE" >/dev/null 2>&1 ||
		fail "the image $DOCKER_IMAGE is missing (run .ci/docker.sh)"
	cp "$PERCH_TEST_INSTALLED_PLUGINDIR/docker.so" "$T/plugins/docker.so"
	add_cleanup docker_cleanup
}

# docker_leftovers: containers, networks and volumes of this test's host id.
docker_leftovers() {
	docker ps -aq --filter "label=io.perch.host-id=$MARK"
	docker network ls -q --filter "label=io.perch.host-id=$MARK"
	docker volume ls -q --filter "label=io.perch.host-id=$MARK"
}
no_docker_leftovers() { [ -z "$(docker_leftovers)" ]; }

docker_cleanup() {
	for c in $(docker ps -aq --filter "label=io.perch.host-id=$MARK"); do
		docker rm -f -v "$c" >/dev/null 2>&1 || true
	done
	for n in $(docker network ls -q --filter "label=io.perch.host-id=$MARK"); do
		docker network rm "$n" >/dev/null 2>&1 || true
	done
	for v in $(docker volume ls -q --filter "label=io.perch.host-id=$MARK"); do
		docker volume rm -f "$v" >/dev/null 2>&1 || true
	done
}

# dstep NET NAME UUID LINES CODE [PAUSE [EXTRA-JSON]]: a docker step on the
# workflow's network NET (this engine may have no default bridge) whose
# container runs `sh -c` printing "NAME line 1" .. "NAME line LINES" and
# exiting CODE; after the first half of its lines it runs the shell command
# PAUSE (no double quotes: "sleep 1", say).  EXTRA-JSON members are added
# to the step.
dstep() {
	_half=$(( ($4 + 1) / 2 ))
	_script="i=1; while [ \$i -le $4 ]; do echo $2 line \$i; if [ \$i -eq $_half ]; then ${6:-:}; fi; i=\$((i+1)); done; exit $5"
	printf '{"name":"%s","uuid":"%s","type":"commands","image":"%s","entrypoint":["sh","-c","%s"],"environment":{},"networks":[{"name":"%s","aliases":["%s"]}],"on_success":true%s}' \
		"$2" "$3" "$DOCKER_IMAGE" "$_script" "$1" "$2" "${7:+,$7}"
}
# dstep_log NAME LINES: what such a step logs.
dstep_log() {
	_i=1
	while [ "$_i" -le "$2" ]; do
		echo "$1 line $_i"
		_i=$((_i + 1))
	done
}
# dworkflow NETWORK VOLUME STAGE...: a docker workflow; NETWORK and VOLUME
# may be empty (none).
dworkflow() {
	_net=$1 _vol=$2
	shift 2
	printf '{"pipeline":['
	_sep=
	for _s in "$@"; do printf '%s{"steps":[%s]}' "$_sep" "$_s"; _sep=,; done
	printf '],"network":"%s","volume":"%s","secrets":[]}\n' "$_net" "$_vol"
}
