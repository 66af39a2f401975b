#!/bin/sh
# perch daemon, swap = "adopt": the log gap a running workflow sees while
# its plugin is replaced under it.
#
# One daemon runs DOCKER_WF (2) docker and DUMMY_WF (2) dummy workflows
# whose logs stream steadily:
#  - docker: one step in busybox printing "tick N" every TICK_US (10000)
#    microseconds (`usleep` between lines), then "done N", for as long as
#    the swaps take;
#  - dummy: the dummy cannot stream, so its stream is a chain of one-step
#    stages of SLEEP = DSLEEP_MS (50) ms, each printing its 7 lines at
#    its start: a burst per stage.
# Each workflow's log is followed over the control socket (bench/ctlwatch
# stamp: every reply line stamped when its read returned, i.e. when a
# `perch logs --follow` user would see it).  After WARM (3) s, SWAPS (8)
# times PERIOD (3) s apart, both plugin files are replaced and the daemon
# reloaded; every running workflow is handed over to the new versions
# (one between two dummy stages stays on its version: that swap is not
# counted for it).
#
# Per swap that handed a workflow over, in the window [reload sent -
# PRE_MS (300), reply + POST_MS (700)], and as a baseline in windows of
# the same length half-way between swaps (and before the first): the
# same stream, the same run, no swap:
#  - gap: the largest gap between two lines received one after the other
#    (a gap counts for a window it overlaps);
#  - docker only, each line carrying the container's /proc/uptime when
#    printed (10 ms steps): the largest delay of a line printed in the
#    window, printed -> received by the follower, and printed -> read by
#    the daemon (the log's own time_ms, from the step's first start);
#    and when the new version read its first line, from the reload sent.
# Every stream is checked for lost and repeated lines, live and as the
# state directory holds it; any is reported and fails the run.
# Run from a configured build tree: sh /path/to/bench/swap_gap.sh
. "$(dirname "$0")/lib.sh"
make -s bench/ctlwatch >/dev/null
CW="$PWD/bench/ctlwatch"
BOOTOFF=$("$CW" boot-offset)
SWAPS=${SWAPS:-8}
PERIOD=${PERIOD:-3}
WARM=${WARM:-3}
DOCKER_WF=${DOCKER_WF:-2}
DUMMY_WF=${DUMMY_WF:-2}
TICK_US=${TICK_US:-10000}
DSLEEP_MS=${DSLEEP_MS:-50}
IMAGE=${IMAGE:-perch-test/busybox:latest}
HOSTID=perch-bench-$$
SOCK="$B/run/perch.sock"
DPID=
FOLLOWERS=

