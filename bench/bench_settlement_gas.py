"""Gas per participant of a settlement authorised by mandates and by signed orders, the
gas of a dispute, and the size of every contract against EIP-170.

Settles realistic intervals (mixed buyers and sellers, P2P and grid) for communities of
several sizes: every home authorised by its stored mandate, then by an order signed for
that interval (uniform P2P price), then the same orders on a market whose terms price
P2P energy pay-as-bid, then by mandate again with the homes spread over ZONES zones
and one P2P price per zone (ZonalSettlementModule.settleZonal, issue 11). Prints gas per participant against the project's targets (10k
per participant-interval by mandate, 15k per signed order) and against what the
contract cost before its trust checks (11,366 by mandate, 14,364 by order at 1,000
participants). Then it disputes a settled interval of each size with a meter-signed
reading that contradicts one entry (every wallet of the interval is reversed), and
prints each deployed contract's runtime size against 75 % of EIP-170's 24,576 bytes.

Each interval settles as the oracle settles it (Market.settle): in one transaction if
its static gas bound fits --budget (default the oracle's TX_GAS_BUDGET) or a dry run fits
the per-transaction cap of EIP-7825, else in chunks; the "txs" column says which.
Run: .venv/bin/python bench/bench_settlement_gas.py [--sizes 100 1000] [--budget N]
"""

from __future__ import annotations

import argparse

import numpy as np
from eth_account import Account

from node.chain.build import EIP170_LIMIT, SIZE_TARGET, runtime_sizes
from node.chain.chunks import TX_GAS_BUDGET
from node.chain.connection import Chain
from node.chain.deploy import MarketSetup, Tariffs
from node.chain.market import Market
from node.clearing.pricing import pay_as_bid_price, priced_settlement
from node.intent.signing import BUY, SELL, Mandate, Order, Reading, sign_mandate, sign_order, sign_reading

KINDS = ("mandate", "order", "order-pab", "mandate-zonal")
TARGETS = {"mandate": 10_000, "order": 15_000, "order-pab": 15_000, "mandate-zonal": 10_000}
# At 1,000, before issue 9; the zonal row against the uniform mandate figure measured
# before zones were added (issue 11: per-zone prices must stay close to it).
BEFORE = {"mandate": 11_366, "order": 14_364, "order-pab": 14_433, "mandate-zonal": 9_729}
ZONES = 20
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


def _limit(net_wh: int) -> tuple[int, int]:
    """Side and limit price of the order of a home with this net energy: one that
    also trades with the grid must accept its tariff."""
    return (BUY, TARIFF_BUY) if net_wh >= 0 else (SELL, TARIFF_SELL)


def _market(chain: Chain, pay_as_bid: bool) -> Market:
    now = chain.w3.eth.get_block("latest")["timestamp"]
    epoch = now - now % 900 - 30 * 86_400  # thousands of intervals have ended
    tariffs = Tariffs(TARIFF_BUY, TARIFF_BUY, TARIFF_SELL, pay_as_bid=pay_as_bid)
    market = Market.deploy(chain, 10**12, 10**12, setup=MarketSetup(10**12, 10**12, epoch, tariffs))
    market.deposit_bond(market.bond()[1] * 10)
    market.fund_wallets({0: 10**12})
    return market


def _community(market: Market, n: int, zones: int = 1):
    first = market.participant_count()
    keys = [Account.create() for _ in range(n)]
    meters = [Account.create() for _ in range(n)]
    market.register([k.address for k in keys], [i % zones for i in range(n)], [f"h{i}" for i in range(n)],
                    [m.address for m in meters])
    ids = np.arange(first, first + n)
    market.fund_wallets({int(i): 10**9 for i in ids})
    domain = market.domain()
    market.submit_mandates([
        sign_mandate(k, domain, Mandate(int(pid), TARIFF_BUY, TARIFF_SELL, 0, 1_000_000, FAR_FUTURE, 1))
        for k, pid in zip(keys, ids)
    ])
    return keys, meters, ids


def _interval(market: Market, ids: np.ndarray, energies: tuple[np.ndarray, np.ndarray], pay_as_bid: bool,
              zones: int = 0):
    grid, p2p = energies
    prices, zone_prices = None, ()
    if pay_as_bid:
        prices = np.array([pay_as_bid_price(*_limit(int(x)), TARIFF_BUY, TARIFF_SELL) for x in grid + p2p])
    elif zones:
        # A price per zone, ordered so that the P2P buyer's zone is the dearer (a
        # congestion rent >= 0, as the contract requires); home i is in zone i % zones.
        zone_prices = P2P_PRICE + 1_000 * np.arange(zones)
        home_zone = np.arange(len(ids)) % zones
        if int(p2p @ zone_prices[home_zone]) < 0:
            zone_prices = zone_prices[::-1]
        prices, zone_prices = zone_prices[home_zone], tuple(int(z) for z in zone_prices)
    k = market.next_interval()
    terms = market.terms_at(k)
    return priced_settlement(
        k, b"\1" * 32, ids, grid, p2p, terms.import_price, terms.export_price, P2P_PRICE, prices,
        p2p_fee=terms.p2p_fee, terms_index=terms.index, zone_prices=zone_prices,
    )


