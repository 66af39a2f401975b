#!/bin/sh
# perch run on the local backend, through the installed binary: the faults
# and awkward output of issue "Run workflows", each followed by a check
# that no process, temp dir or descriptor was left behind.
. "${abs_top_srcdir}/tests/integration/lib.sh"

mark="run-local-$$"
tmp="$T/tmp"           # the local backend's temp dirs go here
mkdir -p "$tmp"
export PERCH_BACKEND_LOCAL_TEMP_DIR="$tmp" PERCH_BACKEND_LOCAL_STOP_TIMEOUT=2s

# cmd_step NAME COMMANDS-JSON [EXTRA]: a commands step on sh, marked so that
# its processes can be found (PERCH_TEST_MARK in its environment).
cmd_step() {
	printf '{"name":"%s","uuid":"%s","type":"commands","image":"sh","commands":%s,"environment":{"PERCH_TEST_MARK":"%s","DEPLOY_TOKEN":"hunter2hunter2"},"on_success":true%s}' \
		"$1" "$1" "$2" "$mark" "${3:+,$3}"
}
workflow() {
	printf '{"pipeline":['
	sep=
	for s in "$@"; do printf '%s{"steps":[%s]}' "$sep" "$s"; sep=,; done
	printf '],"network":"","volume":"","secrets":[{"name":"token","value":"hunter2hunter2"}]}\n'
}
run() { run_perch "$T/out" "$T/err" --backend local run --result "$T/result.json" "$@"; }

# Nothing of a run may outlive it: processes, temp dirs.
no_leftovers() {
	n=$(count_marked "$mark")
	[ "$n" -eq 0 ] || fail "$1: $n marked processes left behind"
	left=$(ls -A "$tmp")
	[ -z "$left" ] || fail "$1: temp dirs left behind: $left"
}

# 1. a failing command stops the script; later commands never run
workflow "$(cmd_step build '["echo one","false","echo never"]')" >"$T/wf.json"
run "$T/wf.json"
expect_rc 1 "a failing command"
expect_grep "[build:L1:0s] one" "$T/out"
expect_no_grep "never" "$T/out"
jq_check '.steps[0].exit_code == 1 and .status == "failure"' "$T/result.json"
no_leftovers "a failing command"

# 2. an unknown shell is a clear step error
printf '{"pipeline":[{"steps":[{"name":"s","uuid":"1","type":"commands","image":"nosuchsh","commands":["true"],"environment":{},"on_success":true}]}],"network":"","volume":"","secrets":null}\n' >"$T/wf.json"
run "$T/wf.json"
expect_rc 1 "an unknown shell"
expect_grep 'shell "nosuchsh" not found' "$T/err"
no_leftovers "an unknown shell"

# 3. a command that does not exist: 127
workflow "$(cmd_step c '["no-such-command-perch"]')" >"$T/wf.json"
run "$T/wf.json"
expect_rc 1 "command not found"
jq_check '.steps[0].exit_code == 127' "$T/result.json"

# 4. a step killed by a signal: 128 + 9
workflow "$(cmd_step k '["kill -9 $$"]')" >"$T/wf.json"
run "$T/wf.json"
expect_rc 1 "a step killed by a signal"
jq_check '.steps[0].exit_code == 137' "$T/result.json"
no_leftovers "a killed step"

# 5. output without a final newline, invalid UTF-8, a secret split across reads
workflow "$(cmd_step o '["printf \"\\\\377\\\\376bytes\\\\n\"","printf hunt; sleep 0.3; printf \"er2hunter2 ok\\\\n\"","printf last-line-no-newline"]')" >"$T/wf.json"
run_perch "$T/out" "$T/err" --backend local run --log-format json --logs-dir "$T/logs" "$T/wf.json"
expect_rc 0 "awkward output"
jq_check_lines 'any(.[]; .data == "\ufffd\ufffdbytes") and any(.[]; .data == "******** ok") and (last | .data == "last-line-no-newline")' "$T/out"
expect_no_grep "hunter2hunter2" "$T/out"
expect_no_grep "hunter2hunter2" "$T/logs/o.log"
printf '\377\376bytes\n' >"$T/want"
grep -qF "$(cat "$T/want")" "$T/logs/o.log" || fail "invalid UTF-8 was not kept byte for byte in the logs folder"
[ "$(tail -n 1 "$T/logs/o.log")" = "last-line-no-newline" ] || fail "the last line is missing from the logs folder"

