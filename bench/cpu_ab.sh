#!/bin/bash
# Per-call CPU time (user + sys, µs) of two hepml binaries and of ONNX Runtime
# (bench/peers/ort_bench.mjs, one intra-op thread) on one model and batch, in
# interleaved rounds. Each engine runs as a fresh process at LO and at HI
# calls; the difference in CPU time over HI - LO calls is the per-call figure
# (start-up, model loading and warm-up cancel out). CPU time, unlike wall
# time, holds up on a machine shared with other builds, where p50 latencies
# move by 2x between rounds. Models and inputs: those run_benchmarks.py
# wrote to WORK (`--work`).
#
#   bench/cpu_ab.sh BASE_HEPML NEW_HEPML WORK MODEL BATCH LO HI ROUNDS
#   bench/cpu_ab.sh build/hepml-base build/src/cli/hepml build/bench-work calo_cnn 256 5 85 5
#
# Prints one line per round: base, new and ORT µs per call. ORT's figure
# includes the Node binding's own CPU per call (measure it with MODEL =
# floor: WORK/floor/identity.onnx on WORK/floor/x.npy).
set -euo pipefail
[ $# -eq 8 ] || { sed -n '2,17p' "$0"; exit 2; }
base=$1; new=$2; work=$3; model=$4; batch=$5; lo=$6; hi=$7; rounds=$8
here=$(cd "$(dirname "$0")" && pwd)
if [ "$model" = floor ]; then
  onnx=$work/floor/identity.onnx; args=(--input "x=$work/floor/x.npy")
else
  onnx=$work/models/$model.onnx; args=()
  for f in "$work/inputs/$model/b$batch"/*.npy; do args+=(--input "$(basename "$f" .npy)=$f"); done
fi
cpu() { /usr/bin/time -f "%U %S" "$@" 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; }
hep() { cpu "$1" bench "$onnx" "${args[@]}" --batch "$batch" --threads 1 --iterations "$2" --warmup 1; }
ort() { cpu node "$here/peers/ort_bench.mjs" --model "$onnx" "${args[@]}" --threads 1 --iterations "$1" --warmup 1; }
per_call() { awk -v a="$1" -v b="$2" -v n=$((hi - lo)) 'BEGIN { printf "%.1f", (b - a) / n * 1e6 }'; }
for r in $(seq "$rounds"); do
  b=$(per_call "$(hep "$base" "$lo")" "$(hep "$base" "$hi")")
  n=$(per_call "$(hep "$new" "$lo")" "$(hep "$new" "$hi")")
  o=$(per_call "$(ort "$lo")" "$(ort "$hi")")
  echo "$model batch $batch round $r: base $b new $n ort $o"
done
