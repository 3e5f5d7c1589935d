#!/usr/bin/env bash
# Runs the tests of the `network` extra (pandapower and MATPOWER imports) in a venv of
# their own, `.venv-network`: pandapower pins pandas ~=2.3, while a plain install of
# GridLedger (and the main suite in .venv) gets pandas 3. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
venv=.venv-network
stamp=$venv/.gridledger-installed
if [ ! -x $venv/bin/python ]; then
    echo "==> creating $venv for the network extra's tests"
    "$PYTHON" -m venv $venv
fi
if [ ! -f $stamp ] || [ pyproject.toml -nt $stamp ]; then
    echo "==> installing GridLedger with its network extra (pandapower) into $venv"
    $venv/bin/python -m pip install --disable-pip-version-check --quiet -e ".[network]" "pytest>=8" "hypothesis>=6.100" 2>&1 \
        | sed -u "/^WARNING: Location 'file:/d; /BuildBackendWarning: Editable installation/,/with strategy, WheelFile/d"
    touch $stamp
fi
exec $venv/bin/python -m pytest -p no:cacheprovider tests/test_pandapower_io.py tests/test_network_cli.py tests/test_pandapower_community.py "$@"