cleanup() {
	trap - EXIT INT TERM
	[ -z "$DPID" ] || kill -KILL "$DPID" 2>/dev/null || true
	for p in $FOLLOWERS; do kill -TERM "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	ids=$(docker ps -aq --filter "label=io.perch.host-id=$HOSTID" 2>/dev/null || true)
	# shellcheck disable=SC2086
	[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
	for n in $(docker network ls -q --filter "label=io.perch.host-id=$HOSTID" 2>/dev/null); do
		docker network rm "$n" >/dev/null 2>&1 || true
	done
	for v in $(docker volume ls -q --filter "label=io.perch.host-id=$HOSTID" 2>/dev/null); do
		docker volume rm -f "$v" >/dev/null 2>&1 || true
	done
	rm -rf "$B"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "bench: $*" >&2; [ ! -f "$B/daemon.log" ] || tail -n 20 "$B/daemon.log" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "the docker engine does not answer (docker info failed)"
load0=$(cut -d" " -f1-3 /proc/loadavg)
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE (run .ci/docker.sh)"

plugindir=$(dirname "$PERCH")/../lib/perch/plugins
mkdir -p "$B/plugins" "$B/run"
cp "$plugindir/dummy.so" "$plugindir/docker.so" "$B/plugins/"
cat >"$B/perch.conf" <<EOF
control_socket = "$SOCK";
state_dir = "$B/state";
plugin_path = [ "$B/plugins" ];
max_workflows = $((DOCKER_WF + DUMMY_WF));
swap = "adopt";
adopt_grace = "1000h";
backends: { dummy: { state_dir = "$B/dummy"; }; docker: { host_id = "$HOSTID"; stop_timeout = 1; }; };
EOF
pc() { "$PERCH" --config "$B/perch.conf" "$@"; }
now_ns() { date +%s%N; }
"$PERCH" --config "$B/perch.conf" --backend dummy daemon >>"$B/daemon.log" 2>&1 &
DPID=$!
"$CW" count "$SOCK" '"ok":true' 1 60 '{"cmd":"ping"}' >/dev/null || die "the daemon did not answer"

# The streams.  Each docker step runs until SPAN seconds of /proc/uptime
# have passed (a shell builtin read, so the rate is usleep's).
span=$((WARM + SWAPS * PERIOD + 3))
loop="read up x </proc/uptime; end=\$((\${up%.*} + $span)); i=0; while read up x </proc/uptime && [ \${up%.*} -lt \$end ]; do i=\$((i + 1)); echo \"tick \$i \$up\"; usleep $TICK_US; done; echo \"done \$i\""
stages=$((span * 1000 / DSLEEP_MS))
: >"$B/wfs"
for w in $(seq "$DOCKER_WF"); do
	jq -n --arg img "$IMAGE" --arg loop "$loop" --arg u "tick-$$-$w" \
		'{pipeline: [{steps: [{name: "tick", uuid: $u, type: "commands", image: $img,
		  entrypoint: ["/bin/sh", "-c", $loop], network_mode: "none", environment: {},
		  on_success: true}]}], network: "", volume: "", secrets: null}' >"$B/docker$w.json"
	id=$(pc --backend docker submit "$B/docker$w.json" | awk '{print $NF}')
	echo "$id docker" >>"$B/wfs"
done
for w in $(seq "$DUMMY_WF"); do
	jq -n --argjson n "$stages" --arg s "${DSLEEP_MS}ms" \
		'{pipeline: [range($n) | {steps: [{name: "d\(.)", uuid: "u\(.)", type: "commands",
		  commands: ["echo d\(.)"], environment: {SLEEP: $s}, on_success: true}]}],
		  network: "", volume: "", secrets: null}' >"$B/dummy$w.json"
	id=$(pc --backend dummy submit "$B/dummy$w.json" | awk '{print $NF}')
	echo "$id dummy" >>"$B/wfs"
done
while read -r id kind; do
	"$CW" stamp "$SOCK" "{\"cmd\":\"logs\",\"id\":\"$id\",\"follow\":true}" >"$B/follow.$id" &
	FOLLOWERS="$FOLLOWERS $!"
done <"$B/wfs"
"$CW" count "$SOCK" '"state":"running"' $((DOCKER_WF + DUMMY_WF)) 120 '{"cmd":"ps"}' >/dev/null ||
	die "the workflows did not all start"
# Wait for the docker steps' first lines, then WARM seconds.
for f in $(awk '$2 == "docker" { print $1 }' "$B/wfs"); do
	n=0
	until grep -q '"data":"tick 1 ' "$B/follow.$f"; do
		n=$((n + 1)); [ $n -lt 600 ] || die "docker workflow $f printed nothing in 60 s"; sleep 0.1
	done
done
sleep "$WARM"

