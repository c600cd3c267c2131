#!/bin/sh
# Runs the runtime lifecycle benchmark inside the pure-cgroup-v2 VM (tests/vm), where
# crun works, comparing berth-runtime with runc and crun. The three binaries are copied
# into the guest's tmpfs first (berth-runtime stripped, as a package ships it): the
# guest reads the host's files over uncached 9p, which would otherwise charge each
# exec for the binary's size rather than for the runtime's work.
# Usage: tests/bench/vm-bench.sh [BUILD_DIR] [ITERATIONS]
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
iterations=${2:-50}
guest="strip -o /tmp/berth-runtime $build/berth-runtime && cp /usr/sbin/runc /usr/bin/crun /tmp/ && \
$build/berth_bench_runtime --berth-runtime /tmp/berth-runtime \
  --runtimes berth-runtime,/tmp/runc,/tmp/crun --iterations $iterations"
exec "$src/tests/vm/vm-run.sh" --build "$build" --name bench --timeout 590 -- sh -c "$guest"
