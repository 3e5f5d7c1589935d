"""Gas and time per participant of an interval settled in chunks, on the embedded chain.

Registers N participants (funded wallets, standing mandates; --orders of them settle by
a signed order instead) on a market with the oracle's bond posted, settles one interval
of mixed importers, exporters and P2P trade with Market.settle (which chunks it: EIP-7825
caps a transaction at 16,777,216 gas) and prints each transaction's gas and the totals
per participant. The market and community are set up as bench_settlement_gas sets them up.
Run: .venv/bin/python bench/bench_chunked.py [--participants 2000] [--orders 200]
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
    keys, _, ids = _community(market, n)
    print(f"set-up of {n:,} participants: {time.perf_counter() - started:.0f} s")

    s = _interval(market, ids, _energies(n, np.random.default_rng(1)), pay_as_bid=False)
    orders = _orders(market, keys[: args.orders], s)
    started = time.perf_counter()
    receipt = market.settle(s, orders)
    seconds = time.perf_counter() - started
    parts = receipt.parts or (receipt,)
    print(f"{'transaction':<16} {'entries':>8} {'gas':>12} {'gas/entry':>10}")
    for part in parts:
        event = next((e for e in part.events if e.name in ("ChunkVerified", "ChunkApplied")), None)
        if event is None:
            print(f"{'settle':<16} {n:>8,} {part.gas_used:>12,} {part.gas_used / n:>10,.0f}")
            continue
        name = f"{'verify' if event.name == 'ChunkVerified' else 'apply'} {event.args['chunk']}"
        entries = event.args["entries"]
        print(f"{name:<16} {entries:>8,} {part.gas_used:>12,} {part.gas_used / entries:>10,.0f}")
    largest = max(r.gas_used for r in parts)
    print(
        f"{n:,} participants ({len(orders)} by order): {len(parts)} transactions, largest {largest:,} gas "
        f"({largest / MAX_TX_GAS:.0%} of the cap); {receipt.gas_used:,} gas = {receipt.gas_used / n:,.0f} per participant; "
        f"{seconds:.1f} s = {seconds / n * 1000:.2f} ms per participant"
    )


if __name__ == "__main__":
    main()
