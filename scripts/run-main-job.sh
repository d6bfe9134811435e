#!/usr/bin/env bash
# The main job: installs, builds, and runs the demo pruning job on real Fashion-MNIST
# (examples/resnet20-fashion-mnist.yaml): a ResNet-20 trained from scratch by two local ranks
# over Gloo, pruned to half its FLOPs at the epoch its sub-network stops changing, fine-tuned,
# and exported to runs/resnet20-fashion-mnist/{model.pt,report.json}. About 11 minutes on 2 cores.
#
# Standalone mode: the worker applies the stability rule itself. The coordinator and its workers
# take over the decision once the control plane lands.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build_dir=${OCS_BUILD_DIR:-build}
job=${1:-examples/resnet20-fashion-mnist.yaml}

"$build_dir"/client/ocsctl validate "$job"
"$build_dir"/worker/ocs-worker launch "$job" --nproc 2
