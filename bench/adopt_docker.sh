#!/bin/sh
# perch daemon: the time to adopt N running docker steps after a crash.
#
# WF (10) workflows of PER (10) parallel docker steps each (N = WF x PER
# = 100) run in busybox, each printing "tick N" every TICK_US (200000)
# microseconds.  max_workflows is WF, so that all run at once.  Then REPS
# (5) times: the daemon is SIGKILLed (the containers keep running) and
# started again on the same state directory; from the restart, measured
# with bench/ctlwatch (no client start-up in the loop):
#  - the control socket answers (ping);
#  - status reports every workflow adopted (the adoption pass is done);
#  - ps reports every step resumed (resume_step returned for all N);
#  - every step's log in the state directory grew (its log flows again:
#    the lines printed while no daemon ran, then the new ones);
# and the daemon's own figure (status .adoption.duration_ms).
# Baselines, in the same round, with the same containers running and no
# daemon of ours up:
#  - the same daemon (other state directory, socket and host id) started
#    with nothing to adopt: restart -> ping;
#  - the engine's floor, one curl over one connection: the list of the
#    host id's containers plus one inspect per container, and the same
#    plus each container's whole log (what a resume reads);
#  - the calls perch's resume makes, in series over one connection: per
#    step a list filtered by its labels, its inspect, its whole log.
# At the end every step's stored log is checked: "tick 1", "tick 2", ...
# with none lost or repeated across the restarts.  Needs a running engine
# with IMAGE (.ci/docker.sh).
# Run from a configured build tree: sh /path/to/bench/adopt_docker.sh
. "$(dirname "$0")/lib.sh"
make -s bench/ctlwatch >/dev/null
CW="$PWD/bench/ctlwatch"
WF=${WF:-10}
PER=${PER:-10}
N=$((WF * PER))
REPS=${REPS:-5}
TICK_US=${TICK_US:-200000}
IMAGE=${IMAGE:-perch-test/busybox:latest}
HOSTID=perch-bench-$$
SOCK="$B/run/perch.sock"
ESOCK="$B/run/empty.sock"
DPID=
EPID=
GPID=
DSOCK=${DOCKER_HOST:-unix:///var/run/docker.sock}
DSOCK=${DSOCK#unix://} # the floor's curl needs the engine's unix socket

# Removes, by label, what the daemons made (also on failure).
sweep() {
	for h in "$HOSTID" "$HOSTID-empty"; do
		ids=$(docker ps -aq --filter "label=io.perch.host-id=$h" 2>/dev/null || true)
		# shellcheck disable=SC2086
		[ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1 || true
		for n in $(docker network ls -q --filter "label=io.perch.host-id=$h" 2>/dev/null); do
			docker network rm "$n" >/dev/null 2>&1 || true
		done
		for v in $(docker volume ls -q --filter "label=io.perch.host-id=$h" 2>/dev/null); do
			docker volume rm -f "$v" >/dev/null 2>&1 || true
		done
	done
}
cleanup() {
	trap - EXIT INT TERM
	[ -z "$DPID" ] || kill -KILL "$DPID" 2>/dev/null || true
	[ -z "$EPID" ] || kill -KILL "$EPID" 2>/dev/null || true
	[ -z "$GPID" ] || kill -KILL "$GPID" 2>/dev/null || true
	wait 2>/dev/null || true
	sweep
	rm -rf "$B"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "bench: $*" >&2; [ ! -f "$B/daemon.log" ] || tail -n 20 "$B/daemon.log" >&2; exit 1; }

docker info >/dev/null 2>&1 || die "the docker engine does not answer (docker info failed)"
load0=$(cut -d" " -f1-3 /proc/loadavg)
[ -S "$DSOCK" ] || die "the engine is not on a unix socket ($DSOCK): the floor needs one"
curl -sf --unix-socket "$DSOCK" http://d/_ping >/dev/null || die "no engine on $DSOCK (curl /_ping failed)"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE (run .ci/docker.sh)"

mkdir -p "$B/plugins" "$B/run"
cp "$(dirname "$PERCH")/../lib/perch/plugins/docker.so" "$B/plugins/"
conf() { # FILE SOCKET STATE HOSTID
	cat >"$1" <<EOF
control_socket = "$2";
state_dir = "$3";
plugin_path = [ "$B/plugins" ];
max_workflows = $WF;
adopt_grace = "1000h";
backends: { docker: { host_id = "$4"; stop_timeout = 1; }; };
EOF
}
conf "$B/perch.conf" "$SOCK" "$B/state" "$HOSTID"
conf "$B/empty.conf" "$ESOCK" "$B/empty" "$HOSTID-empty"
pc() { "$PERCH" --config "$B/perch.conf" "$@"; }
now_ns() { date +%s%N; }
start() {
	"$PERCH" --config "$B/perch.conf" --backend docker daemon >>"$B/daemon.log" 2>&1 &
	DPID=$!
}
start
"$CW" count "$SOCK" '"ok":true' 1 60 '{"cmd":"ping"}' >/dev/null || die "the daemon did not answer"

loop="trap 'exit 0' TERM; i=0; while :; do i=\$((i + 1)); echo \"tick \$i\"; usleep $TICK_US; done"
: >"$B/ids"
for w in $(seq "$WF"); do
	jq -n --arg img "$IMAGE" --arg loop "$loop" --argjson per "$PER" --arg u "a$$-$w" \
		'{pipeline: [{steps: [range($per) | {name: "s\(.)", uuid: "\($u)-\(.)", type: "commands",
		  image: $img, entrypoint: ["/bin/sh", "-c", $loop], network_mode: "none",
		  environment: {}, on_success: true}]}], network: "", volume: "", secrets: null}' >"$B/wf$w.json"
	pc submit "$B/wf$w.json" | awk '{print $NF}' >>"$B/ids"