# 6. 50,000 lines from seq, numbered in order
workflow "$(cmd_step seq '["seq 1 50000"]')" >"$T/wf.json"
run_perch "$T/out" "$T/err" --backend local run --result "$T/result.json" "$T/wf.json"
expect_rc 0 "50,000 lines"
jq_check '.steps[0].log_lines == 50001' "$T/result.json"
expect_grep "[seq:L50000:" "$T/out"
[ "$(grep -c '^\[seq:L' "$T/out")" -eq 50001 ] || fail "not 50,001 lines on the terminal"
grep '^\[seq:L[0-9]*:[0-9]*s\] [0-9]' "$T/out" | awk -F'] ' '{ if ($2 != NR) { print "line " NR " is " $2; exit 1 } }' ||
	fail "seq's lines are out of order"

# 7. a 5 MiB line becomes five 1 MiB lines
workflow "$(cmd_step big '["head -c 5242880 /dev/zero | tr \"\\\\0\" a; echo"]')" >"$T/wf.json"
run_perch "$T/out" "$T/err" --backend local run --log-format none --logs-dir "$T/logs5" "$T/wf.json"
expect_rc 0 "a 5 MiB line"
awk 'NR > 1 { n++; if (length($0) != 1048576) { print "line " NR ": " length($0); bad = 1 } } END { if (n != 5 || bad) exit 1 }' "$T/logs5/big.log" ||
	fail "the 5 MiB line was not split into five 1 MiB lines"

# 8. a background grandchild holding stdout does not hang the workflow
workflow "$(cmd_step bg '["sleep 300 &","echo started"]')" >"$T/wf.json"
run "$T/wf.json"
expect_rc 0 "a background grandchild"
no_leftovers "a background grandchild"

# 9. SIGINT while a step runs: exit 130, the step killed, nothing left
workflow "$(cmd_step long '["sleep 300"]')" "$(cmd_step after '["echo never"]')" >"$T/wf.json"
set +e
"$PERCH" --backend local run --result "$T/result.json" "$T/wf.json" >"$T/out" 2>"$T/err" &
pid=$!
i=0
while [ "$(count_marked "$mark")" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
wait $pid
rc=$?
set -e
expect_rc 130 "SIGINT while running"
jq_check '.status == "killed" and .steps[0].cancelled and .steps[1].skipped' "$T/result.json"
no_leftovers "SIGINT while running"

# 10. SIGINT during cleanup: a step that ignores SIGTERM gets the stop
#     timeout; a second SIGINT cuts it short.
export PERCH_BACKEND_LOCAL_STOP_TIMEOUT=120s
workflow "$(cmd_step stubborn '["trap \"\" TERM; sleep 300"]')" >"$T/wf.json"
set +e
"$PERCH" --backend local run "$T/wf.json" >"$T/out" 2>"$T/err" &
pid=$!
i=0
while [ "$(count_marked "$mark")" -lt 2 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -INT $pid
sleep 1
kill -0 $pid 2>/dev/null || { set -e; fail "perch ended before the stop timeout: the step ignores SIGTERM"; }
kill -INT $pid
wait $pid
rc=$?
set -e
expect_rc 130 "a second SIGINT"
expect_grep "cutting cleanup short" "$T/err"
no_leftovers "a second SIGINT"
export PERCH_BACKEND_LOCAL_STOP_TIMEOUT=2s

# 11. a clone step: git from a local bare repository
command -v git >/dev/null || fail "git is required"
git init -q --bare "$T/repo.git"
git init -q "$T/src"
(cd "$T/src" && echo hello >README && git add README &&
	git -c user.name=t -c user.email=t@t commit -qm init && git push -q "$T/repo.git" HEAD:main)
sha=$(git -C "$T/src" rev-parse HEAD)
printf '{"pipeline":[{"steps":[{"name":"clone","uuid":"c","type":"clone","image":"git","environment":{"CI_REPO_CLONE_URL":"%s","CI_COMMIT_SHA":"%s","PERCH_TEST_MARK":"%s"},"on_success":true}]},{"steps":[%s]}],"network":"","volume":"","secrets":null}\n' \
	"$T/repo.git" "$sha" "$mark" "$(cmd_step check '["cat README","git rev-parse HEAD"]')" >"$T/wf.json"
run "$T/wf.json"
expect_rc 0 "a clone step"
expect_grep "[check:L1:0s] hello" "$T/out"
expect_grep "$sha" "$T/out"
no_leftovers "a clone step"

# 12. descriptors: perch itself opens none that it leaks into steps
workflow "$(cmd_step fds '["ls /proc/self/fd | wc -l"]')" >"$T/wf.json"
run "$T/wf.json"
expect_rc 0 "descriptor count"
# ls itself holds 0, 1, 2 and the directory it reads: 4
expect_grep "[fds:L1:0s] 4" "$T/out"
echo "run_local: all passed"
