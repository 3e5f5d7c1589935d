"""Gas per participant of a settlement authorised by mandates and by signed orders.

Settles realistic intervals (mixed buyers and sellers, P2P and grid) for communities
of several sizes three times: once with every home authorised by its stored mandate,
once with every home authorised by an order signed for that interval (uniform P2P
price), once the same orders priced pay-as-bid (each entry at its order's effective
limit), and prints gas per participant against the project's targets: 10k per
participant-interval (issue 2) and 15k per signed order settled (issue 3).

Each interval settles as the oracle settles it (Market.settle): in one transaction if
its static gas bound fits --budget (default the oracle's TX_GAS_BUDGET) or a dry run
fits the per-transaction cap of EIP-7825, else in chunks; the "txs" column says which.
A budget of 59000000 sends one transaction even where the cap would not allow it (the
embedded chain's block holds 60M).
Run: .venv/bin/python bench/bench_settlement_gas.py [--sizes 100 1000] [--budget N]
"""

from __future__ import annotations

import argparse

import numpy as np
from eth_account import Account

from node.chain.connection import Chain
from node.chain.chunks import TX_GAS_BUDGET
from node.chain.market import Market
from node.clearing.pricing import pay_as_bid_price, priced_settlement
from node.intent.signing import BUY, SELL, Mandate, Order, sign_mandate, sign_order

KINDS = ("mandate", "order", "order-pab")
TARGETS = {"mandate": 10_000, "order": 15_000, "order-pab": 15_000}
TARIFF_BUY, TARIFF_SELL, P2P_PRICE = 300_000, 60_000, 150_000
FAR_FUTURE = 2**40


def _energies(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Grid and P2P energy (Wh) of `n` homes: random net energies, one pair trading P2P."""
    net = rng.integers(-2_000, 2_000, n)
    net[net == 0] = 1
    volume = min(net[net > 0].sum(), -net[net < 0].sum()) // 2
    p2p = np.zeros(n, dtype=np.int64)
    buyers, sellers = np.flatnonzero(net > 0), np.flatnonzero(net < 0)
    p2p[buyers[0]] += min(volume, net[buyers[0]])
    p2p[sellers[0]] -= min(volume, net[buyers[0]], -net[sellers[0]])
    p2p[buyers[0]] = -p2p[sellers[0]]
    return net - p2p, p2p


def _interval(market: Market, ids: np.ndarray, energies: tuple[np.ndarray, np.ndarray], pay_as_bid: bool = False):
    grid, p2p = energies
    # Pay-as-bid: each entry at its order's effective limit (see _orders).
    prices = None
    if pay_as_bid:
        prices = np.array([pay_as_bid_price(*_limit(int(x)), TARIFF_BUY, TARIFF_SELL) for x in grid + p2p])
    return priced_settlement(
        market.next_interval(), b"\1" * 32, ids, grid, p2p, TARIFF_BUY, TARIFF_SELL, P2P_PRICE, prices
    )


def _limit(net_wh: int) -> tuple[int, int]:
    """Side and limit price of the order of a home with this net energy: one that
    also trades with the grid must accept its tariff."""
    return (BUY, TARIFF_BUY) if net_wh >= 0 else (SELL, TARIFF_SELL)


def _orders(market: Market, keys, settlement) -> list:
    domain = market.domain()
    orders = []
    for key, pid, grid, p2p in zip(keys, settlement.participants, settlement.grid_wh, settlement.p2p_wh):
        net = int(grid + p2p)
        side, limit = _limit(net)
        order = Order(int(pid), settlement.interval, side, abs(net) + 100, limit, FAR_FUTURE, int(pid) * 7 + 1)
        orders.append(sign_order(key, domain, order))
    return orders


def measure(sizes: list[int], intervals: int = 3, budget: int = TX_GAS_BUDGET) -> list[tuple[int, str, int, float, int]]:
    """(participants, authorised by, median gas per interval, per participant, most
    transactions an interval took) per community size and kind."""
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
        drawn: dict[str, list] = {}
        for kind in KINDS:
            # Pay-as-bid settles the very energies of the uniform order intervals, so
            # that the two differ only in pricing.
            if kind == "order-pab":
                drawn[kind] = drawn["order"]
            else:
                drawn[kind] = [_energies(n, rng) for _ in range(intervals)]
            gas, txs = [], []
            for energies in drawn[kind]:
                s = _interval(market, ids, energies, pay_as_bid=kind == "order-pab")
                orders = _orders(market, keys, s) if kind != "mandate" else []
                receipt = market.settle(s, orders, budget=budget)
                gas.append(receipt.gas_used)
                txs.append(len(receipt.parts) or 1)
            rows.append((n, kind, int(np.median(gas)), float(np.median(gas)) / n, max(txs)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 400])
    parser.add_argument("--budget", type=int, default=TX_GAS_BUDGET,
                        help="static gas bound up to which an interval is sent in one transaction without a dry run "
                             "(default %(default)s)")
    args = parser.parse_args()
    print(f"{'participants':>12} {'authorised by':>14} {'txs':>4} {'gas/interval':>14} {'gas/participant':>16} {'vs target':>10}")
    for n, kind, gas, per, txs in measure(args.sizes, budget=args.budget):
        print(f"{n:>12} {kind:>14} {txs:>4} {gas:>14,} {per:>16,.0f} {per / TARGETS[kind]:>9.2f}x")


if __name__ == "__main__":
    main()