: >"$B/swaps"
base=$(date +%s)
for j in $(seq "$SWAPS"); do
	for so in dummy docker; do
		cp "$plugindir/$so.so" "$B/plugins/.new"
		touch -d "@$((base + 10 + j))" "$B/plugins/.new"
		mv "$B/plugins/.new" "$B/plugins/$so.so"
	done
	ta=$(now_ns)
	"$CW" stamp "$SOCK" '{"cmd":"reload"}' >"$B/reload.$j" || die "reload $j failed: $(cat "$B/reload.$j")"
	tb=$(now_ns)
	sed 's/^[0-9]* //' "$B/reload.$j" | jq -e '.ok' >/dev/null || die "reload $j: $(cat "$B/reload.$j")"
	handed=$(sed 's/^[0-9]* //' "$B/reload.$j" | jq -r '[.handed_over[].id] | join(",")')
	dur=$(sed 's/^[0-9]* //' "$B/reload.$j" | jq -r '.duration_ms')
	echo "$j $ta $tb $dur $handed" >>"$B/swaps"
	sleep "$PERIOD"
done

# The docker workflows end by themselves; the dummy chains are cancelled.
while read -r id kind; do
	[ "$kind" = docker ] || continue
	timeout 120 "$PERCH" --config "$B/perch.conf" wait "$id" >/dev/null 2>&1 || die "docker workflow $id did not succeed: $(pc ps --json | jq -c --arg id "$id" '.[] | select(.id == $id)')"
done <"$B/wfs"
while read -r id kind; do
	[ "$kind" = dummy ] || continue
	pc cancel "$id" >/dev/null 2>&1 || true
	timeout 120 "$PERCH" --config "$B/perch.conf" wait "$id" >/dev/null 2>&1 || [ $? -ne 124 ] || die "dummy workflow $id did not end after cancel"
done <"$B/wfs"
for p in $FOLLOWERS; do wait "$p" || die "a follower failed"; done
FOLLOWERS=

# events FILE: "recv_ns index line time_ms data" for each log event.
events() {
	sed -n 's/^\([0-9]*\) \({"event":"log".*\)$/{"t":\1,"e":\2}/p' "$1" |
		jq -r '"\(.t) \(.e.index) \(.e.line) \(.e.time_ms) \(.e.data)"'
}
# check KIND EVENTS-FILE: prints what is lost or repeated (nothing if exact).
check() {
	case $1 in
	docker)
		awk '
		$3 != NR - 1 { printf "line number %s where %d was due\n", $3, NR - 1 }
		$5 == "tick" { if ($6 != last + 1) printf "tick %s after tick %d\n", $6, last; last = $6; next }
		$5 == "done" { done = $6; if ($6 != last) printf "done %s after tick %d\n", $6, last; next }
		{ printf "unexpected line: %s\n", $0 }
		END { if (done == "") printf "no done line (last tick %d)\n", last }' "$2"
		;;
	dummy)
		# Each started stage: its 7 lines, numbered 0..6, once, in order;
		# the stages one after the other from 0.
		awk '
		function want(k, l) {
			if (l == 0) return "StepName: d" k; if (l == 1) return "StepType: commands"
			if (l == 2) return "StepUUID: u" k; if (l == 3) return "StepCommands:"
			if (l == 5) return "echo d" k; return "------------------"
		}
		{ d = $0; sub(/^[^ ]* [^ ]* [^ ]* [^ ]* /, "", d) }
		$2 != k || $3 != l { printf "got step %s line %s, expected step %d line %d: %s\n", $2, $3, k, l, d }
		{ if (d != want($2, $3)) printf "step %s line %s is \"%s\"\n", $2, $3, d
		  k = $2; l = $3 + 1; if (l == 7) { k++; l = 0 } }
		END { if (l != 0) printf "step %d has only %d lines\n", k, l }' k=0 l=0 "$2"
		;;
	esac
}
# windows ID FIRST LAST: "kind j from to": per swap that handed workflow
# ID over, [sent - PRE, reply + POST], and windows of the same length
# half-way between swaps (and before the first), those within [FIRST,
# LAST] (the stream's first and last line).
PRE_MS=${PRE_MS:-300}
POST_MS=${POST_MS:-700}
windows() {
	awk -v id="$1" -v first="$2" -v last="$3" -v period="$PERIOD" -v pre="$PRE_MS" -v post="$POST_MS" '
	function out(k, j, from, to) { if (from > first && to < last) printf "%s %d %.0f %.0f\n", k, j, from, to }
	{ n = NR; f[n] = $2 - pre * 1e6; t[n] = $3 + post * 1e6; mine[n] = index($5, id) > 0 }
	END {
		# A baseline window never meets a swap window (of any workflow).
		t[0] = first; f[n + 1] = last
		for (j = 0; j <= n; j++) {
			len = t[j > 0 ? j : 1] - f[j > 0 ? j : 1]
			m = j > 0 ? t[j] - post * 1e6 + period * 5e8 : f[1] + pre * 1e6 - period * 5e8
			if (m - len / 2 > t[j] && m + len / 2 < f[j + 1]) out("base", j, m - len / 2, m + len / 2)
			if (j > 0 && mine[j]) out("swap", j, f[j], t[j])
		}
	}' "$B/swaps"
}
# winmax WINDOWS FILE MODE: "kind j ms" per window: the largest gap
# between consecutive receive times (MODE gap; FILE: events) that meets
# the window, or the largest delay from print to receipt (recv) or to the
# daemon's read (daemon) of a line printed in the window (FILE: table).
winmax() {
	awk -v mode="$3" '
	NR == FNR { k[NR] = $1; j[NR] = $2; f[NR] = $3; t[NR] = $4; n = NR; next }
	mode == "gap" { if (FNR > 1) for (i = 1; i <= n; i++) if ($1 >= f[i] && p <= t[i] && $1 - p > m[i]) m[i] = $1 - p
	                p = $1; next }
	{ d = (mode == "recv" ? $1 : $3) - $2
	  for (i = 1; i <= n; i++) if ($2 >= f[i] && $2 <= t[i] && d > m[i]) m[i] = d }
	END { for (i = 1; i <= n; i++) printf "%s %s %.1f\n", k[i], j[i], m[i] / 1e6 }' "$1" "$2"
}

