#!/usr/bin/env bash
# Quick start: set up, generate a 20-home community, settle one day on the embedded
# chain and serve the web UI. Extra arguments go to `gridledger demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gridledger demo "$@"
