# fault_lib.sh - helpers of the fault tests (sourced after
# tests/integration/lib.sh, which provides $T, fail, expect_* and
# count_marked).
#
# The "faulty" fixture backend (tests/fault/faulty.c) is copied into a
# private plugin folder that PERCH_PLUGIN_PATH puts first; the staged
# install's own plugins (dummy, local) are found as usual.

: "${abs_top_builddir:?abs_top_builddir is not set: run this through make check}"
faulty_so=$abs_top_builddir/tests/fault/.libs/faulty.so
[ -f "$faulty_so" ] || fail "$faulty_so is missing: make check builds it"
mkdir "$T/plugins"
cp "$faulty_so" "$T/plugins/"
PERCH_PLUGIN_PATH=$T/plugins
export PERCH_PLUGIN_PATH
unset PERCH_FAULTY_FAIL PERCH_FAULTY_MODE PERCH_FAULTY_LOG PERCH_LOG_LEVEL || :

# Every process a test starts carries this mark, so that leftovers can be
# counted (count_marked in lib.sh) and killed.
PERCH_TEST_MARK=fault-$$
export PERCH_TEST_MARK

# run_bounded SECONDS ARGS... - runs "$PERCH ARGS..." with stdout in
# $T/out and stderr in $T/err, for at most SECONDS.  Sets $rc to its exit
# status, or to "hung" after killing it (SIGKILL) when it outlived the
# bound; then $T/hung describes where its threads were.  Sets $elapsed
# (whole seconds).  With $signals set to "TENTHS:SIG ...", sends each SIG
# that many tenths of a second after the start ("10:TERM 20:TERM").
run_bounded() {
	_limit=$1
	shift
	_start=$(date +%s)
	"$PERCH" "$@" >"$T/out" 2>"$T/err" &
	_pid=$!
	_ticks=0
	while kill -0 "$_pid" 2>/dev/null; do
		# A finished child is a zombie until waited for: not running.
		_state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$_pid/status" 2>/dev/null || :)
		[ "$_state" = Z ] && break
		if [ "$_ticks" -ge $((_limit * 10)) ]; then
			describe_threads "$_pid" >"$T/hung"
			kill -KILL "$_pid" 2>/dev/null || :
			wait "$_pid" 2>/dev/null || :
			rc=hung
			elapsed=$(($(date +%s) - _start))
			return 0
		fi
		for _s in ${signals:-}; do
			[ "${_s%%:*}" -eq "$_ticks" ] && kill -"${_s#*:}" "$_pid" 2>/dev/null
		done
		sleep 0.1
		_ticks=$((_ticks + 1))
	done
	set +e
	wait "$_pid"
	rc=$?
	set -e
	elapsed=$(($(date +%s) - _start))
}

# describe_threads PID - one line per thread: its name, state and the
# kernel function it sleeps in.
describe_threads() {
	for _t in /proc/"$1"/task/*; do
		printf '%s %s %s\n' "$(cat "$_t/comm" 2>/dev/null)" \
			"$(sed -n 's/^State:[[:space:]]*//p' "$_t/status" 2>/dev/null)" \
			"$(cat "$_t/wchan" 2>/dev/null)"
	done
}

# expect_ended WHAT - the last run_bounded ended by itself.
expect_ended() {
	if [ "$rc" = hung ]; then
		echo "--- stderr"; cat "$T/err"
		echo "--- perch's threads when it was killed"; cat "$T/hung"
		fail "$1: perch did not end within the bound; killed it"
	fi
}

# calls NAME - how many times the faulty backend logged call NAME.
calls() {
	grep -c "^$1 " "$T/calls" 2>/dev/null || :
}

# expect_calls NAME N - exactly N calls of NAME.
expect_calls() {
	_n=$(calls "$1")
	[ "${_n:-0}" -eq "$2" ] || { echo "--- calls"; cat "$T/calls"; fail "$1 was called ${_n:-0} times, expected $2"; }
}

# expect_no_fd_leak - the faulty backend saw no more descriptors open in
# perch at unload than at load.
expect_no_fd_leak() {
	_load=$(sed -n 's/^load-fds //p' "$T/calls")
	_unload=$(sed -n 's/^unload-fds //p' "$T/calls")
	[ -n "$_load" ] && [ -n "$_unload" ] || { cat "$T/calls"; fail "no descriptor counts in the call log (was the plugin unloaded?)"; }
	[ "$_unload" -le "$_load" ] || { cat "$T/calls"; fail "perch held $_unload descriptors at unload, $_load at load"; }
}

# marked MARK - how many processes carry PERCH_TEST_MARK=MARK.  (lib.sh's
# count_marked, minus the shell's complaints about processes that ended or
# that it may not read.)
marked() {
	_n=0
	for _e in /proc/[0-9]*/environ; do
		if { tr '\0' '\n' <"$_e" | grep -qx "PERCH_TEST_MARK=$1"; } 2>/dev/null; then
			_n=$((_n + 1))
		fi
	done
	echo $_n
}

# expect_no_marked - no process of this test survives.
expect_no_marked() {
	_n=$(marked "$PERCH_TEST_MARK")
	[ "$_n" -eq 0 ] || fail "$_n processes of this test are still running"
}

# expect_lines N PATTERN FILE - exactly N lines of FILE hold PATTERN.
expect_lines() {
	_n=$(grep -cF -- "$2" "$3" || :)
	[ "${_n:-0}" -eq "$1" ] || { echo "--- $3"; cat "$3"; fail "expected $1 line(s) with \"$2\" in $3, got ${_n:-0}"; }
}

# A workflow: stage 1 runs "a", stage 2 runs "b".
two_stages() {
	printf '{"pipeline":[{"steps":[{"name":"a","uuid":"ua","type":"commands","on_success":true}]},'
	printf '{"steps":[{"name":"b","uuid":"ub","type":"commands","on_success":true}]}]}\n'
}
