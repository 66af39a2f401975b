#!/bin/sh
# Docker log throughput: a docker step printing SIZE bytes (200 MB) of
# 100-byte lines through perch into --logs-dir, against, alternately in the
# same run, the same container run by the CLI and followed with
# `docker logs -f` into a file (`docker run -d` + `docker logs -f`, timed
# together).  Both read the engine's json-file log.  Goal: perch >= 0.8 of
# the `docker logs -f` throughput.
. "$(dirname "$0")/lib.sh"
SIZE=${SIZE:-209715200}
REPS=${REPS:-3}
IMAGE=${IMAGE:-perch-test/busybox:latest}
HOSTID=perch-bench-$$
docker image inspect "$IMAGE" >/dev/null 2>&1 || { echo "bench: no image $IMAGE (run .ci/docker.sh)" >&2; exit 1; }
line=$(printf '%099d' 0)
cmd="yes $line | head -c $SIZE"
printf '{"pipeline":[{"steps":[{"name":"flood","uuid":"u1","type":"commands","image":"%s","entrypoint":["/bin/sh","-c","%s"],"environment":{},"on_success":true}]}],"network":"","volume":"","secrets":null}\n' "$IMAGE" "$cmd" >"$B/wf.json"
cat >"$B/cli.sh" <<CLI
id=\$(docker run -d --log-driver json-file $IMAGE /bin/sh -c '$cmd')
echo \$id >"$B/cli.id"
docker logs -f \$id >"$B/cli.log" 2>&1
CLI
: >"$B/p"; : >"$B/b"
for r in $(seq "$REPS"); do
	rm -rf "$B/logs" "$B/cli.log"
	ms sh "$B/cli.sh" >>"$B/b"
	docker rm -f "$(cat "$B/cli.id")" >/dev/null
	got=$(wc -c <"$B/cli.log")
	[ "$got" -eq "$SIZE" ] || { echo "bench: docker logs gave $got bytes, expected $SIZE" >&2; exit 1; }
	ms "$PERCH" --backend docker --backend-docker-host-id "$HOSTID" run --log-format none --logs-dir "$B/logs" "$B/wf.json" >>"$B/p"
	got=$(wc -c <"$B/logs/flood.log")
	[ "$got" -ge "$SIZE" ] || { echo "bench: perch logged $got bytes, expected >= $SIZE" >&2; exit 1; }
done
left=$(docker ps -aq --filter "label=io.perch.host-id=$HOSTID" | wc -l)
[ "$left" -eq 0 ] || { echo "bench: perch left $left containers" >&2; exit 1; }
p=$(median <"$B/p"); b=$(median <"$B/b")
awk -v p="$p" -v b="$b" -v s="$SIZE" -v n="$REPS" 'BEGIN { printf "docker log throughput: %d MiB of 100-byte lines: perch %.1f MB/s (%d ms), docker logs -f %.1f MB/s (%d ms), ratio %.2f of docker logs -f (median of %d)\n", s / 1048576, s / p / 1000, p, s / b / 1000, b, b / p, n }'
