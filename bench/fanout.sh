#!/bin/sh
# Fan-out: one stage of 300 parallel `sleep 1` steps on the local backend.
# Goal: done in <= 2.5 s, perch's peak RSS <= 64 MB.  Baseline in the same
# run: the same 300 `sleep 1` started in parallel from one shell.
. "$(dirname "$0")/lib.sh"
N=${N:-300}
REPS=${REPS:-3}
awk -v n="$N" 'BEGIN { printf "{\"pipeline\":[{\"steps\":["; for (i = 0; i < n; i++) printf "%s{\"name\":\"s%d\",\"uuid\":\"u%d\",\"type\":\"commands\",\"image\":\"sh\",\"commands\":[\"sleep 1\"],\"environment\":{},\"on_success\":true}", i ? "," : "", i, i; print "]}],\"network\":\"\",\"volume\":\"\",\"secrets\":null}" }' >"$B/wf.json"
printf 'for i in $(seq %d); do sh -e -c "sleep 1" & done; wait\n' "$N" >"$B/par.sh"
: >"$B/p"; : >"$B/b"; : >"$B/rss"
for r in $(seq "$REPS"); do
	ms sh "$B/par.sh" >>"$B/b"
	"$RUNSTAT" "$PERCH" --backend local run --log-format none "$B/wf.json" 2>"$B/stat" >/dev/null
	sed -n 's/.*wall_ms=\([0-9]*\).*/\1/p' "$B/stat" >>"$B/p"
	sed -n 's/.*maxrss_kb=\([0-9]*\).*/\1/p' "$B/stat" >>"$B/rss"
done
p=$(median <"$B/p"); b=$(median <"$B/b"); rss=$(sort -n "$B/rss" | tail -n 1)
echo "fan-out: $N parallel sleep 1: perch ${p} ms (peak RSS $((rss / 1024)) MB, max of $REPS), shell & + wait ${b} ms, ratio $(awk -v p="$p" -v b="$b" 'BEGIN { printf "%.2f", p / b }') (median of $REPS)"
