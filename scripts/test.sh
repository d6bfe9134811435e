#!/usr/bin/env bash
# The test command: installs, builds and runs every test (unit, integration, cuda).
# Extra arguments go to ctest, e.g. scripts/test.sh -L unit   (the fast subset)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
# The libFuzzer targets need clang (the tests run each for a bounded time).
if command -v clang++ >/dev/null; then scripts/fuzz.sh build; fi
build_dir=${OCS_BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure --timeout 1800 -j "$(nproc)" "$@"
