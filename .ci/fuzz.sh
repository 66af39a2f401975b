#!/bin/sh
# fuzz.sh - CI: builds every libFuzzer harness (FUZZ_NAMES in
# tests/fuzz/local.mk: workflow, conf, logpipe, docker, ctl) with clang,
# ASan and UBSan and runs each for FUZZ_SECONDS (default 60) from its
# seeds; any crash, leak, timeout or broken oracle fails the run, and the
# input that did it is printed (base64) so it can be committed under
# tests/fuzz/regress/<harness>/.
#
# Called by .ci/run as root on Debian bookworm, from the top of the tree,
# after .ci/deps.sh and autoreconf.  By hand: sh .ci/fuzz.sh
set -eu
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}

# clang's -fsanitize=fuzzer links libclang_rt.fuzzer, which Debian ships in
# libclang-rt-<major>-dev: clang only recommends it, and deps.sh installs
# without recommends.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	major=$(clang -dumpversion | cut -d. -f1)
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		clang "libclang-rt-$major-dev" >/dev/null
fi

# A configured source tree refuses out-of-tree builds: then fuzz in it (the
# harnesses are built with FUZZ_CC whatever CC it was configured with);
# else in a build-fuzz folder of its own.
if [ -f config.status ]; then
	B=.
else
	[ -x ./configure ] || { echo "fuzz.sh: run autoreconf -fi first" >&2; exit 1; }
	rm -rf build-fuzz && mkdir build-fuzz
	(cd build-fuzz && CC=clang ../configure -q)
	B=build-fuzz
fi
rc=0
make -C "$B" fuzz FUZZ_CC=clang FUZZ_SECONDS="$seconds" || rc=$?
if [ $rc -ne 0 ]; then
	for f in "$B"/tests/fuzz/artifacts/*; do
		[ -f "$f" ] || continue
		echo "fuzz.sh: $f (base64):"
		base64 "$f"
	done
fi
exit $rc
