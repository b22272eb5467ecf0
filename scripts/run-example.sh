#!/usr/bin/env bash
# `make run`: a short look at the bundled example model (info, run, bench),
# then `hepml serve` on the example model repository in the foreground on the
# default ports (HTTP 8000, gRPC 8001, metrics 8002) until Ctrl-C.
set -euo pipefail
BUILD_DIR="${1:-build}"
HEPML="$BUILD_DIR/src/cli/hepml"
MODEL=examples/models/trigger_mlp.onnx
REPOSITORY=examples/model_repository
OUT="$BUILD_DIR/example-output"
echo "== hepml info $MODEL"
"$HEPML" info "$MODEL"
echo
echo "== hepml run $MODEL --input features=examples/models/trigger_mlp_input.npy --output-dir $OUT"
"$HEPML" run "$MODEL" --input features=examples/models/trigger_mlp_input.npy --output-dir "$OUT"
echo
echo "== hepml bench $MODEL --batch 1 --iterations 500"
"$HEPML" bench "$MODEL" --batch 1 --iterations 500
echo
cat <<EOF
== hepml serve --model-repository $REPOSITORY
From another terminal, once the three "Started ..." lines appear:

  # health (200 when live / when every model is loaded)
  curl -s -o /dev/null -w '%{http_code}\n' localhost:8000/v2/health/live
  curl -s -o /dev/null -w '%{http_code}\n' localhost:8000/v2/health/ready
  # model metadata and configuration
  curl -s -w '\n' localhost:8000/v2/models/trigger_mlp
  curl -s -w '\n' localhost:8000/v2/models/trigger_mlp/config
  # an inference: one event of 16 features, JSON tensors in and out
  curl -s -w '\n' -X POST localhost:8000/v2/models/trigger_mlp/infer -d '{"inputs":[{"name":"features","shape":[1,16],"datatype":"FP32","data":[0.1,-0.4,1.2,0.3,-0.8,0.5,0.0,0.9,-1.1,0.2,0.7,-0.3,0.4,-0.6,1.0,0.05]}]}'
  # per-model statistics and Prometheus metrics
  curl -s -w '\n' localhost:8000/v2/models/trigger_mlp/stats
  curl -s localhost:8002/metrics | grep '^nv_inference'
  # load test over gRPC: throughput and latency at 1, 2, 4 and 8 concurrent clients
  $HEPML perf -m trigger_mlp -u localhost:8001 -i grpc --concurrency-range 1:8:x2 --measurement-interval 2000

Ctrl-C stops the server (requests in flight are answered first).

EOF
exec "$HEPML" serve --model-repository "$REPOSITORY"
