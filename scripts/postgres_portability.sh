#!/usr/bin/env bash
# Portability proof: the whole dbt project builds on a real PostgreSQL with every data test
# passing, the same project and tests as on DuckDB (only the dbt target changes).
#
#   scripts/postgres_portability.sh [WORLD_DIR]
#
# 1. installs PostgreSQL from Debian's packages when no server binaries are found;
# 2. simulates a small world (seed 1) unless WORLD_DIR (a `triangulate simulate` output) is given;
# 3. loads its landing zone into a throwaway DuckDB warehouse (the lead's ingest) and copies
#    the raw.* tables into a throwaway PostgreSQL cluster (initdb in a temp dir, loopback, a
#    free port, trust auth) with psycopg2 COPY;
# 4. runs `dbt build --target postgres` twice (full build, then the incremental path) and
#    `dbt docs generate`;
# 5. stops the cluster and removes the temp dir, whatever happened.
#
# Env: PYTHON (default: the project's .venv/bin/python, from `make setup`); KEEP_WORK=1 keeps the temp dir for inspection;
# MART_TOTALS_OUT=FILE writes per-mart aggregates (scripts/dbt_world.py MART_TOTALS) as JSON,
# which tests/test_dbt_postgres.py compares with the DuckDB build of the same world.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-"$ROOT/.venv/bin/python"}
WORLD=${1:-}

log() { echo "==> $*" >&2; }

find_pgbin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
PGBIN=$(find_pgbin)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing PostgreSQL from Debian's packages"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  PGBIN=$(find_pgbin)
fi
log "PostgreSQL: $("$PGBIN/postgres" --version)"

WORK=$(mktemp -d -t triangulate_pg.XXXXXX)
PGROOT=$(mktemp -d -t triangulate_pgdata.XXXXXX)
PGDATA="$PGROOT/data"
AS_PG=()
if [ "$(id -u)" -eq 0 ]; then
  # the server refuses to run as root: run the throwaway cluster as the postgres user
  AS_PG=(runuser -u postgres --)
  chown postgres "$PGROOT"
fi

cleanup() {
  if [ -f "$PGDATA/postmaster.pid" ]; then
    "${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PGROOT"
  if [ "${KEEP_WORK:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

if [ -z "$WORLD" ]; then
  WORLD="$WORK/world"
  log "simulating a small world into $WORLD"
  $PYTHON -c "from triangulate.simulator import simulate_world; simulate_world('$WORLD', 'small', 1)"
fi

log "loading $WORLD/landing into raw.* (DuckDB)"
$PYTHON scripts/dbt_world.py load-raw --home "$WORK/home" --landing "$WORLD/landing" >/dev/null

PORT=$($PYTHON -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log "starting a throwaway PostgreSQL cluster on 127.0.0.1:$PORT"
"${AS_PG[@]}" "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
"${AS_PG[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGROOT/server.log" -w -t 60 \
  -o "-p $PORT -k $PGROOT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
  start >/dev/null
"$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres triangulate

log "copying raw.* into PostgreSQL"
$PYTHON scripts/dbt_world.py raw-to-postgres --warehouse "$WORK/home/warehouse.duckdb" \
  --dsn "host=127.0.0.1 port=$PORT user=postgres dbname=triangulate" >&2

export TRIANGULATE_HOME="$WORK/home" TRIANGULATE_DBT_TARGET=postgres
export TRIANGULATE_PG_HOST=127.0.0.1 TRIANGULATE_PG_PORT="$PORT" TRIANGULATE_PG_USER=postgres
export TRIANGULATE_PG_PASSWORD="" TRIANGULATE_PG_DATABASE=triangulate
export DBT_TARGET_PATH="$WORK/dbt_target" DBT_LOG_PATH="$WORK/dbt_logs"
dbt() { $PYTHON -m dbt.cli.main "$@" --project-dir dbt_project --profiles-dir dbt_project --target postgres; }

log "dbt build --target postgres (full build)"
dbt build --full-refresh
log "dbt build --target postgres (incremental path)"
dbt build
log "dbt docs generate --target postgres"
dbt docs generate >/dev/null
if [ -n "${MART_TOTALS_OUT:-}" ]; then
  $PYTHON scripts/dbt_world.py postgres-mart-totals \
    --dsn "host=127.0.0.1 port=$PORT user=postgres dbname=triangulate" > "$MART_TOTALS_OUT"
  log "mart totals written to $MART_TOTALS_OUT"
fi
log "PostgreSQL portability check passed"
