#!/bin/sh
# A plugin file removed while a workflow runs on it: the reload retires its
# version (new workflows cannot have it), the running workflow finishes on
# it, and it is unloaded only then.  Putting the file back loads it anew.
. "${abs_top_srcdir}/tests/daemon/lib.sh"

# A private copy of the staged install without its dummy: the test's copy
# in $T/plugins is then the only one.
: "${PERCH_TEST_DESTDIR:?not set: run this through make check}"
mkdir -p "$T/inst"
cp -a "$PERCH_TEST_DESTDIR/." "$T/inst/"
rm -f "$T/inst${PERCH_TEST_INSTALLED_PLUGINDIR#"$PERCH_TEST_DESTDIR"}/dummy.so"
PERCH="$T/inst${PERCH#"$PERCH_TEST_DESTDIR"}"
[ -x "$PERCH" ] || fail "no perch in the copied install"

# (The dummy keeps no state here: a config section for a plugin that is
# not installed would make the reload refuse the config, rightly.)
NO_DUMMY_STATE=1 write_conf
start_daemon
workflow "$(step held h1 '{"SLEEP":"3s"}')" "$(step then h2 '{}')" >"$T/held.json"
submit "$T/held.json"
held=$id
runs() { [ "$(ps_field "$held" .steps_started)" = 1 ]; }
wait_until "it to run" runs
old=$(ps_field "$held" .version_number)

rm "$T/plugins/dummy.so"
pc reload >"$T/reload.out" || fail "reload"
expect_grep "retired dummy 1.0.0 #$old ($T/plugins/dummy.so is gone)" "$T/reload.out"
pc status --json >"$T/status.json"
jq_check "[.backends[] | select(.name == \"dummy\")] | length == 1 and .[0].current == false and .[0].workflows == 1 and .[0].loaded" "$T/status.json"
set +e
pc submit --backend dummy "$T/held.json" >"$T/out" 2>"$T/err"
rc=$?
set -e
expect_rc 2 "a submission to a removed backend"
expect_grep 'backend "dummy" not found' "$T/err"

# The running workflow ends on the removed version, which then goes.
expect_wait "$held" 0
[ "$(ps_field "$held" .version_number)" = "$old" ] || fail "the workflow moved off its version"
gone() { [ "$(pc status --json | jq '[.backends[] | select(.name == "dummy")] | length')" = 0 ]; }
wait_until "the removed version to be unloaded" gone
grep -q "plugin dummy 1.0.0 #$old unloaded (.* no longer mapped)" "$DAEMON_LOG" || fail "#$old not unloaded"
pc logs "$held" | strip_log >"$T/got.txt"
{ dummy_log held h1; dummy_log then h2; } | diff -u - "$T/got.txt" || fail "the logs"

# Back again.
cp "$PERCH_TEST_INSTALLED_PLUGINDIR/dummy.so" "$T/plugins/dummy.so"
pc reload >"$T/reload.out" || fail "reload"
expect_grep "loaded dummy 1.0.0 #" "$T/reload.out"
submit "$T/held.json" --backend dummy
expect_wait "$id" 0
stop_daemon
[ "$daemon_rc" = 0 ] || fail "the daemon exited $daemon_rc"
