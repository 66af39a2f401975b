#!/bin/sh
# Step overhead: a workflow of 200 sequential `true` steps on the local
# backend, against a shell loop running `sh -e -c true` 200 times, measured
# alternately in the same run.  Goal: ratio <= 1.25.
. "$(dirname "$0")/lib.sh"
N=${N:-200}
REPS=${REPS:-7}
awk -v n="$N" 'BEGIN { printf "{\"pipeline\":["; for (i = 0; i < n; i++) printf "%s{\"steps\":[{\"name\":\"s%d\",\"uuid\":\"u%d\",\"type\":\"commands\",\"image\":\"sh\",\"commands\":[\"true\"],\"environment\":{},\"on_success\":true}]}", i ? "," : "", i, i; print "],\"network\":\"\",\"volume\":\"\",\"secrets\":null}" }' >"$B/wf.json"
cat >"$B/loop.sh" <<LOOP
i=0
while [ \$i -lt $N ]; do sh -e -c true; i=\$((i + 1)); done
LOOP
: >"$B/p" ; : >"$B/b"
for r in $(seq "$REPS"); do
	ms sh "$B/loop.sh" >>"$B/b"
	ms "$PERCH" --backend local run --log-format none "$B/wf.json" >>"$B/p"
done
p=$(median <"$B/p"); b=$(median <"$B/b")
echo "step overhead: $N sequential steps: perch ${p} ms, sh loop ${b} ms, ratio $(awk -v p="$p" -v b="$b" 'BEGIN { printf "%.2f", p / b }') (median of $REPS)"
