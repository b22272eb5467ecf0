#!/usr/bin/env bash
# `make run`: describe and run the bundled example model (the server issue
# moves this to `hepml serve`).
set -euo pipefail
BUILD_DIR="${1:-build}"
HEPML="$BUILD_DIR/src/cli/hepml"
MODEL=examples/models/trigger_mlp.onnx
OUT="$BUILD_DIR/example-output"
echo "== hepml info $MODEL"
"$HEPML" info "$MODEL"
echo
echo "== hepml run $MODEL --input features=examples/models/trigger_mlp_input.npy --output-dir $OUT"
"$HEPML" run "$MODEL" --input features=examples/models/trigger_mlp_input.npy --output-dir "$OUT"
echo
echo "== hepml bench $MODEL --batch 1 --iterations 2000"
"$HEPML" bench "$MODEL" --batch 1 --iterations 2000
