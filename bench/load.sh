#!/bin/sh
# Times loading and negotiating 1, 10 and 100 copies of the dummy plugin,
# against raw dlopen/dlsym/dlclose of the same files in the same run.
# Run from a configured build tree:  sh /path/to/perch/bench/load.sh
set -eu
make -s bench/load_bench plugins/dummy/dummy.la >/dev/null
for n in 1 10 100; do
	./bench/load_bench plugins/dummy/.libs/dummy.so "$n" "${ROUNDS:-15}"
done
