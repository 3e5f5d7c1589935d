"""The auction with 1,000 bidding agents: time per interval, each phase against its target.

A synthetic community (60 % PV, 30 % batteries of ±30 % size, 10 % HVACs) of --homes
homes; for a few intervals across the day (night, morning, midday, evening) the agents
decide (device steps into one order per home), sign (EIP-712, the home's key), the
order book checks and stores the batch (signature recovery, one durable transaction)
and the oracle's clearing auctions the committed inputs (orders parsed from JSON,
double auction, settlement integers). With --chain the same intervals also run through
the whole pipeline on the embedded chain (deploy, register, settle, index), and the
figure is the oracle's time per interval with the agents inside it.

    .venv/bin/python bench/bench_agents.py                 # 1,000 homes, 4 intervals
    .venv/bin/python bench/bench_agents.py --chain         # and through the chain (slow set-up)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.agents.fleet import AgentFleet  # noqa: E402
from node.clearing.interval import run_clearing  # noqa: E402
from node.data.community import Community  # noqa: E402
from node.data.config import default_config  # noqa: E402
from node.data.synthetic import generate_community  # noqa: E402
from node.intent.orders import OrderBook  # noqa: E402
from node.intent.signing import Domain  # noqa: E402
from node.oracle.inputs_builder import InputsBuilder  # noqa: E402
from node.simulation.setup import home_accounts  # noqa: E402

STEPS = (8, 32, 48, 76)  # 02:00, 08:00, 12:00, 19:00 UTC of the first day
TARGETS_S = {"decide": 1.0, "sign": 2.0, "submit": 2.0, "clear": 1.0, "total": 5.0, "oracle": 15.0}


def community_config(homes: int):
    config = default_config()
    return replace(config, market=replace(config.market, mechanism="auction"),
                   agents=replace(config.agents, enabled=True),
                   community=replace(config.community, homes=homes, battery_size_spread=0.3, hvac_share=0.1))


def phases(homes: int) -> dict[str, list[float]]:
    config = community_config(homes)
    community = generate_community(config)
    ids = np.arange(1, homes + 1)
    accounts = home_accounts(community, config)
    owners = {int(p): a.address for p, a in zip(ids, accounts)}
    domain = Domain(31337, "0x" + "5a" * 20)
    fleet = AgentFleet(community, config, ids, accounts, domain)
    builder = InputsBuilder(community, config, ids)
    soc = builder.initial_soc()
    times: dict[str, list[float]] = {k: [] for k in ("decide", "sign", "submit", "clear", "total")}
    with tempfile.TemporaryDirectory() as tmp, OrderBook(Path(tmp) / "orders.sqlite", domain, owners.get) as book:
        for step in STEPS:
            interval = fleet.first_interval + step
            t0 = time.perf_counter()
            composed = fleet.decide(interval)
            t1 = time.perf_counter()
            orders = fleet.sign(interval, composed)
            t2 = time.perf_counter()
            book.submit_many(orders, int(time.time()), interval)
            t3 = time.perf_counter()
            inputs = builder.inputs(interval, soc, orders=book.orders_for(interval))
            result = run_clearing(inputs)
            t4 = time.perf_counter()
            served = {int(p): int(g + q) for p, g, q in zip(result.participants, result.grid_wh, result.p2p_wh)}
            fleet.observe(interval, served, result.p2p_price)
            for name, seconds in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0)):
                times[name].append(seconds)
            print(f"  interval {interval}: {len(orders)} orders, {result.auction.volume_wh / 1000:.1f} kWh P2P, "
                  f"clearing type {result.auction.clearing_type.value}", flush=True)
    return times


def through_chain(homes: int) -> list[float]:
    from node.chain.connection import Chain
    from node.simulation.replay import simulate
    from node.simulation.state import StatePaths

    config = community_config(homes)
    full = generate_community(config)
    steps = slice(STEPS[2], STEPS[2] + 5)
    community = Community(full.homes, full.timestamps[steps], full.consumption_kwh[:, steps], full.production_kwh[:, steps])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        result = simulate(Chain.embedded(), community, config, StatePaths(Path(tmp)), progress=False)
        print(f"  set-up and {len(result.reports)} intervals in {time.perf_counter() - started:.0f} s; gas per "
              f"interval {statistics.mean(r.receipt.gas_used for r in result.reports):,.0f}")
        # The first interval also reads every event of the set-up (registrations, mandates,
        # deposits) into the chain's terms: a one-off, reported apart.
        print(f"  first interval {result.reports[0].seconds:.1f} s (reads the set-up's events), then per interval:")
        return [r.seconds for r in result.reports[1:]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--chain", action="store_true", help="also settle on the embedded chain")
    args = parser.parse_args(argv)
    print(f"{args.homes} agents, intervals at steps {', '.join(map(str, STEPS))} of the day")
    times = phases(args.homes)
    if args.chain:
        times["oracle"] = through_chain(args.homes)
    print(f"\n{'phase':<8} {'median s':>9} {'worst s':>8} {'target s':>9}  verdict")
    for name, values in times.items():
        verdict = "ok" if max(values) <= TARGETS_S[name] else "OVER"
        print(f"{name:<8} {statistics.median(values):>9.3f} {max(values):>8.3f} {TARGETS_S[name]:>9.1f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
