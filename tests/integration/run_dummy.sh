#!/bin/sh
# perch run on the dummy backend: the runtime's rules, end to end, through
# the installed binary.  The dummy simulates steps from their environment
# (SLEEP, STEP_EXIT_CODE, STEP_OOM_KILLED, STEP_START_FAIL ...).
. "${abs_top_srcdir}/tests/integration/lib.sh"

# step NAME UUID ENV-JSON [EXTRA-JSON]: one step object.
step() {
	printf '{"name":"%s","uuid":"%s","type":"commands","commands":["echo %s","login hunter2hunter2"],"environment":%s,"on_success":true%s}' \
		"$1" "$2" "$1" "$3" "${4:+,$4}"
}
# workflow STAGE... : each argument is the comma-joined steps of one stage.
workflow() {
	printf '{"pipeline":['
	sep=
	for s in "$@"; do printf '%s{"steps":[%s]}' "$sep" "$s"; sep=,; done
	printf '],"network":"net","volume":"vol","secrets":[{"name":"token","value":"hunter2hunter2"}]}\n'
}
run() { run_perch "$T/out" "$T/err" --backend dummy run --result "$T/result.json" "$@"; }

# 1. success across stages, logs in the text format, secrets masked
workflow "$(step build s1 '{"SLEEP":"100ms"}'),$(step lint s2 '{}')" \
	"$(step publish s3 '{}')" >"$T/ok.json"
run "$T/ok.json"
expect_rc 0 "a passing workflow"
expect_grep '[build:L0:0s] StepName: build' "$T/out"
expect_grep '[lint:L5:0s] echo lint' "$T/out"
expect_grep '[publish:L6:0s] login ********' "$T/out"
expect_no_grep 'hunter2hunter2' "$T/out" "secret masked in logs"
expect_no_grep 'hunter2hunter2' "$T/err" "secret masked in perch's messages"
jq_check '.status == "success" and (.steps | length) == 3 and all(.steps[]; .exited and .exit_code == 0 and (.skipped | not))' "$T/result.json"

# 2. a failing step: later stages skipped unless on_failure; exit code 1
workflow "$(step test f1 '{"STEP_EXIT_CODE":"2"}'),$(step other f2 '{}')" \
	"$(step deploy f3 '{}'),$(step notify f4 '{}' '"on_failure":true')" >"$T/fail.json"
run "$T/fail.json"
expect_rc 1 "a failing workflow"
expect_grep 'step "test" failed: exit code 2' "$T/err"
expect_grep 'step "deploy" skipped: an earlier step failed' "$T/err"
jq_check '.status == "failure" and .steps[0].exit_code == 2 and .steps[1].exit_code == 0 and .steps[2].skipped and (.steps[3].skipped | not)' "$T/result.json"

# 3. failure: ignore keeps a failure out of the result
workflow "$(step flaky i1 '{"STEP_EXIT_CODE":"1"}' '"failure":"ignore"')" "$(step next i2 '{}')" >"$T/ignore.json"
run "$T/ignore.json"
expect_rc 0 "an ignored failure"
jq_check '.status == "success" and .steps[0].exit_code == 1 and (.steps[1].skipped | not)' "$T/result.json"

# 4. an OOM kill is a failure of its own kind
workflow "$(step big o1 '{"STEP_OOM_KILLED":"true","STEP_EXIT_CODE":"137"}')" >"$T/oom.json"
run "$T/oom.json"
expect_rc 1 "an OOM kill"
expect_grep 'step "big" failed: killed: out of memory' "$T/err"
jq_check '.steps[0].oom_killed' "$T/result.json"

# 5. a failed setup: destroy still runs, exit 3 (infrastructure), nothing started
workflow "$(step a w1 '{}')" >"$T/setup.json"
run_perch "$T/out" "$T/err" --backend dummy run --task-uuid WorkflowSetupShouldFail --result "$T/result.json" "$T/setup.json"
expect_rc 3 "a failed setup"
expect_grep 'setup_workflow failed: expected fail to setup workflow' "$T/err"
jq_check '.status == "error" and .steps[0].skipped and (.steps[0].started == 0)' "$T/result.json"

