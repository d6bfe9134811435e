#!/usr/bin/env bash
# The worker on a GPU, in one scripted run on a CUDA host prepared as shared/cuda-host/README.md
# says (the .deb folder of collect-debs.sh, with googletest, libgtest-dev, libgmock-dev,
# nlohmann-json3-dev, zlib1g-dev and dataset-fashion-mnist added, and env.sh copied into it):
#   bench/gpu/run.sh DEBS_DIR [OUT_DIR]
# or, on a machine without a GPU, every step at toy sizes on the CPU build, so that the script
# itself is checked before device time is spent on it (a few minutes; the numbers mean nothing):
#   bench/gpu/run.sh --rehearse [OUT_DIR]
# 1. builds the CUDA variant (-DOCS_CUDA=ON) and runs the GPU tests (ctest label "cuda");
# 2. training images/s of ResNet-56 on CIFAR-shaped data at batch 128 and 512, fp32 and bf16:
#    PyTorch's Python eager API (bench/train_throughput.py) against the ocs worker, same run;
#    at batch 128 also the worker with eager steps (--no-cuda-graphs), to show what graphs buy,
#    and PyTorch eager at its defaults (no cuDNN autotuning, NCHW), as a first script runs;
# 3. a standalone one-cycle pruning run of ResNet-56 on the real Fashion-MNIST, 12 epochs (wall
#    time, accuracy);
# 4. inference latency of the dense and pruned models at batch 1 and 256, as exported, as
#    `ocs-worker model freeze` writes them, and frozen + optimize_for_inference;
# 5. the whole test suite of the CUDA build, unless OCS_GPU_BUDGET_S seconds (420) are spent.
# Logs go to OUT_DIR; the summary table is printed last.
set -uo pipefail
cd "$(dirname "$0")/../.."
arg=${1:?usage: bench/gpu/run.sh DEBS_DIR [OUT_DIR] | --rehearse [OUT_DIR]}
epochs=3
if [ "$arg" = --rehearse ]; then
  rehearse=1
  out=$(realpath -m "${2:-runs/gpu-rehearsal}")
  build=${OCS_BUILD_DIR:-build}
  device=cpu precision=fp32 python=/usr/bin/python3  # Debian's python3-torch
  fashion=/usr/share/datasets/fashion-mnist fashion_limit="trainLimit: 1024, testLimit: 500, "
  train_limit=1024 infer_iterations=2
else
  rehearse=""
  out=$(realpath -m "${2:-runs/gpu-bench}")
  build=build-cuda
  device=cuda precision=bf16 python=python3  # the host's PyTorch
  fashion_limit=""
  train_limit=25600 infer_iterations=100
fi
mkdir -p "$out"
if [ -z "$rehearse" ]; then
  debs=$(realpath "$arg")
  source "$debs/env.sh" "$debs" > "$out/env.log"
  fashion=$OCS_DEPS/usr/share/datasets/fashion-mnist
fi
export PYTHONUNBUFFERED=1
log() { echo "== $(date +%T) $*"; }
summary=$out/summary.md
: > "$summary"

log "GPU: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null)"
log "configure"
if [ -n "$rehearse" ]; then
  configure=(cmake -S . -B "$build" -G Ninja)
else
  # shellcheck disable=SC2206  # the arguments env.sh gives, split as intended
  configure=(cmake -S . -B "$build" -G Ninja $OCS_CUDA_CMAKE_ARGS -DOCS_CUDA=ON)
fi
if ! "${configure[@]}" > "$out/cmake.log" 2>&1; then
  tail -40 "$out/cmake.log"; exit 1
fi
log "build: worker, GPU tests, inference bench"
if ! ninja -C $build -k 0 ocs-worker ocs_infer_bench cuda_integration_tests > "$out/build.log" 2>&1; then
  grep -E -A8 "error|FAILED" "$out/build.log" | head -120; exit 1
fi
worker=$build/worker/ocs-worker

