#!/usr/bin/env bash
# Creates .venv with GridLedger and what running it needs (idempotent).
#   --dev        also the test tools (pytest, hypothesis, slither, ...) and the research extra
#                (gymnasium, pettingzoo, dask), which the tests cover
#   --with-node  --dev, plus `npm install` (solc-js, OpenZeppelin, anvil, forge) for the
#                tests that compile the contracts and run a real node
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
dev=0
node=0
for arg in "$@"; do
    case "$arg" in
        --dev) dev=1 ;;
        --with-node) dev=1; node=1 ;;
        *) echo "setup.sh: unknown option $arg (use --dev or --with-node)" >&2; exit 2 ;;
    esac
done
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi
runtime_stamp=.venv/.gridledger-installed
dev_stamp=.venv/.gridledger-installed-dev
fresh() { [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ]; }
if [ "$dev" = 1 ]; then
    want=".[dev,research]"; stamp=$dev_stamp; what="GridLedger, its research extra and its test tools"
else
    want="."; stamp=$runtime_stamp; what="GridLedger"
fi
if ! fresh "$stamp" && ! { [ "$dev" = 0 ] && fresh "$dev_stamp"; }; then
    echo "==> installing $what into .venv (the first time takes a few minutes)"
    # This machine's pip configuration may name package mirrors that do not exist here, and
    # setuptools reminds every editable install how editable installs work: neither is
    # about GridLedger, so neither is shown.
    .venv/bin/python -m pip install --disable-pip-version-check --quiet --upgrade pip 2>&1 \
        | sed -u "/^WARNING: Location 'file:/d"
    .venv/bin/python -m pip install --disable-pip-version-check --progress-bar on -e "$want" 2>&1 \
        | sed -u "/^WARNING: Location 'file:/d; /^Requirement already satisfied/d; /BuildBackendWarning: Editable installation/,/with strategy, WheelFile/d"
    touch "$stamp"
    if [ "$dev" = 1 ]; then touch "$runtime_stamp"; fi
fi
if [ "$node" = 1 ]; then
    echo "==> installing the Solidity toolchain (npm)"
    # `npm ci` rejects the lock file: anvil's optional per-platform binaries are listed without
    # versions (npm 11). `npm install` still installs the locked versions.
    npm install --no-audit --no-fund --silent
fi
echo "==> ready"
