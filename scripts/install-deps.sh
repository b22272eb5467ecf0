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
  # operator libraries: RE2 (RegexFullMatch), PNG and JPEG decoders (ImageDecoder)
  libre2-dev libpng-dev libjpeg62-turbo-dev
  # tests and test data
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-onnx python3-numpy libonnx-testdata
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
