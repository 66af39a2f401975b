#!/bin/sh
# perch daemon and its clients: submit, ps, logs, wait, cancel on dummy and
# local; the bounded queue; requests that are malformed or too large; a
# broken config on reload; a client without permission on the socket;
# retention; SIGTERM.
. "${abs_top_srcdir}/tests/daemon/lib.sh"

write_conf 'max_workflows = 2;
max_queue = 2;'
start_daemon
[ "$(stat -c %a "$SOCK")" = 660 ] || fail "the socket is mode $(stat -c %a "$SOCK"), expected 660"

# 1. submit, ps, wait, logs on dummy: the id is the last word of the last line
workflow "$(step build s1 '{"SLEEP":"200ms"}'),$(step lint s2 '{}')" "$(step publish s3 '{}')" >"$T/ok.json"
submit "$T/ok.json"
ok=$id
expect_grep "workflow accepted" "$T/submit.out"
expect_wait "$ok" 0
[ "$(ps_field "$ok" .status)" = success ] || fail "ps: status of $ok"
[ "$(ps_field "$ok" .backend)" = dummy ] || fail "ps: backend of $ok"
[ "$(ps_field "$ok" .plugin_version)" = 1.0.0 ] || fail "ps: plugin version of $ok"
pc ps >"$T/ps.txt"
expect_grep "$ok" "$T/ps.txt"
expect_grep "dummy 1.0.0#" "$T/ps.txt"
pc logs "$ok" >"$T/logs.txt"
{ dummy_log build s1; dummy_log lint s2; dummy_log publish s3; } >"$T/expect.txt"
strip_log <"$T/logs.txt" | diff -u "$T/expect.txt" - || fail "logs of $ok"
expect_grep "[publish:L6:0s] ------------------" "$T/logs.txt"
jq_check '.status == "success" and .exit_code == 0 and (.steps | length) == 3' "$STATE/workflows/$ok/result.json"
# An id may be shortened to a unique prefix.
short=$(printf %s "$ok" | cut -c1-24)
pc wait "$short" >/dev/null 2>&1 || fail "wait by a prefix of the id"

# 2. a failing step exits 1; submit --follow streams the logs and exits like wait
workflow "$(step test f1 '{"STEP_EXIT_CODE":"2"}')" "$(step notify f2 '{}' '"on_failure":true')" >"$T/fail.json"
set +e
pc submit --follow "$T/fail.json" >"$T/follow.out" 2>"$T/follow.err"
rc=$?
set -e
[ "$rc" = 1 ] || { cat "$T/follow.err"; fail "submit --follow of a failing workflow exited $rc"; }
expect_grep "[test:L5:0s] echo test" "$T/follow.out"
expect_grep "[notify:L0:0s] StepName: notify" "$T/follow.out"
failed=$(tail -n 1 "$T/follow.out" | awk '{print $NF}')
expect_grep "workflow failure: $failed" "$T/follow.out"
expect_wait "$failed" 1
pc logs --follow "$failed" >/dev/null 2>&1 && fail "logs --follow of a failed workflow exited 0"

# 3. local: a real process, its output, its exit code
printf '{"pipeline":[{"steps":[{"name":"hello","uuid":"l1","type":"commands","image":"sh","commands":["echo hello-from-local"],"environment":{},"on_success":true}]}],"network":"","volume":"","secrets":[]}\n' >"$T/local.json"
submit "$T/local.json" --backend local
expect_wait "$id" 0
[ "$(ps_field "$id" .backend)" = local ] || fail "ps: backend of the local workflow"
pc logs "$id" >"$T/llogs.txt"
expect_grep "hello-from-local" "$T/llogs.txt"
printf '{"pipeline":[{"steps":[{"name":"bad","uuid":"l2","type":"commands","image":"sh","commands":["exit 4"],"environment":{},"on_success":true}]}],"network":"","volume":"","secrets":[]}\n' >"$T/localfail.json"
submit "$T/localfail.json" --backend local
expect_wait "$id" 1
jq_check '.steps[0].exit_code == 4' "$STATE/workflows/$id/result.json"

# 4. cancel: a running one ends killed (130); a queued one never runs
workflow "$(step slow c1 '{"SLEEP":"60s"}')" >"$T/slow.json"
submit "$T/slow.json"
slow1=$id
submit "$T/slow.json"
slow2=$id
workflow "$(step quick q1 '{}')" >"$T/quick.json"
submit "$T/quick.json"
queued1=$id
expect_grep "queued at position 1" "$T/submit.out"
submit "$T/quick.json"
queued2=$id
[ "$(ps_field "$queued2" .position)" = 2 ] || fail "queue position of the second queued workflow"
# 5. the queue is full: a clear refusal, exit 3
set +e
pc submit "$T/quick.json" >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 3 "a submission to a full queue"
expect_grep "the queue is full" "$T/err"
expect_grep "max_queue 2" "$T/err"
expect_one_line "$T/err"
pc cancel "$queued1" >"$T/out" || fail "cancel of a queued workflow"
expect_grep "was queued" "$T/out"
expect_wait "$queued1" 130
[ "$(ps_field "$queued1" .started_ns)" = 0 ] || fail "a cancelled queued workflow started"
pc cancel "$slow1" >"$T/out" || fail "cancel of a running workflow"
expect_grep "was running" "$T/out"
expect_wait "$slow1" 130
jq_check '.status == "killed" and .steps[0].cancelled' "$STATE/workflows/$slow1/result.json"
# queued2 started when slow1 ended; it succeeds
expect_wait "$queued2" 0
pc cancel "$slow2" >/dev/null
expect_wait "$slow2" 130
set +e
pc cancel "$ok" >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 1 "cancel of a finished workflow"
expect_grep "has already ended: success" "$T/err"

