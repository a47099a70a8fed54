#!/usr/bin/env bash
# Install giftcast into .venv and run it on the embedded default (SQLite under ./data/).
# Usage: bash scripts/serve.sh [--host H] [--port P] [--db URL]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
exec .venv/bin/giftcast serve "$@"