done
"$CW" count "$SOCK" "\"steps_started\":$PER," "$WF" 600 '{"cmd":"ps"}' >/dev/null ||
	die "the $N steps did not all start"
running=$(docker ps -q --filter "label=io.perch.host-id=$HOSTID" --filter status=running | wc -l)
[ "$running" -eq "$N" ] || die "$running containers run, expected $N"
sleep 2

# The floor's requests: the list, then per container its inspect (and log).
filter=$(printf '{"label":["io.perch.host-id=%s"]}' "$HOSTID" | jq -sRr @uri)
docker ps -q --no-trunc --filter "label=io.perch.host-id=$HOSTID" >"$B/cids"
{ echo "http://d/containers/json?filters=$filter"; sed 's|.*|http://d/containers/&/json|' "$B/cids"; } >"$B/urls.inspect"
{ cat "$B/urls.inspect"; sed 's|.*|http://d/containers/&/logs?stdout=1\&stderr=1|' "$B/cids"; } >"$B/urls.logs"
# ...and the calls perch's resume makes per step: a list filtered by the
# step's labels (all=1), its inspect, its whole log.
docker ps --no-trunc --filter "label=io.perch.host-id=$HOSTID" \
	--format '{{.ID}} {{.Label "io.perch.task-uuid"}} {{.Label "io.perch.step-uuid"}}' |
	jq -Rr --arg h "$HOSTID" 'split(" ") as [$id, $t, $s]
	  | ({label: ["io.perch.host-id=\($h)", "io.perch.task-uuid=\($t)", "io.perch.step-uuid=\($s)"]} | tojson | @uri) as $f
	  | "http://d/containers/json?all=1&filters=\($f)", "http://d/containers/\($id)/json",
	    "http://d/containers/\($id)/logs?stdout=1&stderr=1"' >"$B/urls.perch"
[ "$(wc -l <"$B/urls.perch")" -eq $((3 * N)) ] || die "could not list the containers' labels"
# shellcheck disable=SC2046
floor() { ms curl -sf --unix-socket "$DSOCK" $(cat "$1"); }

