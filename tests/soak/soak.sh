#!/bin/sh
# soak.sh [BUILDDIR] - many workflows, then one long one, and what they
# leave behind.  Not part of `make check` (it takes minutes).
#
#   PERCH=/usr/local/bin/perch sh tests/soak/soak.sh
#   sh tests/soak/soak.sh /tmp/build        # its staged install (make check)
#
# Part 1: SOAK_RUNS (500) workflows, SOAK_JOBS (nproc) at a time, on dummy
# and local in turn: 1-4 stages of 1-5 steps that pass, fail, sleep, print,
# run as services or only on failure; about one in five is cancelled by
# --timeout, by SIGTERM, or by SIGTERM twice.  Every exit code must be 0, 1
# or 130, and no run may outlive its bound.  Afterwards the machine must
# hold no process of the soak (each carries PERCH_SOAK_MARK in its
# environment, set on perch and on every step), nothing in the temp dir
# the local backend was given, and no descriptor open on the soak's files.
#
# Part 2: one `perch run` of SOAK_BIG_STEPS (2000) steps in SOAK_BIG_STAGES
# (200) stages, on dummy then on local, sampling /proc/<pid>/status (VmRSS,
# Threads) and /proc/<pid>/fd every 0.2 s.  Prints the figures at 10 % and
# 90 % of the run and their peak: a leak shows as growth between the two.
#
# SOAK_SEED (default 1) makes the mix repeatable.  Exit 0 when every check
# held; the figures are printed either way.  docs/reliability.md has the
# numbers of the last run.
set -eu

RUNS=${SOAK_RUNS:-500}
JOBS=${SOAK_JOBS:-$(nproc 2>/dev/null || echo 2)}
SEED=${SOAK_SEED:-1}
BIG_STEPS=${SOAK_BIG_STEPS:-2000}
BIG_STAGES=${SOAK_BIG_STAGES:-200}
RUN_BOUND=${SOAK_RUN_BOUND:-120}

if [ -z "${PERCH:-}" ]; then
	[ $# -ge 1 ] || { echo "usage: PERCH=path/to/perch $0, or $0 BUILDDIR" >&2; exit 2; }
	B=$(cd "$1" && pwd)
	make -C "$B" -s tests/inst.stamp >/dev/null ||
		{ echo "soak: cannot stage the install in $B" >&2; exit 2; }
	PERCH=$(find "$B/tests/inst" -path '*/bin/perch' -type f | head -n 1)
fi
[ -x "$PERCH" ] || { echo "soak: $PERCH is not executable" >&2; exit 2; }

D=$(mktemp -d "${TMPDIR:-/tmp}/perch-soak.XXXXXX")
MARK=soak-$$
mkdir "$D/tmp" "$D/wf" "$D/res"
trap 'rm -rf "$D"' EXIT
trap 'exit 130' INT TERM
failed=0
problem() {
	echo "soak: PROBLEM: $*"
	failed=1
}

# The parameters of run I, from the seed: one line of shell assignments.
params() {
	awk -v seed="$SEED" -v i="$1" 'BEGIN {
		srand(seed * 100003 + i)
		backend = (i % 2) ? "local" : "dummy"
		stages = 1 + int(rand() * 4)
		r = rand()
		cancel = r < 0.08 ? "timeout" : r < 0.15 ? "term" : r < 0.20 ? "term2" : "none"
		delay = 2 + int(rand() * 8)   # tenths of a second
		printf "backend=%s stages=%d cancel=%s delay=%d seedstep=%d\n", backend, stages, cancel, delay, int(rand() * 1000000)
	}'
}