def _orders(market: Market, keys, settlement) -> list:
    domain = market.domain()
    orders = []
    for key, pid, grid, p2p in zip(keys, settlement.participants, settlement.grid_wh, settlement.p2p_wh):
        net = int(grid + p2p)
        side, limit = _limit(net)
        order = Order(int(pid), settlement.interval, side, abs(net) + 100, limit, FAR_FUTURE, int(pid) * 7 + 1)
        orders.append(sign_order(key, domain, order))
    return orders


def measure(sizes: list[int], intervals: int = 3, budget: int = TX_GAS_BUDGET):
    """Rows (participants, authorised by, median gas per interval, per participant, most
    transactions an interval took), and the gas of a dispute per community size."""
    chain = Chain.embedded()
    uniform, pab = _market(chain, False), _market(chain, True)
    rng = np.random.default_rng(1)
    rows, disputes = [], {}
    for n in sizes:
        communities = {"mandate": _community(uniform, n), "order-pab": _community(pab, n),
                       "mandate-zonal": _community(uniform, n, ZONES)}
        communities["order"] = communities["mandate"]
        drawn: dict[str, list] = {}
        for kind in KINDS:
            market = pab if kind == "order-pab" else uniform
            keys, meters, ids = communities[kind]
            # Pay-as-bid settles the very energies of the uniform order intervals, the
            # zonal rows those of the uniform mandate ones.
            drawn[kind] = {"order-pab": drawn.get("order"), "mandate-zonal": drawn.get("mandate")}.get(kind) or [
                _energies(n, rng) for _ in range(intervals)]
            gas, txs = [], []
            for energies in drawn[kind]:
                s = _interval(market, ids, energies, pay_as_bid=kind == "order-pab",
                              zones=ZONES if kind == "mandate-zonal" else 0)
                orders = _orders(market, keys, s) if kind.startswith("order") else []
                receipt = market.settle(s, orders, budget=budget)
                gas.append(receipt.gas_used)
                txs.append(len(receipt.parts) or 1)
            rows.append((n, kind, int(np.median(gas)), float(np.median(gas)) / n, max(txs)))
        disputes[n] = _dispute(uniform, communities["mandate"], rng, budget)
    return rows, disputes


def _dispute(market: Market, community, rng: np.random.Generator, budget: int) -> int:
    """Settles one more interval by mandate, then disputes it with the meter-signed reading
    of its first home, which the settlement overstated by 1 kWh; returns the gas of the
    dispute and of its reverse chunks (one transaction if the interval settled in one)."""
    keys, meters, ids = community
    grid, p2p = _energies(len(ids), rng)
    s = _interval(market, ids, (grid, p2p), pay_as_bid=False)
    settled = market.settle(s, [], budget=budget)
    # Its chunks as the chain logged them (one, if it settled in one transaction).
    chunks = [list(e.args["entries"]) for e in settled.events if e.name == "EntriesSettled"]
    true_net = int(grid[0] + p2p[0]) - 1_000
    reading = sign_reading(meters[0], market.domain(), Reading.of_net(int(ids[0]), s.interval, true_net))
    receipt = market.dispute(s.interval, chunks, reading, market.chain.operators.admin)
    return receipt.gas_used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--budget", type=int, default=TX_GAS_BUDGET,
                        help="static gas bound up to which an interval is sent in one transaction without a dry run "
                             "(default %(default)s)")
    args = parser.parse_args()
    rows, disputes = measure(args.sizes, budget=args.budget)
    print(f"{'participants':>12} {'authorised by':>14} {'txs':>4} {'gas/interval':>14} {'gas/participant':>16} "
          f"{'vs target':>10} {'vs before':>10}")
    for n, kind, gas, per, txs in rows:
        print(f"{n:>12} {kind:>14} {txs:>4} {gas:>14,} {per:>16,.0f} {per / TARGETS[kind]:>9.2f}x "
              f"{per / BEFORE[kind]:>9.2f}x")
    print()
    for n, gas in disputes.items():
        print(f"dispute of an interval of {n:,} participants (every wallet reversed): {gas:,} gas, "
              f"{gas / n:,.0f} per participant")
    print()
    print(f"{'contract':>20} {'runtime bytes':>14} {'of 75% of EIP-170':>18}")
    for name, size in sorted(runtime_sizes().items(), key=lambda item: -item[1]):
        flag = "" if size <= SIZE_TARGET else "  OVER"
        print(f"{name:>20} {size:>14,} {size / SIZE_TARGET:>17.0%}{flag}")
    print(f"{'(limit)':>20} {SIZE_TARGET:>14,} of {EIP170_LIMIT:,} (EIP-170)")


if __name__ == "__main__":
    main()
