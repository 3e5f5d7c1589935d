"""Gas per participant-interval of a settlement, on the embedded chain.

Settles realistic intervals (mixed buyers, sellers, P2P and grid) for communities of
several sizes and prints gas per participant against the 10k target.
Run: .venv/bin/python bench/bench_settlement_gas.py
"""

from __future__ import annotations

import argparse

import numpy as np
from eth_account import Account

from node.chain import Chain
from node.market import Market
from node.settlement import priced_settlement
from node.signing import Mandate, sign_mandate

TARGET_GAS_PER_PARTICIPANT = 10_000


def measure(sizes: list[int], intervals: int = 3) -> list[tuple[int, int, float]]:
    chain = Chain.embedded()
    market = Market.deploy(chain, 10**12, 10**12)
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        first = market.participant_count()
        keys = [Account.create() for _ in range(n)]
        market.register([k.address for k in keys], [0] * n, [f"h{i}" for i in range(n)])
        ids = np.arange(first, first + n)
        market.fund_wallets({int(i): 10**9 for i in ids})
        # Every entry needs its participant's authorisation: standing mandates here.
        mandates = [Mandate(int(i), 300_000, 60_000, 0, 1_000_000, 2**40, 1) for i in ids]
        market.submit_mandates([sign_mandate(k, market.domain(), m) for k, m in zip(keys, mandates)])
        gas = []
        for _ in range(intervals):
            net = rng.integers(-2_000, 2_000, n)
            volume = min(net[net > 0].sum(), -net[net < 0].sum()) // 2
            p2p = np.zeros(n, dtype=np.int64)
            buyers, sellers = np.flatnonzero(net > 0), np.flatnonzero(net < 0)
            # Within the first buyer's and seller's own net energy, as the clearing
            # shares P2P volume, so their mandates authorise it.
            volume = min(volume, net[buyers[0]], -net[sellers[0]])
            p2p[buyers[0]] += volume
            p2p[sellers[0]] -= volume
            s = priced_settlement(market.next_interval(), b"\1" * 32, ids, net - p2p, p2p, 300_000, 60_000, 150_000)
            gas.append(market.settle(s).gas_used)
        rows.append((n, int(np.median(gas)), float(np.median(gas)) / n))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 100, 400, 1000])
    args = parser.parse_args()
    print(f"{'participants':>12} {'gas/interval':>14} {'gas/participant':>16} {'vs 10k target':>14}")
    for n, gas, per in measure(args.sizes):
        print(f"{n:>12} {gas:>14,} {per:>16,.0f} {per / TARGET_GAS_PER_PARTICIPANT:>13.2f}x")


if __name__ == "__main__":
    main()
