#!/bin/sh
# The log reader goes away: `perch run ... | head -n 1`.  perch ignores
# SIGPIPE, so its writes fail with EPIPE; it must not hang and not spin,
# say once per sink that the output is gone, let the workflow finish
# (output lost is no reason to kill a build) and exit promptly.  The
# steps' output goes on being read, so the steps never block on a full
# pipe.
. "${abs_top_srcdir}/tests/integration/lib.sh"
. "${abs_top_srcdir}/tests/fault/fault_lib.sh"

# Two local steps, each printing 200000 lines, in two stages.
cat >"$T/wf.json" <<JSON
{"pipeline":[
 {"steps":[{"name":"loud","uuid":"u1","type":"commands","image":"sh",
   "commands":["seq 1 200000"],"environment":{"PERCH_TEST_MARK":"$PERCH_TEST_MARK"},"on_success":true}]},
 {"steps":[{"name":"after","uuid":"u2","type":"commands","image":"sh",
   "commands":["seq 1 200000","echo done >$T/after-ran"],"environment":{"PERCH_TEST_MARK":"$PERCH_TEST_MARK"},"on_success":true}]}
]}
JSON

# The pipeline runs in the background; its exit statuses go to files.
(
	set +e
	"$PERCH" --backend local run --result "$T/result.json" "$T/wf.json" 2>"$T/err"
	echo $? >"$T/perch-rc"
) | head -n 1 >"$T/head" &
pipeline=$!
i=0
while kill -0 $pipeline 2>/dev/null && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
if kill -0 $pipeline 2>/dev/null; then
	cat "$T/err"
	pkill -KILL -f "$T/wf.json" || :
	fail "perch run | head -n 1 did not end within 60 s"
fi
wait $pipeline || :

[ -s "$T/perch-rc" ] || fail "perch's exit status was not recorded"
rc=$(cat "$T/perch-rc")
expect_grep '[loud:L0:0s] ' "$T/head"
[ -f "$T/after-ran" ] || { cat "$T/err"; fail "the second stage did not run to its end"; }
jq_check '.status == "success" and all(.steps[]; .exited and .exit_code == 0)' "$T/result.json"
# Exit 0 (the workflow passed) or 3 (its log output failed): not a signal.
[ "$rc" = 0 ] || [ "$rc" = 3 ] || { cat "$T/err"; fail "perch exited $rc"; }
# One line per step and sink about the lost output, not one per line.
n=$(grep -c 'Broken pipe' "$T/err" || :)
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || { head -n 20 "$T/err"; fail "$n lines about the broken pipe, expected 1 or 2"; }
expect_no_marked