# The workflow of run I on BACKEND with STAGES stages, from SEEDSTEP.
workflow() {
	awk -v backend="$2" -v stages="$3" -v seed="$4" -v mark="$MARK" -v i="$1" 'BEGIN {
		srand(seed)
		printf "{\"pipeline\":["
		for (s = 0; s < stages; s++) {
			n = 1 + int(rand() * 5)
			printf "%s{\"steps\":[", s ? "," : ""
			for (k = 0; k < n; k++) {
				kind = rand()
				detach = "false"; onf = "false"; ons = "true"
				if (backend == "dummy") {
					env = "\"SLEEP\":\"" int(rand() * 300) "ms\""
					if (kind < 0.15) env = env ",\"STEP_EXIT_CODE\":\"2\""
					else if (kind < 0.22) { detach = "true"; env = "\"SLEEP\":\"5s\"" }
					cmds = "[\"echo r" i "\",\"echo step " s "." k "\"]"
				} else {
					env = "\"X\":\"y\""
					if (kind < 0.15) cmds = "[\"echo failing\",\"exit 3\"]"
					else if (kind < 0.22) { detach = "true"; cmds = "[\"sleep 30\"]" }
					else if (kind < 0.40) cmds = "[\"seq 1 2000\"]"
					else cmds = "[\"sleep 0." int(rand() * 4) "\",\"echo ok\"]"
				}
				if (rand() < 0.1) { onf = "true"; ons = "false" }
				printf "%s{\"name\":\"s%d_%d\",\"uuid\":\"u%d_%d\",\"type\":\"%s\",\"image\":\"sh\",\"commands\":%s,\"detach\":%s,\"on_failure\":%s,\"on_success\":%s,\"environment\":{%s,\"PERCH_SOAK_MARK\":\"%s\"}}", \
					k ? "," : "", s, k, s, k, detach == "true" ? "service" : "commands", cmds, detach, onf, ons, env, mark
			}
			printf "]}"
		}
		printf "],\"secrets\":[{\"name\":\"t\",\"value\":\"soak-secret-%d\"}]}\n", i
	}'
}

# One run, in the background of a batch: its exit status (or "hung"),
# backend and cancellation go to $D/res/I.rc, its stderr to $D/res/I.err.
one_run() {
	i=$1
	eval "$(params "$i")"
	workflow "$i" "$backend" "$stages" "$seedstep" >"$D/wf/$i.json"
	set -- --backend "$backend"
	[ "$backend" = local ] && set -- "$@" --backend-local-temp-dir "$D/tmp"
	set -- "$@" run --log-format none
	[ "$cancel" = timeout ] && set -- "$@" --timeout "${delay}00ms"
	PERCH_SOAK_MARK=$MARK "$PERCH" "$@" "$D/wf/$i.json" >/dev/null 2>"$D/res/$i.err" &
	pid=$!
	t=0
	while kill -0 $pid 2>/dev/null; do
		[ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/$pid/status 2>/dev/null)" = Z ] && break
		case $cancel in
		term) [ $t -eq "$delay" ] && kill -TERM $pid 2>/dev/null ;;
		term2) { [ $t -eq "$delay" ] || [ $t -eq $((delay + 3)) ]; } && kill -TERM $pid 2>/dev/null ;;
		esac
		if [ $t -ge $((RUN_BOUND * 10)) ]; then
			kill -KILL $pid 2>/dev/null
			wait $pid 2>/dev/null
			echo "hung $backend $cancel" >"$D/res/$i.rc"
			return
		fi
		sleep 0.1
		t=$((t + 1))
	done
	set +e
	wait $pid
	echo "$? $backend $cancel" >"$D/res/$i.rc"
	set -e
}

