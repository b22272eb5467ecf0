#!/usr/bin/env bash
# Installs the Debian 12 packages hepml builds, tests and runs with.
# Idempotent: only packages that are missing are installed; apt-get only.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # ONNX format, protobuf
  libonnx-dev libprotobuf-dev protobuf-compiler
  # core libraries
  libabsl-dev libtbb-dev libhwy-dev libopenblas-dev
  nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libzstd-dev zlib1g-dev
  # datasets: ROOT's compression codecs, HDF5, the XRootD client and server (tests)
  liblzma-dev liblz4-dev libxxhash-dev libhdf5-dev libxrootd-client-dev xrootd-server
  # operator libraries: RE2 (RegexFullMatch), PNG and JPEG decoders (ImageDecoder)
  libre2-dev libpng-dev libjpeg62-turbo-dev
  # registry blob store: SHA-256 (OpenSSL); xrdcp is the peer of its benchmark
  libssl-dev xrootd-client
  # compile: --precision-file (YAML); clang++ builds the generated packages in the tests too
  libyaml-cpp-dev clang
  # fuzz/run.sh: libFuzzer and the sanitizer runtimes of clang
  libclang-rt-14-dev
  # serve: gRPC (C++ and the Python client of the tests), Boost.Beast, curl
  libgrpc++-dev protobuf-compiler-grpc libboost-dev python3-grpcio curl
  # deploy: the Kubernetes manifests' check (tests/deploy) parses YAML
  python3-yaml
  # registry: SQLite (embedded metadata), libpq (PostgreSQL metadata), OpenSSL
  # (SHA-256); the PostgreSQL 15 server for the registry's tests
  libsqlite3-dev libpq-dev libssl-dev postgresql-15
  # jobs: the Slurm executor's tests start a real one-node Slurm cluster
  slurm-wlm munge
  # the hepml Python module
  pybind11-dev python3-dev
  # tests and test data
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-onnx python3-numpy python3-torch python3-h5py libonnx-testdata
)

# Node.js runs ONNX Runtime (npm onnxruntime-node), the peer of the
# differential tests and benchmarks; the machine image may bring its own node.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime for Node, pinned by bench/peers/package-lock.json. Its install
# script would download GPU extras, so it is skipped (the CPU library ships in
# the package).
PEERS="$(cd "$(dirname "$0")/.." && pwd)/bench/peers"
if [ ! -d "$PEERS/node_modules/onnxruntime-node" ]; then
  echo "install-deps: npm install --ignore-scripts in bench/peers"
  (cd "$PEERS" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# A third-party MLflow REST client (npm mlflow, pinned by
# tests/registry/mlflow_client/package-lock.json) that the registry's MLflow
# compatibility test drives; it has no install script, --ignore-scripts all
# the same.
MLFLOW_CLIENT="$(cd "$(dirname "$0")/.." && pwd)/tests/registry/mlflow_client"
if [ ! -d "$MLFLOW_CLIENT/node_modules/mlflow" ]; then
  echo "install-deps: npm install --ignore-scripts in tests/registry/mlflow_client"
  (cd "$MLFLOW_CLIENT" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