# 6. bad input from clients: one clear line, exit 2; the daemon goes on
printf '{"pipeline": [' >"$T/trunc.json"
set +e
pc submit "$T/trunc.json" >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 2 "a malformed workflow"
expect_grep "trunc.json: line 1" "$T/err"
expect_one_line "$T/err"
set +e
pc wait NOSUCHID >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 2 "an unknown id"
expect_grep "no workflow NOSUCHID" "$T/err"
set +e
pc --backend nosuch submit "$T/quick.json" >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 2 "an unknown backend"
expect_grep 'backend "nosuch" not found' "$T/err"

# 7. raw protocol abuse: one error line each, then the daemon still answers
raw() { "$CTLRAW" "$SOCK" "$@" >"$T/raw.out" || fail "no reply to ctlraw $1"; }
raw line 'this is not json'
jq_check '.ok == false and .code == "malformed" and (.error | test("not valid JSON"))' "$T/raw.out"
raw line '[1,2,3]'
jq_check '.code == "malformed" and (.error | test("not a JSON object"))' "$T/raw.out"
raw line '{"cmd":"frobnicate"}'
jq_check '.code == "malformed" and (.error | test("unknown command"))' "$T/raw.out"
raw line '{"cmd":"ps"} garbage'
jq_check '.code == "malformed"' "$T/raw.out"
raw line '{"nocmd":1}'
jq_check '.code == "malformed" and (.error | test("no \"cmd\""))' "$T/raw.out"
raw raw '{"cmd":"ps"'
jq_check '.code == "malformed" and (.error | test("cut short"))' "$T/raw.out"
raw big 17000000
jq_check '.code == "too_large" and (.error | test("16777216"))' "$T/raw.out"
[ "$(wc -l <"$T/raw.out")" -eq 1 ] || fail "an oversized request got more than one reply line"
raw line '{"cmd":"submit"}'
jq_check '.code == "malformed" and (.error | test("workflow"))' "$T/raw.out"
raw line '{"cmd":"wait"}'
jq_check '.code == "malformed" and (.error | test("id"))' "$T/raw.out"
daemon_alive || fail "the daemon died on bad requests"
pc status >/dev/null || fail "status after bad requests"

# 8. a broken config on reload is refused with file:line; the old one stays.
# (The client is pointed at the socket alone: with --config it would stop
# at the broken file itself.)
cp "$CONF" "$T/good.conf"
printf 'this is = broken\n' >>"$CONF"
broken_line=$(wc -l <"$CONF")
set +e
"$PERCH" --socket "$SOCK" reload >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 2 "a reload with a broken config"
expect_grep "reload refused, the old configuration stays in force: $CONF:$broken_line:" "$T/err"
expect_one_line "$T/err"
kill -HUP "$DAEMON_PID"
wait_until "the refused SIGHUP reload in the log" grep -q "reload refused" "$DAEMON_LOG"
cp "$T/good.conf" "$CONF"
pc status --json >"$T/status.json" || fail "status after a broken reload"
jq_check '.max_workflows == 2 and .generation == 1' "$T/status.json"
# a valid file with a wrong value is refused too
sed -i 's/^max_queue = 2;/max_queue = -1;/' "$CONF"
set +e
"$PERCH" --socket "$SOCK" reload >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 2 "a reload with max_queue = -1"
expect_grep "max_queue: must be at least 0" "$T/err"
cp "$T/good.conf" "$CONF"
sed -i 's/^max_workflows = 2;/max_workflows = 3;/' "$CONF"
pc reload >"$T/out" || fail "a good reload"
pc status --json >"$T/status.json"
jq_check '.max_workflows == 3 and .generation > 1' "$T/status.json"

# 9. a client without permission on the socket (mode 0660)
if command -v setpriv >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	chmod 755 "$T" "$T/run"
	set +e
	setpriv --reuid nobody --regid nogroup --clear-groups "$PERCH" --socket "$SOCK" status >"$T/out" 2>"$T/err"
	rc=$?
	set -e
	expect_rc 3 "a client without permission"
	expect_grep "Permission denied" "$T/err"
	expect_one_line "$T/err"
	chmod 700 "$T"
	daemon_alive || fail "the daemon died"
else
	fail "this test needs root and setpriv (util-linux) to run a client as nobody"
fi

# 10. retention, from a reload: at most 3 finished workflows are kept
printf 'retention = 3;\n' >>"$CONF"
pc reload >/dev/null || fail "reload with retention = 3"
for i in 1 2; do submit "$T/quick.json"; expect_wait "$id" 0; done
count_finished() { [ "$(pc ps --json | jq '[.[] | select(.state == "finished")] | length')" -le 3 ]; }
wait_until "retention to prune" count_finished
[ "$(ls "$STATE/workflows" | wc -l)" -le 3 ] || fail "retention left $(ls "$STATE/workflows" | wc -l) folders"
[ -d "$STATE/workflows/$id" ] || fail "retention removed the newest workflow"

# 11. SIGTERM with nothing running: exit 0, the socket is gone
stop_daemon
[ "$daemon_rc" = 0 ] || { tail "$DAEMON_LOG"; fail "the daemon exited $daemon_rc on SIGTERM"; }
[ ! -e "$SOCK" ] || fail "the socket was left behind"
set +e
pc status >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 3 "status without a daemon"
expect_grep "is perch daemon running?" "$T/err"
