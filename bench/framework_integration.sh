#!/usr/bin/env bash
# Framework integration figures (docs/benchmarks.md, "Framework integration"):
# hepml_framework_example in process on 1 and 2 threads sharing one Session,
# then RemoteSession against `hepml serve` (examples/model_repository, on a
# free loopback port) with 64 concurrent callers, without and with
# client-side coalescing: 64 RunAsync calls in flight from one loop, and 64
# threads each calling Run.
#   bench/framework_integration.sh [BUILD_DIR] [EVENTS]
set -euo pipefail
BUILD=${1:-build}
EVENTS=${2:-300000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXAMPLE=$BUILD/examples/framework/hepml_framework_example
MODEL=$ROOT/examples/models/trigger_mlp.onnx
LOG=$(mktemp)
"$BUILD/src/cli/hepml" serve --model-repository "$ROOT/examples/model_repository" \
  --http-port -1 --metrics-port -1 --grpc-port 0 >"$LOG" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; wait $SERVER 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 100); do
  grep -q "Started GRPCInferenceService" "$LOG" && break
  sleep 0.1
done
ADDRESS=$(sed -n 's/.*Started GRPCInferenceService at \([0-9.]*:[0-9]*\).*/\1/p' "$LOG")
echo "# $(date -u +%FT%TZ) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$EXAMPLE" --model "$MODEL" --events "$EVENTS" --threads 1,2,1,2
"$EXAMPLE" --model "$MODEL" --events 1000 --threads 1 --server "$ADDRESS" --remote-model trigger_mlp \
  --inflight 64 --coalesce 0,64 --remote-events 20000 | grep '^remote'
"$EXAMPLE" --model "$MODEL" --events 1000 --threads 1 --server "$ADDRESS" --remote-model trigger_mlp \
  --inflight 64 --caller-threads --max-delay-us 1000 --coalesce 0,64 --remote-events 20000 | grep '^remote'
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
