"""Helpers several test modules share: a small meter-data file, a community config file
settled in one uninterrupted run, and the gridledger command run as a separate process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from node.chain.connection import Chain
from node.data.config import load_config
from node.simulation.replay import RunResult, simulate
from node.simulation.state import StatePaths
from node.data.synthetic import generate_community

REPO = Path(__file__).resolve().parent.parent

# -- meter data ---------------------------------------------------------------------------

HEADER = "timestamp,participant,consumption_kwh,production_kwh"
# Lines 2-7 of the file (the header is line 1): two homes over three quarter hours.
GOOD_ROWS = [
    "2026-06-01T00:00:00+00:00,a,0.10,0.00",
    "2026-06-01T00:00:00+00:00,b,0.20,0.50",
    "2026-06-01T00:15:00+00:00,a,0.30,0.00",
    "2026-06-01T00:15:00+00:00,b,0.40,1.00",
    "2026-06-01T00:30:00+00:00,a,0.50,0.00",
    "2026-06-01T00:30:00+00:00,b,0.60,0.25",
]


def write_csv(tmp_path: Path, rows: list[str], header: str = HEADER, name: str = "meters.csv") -> Path:
    """A meter file `name` in `tmp_path`: the header, then one line per row."""
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def replaced(line: int, text: str) -> list[str]:
    """GOOD_ROWS with the row on spreadsheet line ``line`` replaced."""
    rows = list(GOOD_ROWS)
    rows[line - 2] = text
    return rows


# -- the community and the command ---------------------------------------------------------


def write_config(directory: Path, toml: str) -> Path:
    """`community.toml` in `directory`, holding `toml`."""
    path = directory / "community.toml"
    path.write_text(toml)
    return path


def settle_community(chain: Chain, config_file: Path, paths: StatePaths) -> RunResult:
    """The community `config_file` describes, settled on `chain` in one run that nothing
    interrupts: the reference an interrupted run must end like."""
    config = load_config(config_file)
    return simulate(chain, generate_community(config), config, paths, progress=False)


def start_gridledger(*args: str, executable_prefix: list[str] = (), **popen: Any) -> subprocess.Popen:
    """`python -m node.cli *args` started from the repository root, as an operator runs it
    (behind `executable_prefix`, e.g. faketime); `popen` goes to subprocess.Popen (env,
    stdout, stderr, text)."""
    return subprocess.Popen([*executable_prefix, sys.executable, "-m", "node.cli", *args], cwd=REPO, **popen)


def meter_rows(homes: int, steps: int, first_step: int = 0) -> list[str]:
    """Rows of a small, plausible meter file: `homes` homes (h1, h2, ...) over `steps`
    quarter hours from 2026-06-01 00:00 UTC (+ `first_step` quarter hours)."""
    rows = []
    for step in range(first_step, first_step + steps):
        minutes = 15 * step
        stamp = f"2026-06-01T{minutes // 60:02d}:{minutes % 60:02d}:00+00:00"
        for home in range(1, homes + 1):
            rows.append(f"{stamp},h{home},{0.1 + 0.05 * ((home + step) % 4):.2f},{0.3 * (home % 2) * (step % 3):.2f}")
    return rows


SMALL_CONFIG = """
[market]
horizon_steps = 4
"""
