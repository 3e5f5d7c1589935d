"""Gas and time per participant of an interval settled in chunks, on the embedded chain.

Registers N participants (funded wallets, standing mandates; --orders of them settle by
a signed order instead) on a market with the oracle's bond posted, settles one interval
of mixed importers, exporters and P2P trade with Market.settle (which chunks it: EIP-7825
caps a transaction at 16,777,216 gas) and prints each transaction's gas and the totals
per participant. Then it disputes the interval with the meter-signed reading of the
middle participant, which the settlement overstated by 1 kWh (Market.dispute: the dispute
names every chunk's hash and carries the one chunk holding that entry, then one reverse
chunk per chunk takes every wallet change back), and prints those transactions against
the cap too. The market and community are set up as bench_settlement_gas sets them up.
Run: .venv/bin/python bench/bench_chunked.py [--participants 10000] [--orders 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_settlement_gas import _community, _energies, _interval, _market, _orders  # noqa: E402
from node.chain.chunks import MAX_ENTRIES, MAX_TX_GAS  # noqa: E402
from node.chain.connection import Chain  # noqa: E402
from node.intent.signing import Reading, sign_reading  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=MAX_ENTRIES,
                        help="participants of the interval (default and most: the contract's MAX_ENTRIES, %(default)s)")
    parser.add_argument("--orders", type=int, default=200, help="participants settling by a signed order")
    args = parser.parse_args()
    n = args.participants
    if not 1 <= n <= MAX_ENTRIES or not 0 <= args.orders <= n:
        parser.error(f"--participants must be within 1..{MAX_ENTRIES:,} (the entries an interval may have) "
                     f"and --orders within 0..{n:,}")

    started = time.perf_counter()
    market = _market(Chain.embedded(), pay_as_bid=False)
    keys, meters, ids = _community(market, n)
    print(f"set-up of {n:,} participants: {time.perf_counter() - started:.0f} s")

    s = _interval(market, ids, _energies(n, np.random.default_rng(1)), pay_as_bid=False)
    orders = _orders(market, keys[: args.orders], s)
    started = time.perf_counter()
    receipt = market.settle(s, orders)
    seconds = time.perf_counter() - started
    _table(receipt, n)
    largest = max(r.gas_used for r in receipt.parts or (receipt,))
    print(
        f"{n:,} participants ({len(orders)} by order): {len(receipt.parts or (receipt,))} transactions, largest "
        f"{largest:,} gas ({largest / MAX_TX_GAS:.0%} of the cap); {receipt.gas_used:,} gas = "
        f"{receipt.gas_used / n:,.0f} per participant; {seconds:.1f} s = {seconds / n * 1000:.2f} ms per participant"
    )

    # The chunks as the chain logged them (EntriesSettled, one per chunk, in order).
    chunks = [list(e.args["entries"]) for e in receipt.events if e.name == "EntriesSettled"]
    middle = n // 2
    true_net = int(s.grid_wh[middle] + s.p2p_wh[middle]) - 1_000
    reading = sign_reading(meters[middle], market.domain(), Reading.of_net(int(ids[middle]), s.interval, true_net))
    started = time.perf_counter()
    disputed = market.dispute(s.interval, chunks, reading, market.chain.operators.admin)
    seconds = time.perf_counter() - started
    _table(disputed, n)
    parts = disputed.parts or (disputed,)
    largest = max(r.gas_used for r in parts)
    print(
        f"dispute of {n:,} participants in {len(chunks)} chunks, every wallet reversed: {len(parts)} transactions, "
        f"largest {largest:,} gas ({largest / MAX_TX_GAS:.0%} of the cap of {MAX_TX_GAS:,}); {disputed.gas_used:,} gas "
        f"= {disputed.gas_used / n:,.0f} per participant; {seconds:.1f} s"
    )


def _table(receipt, n: int) -> None:
    """Each transaction of `receipt`: what it did, its entries and gas."""
    print(f"{'transaction':<16} {'entries':>8} {'gas':>12} {'gas/entry':>10}")
    for part in receipt.parts or (receipt,):
        names = {e.name: e for e in part.events}
        entries = None
        if "ChunkVerified" in names or "ChunkApplied" in names:
            event = names.get("ChunkVerified") or names["ChunkApplied"]
            name, entries = f"{'verify' if 'ChunkVerified' in names else 'apply'} {event.args['chunk']}", event.args["entries"]
        elif "ChunkReversed" in names:
            event = names["ChunkReversed"]
            name = f"{'dispute+reverse' if 'IntervalReversed' in names else 'reverse'} {event.args['chunk']}"
            entries = event.args["entries"]
        else:
            name, entries = ("dispute", None) if "IntervalReversed" in names else ("settle", n)
        count = f"{entries:>8,}" if entries else f"{'-':>8}"
        per_entry = f"{part.gas_used / entries:>10,.0f}" if entries else f"{'-':>10}"
        print(f"{name:<16} {count} {part.gas_used:>12,} {per_entry}")


if __name__ == "__main__":
    main()
