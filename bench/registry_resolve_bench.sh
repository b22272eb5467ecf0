#!/usr/bin/env bash
# resolve(tag, run) latency with 100,000 intervals: SQLite (embedded), then a
# PostgreSQL 15 server started here on a free loopback port (skipped when its
# binaries are absent). Figures for docs/benchmarks.md, "Registry metadata".
#   bench/registry_resolve_bench.sh BUILD_DIR [--intervals N] [--lookups N]
set -euo pipefail
BUILD=${1:?usage: $0 BUILD_DIR [bench args]}
shift
BENCH="$BUILD/bench/registry_resolve_bench"
echo "== SQLite"
"$BENCH" --dir "$(mktemp -d /tmp/hepml_resolve_sqlite_XXXXXX)" "$@"
PG_BIN=/usr/lib/postgresql/15/bin
if [ ! -x "$PG_BIN/initdb" ]; then
  echo "== PostgreSQL: skipped (no $PG_BIN/initdb)"
  exit 0
fi
D=$(mktemp -d /tmp/hepml_resolve_pg_XXXXXX)
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$D" && chmod 700 "$D"
# synchronous_commit=off only shortens filling the 100,000 intervals (one
# transaction each); lookups are reads.
as_pg "$PG_BIN/initdb -D $D/data -A trust -U postgres > $D/initdb.log 2>&1"
as_pg "$PG_BIN/pg_ctl -D $D/data -w -o '-p $PORT -k $D -c listen_addresses=127.0.0.1 -c synchronous_commit=off' -l $D/log start > /dev/null"
trap 'as_pg "$PG_BIN/pg_ctl -D $D/data -m fast -w stop > /dev/null"; rm -rf "$D"' EXIT
as_pg "$PG_BIN/createdb -h 127.0.0.1 -p $PORT -U postgres bench"
echo "== PostgreSQL"
"$BENCH" --metadata "postgresql://postgres@127.0.0.1:$PORT/bench" --dir "$(mktemp -d /tmp/hepml_resolve_pgfiles_XXXXXX)" "$@"
