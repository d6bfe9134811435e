#!/usr/bin/env bash
# The main job: installs, builds, and runs the demo pruning job on real Fashion-MNIST
# (examples/resnet20-fashion-mnist.yaml) through the service: a coordinator and two CPU workers
# on loopback, the job submitted with `ocsctl submit --follow`. A ResNet-20 is trained from
# scratch by two ranks over Gloo, the coordinator watches each epoch's mask and decides the
# prune, the network is pruned to half its FLOPs and fine-tuned, and rank 0 exports model.pt and
# report.json. About 11 minutes on 2 cores. Logs and artifacts: runs/service/.
#
# `ocs-worker launch JOB --nproc 2` runs the same job standalone, without a coordinator.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build=${OCS_BUILD_DIR:-build}
job=${1:-examples/resnet20-fashion-mnist.yaml}
port=${OCS_PORT:-7070}
out=runs/service
rm -rf "$out" && mkdir -p "$out"

"$build"/client/ocsctl validate "$job"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
"$build"/server/ocs-coordinator --listen "127.0.0.1:$port" --data-dir "$out/coordinator" \
  > "$out/coordinator.log" 2>&1 &
pids+=($!)
for worker in 0 1; do
  # Metrics: the coordinator on 9470, the workers on 9471 and 9472.
  "$build"/worker/ocs-worker serve --coordinator "127.0.0.1:$port" --slots 1 --threads 1 \
    --metrics-listen "127.0.0.1:$((9471 + worker))" \
    --work-dir "$out/work" > "$out/worker$worker.log" 2>&1 &
  pids+=($!)
done
tail -q -n +1 -f "$out/coordinator.log" "$out/worker0.log" "$out/worker1.log" &
pids+=($!)

status=0
"$build"/client/ocsctl submit "$job" --coordinator "127.0.0.1:$port" --follow || status=$?
# The coordinator keeps the final artifacts in its data folder (workers upload them at the end).
report=$(find "$out/coordinator/artifacts" -name report.json 2>/dev/null | head -n 1)
if [[ -n "$report" ]]; then
  /usr/bin/python3 - "$report" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"\nFLOPs {r['before']['flops']/1e6:.3f} M -> {r['after']['flops']/1e6:.3f} M "
      f"({100*r['flopsReduction']:.2f}% fewer), parameters {r['before']['params']/1e6:.3f} M -> "
      f"{r['after']['params']/1e6:.3f} M")
if r["pruneEpoch"] is not None:
    print(f"pruned before epoch index {r['pruneEpoch']}: test accuracy "
          f"{100*r['accuracyBeforePrune']:.2f}% before, {100*r['accuracyAfterPrune']:.2f}% right after")
folder = sys.argv[1].rsplit("/", 1)[0]
print(f"final test accuracy {100*r['finalAccuracy']:.2f}%\n"
      f"pruned model: {folder}/model.pt (TorchScript), report: {sys.argv[1]}")
PY
fi
exit $status
