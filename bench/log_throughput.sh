#!/bin/sh
# Log throughput: a step writing SIZE bytes (default 1 GiB) of 100-byte
# lines through perch into --logs-dir, against the same command redirected
# to a file, alternately in the same run.  Goal: >= 0.7 of the direct rate.
. "$(dirname "$0")/lib.sh"
SIZE=${SIZE:-1073741824}
REPS=${REPS:-3}
line=$(printf '%099d' 0)
cmd="yes $line | head -c $SIZE"
printf '{"pipeline":[{"steps":[{"name":"flood","uuid":"u1","type":"commands","image":"sh","commands":["%s"],"environment":{},"on_success":true}]}],"network":"","volume":"","secrets":null}\n' "$cmd" >"$B/wf.json"
: >"$B/p"; : >"$B/b"
for r in $(seq "$REPS"); do
	rm -rf "$B/logs" "$B/direct.log"
	ms sh -c "$cmd > $B/direct.log" >>"$B/b"
	ms "$PERCH" --backend local run --log-format none --logs-dir "$B/logs" "$B/wf.json" >>"$B/p"
	got=$(wc -c <"$B/logs/flood.log")
	# the log also holds the echoed command line ("+ yes ... | head ...")
	[ "$got" -ge "$SIZE" ] || { echo "bench: perch logged $got bytes, expected >= $SIZE" >&2; exit 1; }
done
p=$(median <"$B/p"); b=$(median <"$B/b")
awk -v p="$p" -v b="$b" -v s="$SIZE" 'BEGIN { printf "log throughput: %d MiB of 100-byte lines: perch %.0f MB/s (%d ms), direct %.0f MB/s (%d ms), ratio %.2f of direct\n", s / 1048576, s / p / 1000, p, s / b / 1000, b, b / p }'
