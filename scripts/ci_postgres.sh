#!/usr/bin/env bash
# Start a throw-away PostgreSQL server for the Dagster instance tests and print the
# DAGSTER_PG_* variables to export (the names dagster.yaml reads).
#
#   eval "$(scripts/ci_postgres.sh start)"   # initdb (once) + start, prints exports
#   scripts/ci_postgres.sh stop|restart|status|env
#
# Debian's postgresql package (PostgreSQL 15) must be installed. The data dir lives under
# /tmp so nothing outside it is touched; trust authentication on 127.0.0.1 only, which is
# fine for a test server that listens on loopback and holds nothing of value.
# Must run as root (it switches to the postgres user) or as the postgres user.
set -euo pipefail

PGDIR="${CAMPAIGN_PIPELINE_PGDIR:-/tmp/campaign_pipeline_pg}"
PGPORT="${DAGSTER_PG_PORT:-54329}"
PGHOST=127.0.0.1
PGUSER_DAGSTER="${DAGSTER_PG_USER:-dagster}"
PGPASSWORD_DAGSTER="${DAGSTER_PG_PASSWORD:-dagster}"
PGDB_DAGSTER="${DAGSTER_PG_DB:-dagster}"

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -z "$dir" ]]; then
    echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2
    exit 1
  fi
  echo "$dir"
}

as_postgres() {
  if [[ "$(id -un)" == "postgres" ]]; then
    bash -c "$1"
  else
    su postgres -s /bin/bash -c "$1"
  fi
}

print_env() {
  cat <<ENV
export DAGSTER_PG_HOST=$PGHOST
export DAGSTER_PG_PORT=$PGPORT
export DAGSTER_PG_USER=$PGUSER_DAGSTER
export DAGSTER_PG_PASSWORD=$PGPASSWORD_DAGSTER
export DAGSTER_PG_DB=$PGDB_DAGSTER
ENV
}

pg_ctl_cmd() {
  local bin
  bin="$(pg_bin)"
  echo "$bin/pg_ctl -D $PGDIR/data -l $PGDIR/server.log -o '-p $PGPORT -k $PGDIR -c listen_addresses=$PGHOST' -w -t 60"
}

start() {
  local bin
  bin="$(pg_bin)"
  mkdir -p "$PGDIR"
  chown postgres: "$PGDIR" 2>/dev/null || true
  chmod 700 "$PGDIR"
  if [[ ! -f "$PGDIR/data/PG_VERSION" ]]; then
    as_postgres "$bin/initdb -D $PGDIR/data -U postgres --auth=trust -E UTF8" >&2
  fi
  if ! as_postgres "$bin/pg_ctl -D $PGDIR/data status" >/dev/null 2>&1; then
    as_postgres "$(pg_ctl_cmd) start" >&2
  fi
  local psql=(psql -h "$PGHOST" -p "$PGPORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname='$PGUSER_DAGSTER'")" != "1" ]]; then
    "${psql[@]}" -c "CREATE ROLE \"$PGUSER_DAGSTER\" LOGIN PASSWORD '$PGPASSWORD_DAGSTER'" >&2
  fi
  if [[ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname='$PGDB_DAGSTER'")" != "1" ]]; then
    "${psql[@]}" -c "CREATE DATABASE \"$PGDB_DAGSTER\" OWNER \"$PGUSER_DAGSTER\"" >&2
  fi
  print_env
}

case "${1:-start}" in
  start) start ;;
  stop) as_postgres "$(pg_bin)/pg_ctl -D $PGDIR/data -m fast -w stop" >&2 ;;
  restart) as_postgres "$(pg_ctl_cmd) -m fast restart" >&2 ;;
  status) as_postgres "$(pg_bin)/pg_ctl -D $PGDIR/data status" ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|restart|status|env" >&2; exit 2 ;;
esac