log "GPU tests"
$build/tests/integration/worker/cuda_integration_tests 2>&1 | tee "$out/cuda-tests.log" | tail -15
gpu_tests=$(grep -E "^\[  (PASSED|FAILED)  \]" "$out/cuda-tests.log" | tr '\n' ' ')

median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) print "nan"; else print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
# Median images/s of the epochs after the first (warm-up, cuDNN autotuning, graph capture).
python_ips() {  # batch precision [--defaults]
  local log=$out/python-$1-$2${3:+-defaults}.jsonl
  timeout 300 $python bench/train_throughput.py --data synthetic --depth 56 --device $device \
    --batch "$1" --precision "$2" --epochs $epochs --train-limit $train_limit ${3:-} > "$log" 2>&1
  tail -n +2 "$log" | sed -n 's/.*"images_per_second": \([0-9.]*\).*/\1/p' | median
}
ocs_ips() {  # batch precision [worker flags...]
  local b=$1 p=$2 name=ocs-$1-$2${3:+-eager}; shift 2
  cat > "$out/$name.yaml" <<YAML
apiVersion: ocs/v1
kind: PruningJob
metadata: {name: $name}
spec:
  model: {arch: resnet56, numClasses: 10, inputShape: [3, 32, 32]}
  data: {dataset: synthetic, trainLimit: $train_limit, testLimit: 1000}
  training: {epochs: $epochs, batchSize: $b, precision: $p}
  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, sparsityEndEpoch: $((epochs - 1))}
  resources: {workers: 1, device: $device}
  checkpoint: {everyEpochs: 0}
YAML
  timeout 300 $worker run "$out/$name.yaml" --no-prune --quiet "$@" -o "$out/$name" > "$out/$name.log" 2>&1
  python3 -c "import json; e=json.load(open('$out/$name/report.json'))['epochs'][1:]; print(sorted(x['imagesPerSecond'] for x in e)[len(e)//2])" 2>/dev/null || echo nan
}

log "training throughput, ResNet-56, $train_limit CIFAR-shaped images, $epochs epochs per run"
{
  echo "| ResNet-56 training, 1 GPU | PyTorch eager (Python) img/s | ocs worker img/s | ratio | ocs, eager steps img/s | PyTorch eager at its defaults img/s | ratio to it |"
  echo "|---|---|---|---|---|---|---|"
} >> "$summary"
for b in 128 512; do
  for p in fp32 bf16; do
    py=$(python_ips $b $p)
    ocs=$(ocs_ips $b $p)
    eager="-" plain="-" plain_ratio="-"
    if [ $b = 128 ]; then
      eager=$(printf "%.0f" "$(ocs_ips $b $p --no-cuda-graphs)")
      plain=$(printf "%.0f" "$(python_ips $b $p --defaults)")
      plain_ratio=$(python3 -c "print(f'{$ocs/$plain:.2f}x')" 2>/dev/null || echo "-")
    fi
    ratio=$(python3 -c "print(f'{$ocs/$py:.2f}x')" 2>/dev/null || echo "-")
    printf "| batch %s %s | %.0f | %.0f | %s | %s | %s | %s |\n" $b $p "$py" "$ocs" "$ratio" "$eager" \
      "$plain" "$plain_ratio" | tee -a "$summary"
  done
done

log "standalone one-cycle run: ResNet-56 on Fashion-MNIST (${fashion_limit:-60,000 training images}), $precision"
cat > "$out/fashion.yaml" <<YAML
apiVersion: ocs/v1
kind: PruningJob
metadata: {name: resnet56-fashion-gpu}
spec:
  model: {arch: resnet56, numClasses: 10, inputShape: [1, 28, 28]}
  data: {dataset: fashion-mnist, ${fashion_limit}path: $fashion}
  training: {epochs: 12, batchSize: 128, precision: $precision}
  pruning: {targetFlopsReduction: 0.5}
  regularization: {lambda: 0.01, lambdaDelta: 0.01}
  stability: {monitorStartEpoch: 1, sparsityStartEpoch: 2, sparsityEndEpoch: 8}
  resources: {workers: 1, device: $device}
  checkpoint: {everyEpochs: 5}
