#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1:${PGPORT:-55432} for the store and sharded-run
# tests, installing Debian's package if needed. Prints the SQLAlchemy URL on its last line.
set -euo pipefail
PGPORT="${PGPORT:-55432}"
DATA="${PGDATA_DIR:-/tmp/dxgraph-pg}"
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$BIN" ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
  BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
RUNAS=()
if [ "$(id -u)" = "0" ]; then RUNAS=(runuser -u postgres --); fi
if ! "${RUNAS[@]}" "$BIN/pg_isready" -h 127.0.0.1 -p "$PGPORT" >/dev/null 2>&1; then
  rm -rf "$DATA" && mkdir -p "$DATA"
  [ "$(id -u)" = "0" ] && chown postgres "$DATA"
  "${RUNAS[@]}" "$BIN/initdb" -D "$DATA" -U postgres --auth=trust >/dev/null
  "${RUNAS[@]}" "$BIN/pg_ctl" -D "$DATA" -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" -l "$DATA/log" -w start >/dev/null
fi
"${RUNAS[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -tc "select 1 from pg_database where datname='dxgraph_test'" | grep -q 1 \
  || "${RUNAS[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres dxgraph_test
echo "postgresql+psycopg://postgres@127.0.0.1:$PGPORT/dxgraph_test"
