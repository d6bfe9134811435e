#!/usr/bin/env bash
# How soon workers join a restarted coordinator again, by how long it was down. For each outage,
# each worker binary gets its own coordinator (on loopback); the coordinator is SIGKILLed, kept
# down for the outage, restarted, and the bench times the restart to the worker's "joined ...
# again" log line. The binaries run side by side, so one run compares builds.
#   bench/rejoin_bench.sh [WORKER_BINARIES (comma list)] [OUTAGES_S (comma list)]
#   (after scripts/build.sh; default: this build's worker, outages 10,60,240 s)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${OCS_BUILD_DIR:-build}
IFS=, read -r -a workers <<< "${1:-$build/worker/ocs-worker}"
IFS=, read -r -a outages <<< "${2:-10,60,240}"
coordinator=$build/server/ocs-coordinator
out=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to $3 s for a line matching $2 in file $1; prints the seconds waited, or fails.
await_line() {
  local file=$1 pattern=$2 limit=$3 start
  start=$(date +%s.%N)
  for _ in $(seq $((limit * 10))); do
    if grep -qs "$pattern" "$file"; then
      awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f s\n", e - s}'
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Prints the seconds from the restart to the rejoin, or why there is none.
time_rejoin() {
  local worker=$1 outage=$2 dir=$3 port
  port=$(free_port)
  mkdir -p "$dir"
  "$coordinator" --listen "127.0.0.1:$port" --metrics-listen "" --data-dir "$dir/c" \
    > "$dir/coordinator.log" 2>&1 &
  local coordinator_pid=$!
  "$worker" serve --coordinator "127.0.0.1:$port" --metrics-listen "" --work-dir "$dir/w" \
    > "$dir/worker.log" 2>&1 &
  local worker_pid=$!
  if ! await_line "$dir/worker.log" "joined" 60 > /dev/null; then
    echo "the worker did not join at first (see $dir)"
    kill "$worker_pid" "$coordinator_pid" 2>/dev/null || true
    return
  fi
  kill -9 "$coordinator_pid"
  wait "$coordinator_pid" 2>/dev/null || true
  sleep "$outage"
  "$coordinator" --listen "127.0.0.1:$port" --metrics-listen "" --data-dir "$dir/c" \
    >> "$dir/coordinator.log" 2>&1 &
  coordinator_pid=$!
  await_line "$dir/worker.log" "joined .* again" 300 || echo "not within 300 s"
  kill "$worker_pid" "$coordinator_pid" 2>/dev/null || true
  wait "$worker_pid" "$coordinator_pid" 2>/dev/null || true
}

for outage in "${outages[@]}"; do
  echo "coordinator down for $outage s..." >&2
  for i in "${!workers[@]}"; do
    time_rejoin "${workers[$i]}" "$outage" "$out/$outage-$i" > "$out/$outage-$i.result" &
    pids+=($!)
  done
  wait
  pids=()
done

printf '\nRejoined after the restart:\n\n| coordinator down |'
for worker in "${workers[@]}"; do printf ' %s |' "$worker"; done
printf '\n|---|'
for _ in "${workers[@]}"; do printf -- '---|'; done
printf '\n'
for outage in "${outages[@]}"; do
  printf '| %s s |' "$outage"
  for i in "${!workers[@]}"; do printf ' %s |' "$(cat "$out/$outage-$i.result")"; done
  printf '\n'
done
echo "logs: $out" >&2
