#!/usr/bin/env bash
# The main job: installs, builds, and runs the demo pruning job on real Fashion-MNIST
# (examples/resnet20-fashion-mnist.yaml).
#
# Today (foundation) that means: validate the job spec and show it with every default resolved,
# then report the worker's LibTorch runtime. Training, the coordinator and workers join as the
# pruning engine, trainer and control plane land.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir=${OCS_BUILD_DIR:-build}
job=${1:-examples/resnet20-fashion-mnist.yaml}

"$build_dir"/client/ocsctl validate "$job"
"$build_dir"/client/ocsctl validate -o yaml "$job"
"$build_dir"/worker/ocs-worker --version
