#!/usr/bin/env bash
# Decode throughput of hepml's ROOT reader vs JSROOT (Node) on the same files
# and columns: entries/s and MB/s of the columns' uncompressed bytes (the
# branches' fTotBytes). Both read every basket again on each repeat; opening
# the file is not timed. Usage:
#   bench/data_throughput.sh BUILD_DIR [DATA_DIR] [REPEATS]
# Needs `npm install --ignore-scripts` in tests/data/jsroot first.
set -euo pipefail
BUILD=${1:-build}
DATA=${2:-$(dirname "$0")/../../shared/data/root}
REPEATS=${3:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
JS=$HERE/../tests/data/jsroot/dump_expected.mjs
ZCOLS=Run,Event,E1,px1,py1,pz1,pt1,eta1,phi1,Q1,E2,px2,py2,pz2,pt2,eta2,phi2,Q2,M
SCOLS=Category,Flag,Age,Service,Children,Grade,Step,Hrweek,Cost,Division,Nation
printf '%-32s %14s %10s %14s %10s %7s\n' file "hepml entry/s" "hepml MB/s" "JSROOT entry/s" "JSROOT MB/s" ratio
for spec in uproot-Zmumu-uncompressed.root:events:$ZCOLS uproot-Zmumu-zlib.root:events:$ZCOLS \
            uproot-Zmumu-lz4.root:events:$ZCOLS uproot-Zmumu-zstd.root:events:$ZCOLS \
            ntpl001_staff_rntuple_v1-0-1-0.root:Staff:$SCOLS; do
  IFS=: read -r f tree cols <<< "$spec"
  h=$("$BUILD"/bench/data_bench "$DATA/$f" "$tree" "$cols" "$REPEATS")
  j=$(node "$JS" --bench "$DATA/$f" "$tree" "$cols" "$REPEATS")
  /usr/bin/python3 - "$f" "$h" "$j" <<'PY'
import json, sys
f, h, j = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
he, hb = h["entries"] / h["seconds"], h["bytes"] / h["seconds"] / 1e6
je, jb = j["entries"] / j["seconds"], h["bytes"] / j["seconds"] / 1e6
print(f"{f:32s} {he:14.3g} {hb:10.1f} {je:14.3g} {jb:10.1f} {he/je:6.1f}x")
PY
done
