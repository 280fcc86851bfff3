#!/usr/bin/env bash
# Create .venv and install the locked dependencies plus this package (editable). Idempotent.
# requirements.lock holds the base dependencies and the dev, s3 (s3fs) and celery
# (dagster-celery, Redis client) extras: the test suite uses all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.lock
.venv/bin/python -m pip install --quiet --no-deps -e .
echo "setup: .venv ready ($(.venv/bin/python --version))"
