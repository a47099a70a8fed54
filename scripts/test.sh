#!/usr/bin/env bash
# Install giftcast with its dev tools into .venv and run every check: lint, format, types, tests.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "== ruff check";          .venv/bin/ruff check server tests scripts
echo "== ruff format --check"; .venv/bin/ruff format --check server tests scripts
echo "== mypy --strict";       .venv/bin/mypy --strict server tests scripts
echo "== pytest";              .venv/bin/python -m pytest "$@"
