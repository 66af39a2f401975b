# lib.sh - helpers for the perch daemon's integration tests (sourced, POSIX
# sh, on top of tests/integration/lib.sh).
#
# Each test runs its own daemon with a socket and a state directory under
# $T (never /run or /var/lib), a private copy of the dummy plugin in
# $T/plugins (so that replacing it touches nothing else), the dummy's state
# directory in $T/dummy, and a docker host id of its own with a long
# adopt_grace (so that a daemon here never claims, or destroys, containers
# of anything else on this machine).  No timing assertions: waits are
# bounded polls that fail loudly after a generous limit.
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

mkdir -p "$T/plugins" "$T/run"
cp "$PERCH_TEST_INSTALLED_PLUGINDIR/dummy.so" "$T/plugins/dummy.so"

# write_conf [EXTRA-LINES]: the daemon's config; extra lines are appended.
# $ADOPT_GRACE (default 1000h) sets adopt_grace; NO_DUMMY_STATE=1 leaves the
# dummy in memory (and the config without a section for it).
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
  docker: { host_id = "$MARK"; };
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
