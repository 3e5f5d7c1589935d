"""How long a state with a year of intervals takes to open: the embedded chain replayed
from its journal alone (before snapshots), and from its snapshot (issue 10):

    opening a 35,040-interval state          target: seconds, not minutes (<= 10 s)

    .venv/bin/python bench/bench_startup.py --state DIR   # a settled state on the embedded chain
    .venv/bin/python bench/bench_startup.py               # settles 2 homes x 365 days first (hours here)

The state's own snapshot is put back afterwards; the chain is not changed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_S = 10.0
BUILD_CONFIG = "[market]\nhorizon_steps = 2\n[community]\nhomes = 2\ndays = 365\nseed = 5\n"


def opened(state: Path) -> tuple[float, int, int]:
    """Seconds to open the state's embedded chain, its head block and next interval."""
    from node.chain.connection import Chain
    from node.chain.market import Deployment, Market

    started = time.perf_counter()
    chain = Chain.embedded(state)
    seconds = time.perf_counter() - started
    try:
        market = Market(chain, Deployment.load(state / "deployment.json"))
        return seconds, chain.w3.eth.block_number, market.next_interval()
    finally:
        chain.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, help="a settled state directory on the embedded chain")
    args = parser.parse_args()
    state = args.state or REPO / "bench" / ".cache" / "year"
    if not (state / "chain.journal").exists():
        state.parent.mkdir(parents=True, exist_ok=True)
        config = state.parent / "bench-year.toml"
        config.write_text(BUILD_CONFIG)
        print(f"settling 2 homes x 365 days into {state} ...", flush=True)
        subprocess.run([sys.executable, "-m", "node.cli", "-q", "simulate", "--config", str(config), "--state", str(state),
                        "--no-progress"], cwd=REPO, check=True)

    from node.chain import embedded

    snapshot = state / embedded.SNAPSHOT_NAME
    if not snapshot.exists():
        print("no snapshot yet: opening once writes one at close")
        embedded.SNAPSHOT_AT_CLOSE = 1
        opened(state)
    size = snapshot.stat().st_size
    records = sum(1 for _ in open(state / "chain.journal", "rb")) - 1
    with_snapshot, head, next_interval = opened(state)

    aside = snapshot.with_name("chain.snapshot.bench-aside")
    snapshot.rename(aside)
    try:
        embedded.SNAPSHOT_AT_CLOSE = 10**12  # time the replay only; write no new snapshot
        replay, head_again, _ = opened(state)
    finally:
        aside.rename(snapshot)
    assert head_again == head
    print(f"opening {state}: {next_interval:,} intervals settled, {records:,} journaled transactions, snapshot "
          f"{size / 1e6:.0f} MB\n")
    for label, seconds in (("journal replayed (before snapshots)", replay), ("from the snapshot", with_snapshot)):
        verdict = "ok" if seconds <= TARGET_S else "OVER"
        print(f"{label:<40} {seconds:8.1f} s   target <= {TARGET_S:.0f} s   {verdict}")


if __name__ == "__main__":
    main()
