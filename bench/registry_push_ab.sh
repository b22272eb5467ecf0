#!/usr/bin/env bash
# A/B of the file:// push of two registry_bench binaries against `cp` + sync of
# the copy, in interleaved rounds (each contender once per round, each after
# removing its previous output and a `sync`), with the wall seconds the push
# reports and the CPU seconds (user + sys) /usr/bin/time measures. CPU time
# holds up on a machine shared with other builds; wall time does not.
#   bench/registry_push_ab.sh BASE_BENCH NEW_BENCH [MB] [ROUNDS]
#   bench/registry_push_ab.sh /var/tmp/registry_bench.base build/bench/registry_bench 200 7
set -euo pipefail
BASE=$1
NEW=$2
MB=${3:-200}
ROUNDS=${4:-5}
WORK=$(mktemp -d /var/tmp/hepml_push_ab.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
"$NEW" gen "$WORK/model.bin" "$MB"
cat "$WORK/model.bin" > /dev/null  # in the page cache for every contender
: > "$WORK/times"
for i in $(seq "$ROUNDS"); do
  rm -f "$WORK/cp.bin"; sync
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$WORK/cpu" bash -c "cp '$WORK/model.bin' '$WORK/cp.bin' && sync '$WORK/cp.bin'"
  t1=$(date +%s.%N)
  echo "cp+sync $(echo "$t1 - $t0" | bc -l) $(awk '{print $1 + $2}' "$WORK/cpu")" >> "$WORK/times"
  for v in base new; do
    B=$BASE; [ "$v" = new ] && B=$NEW
    rm -rf "$WORK/store"; sync
    /usr/bin/time -f "%U %S" -o "$WORK/cpu" "$B" push "file://$WORK/store" "$WORK/model.bin" > "$WORK/out.json"
    echo "$v $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$WORK/out.json")" \
      "$(awk '{print $1 + $2}' "$WORK/cpu")" >> "$WORK/times"
  done
done
/usr/bin/python3 - "$MB" "$WORK/times" <<'PY'
import statistics, sys
mb = float(sys.argv[1])
wall, cpu = {}, {}
for line in open(sys.argv[2]):
    k, w, c = line.split()
    wall.setdefault(k, []).append(float(w))
    cpu.setdefault(k, []).append(float(c))
ref = wall["cp+sync"]
print(f"{'':8s} {'wall s best (median)':>22s} {'MB/s best (median)':>20s} {'CPU s median':>13s} {'cp+sync / this':>16s}")
for k, v in wall.items():
    b, m = min(v), statistics.median(v)
    print(f"{k:8s} {b:10.3f} ({m:.3f}) {mb / b:11.0f} ({mb / m:4.0f}) {statistics.median(cpu[k]):13.2f}"
          f" {min(ref) / b:8.2f} ({statistics.median(ref) / m:.2f})")
PY
