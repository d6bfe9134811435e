#!/usr/bin/env bash
# Installs everything ocs needs to build and test on Debian 12, from Debian's archive only.
# Idempotent: does nothing when every package is already installed.
# python3-torch is Debian's PyTorch on the same LibTorch: tests load exported models with it and
# the benchmarks measure it side by side with the C++ worker. prometheus (the server and promtool)
# is for the observability tests, which scrape a real coordinator with a real Prometheus;
# kubernetes-client (kubectl kustomize) and python3-yaml check the deployment files.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libtorch-dev libgloo-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libyaml-cpp-dev libcli11-dev libspdlog-dev libsqlite3-dev
  nlohmann-json3-dev zlib1g-dev libgtest-dev libgmock-dev
  dataset-fashion-mnist python3-torch prometheus python3-yaml openssl
)
# Any kubectl with `kustomize` will do; Debian's is kubernetes-client (another package may own
# /usr/bin/kubectl already, and the two conflict).
if ! command -v kubectl >/dev/null; then packages+=(kubernetes-client); fi

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
