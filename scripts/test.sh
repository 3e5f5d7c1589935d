#!/usr/bin/env bash
# Runs the whole test suite (sets everything up first). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-node
exec .venv/bin/python -m pytest "$@"
