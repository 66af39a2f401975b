#!/bin/sh
# perch daemon: reload latency and adoption time.
#
#  1. Reload latency: the dummy plugin file is replaced, SIGHUP is sent, and
#     raw submit requests (tests/daemon/ctlraw, so that no client start-up
#     is measured) are sent until one runs on the new version: signal ->
#     first workflow on the new version.  Also the daemon's own reload time
#     (from its reply to `perch reload`), and `perch reload` end to end.
#  2. Adoption: one workflow of N (100) parallel dummy steps that sleep; once
#     all run, the daemon is SIGKILLed and started again: restart -> the
#     socket answers, and restart -> every step resumed (ps steps_resumed),
#     against a start on an empty state directory.
# Run from a configured build tree: sh /path/to/bench/reload.sh
. "$(dirname "$0")/lib.sh"
make -s tests/daemon/ctlraw >/dev/null
CTLRAW="$PWD/tests/daemon/ctlraw"
REPS=${REPS:-15}
N=${N:-100}
plugindir=$(dirname "$PERCH")/../lib/perch/plugins
SOCK="$B/run/perch.sock"
mkdir -p "$B/plugins" "$B/run"
cp "$plugindir/dummy.so" "$B/plugins/dummy.so"
cat >"$B/perch.conf" <<EOF
control_socket = "$SOCK";
state_dir = "$B/state";
plugin_path = [ "$B/plugins" ];
max_workflows = 50;
adopt_grace = "1000h";
backends: { dummy: { state_dir = "$B/dummy"; }; docker: { host_id = "perch-bench-$$"; }; };
EOF
pc() { "$PERCH" --config "$B/perch.conf" "$@"; }
now_ns() { date +%s%N; }
start() {
	"$PERCH" --config "$B/perch.conf" --backend dummy daemon >>"$B/daemon.log" 2>&1 &
	DPID=$!
	until "$CTLRAW" "$SOCK" line '{"cmd":"ping"}' >/dev/null 2>&1; do :; done
}
trap 'kill -KILL $DPID 2>/dev/null; rm -rf "$B"' EXIT INT TERM

start
probe=$(printf '{"pipeline":[{"steps":[{"name":"p","uuid":"p1","type":"commands","commands":[],"environment":{},"on_success":true}]}],"network":"","volume":"","secrets":[]}' | jq -Rs '{cmd:"submit",workflow:.}' -c)
current() { pc status --json | jq -r '[.backends[] | select(.name == "dummy" and .current)][0].number'; }
replace() {
	cp "$plugindir/dummy.so" "$B/plugins/.new" && touch -d "@$(( $(date +%s) + $1 ))" "$B/plugins/.new"
	mv "$B/plugins/.new" "$B/plugins/dummy.so"
}
: >"$B/hup"; : >"$B/internal"; : >"$B/cli"
newest() { pc status --json | jq -r '[.backends[] | select(.name == "dummy" and .current)][0].number'; }
for r in $(seq "$REPS"); do
	old=$(newest)
	replace $((2 * r))
	"$CTLRAW" "$SOCK" hup-probe "$DPID" "$old" "$probe" >>"$B/hup"
	sed -n 's/.*reloaded .* in \([0-9]*\) ms$/\1/p' "$B/daemon.log" | tail -n 1 >>"$B/internal"
	replace $((2 * r + 1))
	t0=$(now_ns)
	pc reload >/dev/null
	t1=$(now_ns)
	echo $(( (t1 - t0) / 1000 )) >>"$B/cli"
done
us_med() { median | awk '{ printf "%.1f ms", $1 / 1000 }'; }
echo "reload: SIGHUP -> first workflow accepted on the new version: $(us_med <"$B/hup") (median of $REPS; includes the probe's durable submit)"
echo "reload: the daemon's own reload (config, scan, copy, load): $(median <"$B/internal") ms"
echo "reload: perch reload, end to end (client start-up included): $(us_med <"$B/cli")"
kill -TERM "$DPID"; wait "$DPID" || true

# Adoption.
rm -rf "$B/state" "$B/dummy"
t0=$(now_ns); start; t1=$(now_ns)
empty_ms=$(( (t1 - t0) / 1000000 ))
awk -v n="$N" 'BEGIN { printf "{\"pipeline\":[{\"steps\":["; for (i = 0; i < n; i++) printf "%s{\"name\":\"s%d\",\"uuid\":\"u%d\",\"type\":\"commands\",\"commands\":[\"echo %d\"],\"environment\":{\"SLEEP\":\"10m\"},\"on_success\":true}", i ? "," : "", i, i, i; print "]}],\"network\":\"\",\"volume\":\"\",\"secrets\":null}" }' >"$B/wide.json"
id=$(pc submit "$B/wide.json" | awk '{print $NF}')
until [ "$(pc ps --json | jq --arg id "$id" '.[] | select(.id == $id) | .steps_started')" = "$N" ]; do sleep 0.1; done
sleep 1 # let every step's log reach the state directory
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null || true
t0=$(now_ns)
"$PERCH" --config "$B/perch.conf" --backend dummy daemon >>"$B/daemon.log" 2>&1 &
DPID=$!
t1=$("$CTLRAW" "$SOCK" until '"ok":true' '{"cmd":"ping"}')
t2=$("$CTLRAW" "$SOCK" until "\"steps_resumed\":$N," '{"cmd":"ps"}')
internal=$(pc status --json | jq '.adoption.duration_ms')
echo "adoption: $N running dummy steps: restart -> socket answers $(( (t1 - t0) / 1000000 )) ms (empty state dir: $empty_ms ms); restart -> all $N resumed $(( (t2 - t0) / 1000000 )) ms; the daemon's adoption pass: $internal ms"
pc cancel "$id" >/dev/null
pc wait "$id" >/dev/null 2>&1 || true
kill -TERM "$DPID"; wait "$DPID" || true
