"""Gas per participant of a settlement authorised by mandates and by signed orders.

Settles realistic intervals (mixed buyers and sellers, P2P and grid) for communities
of several sizes twice: once with every home authorised by its stored mandate, once
with every home authorised by an order signed for that interval, and prints gas per
participant against the project's targets: 10k per participant-interval (issue 2) and
15k per signed order settled (issue 3).
Run: .venv/bin/python bench/bench_settlement_gas.py
"""

from __future__ import annotations

import argparse

import numpy as np
from eth_account import Account

from node.chain import Chain
from node.market import Market
from node.settlement import priced_settlement
from node.signing import BUY, SELL, Mandate, Order, sign_mandate, sign_order

TARGETS = {"mandate": 10_000, "order": 15_000}
TARIFF_BUY, TARIFF_SELL, P2P_PRICE = 300_000, 60_000, 150_000
FAR_FUTURE = 2**40


def _interval(market: Market, ids: np.ndarray, rng: np.random.Generator):
    n = len(ids)
    net = rng.integers(-2_000, 2_000, n)
    net[net == 0] = 1
    volume = min(net[net > 0].sum(), -net[net < 0].sum()) // 2
    p2p = np.zeros(n, dtype=np.int64)
    buyers, sellers = np.flatnonzero(net > 0), np.flatnonzero(net < 0)
    p2p[buyers[0]] += min(volume, net[buyers[0]])
    p2p[sellers[0]] -= min(volume, net[buyers[0]], -net[sellers[0]])
    p2p[buyers[0]] = -p2p[sellers[0]]
    return priced_settlement(market.next_interval(), b"\1" * 32, ids, net - p2p, p2p, TARIFF_BUY, TARIFF_SELL, P2P_PRICE)


def _orders(market: Market, keys, settlement) -> list:
    domain = market.domain()
    orders = []
    for key, pid, grid, p2p in zip(keys, settlement.participants, settlement.grid_wh, settlement.p2p_wh):
        net = int(grid + p2p)
        side, limit = (BUY, TARIFF_BUY) if net >= 0 else (SELL, TARIFF_SELL)
        order = Order(int(pid), settlement.interval, side, abs(net) + 100, limit, FAR_FUTURE, int(pid) * 7 + 1)
        orders.append(sign_order(key, domain, order))
    return orders


def measure(sizes: list[int], intervals: int = 3) -> list[tuple[int, str, int, float]]:
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
        domain = market.domain()
        market.submit_mandates([
            sign_mandate(k, domain, Mandate(int(pid), TARIFF_BUY, TARIFF_SELL, 0, 1_000_000, FAR_FUTURE, 1))
            for k, pid in zip(keys, ids)
        ])
        for kind in ("mandate", "order"):
            gas = []
            for _ in range(intervals):
                s = _interval(market, ids, rng)
                orders = _orders(market, keys, s) if kind == "order" else []
                gas.append(market.settle(s, orders).gas_used)
            rows.append((n, kind, int(np.median(gas)), float(np.median(gas)) / n))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 400])
    args = parser.parse_args()
    print(f"{'participants':>12} {'authorised by':>14} {'gas/interval':>14} {'gas/participant':>16} {'vs target':>10}")
    for n, kind, gas, per in measure(args.sizes):
        print(f"{n:>12} {kind:>14} {gas:>14,} {per:>16,.0f} {per / TARGETS[kind]:>9.2f}x")


if __name__ == "__main__":
    main()
