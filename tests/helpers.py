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


def settled_entries(events) -> dict[int, dict[int, dict[str, int]]]:
    """{interval: {participant: {gridWh, p2pWh, amount}}} of the EntriesSettled logs
    among `events` (declared exclusions left out; a reversed interval's entries dropped)."""
    from node.chain.settlement import decode_entry

    out: dict[int, dict[int, dict[str, int]]] = {}
    for e in events:
        if e.name == "EntriesSettled":
            for entry in map(decode_entry, e.args["entries"]):
                if not entry.excluded:
                    out.setdefault(e.args["interval"], {})[entry.participant] = {
                        "gridWh": entry.grid_wh, "p2pWh": entry.p2p_wh, "amount": entry.amount}
        elif e.name == "IntervalReversed":
            out.pop(e.args["interval"], None)
    return out


# -- a rogue oracle ------------------------------------------------------------------------


def settle_shifted_p2p(market, index, oracle, builder, interval: int) -> None:
    """A rogue oracle settles `interval` (the next one) with 10 Wh of one P2P buyer's
    purchase booked onto another: conservation, capacity and prices still hold, so the
    contract accepts it; only the clearing re-run shows it. Applied to `index` too."""
    import numpy as np

    from node.clearing.interval import run_clearing, settlement_for
    from node.clearing.pricing import priced_settlement

    _, soc = oracle.resume()
    inputs = builder.inputs(interval, soc)
    index.store_inputs(inputs)
    honest = settlement_for(inputs, run_clearing(inputs))
    buyers = np.flatnonzero(honest.p2p_wh > 10)
    assert len(buyers) >= 2, "the window must have P2P buyers"
    p2p = honest.p2p_wh.copy()
    p2p[buyers[0]] -= 10
    p2p[buyers[1]] += 10
    rogue = priced_settlement(interval, honest.inputs_hash, honest.participants, honest.grid_wh, p2p,
                              honest.buy_price, honest.sell_price, honest.p2p_price)
    receipt = market.settle(rogue)
    index.apply(receipt.events, {receipt.tx_hash: receipt.gas_used}, up_to_block=receipt.block)
