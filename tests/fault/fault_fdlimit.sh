#!/bin/sh
# Few descriptors: under `ulimit -n 64` (hard and soft, so perch cannot
# lift it) a stage of 50 parallel steps on the dummy backend needs more
# than there are.  perch must either succeed or fail cleanly: exit 3 with
# the reason said (EMFILE, "Too many open files"), every started step
# destroyed - never hang, never crash.  Then the same with --max-parallel 8,
# which fits and must succeed.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

{
	printf '{"pipeline":[{"steps":['
	i=0
	while [ $i -lt 50 ]; do
		[ $i -gt 0 ] && printf ','
		printf '{"name":"s%d","uuid":"u%d","type":"commands","commands":["echo %d"],"environment":{"SLEEP":"300ms"},"on_success":true}' $i $i $i
		i=$((i + 1))
	done
	printf ']}]}\n'
} >"$T/wide.json"

# run_limited ARGS...: run_bounded under ulimit -n 64, in a subshell so
# that the limit stays there.
run_limited() {
	rm -f "$T/rc"
	(
		ulimit -n 64 || fail "ulimit -n 64 refused"
		[ "$(ulimit -Hn)" -le 64 ] || fail "ulimit -n did not lower the hard limit"
		run_bounded 120 "$@"
		echo "$rc" >"$T/rc"
	) || fail "could not run perch under ulimit -n 64"
	rc=$(cat "$T/rc")
}

run_limited --backend dummy run --result "$T/result.json" "$T/wide.json"
expect_ended "50 parallel steps under ulimit -n 64"
case $rc in
0)
	jq_check '.status == "success" and (.steps | length) == 50' "$T/result.json"
	;;
3)
	expect_grep 'Too many open files' "$T/err"
	# Nothing it says is garbled: every line is one of perch's.
	# (Lines of a sanitizer's runtime, "==PID==...", are not perch's.)
	if grep -v -e '^perch: ' -e '^==[0-9]*==' "$T/err" | grep -q .; then
		cat "$T/err"
		fail "stray output on stderr"
	fi
	;;
*)
	echo "--- stderr"; cat "$T/err"
	fail "50 parallel steps under ulimit -n 64: exit $rc, expected 0 or 3"
	;;
esac

run_limited --backend dummy run --max-parallel 8 --result "$T/result.json" "$T/wide.json"
expect_ended "--max-parallel 8 under ulimit -n 64"
expect_rc 0 "--max-parallel 8 under ulimit -n 64"
jq_check '.status == "success" and (.steps | length) == 50' "$T/result.json"