# Processes carrying the mark, and descriptors open on the soak's files.
marked() {
	n=0
	for e in /proc/[0-9]*/environ; do
		{ tr '\0' '\n' <"$e" | grep -qx "PERCH_SOAK_MARK=$MARK"; } 2>/dev/null && n=$((n + 1))
	done
	echo $n
}
fds_on_soak() {
	n=0
	for f in /proc/[0-9]*/fd/*; do
		case $(readlink "$f" 2>/dev/null) in "$D"/*) n=$((n + 1)) ;; esac
	done
	echo $n
}

echo "soak: $PERCH"
if [ "$RUNS" -gt 0 ]; then
	echo "soak: part 1: $RUNS workflows, $JOBS at a time, seed $SEED"
	files_before=$(cut -f1 /proc/sys/fs/file-nr)
	procs_before=$(ls -d /proc/[0-9]* | wc -l)
	start=$(date +%s)
	i=0
	while [ $i -lt "$RUNS" ]; do
		j=0
		while [ $j -lt "$JOBS" ] && [ $i -lt "$RUNS" ]; do
			one_run $i &
			i=$((i + 1))
			j=$((j + 1))
		done
		wait
	done
	took=$(($(date +%s) - start))

	# Tally: exit code by backend and cancellation.
	echo "soak:   runs by exit code, backend and cancellation:"
	cat "$D"/res/*.rc | sort | uniq -c | sort -k2,2n -k3 | sed 's/^/soak:   /'
	bad=$(cat "$D"/res/*.rc | awk '$1 != 0 && $1 != 1 && $1 != 130' | wc -l)
	[ "$bad" -eq 0 ] || {
		problem "$bad runs ended with another exit code (or hung):"
		for r in "$D"/res/*.rc; do
			case $(cut -d' ' -f1 "$r") in
			0 | 1 | 130) ;;
			*) echo "--- run ${r##*/}: $(cat "$r")"; head -n 5 "${r%.rc}.err" ;;
			esac
		done
	}
	# Uncancelled runs never end in 130, cancelled ones only in 130 (or in
	# 0/1 when the workflow ended before the signal).
	wrong=$(cat "$D"/res/*.rc | awk '$3 == "none" && $1 == 130' | wc -l)
	[ "$wrong" -eq 0 ] || problem "$wrong uncancelled runs exited 130"
	echo "soak:   $RUNS runs in $took s"

	left=$(marked)
	sleep 3
	left_later=$(marked)
	tmp_left=$(ls -A "$D/tmp" | wc -l)
	fds_left=$(fds_on_soak)
	files_after=$(cut -f1 /proc/sys/fs/file-nr)
	procs_after=$(ls -d /proc/[0-9]* | wc -l)
	echo "soak:   processes with the mark left: $left at once, $left_later after 3 s"
	echo "soak:   entries left in the local temp dir: $tmp_left"
	echo "soak:   descriptors open on the soak's files: $fds_left"
	echo "soak:   system: open files $files_before -> $files_after, processes $procs_before -> $procs_after"
	[ "$left_later" -eq 0 ] || problem "$left_later processes of the soak still run"
	[ "$tmp_left" -eq 0 ] || { ls -la "$D/tmp" | head; problem "the local temp dir is not empty"; }
	[ "$fds_left" -eq 0 ] || problem "descriptors still open on the soak's files"
fi

# ---- part 2 ------------------------------------------------------------------
big_workflow() {
	awk -v backend="$1" -v steps="$BIG_STEPS" -v stages="$BIG_STAGES" -v mark="$MARK" 'BEGIN {
		per = int(steps / stages)
		printf "{\"pipeline\":["
		for (s = 0; s < stages; s++) {
			printf "%s{\"steps\":[", s ? "," : ""
			for (k = 0; k < per; k++) {
				# Each stage lasts at least 50 ms, so the run is long
				# enough to sample.
				env = backend == "dummy" ? "\"SLEEP\":\"50ms\"" : "\"X\":\"y\""
				printf "%s{\"name\":\"s%d_%d\",\"uuid\":\"u%d_%d\",\"type\":\"commands\",\"image\":\"sh\",\"commands\":[\"echo line one of %d.%d\",\"echo soak-secret-big\",\"sleep 0.05\"],\"on_success\":true,\"environment\":{%s,\"PERCH_SOAK_MARK\":\"%s\"}}", \
					k ? "," : "", s, k, s, k, s, k, env, mark
			}
			printf "]}"
		}
		printf "],\"secrets\":[{\"name\":\"t\",\"value\":\"soak-secret-big\"}]}\n"
	}'
}

# sample PID FILE: one line every 0.2 s: rss_kb threads fds.
sample() {
	while [ -d "/proc/$1" ]; do
		st=$(awk '/^VmRSS:/ { r = $2 } /^Threads:/ { t = $2 } /^State:/ { s = $2 } END { print r, t, s }' "/proc/$1/status" 2>/dev/null) || break
		case $st in *Z) break ;; esac
		nfd=$(ls "/proc/$1/fd" 2>/dev/null | wc -l)
		echo "${st% *} $nfd" >>"$2"
		sleep 0.2
	done
}

echo "soak: part 2: one workflow of $BIG_STEPS steps in $BIG_STAGES stages"
printf 'soak:   %-7s %6s %8s %21s %14s %12s\n' backend rc seconds "RSS KiB 10%/90%/max" "threads 10/90%" "fds 10/90%"
for backend in dummy local; do
	big_workflow $backend >"$D/big-$backend.json"
	set -- --backend $backend
	[ $backend = local ] && set -- "$@" --backend-local-temp-dir "$D/tmp"
	: >"$D/samples"
	t0=$(date +%s)
	PERCH_SOAK_MARK=$MARK "$PERCH" "$@" run --log-format text "$D/big-$backend.json" \
		>"$D/big.out" 2>"$D/big.err" &
	pid=$!
	sample $pid "$D/samples"
	set +e
	wait $pid
	rc=$?
	set -e
	secs=$(($(date +%s) - t0))
	awk -v b=$backend -v rc=$rc -v secs=$secs '
		{ rss[NR] = $1; thr[NR] = $2; fd[NR] = $3; if ($1 > max) max = $1 }
		END {
			if (NR < 10) { printf "soak:   %-7s %6s %8s too few samples (%d)\n", b, rc, secs, NR; exit }
			a = int(NR * 0.1); z = int(NR * 0.9)
			printf "soak:   %-7s %6s %8s %7d/%6d/%6d %6d/%-7d %5d/%-6d\n", b, rc, secs, rss[a], rss[z], max, thr[a], thr[z], fd[a], fd[z]
		}' "$D/samples"
	[ $rc -eq 0 ] || { tail -n 5 "$D/big.err"; problem "the big workflow on $backend exited $rc"; }
	lines=$(wc -l <"$D/big.out")
	[ "$lines" -ge $((BIG_STEPS * 2)) ] || problem "the big workflow on $backend logged $lines lines, want >= $((BIG_STEPS * 2))"
	grep -q 'soak-secret-big' "$D/big.out" && problem "a secret survived in the big workflow's log"
	# Growth: RSS at 90 % more than 25 % (and 4 MiB) above 10 %, or more
	# descriptors or threads at 90 % than at 10 %, is a leak to look at.
	awk 'NR >= 10 { n = NR } { rss[NR] = $1; thr[NR] = $2; fd[NR] = $3 }
		END { a = int(n * 0.1); z = int(n * 0.9)
		      if (rss[z] > rss[a] * 1.25 && rss[z] - rss[a] > 4096) print "rss"
		      if (fd[z] > fd[a] + 2) print "fds"
		      if (thr[z] > thr[a] + 2) print "threads" }' "$D/samples" >"$D/growth"
	[ -s "$D/growth" ] && problem "on $backend, growth between 10 % and 90 % of the run: $(tr '\n' ' ' <"$D/growth")"
done
sleep 1
[ "$(marked)" -eq 0 ] || problem "processes of the soak still run after part 2"
[ "$(ls -A "$D/tmp" | wc -l)" -eq 0 ] || problem "the local temp dir is not empty after part 2"

if [ $failed -eq 0 ]; then
	echo "soak: OK"
else
	echo "soak: FAILED"
fi
exit $failed
