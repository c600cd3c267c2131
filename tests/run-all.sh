#!/bin/sh
# Installs dependencies, builds berth and runs every test (unit, privileged
# integration, VM tests in QEMU: label vm). Run as root on Debian bookworm.
# Ends with ctest's summary line ("100% tests passed, 0 tests failed out of N").
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${BERTH_BUILD_DIR:-$src/build}

"$src/packaging/install-deps.sh"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build"
cd "$build"
# Unit tests run in parallel; privileged tests are RUN_SERIAL in CMakeLists.txt.
exec ctest --output-on-failure -j2 --timeout 300