# 6. a step that cannot start fails the workflow
workflow "$(step bad b1 '{"STEP_START_FAIL":"true"}')" >"$T/start.json"
run "$T/start.json"
[ "$rc" = 1 ] || [ "$rc" = 3 ] || { cat "$T/err"; fail "start failure exited $rc"; }
expect_grep 'expected fail to start step' "$T/err"

# 7. depends_on orders steps inside a stage
workflow "$(step second d2 '{}' '"depends_on":["first"]'),$(step first d1 '{"SLEEP":"300ms"}')" >"$T/deps.json"
run "$T/deps.json"
expect_rc 0 "depends_on"
jq_check '.steps[0].started >= .steps[1].finished' "$T/result.json"

# 8. --timeout cancels: exit 130, the sleeping step is killed
workflow "$(step slow t1 '{"SLEEP":"60s"}')" "$(step never t2 '{}')" >"$T/timeout.json"
run_perch "$T/out" "$T/err" --backend dummy run --timeout 300ms --result "$T/result.json" "$T/timeout.json"
expect_rc 130 "--timeout"
expect_grep 'timed out after 300ms' "$T/err"
jq_check '.status == "killed" and .steps[0].cancelled and .steps[1].skipped' "$T/result.json"

# 9. SIGINT cancels; SIGTERM too
for sig in INT TERM; do
	set +e
	"$PERCH" --backend dummy run --result "$T/result.json" "$T/timeout.json" >"$T/out" 2>"$T/err" &
	pid=$!
	sleep 0.5
	kill -"$sig" $pid
	wait $pid
	rc=$?
	set -e
	expect_rc 130 "SIG$sig"
	expect_grep 'cancelling the workflow' "$T/err"
	jq_check '.status == "killed"' "$T/result.json"
done

# 10. a service runs until the workflow ends and never fails it
# (the later "type" key wins, as in Go's decoder)
workflow "$(step db v1 '{"STEP_EXIT_CODE":"1"}' '"type":"service","detach":true')" "$(step app v2 '{"SLEEP":"100ms"}')" >"$T/svc.json"
run "$T/svc.json"
expect_rc 0 "a failing service does not fail the workflow"

# 11. JSON log lines and a logs folder
run_perch "$T/out" "$T/err" --backend dummy run --log-format json --logs-dir "$T/logs" "$T/ok.json"
expect_rc 0 "json logs"
jq_check_lines 'any(.[]; .step == "build" and .uuid == "s1" and .line == 0 and .data == "StepName: build") and all(.[]; .data | test("hunter2") | not)' "$T/out"
[ -f "$T/logs/build.log" ] || fail "no $T/logs/build.log"
expect_grep 'StepUUID: s1' "$T/logs/build.log"

# 12. a wide and long workflow: 100 stages of 100 steps
awk 'BEGIN { printf "{\"pipeline\":["; for (s = 0; s < 100; s++) { printf "%s{\"steps\":[", s ? "," : ""; for (i = 0; i < 100; i++) printf "%s{\"name\":\"s%d_%d\",\"uuid\":\"u%d_%d\",\"environment\":{},\"on_success\":true}", i ? "," : "", s, i, s, i; printf "]}" } print "],\"network\":\"\",\"volume\":\"\",\"secrets\":null}" }' >"$T/big.json"
run_perch "$T/out" "$T/err" --backend dummy run --log-format none --result "$T/result.json" "$T/big.json"
expect_rc 0 "10,000 steps"
jq_check '(.steps | length) == 10000 and all(.steps[]; .exit_code == 0 and .log_lines == 7)' "$T/result.json"
echo "run_dummy: all passed"