YAML
start=$(date +%s.%N)
timeout 240 $worker run "$out/fashion.yaml" --form-group -o "$out/fashion" 2>&1 | tee "$out/fashion.log" | tail -22
wall=$(python3 -c "print(f'{$(date +%s.%N) - $start:.0f}')")
python3 - "$out/fashion/report.json" "$wall" "$precision" <<'PY' >> "$summary" || echo "| one-cycle run | failed, see fashion.log |" >> "$summary"
import json, sys
r = json.load(open(sys.argv[1]))
e = r["epochs"]
print()
print(f"| one-cycle ResNet-56, Fashion-MNIST, 12 epochs, {sys.argv[3]} | |")
print("|---|---|")
print(f"| wall time (process, incl. data load) | {sys.argv[2]} s |")
print(f"| pruned before epoch index | {r.get('pruneEpoch')} |")
print(f"| FLOPs | {r['before']['flops']/1e6:.1f} M -> {r['after']['flops']/1e6:.1f} M ({100*r['flopsReduction']:.1f}% fewer) |")
print(f"| test accuracy before / right after the prune | {100*r['accuracyBeforePrune']:.2f}% / {100*r['accuracyAfterPrune']:.2f}% |")
print(f"| final test accuracy | {100*r['finalAccuracy']:.2f}% |")
def median_ips(epochs):
    v = sorted(x["imagesPerSecond"] for x in epochs)
    return f"{v[len(v) // 2]:.0f}" if v else "-"
prune = r.get("pruneEpoch") or len(e)
dense = [x for x in e[1:prune] if x["lambda"] == 0]  # epoch 0 autotunes and captures
sparse = [x for x in e[:prune] if x["lambda"] > 0]  # the decoupled shrink after every step
tuning = [x for x in e[prune + 1:]]  # the pruned network, after its re-capture
print(f"| median training images/s: dense / sparsity / fine-tuning epochs | {median_ips(dense)} / {median_ips(sparse)} / {median_ips(tuning)} |")
print(f"| CUDA graph captures | {r.get('cudaGraphCaptures')} |")
PY
nccl_warning=absent
grep -q "destroy_process_group" "$out/fashion.log" && nccl_warning=present
echo "| PyTorch's destroy_process_group warning at the worker's exit | $nccl_warning |" >> "$summary"

log "inference latency: dense, the trained pruned model, searched models with roundTo 1 and 8"
echo >> "$summary"
timeout 150 $build/bench/ocs_infer_bench --arch resnet56 --classes 10 --input 1,28,28 \
  --pruned "$out/fashion/model.pt" --round-to 1,8 --device $device --batch-sizes 1,256 \
  --iterations $infer_iterations \
  2>&1 | tee "$out/infer.log" | tee -a "$summary"

log "the whole CUDA build and its test suite"
if [ -n "$rehearse" ]; then
  all_tests="skipped in a rehearsal: CI runs the CPU build's suite"
elif [ $SECONDS -gt ${OCS_GPU_BUDGET_S:-420} ]; then
  all_tests="skipped: ${SECONDS}s spent, over the ${OCS_GPU_BUDGET_S:-420}s budget (OCS_GPU_BUDGET_S)"
elif ninja -C $build -k 0 > "$out/build-all.log" 2>&1; then
  # Each CPU test uses every core for its intra-op threads: few at a time, or they time out.
  (cd $build && OCS_PYTHON=python3 timeout 240 ctest -j 4 --timeout 200 > "$out/ctest.log" 2>&1)
  all_tests=$(grep -E "tests passed|tests failed" "$out/ctest.log")
  grep -E "\*\*\*Failed|Failed  |Timeout" "$out/ctest.log" | head -10
else
  all_tests="build failed: $(grep -c FAILED "$out/build-all.log") targets (build-all.log)"
  grep -E -A8 "error" "$out/build-all.log" | head -40
fi

echo
echo "device: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "none, a rehearsal"); $($python -c 'import torch; print("PyTorch", torch.__version__)')"
echo "GPU tests: $gpu_tests"
echo "CUDA build, all tests: $all_tests"
cat "$summary"
