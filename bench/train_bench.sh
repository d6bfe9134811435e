#!/usr/bin/env bash
# Training throughput of the C++ worker against PyTorch's Python eager API (Debian's python3-torch,
# the same LibTorch), same model (ResNet-20), data (real Fashion-MNIST), batch and thread count,
# measured side by side in one run; then the epoch-time split of a 2-rank pruning run.
#   bench/train_bench.sh [EPOCHS] [TRAIN_LIMIT]     (after scripts/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-4}
limit=${2:-10000}
threads=$(nproc)
worker=${OCS_BUILD_DIR:-build}/worker/ocs-worker
out=$(mktemp -d)

cat > "$out/job.yaml" <<YAML
apiVersion: ocs/v1
kind: PruningJob
metadata: {name: train-bench}
spec:
  model: {arch: resnet20, numClasses: 10, inputShape: [1, 28, 28]}
  data: {dataset: fashion-mnist, trainLimit: $limit, testLimit: 1000}
  training: {epochs: $epochs, batchSize: 128}
  stability: {monitorStartEpoch: 0, sparsityStartEpoch: 0, sparsityEndEpoch: $((epochs - 1))}
  resources: {workers: 1, device: cpu}
  checkpoint: {everyEpochs: 0}
YAML

# Median images/s over the epochs after the first (warm-up).
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

echo "python eager: $epochs epochs of $limit images, $threads threads..." >&2
/usr/bin/python3 bench/train_throughput.py --epochs "$epochs" --train-limit "$limit" \
  --threads "$threads" > "$out/python.jsonl"
python_ips=$(tail -n +2 "$out/python.jsonl" | sed 's/.*"images_per_second": \([0-9.]*\).*/\1/' | median)

echo "ocs worker (dense, same schedule): ..." >&2
"$worker" run "$out/job.yaml" --no-prune --threads "$threads" --quiet -o "$out/dense"
cpp_ips=$(/usr/bin/python3 -c "import json,sys; e=json.load(open('$out/dense/report.json'))['epochs'][1:]; print(sorted(x['imagesPerSecond'] for x in e)[len(e)//2])")

echo "ocs worker, 2 ranks with pruning: ..." >&2
sed -i 's/workers: 1/workers: 2/' "$out/job.yaml"
"$worker" launch "$out/job.yaml" --nproc 2 -o "$out/pruned" > /dev/null

echo
echo "| training, ResNet-20 on Fashion-MNIST, batch 128, $threads threads, 1 rank | images/s (median) |"
echo "|---|---|"
printf "| PyTorch eager (Python) | %.0f |\n| ocs worker (C++) | %.0f |\n| ratio | %.2fx |\n" \
  "$python_ips" "$cpp_ips" "$(echo "$cpp_ips / $python_ips" | bc -l)"
echo
echo "epoch-time split of the 2-rank pruning run (seconds per epoch, rank 0):"
/usr/bin/python3 - "$out/pruned/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print("| epoch | phase | data | fwd/bwd/step | all-reduce | mask search | eval | images/s |")
print("|---|---|---|---|---|---|---|---|")
for e in report["epochs"]:
    s = e["seconds"]
    print(f"| {e['epoch']} | {e['phase']} | {s['data']:.2f} | {s['compute']:.2f} | {s['allreduce']:.2f} "
          f"| {s['mask']*1000:.1f} ms | {s['eval']:.2f} | {e['imagesPerSecond']:.0f} |")
PY
rm -rf "$out"
