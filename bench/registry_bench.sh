#!/usr/bin/env bash
# The registry blob store against cp and xrdcp on the same machine:
#   1. dedup: 10 versions of a 200 MB model-like file, each changing 1% of the bytes;
#   2. push and pull of a fresh 200 MB file: file:// vs `cp` (and `cp` + fsync of the copy),
#      root:// to a local xrootd vs `xrdcp` both ways. Best of REPEATS runs each.
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

best() { sort -g | head -1; }
timeit() { local t0 t1; t0=$(date +%s.%N); "$@" > /dev/null; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l; }
seconds() { /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["seconds"])'; }

cp_t=$(for i in $(seq "$REPEATS"); do rm -f "$WORK/cp.bin"; sync; timeit cp "$WORK/model.bin" "$WORK/cp.bin"; done | best)
cps_t=$(for i in $(seq "$REPEATS"); do rm -f "$WORK/cp.bin"; sync; timeit bash -c "cp '$WORK/model.bin' '$WORK/cp.bin' && sync '$WORK/cp.bin'"; done | best)
push_t=$(for i in $(seq "$REPEATS"); do rm -rf "$WORK/store"; sync; "$BENCH" push "file://$WORK/store" "$WORK/model.bin" | seconds; done | best)
push1_t=$(for i in $(seq "$REPEATS"); do rm -rf "$WORK/store"; sync; REGISTRY_BENCH_LEVEL=1 "$BENCH" push "file://$WORK/store" "$WORK/model.bin" | seconds; done | best)
ID=$(sha256sum "$WORK/model.bin" | cut -d' ' -f1)
pull_t=$(for i in $(seq "$REPEATS"); do rm -f "$WORK/pulled.bin"; sync; "$BENCH" pull "file://$WORK/store" "$ID" "$WORK/pulled.bin" | seconds; done | best)
cmp "$WORK/model.bin" "$WORK/pulled.bin"

# A local xrootd serving $WORK/export as user nobody.
mkdir -p "$WORK/export"
chown nobody "$WORK" "$WORK/export"
chmod 755 "$WORK"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
xrootd -R nobody -p "$PORT" -l "$WORK/xrootd.log" "$WORK/export" > /dev/null 2>&1 &
XRD_PID=$!
for i in $(seq 50); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
R="root://127.0.0.1:$PORT/$WORK/export"
xup_t=$(for i in $(seq "$REPEATS"); do sync; timeit xrdcp -s -f "$WORK/model.bin" "$R/copy.bin"; done | best)
xdown_t=$(for i in $(seq "$REPEATS"); do rm -f "$WORK/xdown.bin"; sync; timeit xrdcp -s -f "$R/copy.bin" "$WORK/xdown.bin"; done | best)
rpush_t=$(for i in $(seq "$REPEATS"); do rm -rf "$WORK/export/store"; sync; "$BENCH" push "$R/store" "$WORK/model.bin" | seconds; done | best)
rpull_t=$(for i in $(seq "$REPEATS"); do rm -f "$WORK/rpulled.bin"; sync; "$BENCH" pull "$R/store" "$ID" "$WORK/rpulled.bin" | seconds; done | best)
cmp "$WORK/model.bin" "$WORK/rpulled.bin"

echo "== throughput: ${MB} MB, best of $REPEATS (MB/s = 2^20 bytes/s)"
/usr/bin/python3 - "$MB" "$cp_t" "$cps_t" "$push_t" "$push1_t" "$pull_t" "$xup_t" "$xdown_t" "$rpush_t" "$rpull_t" <<'PY'
import sys
mb = float(sys.argv[1]); cp, cps, push, push1, pull, xup, xdown, rpush, rpull = map(float, sys.argv[2:])
r = lambda t: mb / t
rows = [("file:// push", push, cp, "cp", cps, "cp + fsync"),
        ("file:// push, zstd -1", push1, cp, "cp", cps, "cp + fsync"),
        ("file:// pull", pull, cp, "cp", cps, "cp + fsync"),
        ("root:// push", rpush, xup, "xrdcp up", None, None),
        ("root:// pull", rpull, xdown, "xrdcp down", None, None)]
print(f"{'operation':22s} {'MB/s':>8s}   {'peer':12s} {'MB/s':>8s} {'ratio':>6s}   {'peer 2':12s} {'MB/s':>8s} {'ratio':>6s}")
for name, t, p, pn, p2, p2n in rows:
    line = f"{name:22s} {r(t):8.0f}   {pn:12s} {r(p):8.0f} {p/t:6.2f}"
    if p2: line += f"   {p2n:12s} {r(p2):8.0f} {p2/t:6.2f}"
    print(line)
PY
