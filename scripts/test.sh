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
# The browser tests drive Debian's chromium (never a `playwright install` download).
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (Debian's package) for tests/browser"
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; fi
  if ! { $SUDO apt-get update -qq \
         && $SUDO env DEBIAN_FRONTEND=noninteractive \
              apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends chromium; }; then
    echo "!! could not install chromium: the browser tests in tests/browser will FAIL." >&2
    echo "!! Install Debian's chromium package (/usr/bin/chromium) as root, then run this again." >&2
  fi
fi
# The peer benchmark's test runs a Node `ws` server (scripts/peers/node_ws); its package is pinned
# by package-lock.json. Without node and npm that test fails with a clear message, never skips.
if [ ! -d scripts/peers/node_ws/node_modules ] && command -v npm >/dev/null 2>&1; then
  echo "== npm ci (scripts/peers/node_ws)"
  npm ci --prefix scripts/peers/node_ws --no-audit --no-fund --loglevel=error
fi
echo "== ruff check";          .venv/bin/ruff check server tests scripts
echo "== ruff format --check"; .venv/bin/ruff format --check server tests scripts
echo "== mypy --strict";       .venv/bin/mypy --strict server tests scripts
echo "== pytest";              .venv/bin/python -m pytest "$@"
