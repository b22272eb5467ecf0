#!/usr/bin/env bash
# `hepml run --data` over a multi-GB HDF5 file against the model's standalone
# throughput at the same batch size: does reading overlap compute, and does
# memory stay flat? Each round runs `hepml bench MODEL --batch B` and then
# `hepml run MODEL --data FILE --tree / --map x=f0..f15 --batch-size B`
# over /events of bench/make_hdf5.py's file (16M events of 16 float32
# features, trigger_mlp's input width), under /usr/bin/time for the peak RSS
# (VmHWM). Prints each round and the medians.
#
#   bench/data_run_overlap.sh BUILD_DIR MODEL.onnx FILE.h5 [ROUNDS] [BATCH]
set -euo pipefail
BUILD=$1 MODEL=$2 FILE=$3 ROUNDS=${4:-3} BATCH=${5:-4096}
HEPML=$BUILD/src/cli/hepml
OUT=$(mktemp -d /var/tmp/hepml_overlap.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
MAP=x=$(seq -s, -f 'f%g' 0 15)
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "file: $(du -h "$FILE" | cut -f1)"
for r in $(seq "$ROUNDS"); do
  bench=$("$HEPML" bench "$MODEL" --batch "$BATCH" -n 200 -w 10 --json |
          /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["throughput_per_s"])')
  /usr/bin/time -f 'rss_kib %M' -o "$OUT/time" "$HEPML" run "$MODEL" --data "$FILE" --tree / \
      --map "$MAP" --batch-size "$BATCH" --out "$OUT/scores.npy" > "$OUT/run" 2>/dev/null
  entries=$(awk '/entries in/ {print $1}' "$OUT/run")
  secs=$(awk '/entries in/ {print $4}' "$OUT/run")
  rss=$(awk '/rss_kib/ {print $2}' "$OUT/time")
  echo "round $r: bench $bench entries/s, run $entries entries in $secs s, peak RSS $((rss / 1024)) MiB"
  echo "$bench $entries $secs $rss" >> "$OUT/rounds"
  rm -f "$OUT/scores.npy"
done
/usr/bin/python3 - "$OUT/rounds" "$FILE" <<'PY'
import os, statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
bench = statistics.median(r[0] for r in rows)
run = statistics.median(r[1] / r[2] for r in rows)
rss = max(r[3] for r in rows) / 1024
size = os.path.getsize(sys.argv[2]) / 2**20
ratios = sorted(round(r[1] / r[2] / r[0], 2) for r in rows)
print(f"per-round ratios {ratios}")
print(f"median: bench {bench:,.0f} entries/s, run --data {run:,.0f} entries/s, ratio {run / bench:.2f}; "
      f"peak RSS {rss:.0f} MiB for a {size:,.0f} MiB file")
PY
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
