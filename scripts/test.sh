#!/usr/bin/env bash
# Runs the whole test suite (sets everything up first). Extra arguments go to pytest.
# Without test paths among them, the network extra's tests (pandapower) then run too, in
# their own venv (scripts/test_network_extra.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-node
.venv/bin/python -m pytest "$@"
for arg in "$@"; do
    case "$arg" in -*) ;; *) exit 0 ;; esac  # a chosen part of the suite: that is all
done
flags=()
for arg in "$@"; do
    case "$arg" in -q|-v|-x|-qq|-vv) flags+=("$arg") ;; esac
done
bash scripts/test_network_extra.sh "${flags[@]}"
