#!/usr/bin/env bash
# `hepml run --data` over a multi-GB HDF5 file against the model's standalone
# throughput at the same batch size: does reading overlap compute, and does
# memory stay flat? Each round runs `hepml bench MODEL --batch B -n 1000` and then
# `hepml run MODEL --data FILE --tree / --map x=f0..f15 --batch-size B`
# over /events of bench/make_hdf5.py's file (16M events of 16 float32
# features, trigger_mlp's input width), under /usr/bin/time for the peak RSS
# (VmHWM) and the CPU time of both (user + sys, all threads): on a loaded
# machine the wall-time ratio mostly measures the scheduler (the run needs
# two cores, the bench one), the ratio of entries per CPU second what the
# reading costs. Prints each round and the medians.
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
  /usr/bin/time -f 'cpu_s %U %S' -o "$OUT/btime" "$HEPML" bench "$MODEL" --batch "$BATCH" -n 1000 -w 10 --json > "$OUT/bench"
  bench=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["throughput_per_s"])' "$OUT/bench")
  bcpu=$(awk '/cpu_s/ {print $2 + $3}' "$OUT/btime")
  /usr/bin/time -f 'rss_kib %M cpu_s %U %S' -o "$OUT/time" "$HEPML" run "$MODEL" --data "$FILE" --tree / \
      --map "$MAP" --batch-size "$BATCH" --out "$OUT/scores.npy" > "$OUT/run" 2>/dev/null
  entries=$(awk '/entries in/ {print $1}' "$OUT/run")
  secs=$(awk '/entries in/ {print $4}' "$OUT/run")
  rss=$(awk '/rss_kib/ {print $2}' "$OUT/time")
  rcpu=$(awk '/rss_kib/ {print $4 + $5}' "$OUT/time")
  echo "round $r: bench $bench entries/s ($bcpu CPU s), run $entries entries in $secs s ($rcpu CPU s), peak RSS $((rss / 1024)) MiB"
  echo "$bench $entries $secs $rss $bcpu $rcpu" >> "$OUT/rounds"
  rm -f "$OUT/scores.npy"
done
/usr/bin/python3 - "$OUT/rounds" "$FILE" "$BATCH" <<'PY'
import os, statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1])]
bench = statistics.median(r[0] for r in rows)
run = statistics.median(r[1] / r[2] for r in rows)
rss = max(r[3] for r in rows) / 1024
size = os.path.getsize(sys.argv[2]) / 2**20
ratios = sorted(round(r[1] / r[2] / r[0], 2) for r in rows)
# Per CPU second: the bench's 1010 batches (10 warm-up) against its CPU time,
# process start and model load included in both.
bench_cpu = statistics.median(1010 * int(sys.argv[3]) / r[4] for r in rows)
run_cpu = statistics.median(r[1] / r[5] for r in rows)
print(f"per-round ratios {ratios}")
print(f"median: bench {bench:,.0f} entries/s, run --data {run:,.0f} entries/s, ratio {run / bench:.2f}; "
      f"peak RSS {rss:.0f} MiB for a {size:,.0f} MiB file")
print(f"per CPU second: bench {bench_cpu:,.0f} entries, run --data {run_cpu:,.0f} entries, ratio {run_cpu / bench_cpu:.2f}")
PY
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