: >"$B/res"
for r in $(seq "$REPS"); do
	f_insp=$(floor "$B/urls.inspect")
	f_logs=$(floor "$B/urls.logs")
	f_perch=$(floor "$B/urls.perch")
	kill -KILL "$DPID"; wait "$DPID" 2>/dev/null || true
	DPID=
	# Every step's log as the killed daemon left it.
	: >"$B/sizes"
	for id in $(cat "$B/ids"); do
		for f in "$B/state/workflows/$id/steps/"*.log; do echo "$f $(stat -c %s "$f")"; done >>"$B/sizes"
	done
	[ "$(wc -l <"$B/sizes")" -eq "$N" ] || die "$(wc -l <"$B/sizes") step logs, expected $N"
	# The empty start.
	rm -rf "$B/empty"
	t0=$(now_ns)
	"$PERCH" --config "$B/empty.conf" --backend docker daemon >>"$B/empty.log" 2>&1 &
	EPID=$!
	t1=$("$CW" count "$ESOCK" '"ok":true' 1 60 '{"cmd":"ping"}') || die "the empty daemon did not answer"
	empty=$(( (t1 - t0) / 1000000 ))
	kill -TERM "$EPID"; wait "$EPID" || die "the empty daemon failed"
	EPID=
	# The restart.
	t0=$(now_ns)
	start
	# The logs are watched from the restart on, beside the other probes.
	# shellcheck disable=SC2046
	"$CW" grow 120 $(cat "$B/sizes") >"$B/grow" &
	GPID=$!
	t1=$("$CW" count "$SOCK" '"ok":true' 1 60 '{"cmd":"ping"}') || die "no answer after the restart"
	t2=$("$CW" count "$SOCK" "\"adoption\":{\"workflows\":$WF," 1 120 '{"cmd":"status"}') ||
		die "not every workflow was adopted: $(pc status --json | jq -c .adoption)"
	t3=$("$CW" count "$SOCK" "\"steps_resumed\":$PER," "$WF" 120 '{"cmd":"ps"}') ||
		die "not every step was resumed"
	wait "$GPID" || die "not every step's log flowed again"
	GPID=
	t4=$(cat "$B/grow")
	pc status --json >"$B/status.json"
	jq -e --argjson wf "$WF" --argjson n "$N" '.adoption.workflows == $wf and .adoption.steps == $n and .adoption.lost == 0' "$B/status.json" >/dev/null ||
		die "adoption: $(jq -c .adoption "$B/status.json")"
	internal=$(jq '.adoption.duration_ms' "$B/status.json")
	ms_of() { echo $(( ($1 - t0) / 1000000 )); }
	# shellcheck disable=SC2086
	set -- $t4 # first last
	echo "$r $(ms_of "$t1") $(ms_of "$t2") $(ms_of "$t3") $(ms_of "$1") $(ms_of "$2") $internal $empty $f_insp $f_logs $f_perch" | tee -a "$B/res"
	sleep 2
done

# Nothing lost or repeated: each step's stored log is tick 1, 2, 3, ...
bad=0
for id in $(cat "$B/ids"); do
	for f in "$B/state/workflows/$id/steps/"*.log; do
		awk -v f="$f" '$2 != "tick" || $3 != NR { printf "bench: LOST OR REPEATED: %s line %d: %s\n", f, NR, $0; exit 1 }' "$f" >&2 || bad=1
	done
done
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$B/res" "$B/daemon.log" "$KEEP/"; fi
# The steps end by themselves on SIGTERM (not by perch cancel: a cancelled
# docker step whose container keeps printing does not end, see
# docs/benchmarks.md).
# shellcheck disable=SC2046
docker kill -s TERM $(docker ps -q --filter "label=io.perch.host-id=$HOSTID") >/dev/null
for id in $(cat "$B/ids"); do
	timeout 120 "$PERCH" --config "$B/perch.conf" wait "$id" >/dev/null 2>&1 || die "workflow $id did not end well after its steps were stopped"
done
kill -TERM "$DPID"; wait "$DPID" || true
DPID=
left=$(docker ps -aq --filter "label=io.perch.host-id=$HOSTID" | wc -l)
[ "$left" -eq 0 ] || die "perch left $left containers"
[ "$bad" = 0 ] || die "lines were lost or repeated across a restart (see above)"

col() { awk -v c="$1" '{ print $c }' "$B/res" | median; }
rng() { awk -v c="$1" '{ print $c }' "$B/res" | sort -n | awk '{ a[NR] = $1 } END { printf "%s-%s", a[1], a[NR] }'; }
echo "adoption of $N running docker steps ($WF workflows x $PER), median (range) of $REPS restarts, ms from the restart:"
echo "  control socket answers:        $(col 2) ($(rng 2))   [same daemon, nothing to adopt: $(col 8) ($(rng 8))]"
echo "  every workflow adopted:        $(col 3) ($(rng 3))   [the daemon's adoption pass: $(col 7) ($(rng 7))]"
echo "  every step resumed:            $(col 4) ($(rng 4))"
echo "  first step's log flowing:      $(col 5) ($(rng 5))"
echo "  every step's log flowing:      $(col 6) ($(rng 6))"
echo "  engine floor, one connection: list + $N inspects $(col 9) ($(rng 9)); list + $N (inspect + log) $(col 10) ($(rng 10))"
echo "  the calls of perch's resume, in series: $N (filtered list + inspect + log) $(col 11) ($(rng 11))"
# Against the least a restarted daemon must do: start, then the engine
# calls (each round's own figures; the median of the rounds' ratios).
r1=$(awk '{ printf "%.2f\n", $6 / ($8 + $10) }' "$B/res" | median)
r2=$(awk '{ printf "%.2f\n", $6 / ($8 + $11) }' "$B/res" | median)
echo "  every step's log flowing / (empty start + floor with logs): $r1; / (empty start + perch's calls in series): $r2"
echo "load average (1, 5, 15 min) at the start: $load0; at the end: $(cut -d" " -f1-3 /proc/loadavg)"
