#!/usr/bin/env bash
# libFuzzer targets (fuzz/): the job-spec parser, the mask decoder, the coordinator's epoch-report
# validation. Built with clang into build-fuzz/, every library instrumented, with AddressSanitizer
# and UndefinedBehaviorSanitizer.
#   scripts/fuzz.sh build                  build the three targets
#   scripts/fuzz.sh run NAME [SECONDS]     run one for SECONDS (default 20) from its seeds; exit 1
#                                          when it finds a crash (the input is kept, see below)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${OCS_FUZZ_BUILD_DIR:-build-fuzz}

case "${1:-}" in
  build)
    cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DOCS_FUZZ=ON -DOCS_BUILD_TESTS=OFF >/dev/null
    ninja -C "$build" -j "${OCS_BUILD_JOBS:-$(nproc)}" fuzzers
    ;;
  run)
    name=$2
    seconds=${3:-20}
    binary="$build/fuzz/$name"
    [[ -x "$binary" ]] || { echo "$binary is not built: scripts/fuzz.sh build" >&2; exit 1; }
    # New inputs go to a scratch folder; the committed seeds are read only.
    work="$build/fuzz/$name.corpus"
    mkdir -p "$work" "$build/fuzz/crashes"
    seeds=()
    case "$name" in
      job_spec_fuzzer) seeds=(examples tests/corpus/bad_job_specs) ;;
    esac
    "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz/crashes/$name-" "$work" "${seeds[@]}"
    ;;
  *)
    sed -n '2,8p' "$0" >&2
    exit 2
    ;;
esac
