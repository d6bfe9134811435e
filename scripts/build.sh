#!/usr/bin/env bash
# Installs the dependencies (if missing) and builds ocs into build/ with Ninja and ccache.
# Extra arguments go to CMake, e.g. scripts/build.sh -DCMAKE_BUILD_TYPE=Debug
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
build_dir=${OCS_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja "$@" >/dev/null
# Torch translation units take ~1.2 GB each to compile: two jobs fit a 2-core machine.
ninja -C "$build_dir" -j "${OCS_BUILD_JOBS:-$(nproc)}"
