"""Gas and time per participant of an interval settled in chunks, on the embedded chain.

Registers N participants with standing mandates (a share settling by signed orders
instead), settles one interval of mixed importers, exporters and P2P trade with
Market.settle (which chunks it: EIP-7825 caps a transaction at 16,777,216 gas) and
prints each transaction's gas and the totals per participant.
Run: .venv/bin/python bench/bench_chunked.py [--participants 10000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from eth_account import Account
from eth_utils import keccak

from node.chain.connection import Chain
from node.chain.chunks import MAX_TX_GAS
from node.chain.market import Market
from node.clearing.pricing import priced_settlement
from node.intent.signing import BUY, SELL, Mandate, Order, sign_mandate, sign_order

BUY_PRICE, SELL_PRICE, P2P_PRICE = 300_000, 60_000, 150_000
FAR_FUTURE = 2**40


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--orders", type=int, default=200, help="participants settling by a signed order")
    args = parser.parse_args()
    n = args.participants

    started = time.perf_counter()
    market = Market.deploy(Chain.embedded(), 10**12, 10**12)
    keys = [Account.from_key(keccak(text=f"bench-chunked/{i}")) for i in range(1, n + 1)]
    market.register([k.address for k in keys], [0] * n, [f"h{i}" for i in range(1, n + 1)])
    domain = market.domain()
    market.submit_mandates(
        [sign_mandate(k, domain, Mandate(i, BUY_PRICE, SELL_PRICE, 0, 1_000_000, FAR_FUTURE, 1)) for i, k in enumerate(keys, 1)]
    )
    print(f"set-up of {n:,} participants: {time.perf_counter() - started:.0f} s")

    rng = np.random.default_rng(1)
    ids = np.arange(1, n + 1)
    net = rng.integers(-3_000, 3_000, n)
    p2p = np.zeros(n, dtype=np.int64)
    buyers, sellers = np.flatnonzero(net > 0)[:500], np.flatnonzero(net < 0)[:500]
    k = min(len(buyers), len(sellers))
    volume = np.minimum(net[buyers[:k]], -net[sellers[:k]]) // 2
    p2p[buyers[:k]] += volume
    p2p[sellers[:k]] -= volume
    s = priced_settlement(0, b"\1" * 32, ids, net - p2p, p2p, BUY_PRICE, SELL_PRICE, P2P_PRICE)
    orders = []
    for pid, g, p in list(zip(ids, s.grid_wh, s.p2p_wh))[: args.orders]:
        side = BUY if g + p >= 0 else SELL
        order = Order(int(pid), 0, side, abs(int(g + p)), BUY_PRICE if side == BUY else SELL_PRICE, FAR_FUTURE, 1)
        orders.append(sign_order(keys[pid - 1], domain, order))

    started = time.perf_counter()
    receipt = market.settle(s, orders)
    seconds = time.perf_counter() - started
    print(f"{'transaction':<16} {'entries':>8} {'gas':>12} {'gas/entry':>10}")
    for part in receipt.parts:
        event = next(e for e in part.events if e.name in ("ChunkVerified", "ChunkApplied"))
        name = f"{'verify' if event.name == 'ChunkVerified' else 'apply'} {event.args['chunk']}"
        entries = event.args["entries"]
        print(f"{name:<16} {entries:>8,} {part.gas_used:>12,} {part.gas_used / entries:>10,.0f}")
    largest = max(r.gas_used for r in receipt.parts)
    print(
        f"{n:,} participants ({args.orders} by order): {len(receipt.parts)} transactions, largest {largest:,} gas "
        f"({largest / MAX_TX_GAS:.0%} of the cap); {receipt.gas_used:,} gas = {receipt.gas_used / n:,.0f} per participant; "
        f"{seconds:.1f} s = {seconds / n * 1000:.2f} ms per participant"
    )


if __name__ == "__main__":
    main()
