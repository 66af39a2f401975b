#!/bin/sh
# Docker step overhead: a workflow of N (20) sequential stages of one
# `true` step on the docker backend, against, alternately in the same run,
#  - the docker CLI: `docker run --rm IMAGE true` N times (what a user
#    would script);
#  - the engine's floor: bench/docker_floor, create -> start -> wait ->
#    remove N times over one connection.
# Goals: perch <= 0.95x the CLI and <= 1.05x the floor.  Needs a running
# engine with IMAGE present (.ci/docker.sh builds perch-test/busybox).
# STEP=commands (default) runs `commands: [true]`, i.e. /bin/sh -c over
# Woodpecker's CI_SCRIPT in the container, as a user's step does;
# STEP=entrypoint runs `entrypoint: [true]`, the very command the CLI and
# the floor run.
. "$(dirname "$0")/lib.sh"
N=${N:-20}
REPS=${REPS:-5}
IMAGE=${IMAGE:-perch-test/busybox:latest}
STEP=${STEP:-commands}
HOSTID=perch-bench-$$
make -s bench/docker_floor >/dev/null
FLOOR="$PWD/bench/docker_floor"
docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "bench: no image $IMAGE (run .ci/docker.sh)" >&2; exit 1; }
case $STEP in
commands) run='"commands":["true"]' ;;
entrypoint) run='"entrypoint":["true"]' ;;
*) echo "bench: STEP is commands or entrypoint" >&2; exit 1 ;;
esac
awk -v n="$N" -v img="$IMAGE" -v run="$run" 'BEGIN { printf "{\"pipeline\":["; for (i = 0; i < n; i++) printf "%s{\"steps\":[{\"name\":\"s%d\",\"uuid\":\"u%d\",\"type\":\"commands\",\"image\":\"%s\",%s,\"environment\":{},\"on_success\":true}]}", i ? "," : "", i, i, img, run; print "],\"network\":\"\",\"volume\":\"\",\"secrets\":null}" }' >"$B/wf.json"
cat >"$B/cli.sh" <<LOOP
i=0
while [ \$i -lt $N ]; do docker run --rm $IMAGE true; i=\$((i + 1)); done
LOOP
: >"$B/p"; : >"$B/c"; : >"$B/f"
for r in $(seq "$REPS"); do
	ms sh "$B/cli.sh" >>"$B/c"
	"$RUNSTAT" "$FLOOR" -n "$N" "$IMAGE" true 2>"$B/stat" >"$B/floor.out" || { cat "$B/stat" "$B/floor.out"; exit 1; }
	sed -n 's/.*wall_ms=\([0-9]*\).*/\1/p' "$B/stat" >>"$B/f"
	ms "$PERCH" --backend docker --backend-docker-host-id "$HOSTID" run --log-format none "$B/wf.json" >>"$B/p"
done
# nothing may be left behind
left=$(docker ps -aq --filter "label=io.perch.host-id=$HOSTID" | wc -l)
[ "$left" -eq 0 ] || { echo "bench: perch left $left containers" >&2; exit 1; }
p=$(median <"$B/p"); c=$(median <"$B/c"); f=$(median <"$B/f")
# The ratio of each round's neighbouring runs, whose load was alike: the
# median of those is steadier than the ratio of the medians.
pc=$(paste "$B/p" "$B/c" | awk '{ printf "%.3f\n", $1 / $2 }' | median)
pf=$(paste "$B/p" "$B/f" | awk '{ printf "%.3f\n", $1 / $2 }' | median)
fc=$(paste "$B/f" "$B/c" | awk '{ printf "%.3f\n", $1 / $2 }' | median)
echo "docker steps: $N sequential $STEP steps: perch ${p} ms, docker CLI ${c} ms, floor ${f} ms (median of $REPS)"
awk -v p="$p" -v c="$c" -v f="$f" -v n="$N" 'BEGIN { printf "  per step: perch %.1f ms, CLI %.1f ms, floor %.1f ms\n", p / n, c / n, f / n }'
echo "  median of the rounds' ratios: perch/CLI $pc, perch/floor $pf, floor/CLI $fc"
sed 's/^/  last /' "$B/floor.out"