bad=0
: >"$B/figs"
: >"$B/summary"
while read -r id kind; do
	events "$B/follow.$id" >"$B/ev.$id"
	check "$kind" "$B/ev.$id" >"$B/bad.$id"
	# The state directory's copy (no follow).
	"$CW" stamp "$SOCK" "{\"cmd\":\"logs\",\"id\":\"$id\"}" >"$B/final.$id" || die "logs $id"
	events "$B/final.$id" >"$B/evf.$id"
	check "$kind" "$B/evf.$id" | sed 's/^/(stored) /' >>"$B/bad.$id"
	if [ -s "$B/bad.$id" ]; then
		bad=1
		echo "bench: LOST OR REPEATED LINES in $kind workflow $id:" >&2
		head -n 20 "$B/bad.$id" >&2
	fi
	first=$(head -n 1 "$B/ev.$id" | cut -d' ' -f1)
	last=$(tail -n 1 "$B/ev.$id" | cut -d' ' -f1)
	windows "$id" "$first" "$last" >"$B/win.$id"
	winmax "$B/win.$id" "$B/ev.$id" gap | sed "s/^/$kind gap /" >>"$B/figs"
	if [ "$kind" = docker ]; then
		# "recv print daemon" (ns) per tick: printed at /proc/uptime
		# (10 ms steps: +5 ms), read by the daemon at the step's first
		# start + time_ms.
		st=$(jq '.started_ns' "$B/state/workflows/$id/steps/0.json")
		awk -v off="$BOOTOFF" -v st="$st" '$5 == "tick" { printf "%s %.0f %.0f\n", $1, $7 * 1e9 + 5e6 + off, st + $4 * 1e6 }' \
			"$B/ev.$id" >"$B/tab.$id"
		winmax "$B/win.$id" "$B/tab.$id" recv | sed "s/^/$kind recv /" >>"$B/figs"
		winmax "$B/win.$id" "$B/tab.$id" daemon | sed "s/^/$kind daemon /" >>"$B/figs"
		# When the new version read its first line: the earliest
		# daemon read after the reload was sent of a line printed
		# 20 ms or more before it (so one the old run had read, but not
		# flushed, and the new one read again).
		awk -v id="$id" 'NR == FNR { if (index($5, id)) { a[NR] = $2; n = NR } next }
		{ for (j in a) if ($2 < a[j] - 2e7 && $3 > a[j] && (!(j in m) || $3 < m[j])) m[j] = $3 }
		END { for (j in m) printf "docker resume swap %d %.1f\n", j, (m[j] - a[j]) / 1e6 }' "$B/swaps" "$B/tab.$id" >>"$B/figs"
	fi
	echo "$kind $id: $(wc -l <"$B/ev.$id") lines, handed over at $(grep -c "$id" "$B/swaps") of $SWAPS swaps, $(wc -l <"$B/bad.$id") faults" >>"$B/summary"
