#!/usr/bin/env bash
# Creates .venv with GridLedger and its dependencies (idempotent). Node/npm are only
# needed to recompile the contracts and for the tests that check the compiled artifacts.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.gridledger-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e ".[dev]"
    touch "$stamp"
fi
if [ "${1:-}" = "--with-node" ]; then
    # `npm ci` rejects the lock file: anvil's optional per-platform binaries are listed without
    # versions (npm 11). `npm install` still installs the locked versions.
    npm install --no-audit --no-fund --silent
fi
