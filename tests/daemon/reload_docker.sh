#!/bin/sh
# Hot reload under load, on the docker backend: 50 workflows whose steps
# are real containers (`sh -c` in the test image, printing numbered lines
# and exiting with a code of their own, on a network of their workflow) while docker.so is replaced and
# reloaded 20 times (perch reload and SIGHUP, alternately).  Every workflow
# must end with its own result, every log line must be there exactly once,
# new workflows must go to the newest version at once, every old version
# must be unloaded (and no longer mapped) once its last workflow ended, and
# nothing may be left on the engine.  Needs the engine (.ci/docker.sh): it
# fails, never skips, without it.
. "${abs_top_srcdir}/tests/daemon/lib.sh"
need_docker

U=$$ # step uuids name containers (wp_<uuid>): unique on this engine
write_conf 'max_workflows = 12;
max_queue = 100;'
start_daemon

N=50
reloads=0
: >"$T/ids"
i=1
while [ $i -le $N ]; do
	# Each workflow is different: its exit code and its logs are its own.
	code=$((i % 3))
	net="$MARK-$i"
	dworkflow "$net" "" \
		"$(dstep "$net" "a$i" "w${i}a-$U" 3 0),$(dstep "$net" "b$i" "w${i}b-$U" 2 0)" \
		"$(dstep "$net" "c$i" "w${i}c-$U" 4 "$code" "sleep 0.$((i % 5))")" >"$T/wf$i.json"
	submit "$T/wf$i.json" --backend docker
	echo "$i $id $code" >>"$T/ids"
	# 20 reloads spread over the 50 submissions (after 3, 5, 8, 10, ...).
	if { [ $((i % 5)) -eq 0 ] || [ $((i % 5)) -eq 3 ]; } && [ $reloads -lt 20 ]; then
		reloads=$((reloads + 1))
		before=$(current_number docker)
		replace_plugin docker $reloads
		if [ $((reloads % 2)) -eq 0 ]; then
			pc reload >"$T/reload.out" || fail "perch reload #$reloads"
			expect_grep "loaded docker " "$T/reload.out"
		else
			kill -HUP "$DAEMON_PID"
			has_new() { [ "$(current_number docker)" != "$before" ]; }
			wait_until "SIGHUP reload #$reloads" has_new
		fi
		after=$(current_number docker)
		[ "$after" != "$before" ] || fail "reload #$reloads loaded no new version"
		# The next workflow goes to the new version at once.
		dworkflow "$MARK-p$reloads" "" "$(dstep "$MARK-p$reloads" probe "p$reloads-$U" 1 0)" >"$T/probe.json"
		submit "$T/probe.json" --backend docker
		expect_wait "$id" 0
		[ "$(ps_field "$id" .version_number)" = "$after" ] ||
			fail "a workflow after reload #$reloads ran on #$(ps_field "$id" .version_number), not #$after"
		pc logs "$id" | strip_log >"$T/got.txt"
		dstep_log probe 1 | diff -u - "$T/got.txt" || fail_log "the logs of probe $reloads"
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
	{ dstep_log "a$i" 3; dstep_log "b$i" 2; dstep_log "c$i" 4; } >"$T/want.txt"
	diff -u "$T/want.txt" "$T/got.txt" || fail_log "the logs of workflow $i ($id)"
	jq_check ".steps[2].exit_code == $code and .steps[0].log_lines == 3 and .steps[1].log_lines == 2 and .steps[2].log_lines == 4" \
		"$STATE/workflows/$id/result.json"
done <"$T/ids"
versions=$(pc ps --json | jq '[.[] | select(.backend == "docker") | .version_number] | unique | length')
[ "$versions" -ge 8 ] || fail "the workflows ran on only $versions versions"

# Every retired version is unloaded once idle, verified by the loader and
# by the process's own maps; only the current copy is left.
only_current() {
	[ "$(pc status --json | jq '[.backends[] | select(.name == "docker")] | length')" = 1 ]
}
wait_until "retired versions to be unloaded" only_current
cur=$(current_number docker)
grep -q "plugin docker [^ ]* #$cur loaded" "$DAEMON_LOG" || fail "no load message for #$cur"
unloaded=$(grep -c "plugin docker [^ ]* #[0-9]* unloaded (.* no longer mapped)" "$DAEMON_LOG")
[ "$unloaded" -eq 20 ] || { grep "docker" "$DAEMON_LOG" | tail -40; fail "$unloaded versions unloaded, expected 20"; }
if grep -q "still mapped" "$DAEMON_LOG"; then
	grep "still mapped" "$DAEMON_LOG"
	fail "a version stayed mapped"
fi
mapped=$(grep -o "$STATE/plugins/docker-[0-9]*\.so" "/proc/$DAEMON_PID/maps" | sort -u)
[ "$mapped" = "$STATE/plugins/docker-$cur.so" ] || fail "mapped docker copies: $mapped (expected only #$cur)"
[ "$(ls "$STATE/plugins" | grep -c '^docker-')" = 1 ] || fail "copies left: $(ls "$STATE/plugins")"
served=$(pc status --json | jq '[.backends[] | select(.name == "docker")][0].served')
[ "$served" -ge 1 ] || fail "the current version served nothing"

# Nothing is left on the engine.
stop_daemon
[ "$daemon_rc" = 0 ] || fail "the daemon exited $daemon_rc"
left=$(docker_leftovers)
[ -z "$left" ] || fail "left on the engine: $left"