done <"$B/wfs"

cat "$B/summary"
echo "reload: the daemon's duration_ms median $(cut -d' ' -f4 "$B/swaps" | median) ms (max $(cut -d' ' -f4 "$B/swaps" | sort -n | tail -n 1)); sent -> reply median $(awk '{ printf "%.1f\n", ($3 - $2) / 1e6 }' "$B/swaps" | median) ms; swap windows [sent - $PRE_MS ms, reply + $POST_MS ms]"
r=$(awk '$1 == "docker" && $2 == "resume" { print $5 }' "$B/figs")
[ -z "$r" ] || echo "docker, reload sent -> the new version read its first line: median $(echo "$r" | median) ms, max $(echo "$r" | sort -n | tail -n 1) ms ($(echo "$r" | wc -l) hand-overs)"
for m in "docker gap" "docker recv" "docker daemon" "dummy gap"; do
	# shellcheck disable=SC2086
	set -- $m # backend metric
	s=$(awk -v k="$1" -v c="$2" '$1 == k && $2 == c && $3 == "swap" { print $5 }' "$B/figs")
	b=$(awk -v k="$1" -v c="$2" '$1 == k && $2 == c && $3 == "base" { print $5 }' "$B/figs")
	[ -n "$s" ] && [ -n "$b" ] || continue
	case $2 in
	gap) what="largest gap between lines as a follower receives them" ;;
	recv) what="largest delay of a line, printed -> follower receives it" ;;
	daemon) what="largest delay of a line, printed -> the daemon reads it (time_ms)" ;;
	esac
	sm=$(echo "$s" | median); sx=$(echo "$s" | sort -n | tail -n 1)
	bm=$(echo "$b" | median); bx=$(echo "$b" | sort -n | tail -n 1)
	echo "$1, $what:"
	echo "  at a swap: median $sm ms, max $sx ms ($(echo "$s" | wc -l) windows); without: median $bm ms, max $bx ms ($(echo "$b" | wc -l) windows); ratio of medians $(awk -v a="$sm" -v b="$bm" 'BEGIN { if (b > 0) printf "%.2f", a / b }')"
done
if [ -n "${KEEP:-}" ]; then
	mkdir -p "$KEEP" && cp "$B"/swaps "$B"/figs "$B"/summary "$B"/ev.* "$B"/tab.* "$B"/daemon.log "$KEEP"/
fi
kill -TERM "$DPID"; wait "$DPID" || true
DPID=
left=$(docker ps -aq --filter "label=io.perch.host-id=$HOSTID" | wc -l)
[ "$left" -eq 0 ] || die "perch left $left containers"
[ "$bad" = 0 ] || die "lines were lost or repeated across a swap (see above)"
echo "load average (1, 5, 15 min) at the start: $load0; at the end: $(cut -d" " -f1-3 /proc/loadavg)"
