#!/usr/bin/env bash
# The test command: installs, builds and runs every test (unit, integration, slow).
# Extra arguments go to ctest, e.g. scripts/test.sh -L unit   (the fast subset)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir=${OCS_BUILD_DIR:-build}
cd "$build_dir"
ctest --output-on-failure --timeout 1800 -j "$(nproc)" "$@"
