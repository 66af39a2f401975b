#!/bin/sh
# Hot reload under load: 50 workflows on the dummy while its plugin file is
# replaced and reloaded 20 times (perch reload and SIGHUP, alternately).
# (reload_docker.sh does the same with the docker backend.)
# Every workflow must end with its own result, every log line must be there
# exactly once, new workflows must go to the newest version at once, and
# every old version must be unloaded (and no longer mapped) once its last
# workflow ended.
. "${abs_top_srcdir}/tests/daemon/lib.sh"

write_conf 'max_workflows = 8;
max_queue = 100;'
start_daemon

N=50
reloads=0
: >"$T/ids"
i=1
while [ $i -le $N ]; do
	# Each workflow is different: its exit code and its logs are its own.
	code=$((i % 3))
	ms=$((100 + (i % 5) * 100))
	workflow "$(step "a$i" "w${i}a" "{\"SLEEP\":\"${ms}ms\"}"),$(step "b$i" "w${i}b" '{}')" \
		"$(step "c$i" "w${i}c" "{\"SLEEP\":\"${ms}ms\",\"STEP_EXIT_CODE\":\"$code\"}")" >"$T/wf$i.json"
	submit "$T/wf$i.json"
	echo "$i $id $code" >>"$T/ids"
	# 20 reloads spread over the 50 submissions (after 3, 5, 8, 10, ...).
	if { [ $((i % 5)) -eq 0 ] || [ $((i % 5)) -eq 3 ]; } && [ $reloads -lt 20 ]; then
		reloads=$((reloads + 1))
		before=$(current_number dummy)
		replace_plugin dummy $reloads
		if [ $((reloads % 2)) -eq 0 ]; then
			pc reload >"$T/reload.out" || fail "perch reload #$reloads"
			expect_grep "loaded dummy 1.0.0 #" "$T/reload.out"
		else
			kill -HUP "$DAEMON_PID"
			has_new() { [ "$(current_number dummy)" != "$before" ]; }
			wait_until "SIGHUP reload #$reloads" has_new
		fi
		after=$(current_number dummy)
		[ "$after" != "$before" ] || fail "reload #$reloads loaded no new version"
		# The next workflow goes to the new version at once.
		workflow "$(step probe "p$reloads" '{}')" >"$T/probe.json"
		submit "$T/probe.json"
		expect_wait "$id" 0
		[ "$(ps_field "$id" .version_number)" = "$after" ] ||
			fail "a workflow after reload #$reloads ran on #$(ps_field "$id" .version_number), not #$after"
	fi
	i=$((i + 1))
done
[ $reloads -eq 20 ] || fail "only $reloads reloads"

# Every workflow ends with its own result and its own lines, once each.
while read -r i id code; do
	want=0
	[ "$code" = 0 ] || want=1
	expect_wait "$id" $want
	pc logs "$id" | strip_log >"$T/got.txt"
	{ dummy_log "a$i" "w${i}a"; dummy_log "b$i" "w${i}b"; dummy_log "c$i" "w${i}c"; } >"$T/want.txt"
	diff -u "$T/want.txt" "$T/got.txt" || fail "the logs of workflow $i ($id)"
	jq_check ".steps[2].exit_code == $code and .steps[0].log_lines == 7" "$STATE/workflows/$id/result.json"
done <"$T/ids"
versions=$(pc ps --json | jq '[.[] | .version_number] | unique | length')
[ "$versions" -ge 8 ] || fail "the workflows ran on only $versions versions"

# Every retired version is unloaded once idle, verified by the loader and
# by the process's own maps; only the current copy is left.
only_current() {
	[ "$(pc status --json | jq '[.backends[] | select(.name == "dummy")] | length')" = 1 ]
}
wait_until "retired versions to be unloaded" only_current
cur=$(current_number dummy)
grep -q "plugin dummy 1.0.0 #$cur loaded" "$DAEMON_LOG" || fail "no load message for #$cur"
unloaded=$(grep -c "plugin dummy 1.0.0 #[0-9]* unloaded (.* no longer mapped)" "$DAEMON_LOG")
[ "$unloaded" -eq 20 ] || { grep "dummy" "$DAEMON_LOG" | tail -40; fail "$unloaded versions unloaded, expected 20"; }
if grep -q "still mapped" "$DAEMON_LOG"; then
	grep "still mapped" "$DAEMON_LOG"
	fail "a version stayed mapped"
fi
mapped=$(grep -o "$STATE/plugins/dummy-[0-9]*\.so" "/proc/$DAEMON_PID/maps" | sort -u)
[ "$mapped" = "$STATE/plugins/dummy-$cur.so" ] || fail "mapped dummy copies: $mapped (expected only #$cur)"
[ "$(ls "$STATE/plugins" | grep -c '^dummy-')" = 1 ] || fail "copies left: $(ls "$STATE/plugins")"
served=$(pc status --json | jq '[.backends[] | select(.name == "dummy")][0].served')
[ "$served" -ge 1 ] || fail "the current version served nothing"

# Nothing is left in the dummy's state directory.
[ -z "$(ls "$T/dummy")" ] || fail "the dummy still has: $(ls "$T/dummy")"
stop_daemon
[ "$daemon_rc" = 0 ] || fail "the daemon exited $daemon_rc"
