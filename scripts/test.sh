#!/usr/bin/env bash
# The project's test command (README.md and .ci/run call exactly this): the linter and the
# formatter check first (a lint error fails CI), then pytest.
# Tests that need PostgreSQL (DAGSTER_PG_* set) or Chromium skip locally when those are
# missing, and fail instead of skipping when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -q "$@"
