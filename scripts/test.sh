#!/usr/bin/env bash
# The project's test command (README.md and .ci/run call exactly this).
# Tests that need PostgreSQL (DAGSTER_PG_* set) or Chromium skip locally when those are
# missing, and fail instead of skipping when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -m pytest -q "$@"
