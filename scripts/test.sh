#!/usr/bin/env bash
# Runs the whole test suite (sets everything up first). Extra arguments go to pytest.
# Without test paths among them, the network extra's tests (pandapower) then run too, in
# their own venv (scripts/test_network_extra.sh). The tests run on every core (pytest-xdist);
# `-n 0` runs them in one process (for -s, pdb, or a profile).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-node
parallel=(-n auto --dist worksteal)  # worksteal: the minute-long tests do not queue behind each other
for arg in "$@"; do
    case "$arg" in -n|-n*|--numprocesses*|--dist*) parallel=() ;; esac
done
.venv/bin/python -m pytest "${parallel[@]}" "$@"
for arg in "$@"; do
    case "$arg" in -*) ;; *) exit 0 ;; esac  # a chosen part of the suite: that is all
done
flags=()
for arg in "$@"; do
    case "$arg" in -q|-v|-x|-qq|-vv) flags+=("$arg") ;; esac
done
bash scripts/test_network_extra.sh "${flags[@]}"
