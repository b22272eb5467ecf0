#!/usr/bin/env bash
# The registry blob store against cp and xrdcp on the same machine:
#   1. dedup: 10 versions of a 200 MB model-like file, each changing 1% of the bytes;
#   2. push and pull of a fresh 200 MB file: file:// vs `cp` (and `cp` + fsync of the copy),
#      root:// to a local xrootd vs `xrdcp` both ways, in REPEATS interleaved rounds (each
#      contender once per round); best and median of the rounds.
# The store fsyncs every chunk and manifest before a push returns and fsyncs the pulled
# file before renaming it into place; plain `cp` and `xrdcp` do not, so both figures
# are given. Every timed run starts after a `sync`, so none pays for another's dirty pages
# (ext4 in ordered mode flushes them on the next fsync). Usage (as root: xrootd is started as user nobody):
#   bench/registry_bench.sh BUILD_DIR [MB] [REPEATS]
set -euo pipefail
BUILD=${1:-build}
MB=${2:-200}
REPEATS=${3:-3}
BENCH=$BUILD/bench/registry_bench
WORK=$(mktemp -d /var/tmp/hepml_registry_bench.XXXXXX)
XRD_PID=
cleanup() {
  if [ -n "$XRD_PID" ]; then kill "$XRD_PID" 2>/dev/null || true; wait "$XRD_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== dedup: 10 versions of a ${MB} MB float32 file, 1% changed per version"
mkdir -p "$WORK/dedup"
"$BENCH" dedup "$WORK/dedup" "$MB" 10
rm -rf "$WORK/dedup"

"$BENCH" gen "$WORK/model.bin" "$MB"
cat "$WORK/model.bin" > /dev/null  # in the page cache for every contender

timeit() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
seconds() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["seconds"])'; }
# The JSON goes to a file and is read after the run: a python3 reading the
# pipe would start beside the measured process and take CPU from it.
bench_s() { "$@" > "$WORK/bench.json"; seconds < "$WORK/bench.json"; }
ID=$(sha256sum "$WORK/model.bin" | cut -d' ' -f1)

# A local xrootd serving $WORK/export as user nobody.
mkdir -p "$WORK/export"
chown nobody "$WORK" "$WORK/export"
chmod 755 "$WORK"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
xrootd -R nobody -p "$PORT" -l "$WORK/xrootd.log" "$WORK/export" > /dev/null 2>&1 &
XRD_PID=$!
for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
R="root://127.0.0.1:$PORT/$WORK/export"

# Rounds: every contender once per round, in the same order, so a busy
# spell on the shared machine hits all of them alike. Each line of
# $WORK/times is "NAME SECONDS".
: > "$WORK/times"
rec() { echo "$1 $2" >> "$WORK/times"; }
for i in $(seq "$REPEATS"); do
  rm -f "$WORK/cp.bin"; sync; rec cp "$(timeit cp "$WORK/model.bin" "$WORK/cp.bin")"
  rm -f "$WORK/cp.bin"; sync; rec cps "$(timeit bash -c "cp '$WORK/model.bin' '$WORK/cp.bin' && sync '$WORK/cp.bin'")"
  rm -rf "$WORK/store"; sync; rec push "$(bench_s "$BENCH" push "file://$WORK/store" "$WORK/model.bin")"
  rm -f "$WORK/pulled.bin"; sync; rec pull "$(bench_s "$BENCH" pull "file://$WORK/store" "$ID" "$WORK/pulled.bin")"
  cmp "$WORK/model.bin" "$WORK/pulled.bin"
  # Every chunk compressed at zstd level 3 (the store before raw chunks).
  rm -rf "$WORK/zstore"; sync
  rec pushz "$(REGISTRY_BENCH_MIN_SAVING=0 REGISTRY_BENCH_LEVEL=3 bench_s "$BENCH" push "file://$WORK/zstore" "$WORK/model.bin")"
  rm -f "$WORK/pulled.bin"; sync; rec pullz "$(bench_s "$BENCH" pull "file://$WORK/zstore" "$ID" "$WORK/pulled.bin")"
  cmp "$WORK/model.bin" "$WORK/pulled.bin"
  rm -rf "$WORK/zstore"
  sync; rec xup "$(timeit xrdcp -s -f "$WORK/model.bin" "$R/copy.bin")"
  rm -f "$WORK/xdown.bin"; sync; rec xdown "$(timeit xrdcp -s -f "$R/copy.bin" "$WORK/xdown.bin")"
  rm -rf "$WORK/export/store"; sync; rec rpush "$(bench_s "$BENCH" push "$R/store" "$WORK/model.bin")"
  rm -f "$WORK/rpulled.bin"; sync; rec rpull "$(bench_s "$BENCH" pull "$R/store" "$ID" "$WORK/rpulled.bin")"
  cmp "$WORK/model.bin" "$WORK/rpulled.bin"
done

echo "== throughput: ${MB} MB, $REPEATS interleaved rounds, best (median) (MB/s = 2^20 bytes/s)"
/usr/bin/python3 - "$MB" "$WORK/times" <<'PY'
import statistics, sys
mb = float(sys.argv[1])
t = {}
for line in open(sys.argv[2]):
    name, sec = line.split()
    t.setdefault(name, []).append(float(sec))
best = {k: min(v) for k, v in t.items()}
med = {k: statistics.median(v) for k, v in t.items()}
rows = [("file:// push", "push", "cp", "cp", "cps", "cp + fsync"),
        ("file:// pull", "pull", "cp", "cp", "cps", "cp + fsync"),
        ("file:// push, all zstd -3", "pushz", "cp", "cp", "cps", "cp + fsync"),
        ("file:// pull, all zstd -3", "pullz", "cp", "cp", "cps", "cp + fsync"),
        ("root:// push", "rpush", "xup", "xrdcp up", None, None),
        ("root:// pull", "rpull", "xdown", "xrdcp down", None, None)]
print(f"{'operation':26s} {'MB/s':>12s}   {'peer':10s} {'MB/s':>12s} {'ratio':>11s}   {'peer 2':10s} {'MB/s':>12s} {'ratio':>11s}")
for name, k, p, pn, p2, p2n in rows:
    r = lambda d, x: mb / d[x]
    line = (f"{name:26s} {r(best, k):5.0f} ({r(med, k):4.0f})   {pn:10s} {r(best, p):5.0f} ({r(med, p):4.0f})"
            f" {best[p] / best[k]:4.2f} ({med[p] / med[k]:4.2f})")
    if p2:
        line += (f"   {p2n:10s} {r(best, p2):5.0f} ({r(med, p2):4.0f})"
                 f" {best[p2] / best[k]:4.2f} ({med[p2] / med[k]:4.2f})")
    print(line)
PY
