#!/usr/bin/env bash
# Seeded fault soak on a loopback cluster: builds what it needs, then runs ocs-soak.
#   scripts/soak.sh [--seed N] [--cycles N] [--dir DIR]
# Prints one row per cycle (the fault, the job's end, records checked, lost, duplicated, hung
# processes) and a summary; exits 1 when anything was lost, duplicated, failed or hung.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
exec "${OCS_BUILD_DIR:-build}/tests/soak/ocs-soak" "$@"
