"""How long a state with a year of intervals takes to open: the embedded chain replayed
from its journal alone (before snapshots), and from its snapshot (issue 10):

    opening a 35,040-interval state          target: seconds, not minutes (<= 10 s)

    .venv/bin/python bench/bench_startup.py --state DIR   # a settled state on the embedded chain
    .venv/bin/python bench/bench_startup.py               # builds a year of settlements first (~1 h here)

Without --state it builds its year: a 2-home market set up as `simulate` does, then 35,040
settlements of both homes (grid and P2P energy, priced at the tariffs, authorised by their
mandates) sent straight to the market, one transaction per interval as the oracle sends
them. It skips the optimiser and the index (running the whole pipeline for a year takes
hours on a shared machine); what it times, opening the chain, depends only on the journal.
The state's own snapshot is put back afterwards; the chain is not changed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_S = 10.0
YEAR = 35_040  # 15-minute intervals


def build_year(state: Path, intervals: int = YEAR) -> None:
    """A 2-home market with `intervals` settlements, built as the module docstring says
    (resumes where a killed build stopped)."""
    from dataclasses import replace

    import numpy as np
    from eth_utils import keccak

    from node.chain.connection import Chain
    from node.clearing.pricing import priced_settlement
    from node.data.config import default_config
    from node.data.synthetic import generate_community
    from node.index.store import Index
    from node.simulation.replay import open_market
    from node.simulation.state import StatePaths, claim_state
    from node.units import UNITS_PER_TOKEN

    config = default_config()
    config = replace(config, community=replace(config.community, homes=2, days=1, seed=5))
    claim_state(state, "simulate")
    paths = StatePaths(state)
    started = time.perf_counter()
    with Chain.embedded(state) as chain:
        index = Index(paths.index)
        market, ids = open_market(chain, generate_community(config), config, paths, index)
        index.close()
        first = market.next_interval()
        if market.balance(int(ids[0])) < 10_000 * UNITS_PER_TOKEN:
            # Wallets are prepaid: the buying home gets a year's worth up front.
            market.fund_wallets({int(ids[0]): 10_000 * UNITS_PER_TOKEN})
        clock = market.clock()
        now = chain.w3.eth.get_block("latest")["timestamp"]
        print(f"building {intervals:,} settlements into {state} (from interval {first}) ...", flush=True)
        for k in range(first, intervals):
            if now < clock.end(k):  # an interval settles once it has ended by the chain's clock
                chain.advance_time(clock.end(k))
                now = clock.end(k)
            terms = market.terms_at(k)  # priced as the contract prices it (time of use)
            buy, sell = terms.import_price, terms.export_price
            settlement = priced_settlement(k, keccak(k.to_bytes(8, "big")), ids, np.array([150 + k % 50, -100]),
                                           np.array([60, -60]), buy, sell, (buy + sell) // 2,
                                           p2p_fee=terms.p2p_fee, terms_index=terms.index)
            market.settle(settlement)
            if k % 1000 == 999:
                print(f"  {k + 1:,} settled ({time.perf_counter() - started:.0f} s)", flush=True)
    state.with_name(state.name + ".built").write_text(f"{intervals}\n")


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
    if args.state is None and not state.with_name(state.name + ".built").exists():
        build_year(state)  # a given --state is timed as it is

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
