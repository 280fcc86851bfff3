#!/usr/bin/env bash
# Run a dagster CLI command against the right instance for this machine:
#
#   * DAGSTER_HOME already set        -> used as is (you chose).
#   * DAGSTER_PG_HOST set             -> the repo root, i.e. ./dagster.yaml (PostgreSQL).
#   * otherwise                       -> .dagster_home/ (embedded SQLite), created from
#                                        deploy/local/dagster.yaml on first use.
#
# Examples:
#   scripts/dagster.sh dev                                  # UI + daemon on 127.0.0.1:3000
#   scripts/dagster.sh definitions validate
#   scripts/dagster.sh asset materialize -m campaign_pipeline.definitions --select '*' --partition 2024-01-08
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"
if [[ -z "${DAGSTER_HOME:-}" ]]; then
  if [[ -n "${DAGSTER_PG_HOST:-}" ]]; then
    export DAGSTER_HOME="$REPO"
  else
    export DAGSTER_HOME="$REPO/.dagster_home"
    mkdir -p "$DAGSTER_HOME"
    [[ -f "$DAGSTER_HOME/dagster.yaml" ]] || cp deploy/local/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
  fi
fi
echo "scripts/dagster.sh: DAGSTER_HOME=$DAGSTER_HOME" >&2
DAGSTER="$REPO/.venv/bin/dagster"
[[ -x "$DAGSTER" ]] || DAGSTER="dagster"
if [[ "${1:-}" == "dev" ]]; then
  shift
  has_workspace=0
  for arg in "$@"; do [[ "$arg" == -w || "$arg" == --workspace || "$arg" == -m || "$arg" == -f ]] && has_workspace=1; done
  if (( has_workspace )); then exec "$DAGSTER" dev "$@"; fi
  exec "$DAGSTER" dev -w workspace.yaml -h "${DAGSTER_DEV_HOST:-127.0.0.1}" -p "${DAGSTER_DEV_PORT:-3000}" "$@"
fi
exec "$DAGSTER" "$@"
