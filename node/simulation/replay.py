"""A full run of a community through the real pipeline, plus its no-trading baseline.

``simulate`` = deploy (or resume) the market, settle every interval of the data with
the oracle, then write CSV results and KPIs against the baseline. The demo is the
same run on a synthetic community.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from node.chain.connection import Chain
from node.data.community import Community
from node.data.config import CommunityConfig
from node.chain.discovery import is_market
from node.errors import InputError
from node.simulation.state import StatePaths, write_description
from node.simulation.setup import deploy_market, find_community_market, set_up_community
from node.index.store import Index
from node.chain.market import Deployment, Market
from node.data.meter_policy import Repair
from node.oracle.inputs_builder import InputsBuilder
from node.oracle.daemon import Oracle, IntervalReport
from node.intent.orders import OrderBook
from node.units import UNITS_PER_TOKEN
from optimizer import run_baseline

log = logging.getLogger("gridledger.simulation")


@dataclass
class RunResult:
    market: Market
    index: Index
    participants: np.ndarray
    reports: list[IntervalReport]
    kpis: dict


def open_market(chain: Chain, community: Community, config: CommunityConfig, paths: StatePaths, index: Index) -> tuple[Market, np.ndarray]:
    """The market of this state directory, deployed on first use and set up (or the
    set-up finished, after a crash) before any interval is settled.

    The chain, not the record, decides whether there is a market: a missing
    deployment.json is rebuilt from the community's market on the chain (never answered
    by a second deployment), and a record that does not name a market on this chain is
    refused. An index of another market than the one settled here is refused too."""
    if paths.deployment.exists():
        deployment = Deployment.load(paths.deployment)
        if deployment.chain_id == chain.chain_id and chain.w3.eth.get_code(deployment.market):
            token = is_market(chain, deployment.market)
            if token is None or token.lower() != deployment.token.lower():
                raise InputError(
                    f"{paths.deployment} names {deployment.market} (token {deployment.token}), which is not a GridLedger "
                    f"market with that token on {chain.description}: move the file away and run again to find this "
                    "community's market on the chain, or use another --state")
        market = Market(chain, deployment)
        log.info("resuming market %s on %s", market.deployment.market, chain.description)
    elif (found := find_community_market(chain, community, config)) is not None:
        found.save(paths.deployment)
        market = Market(chain, found)
        log.warning("%s was missing: rebuilt it from the chain, which holds this community's market %s (deployed in "
                    "block %d); resuming it", paths.deployment, found.market, found.block)
    else:
        market = deploy_market(chain, community, config)
        # Saved at once: a crash from here on resumes this market instead of deploying another.
        market.deployment.save(paths.deployment)
    indexed = index.meta().get("market")
    if indexed is not None and indexed.lower() != market.deployment.market.lower():
        raise InputError(
            f"{index.path} indexes market {indexed}, but this state directory settles {market.deployment.market}: "
            f"rebuild the index from the chain with `gridledger index rebuild --state {paths.root}`")
    ids = set_up_community(market, community, config, index)
    write_description(paths, index.meta())
    return market, ids


def open_book(paths: StatePaths, market: Market, index: Index) -> OrderBook:
    """The state directory's order book, whose signatures are checked against the
    owners the index knows (read per check, so an owner change applies at once)."""

    def owner_of(participant: int) -> str | None:
        p = index.participant(participant)
        return p["owner"] if p else None

    return OrderBook(paths.orders, market.domain(), owner_of)


def simulate(
    chain: Chain,
    community: Community,
    config: CommunityConfig,
    paths: StatePaths,
    progress: bool = True,
    live: bool = False,
    repairs: Sequence[Repair] = (),
) -> RunResult:
    """`repairs` are the meter values `node.data.dataset.load_dataset_with_report` filled in;
    each goes into the committed inputs of its interval."""
    index = Index(paths.index)
    market, ids = open_market(chain, community, config, paths, index)
    builder = InputsBuilder(community, config, ids, repairs)
    rows, baseline_end_wh = baseline_rows(community, config, builder)
    index.store_baseline(rows)
    book = open_book(paths, market, index)
    try:
        oracle = Oracle(market, index, builder, book)
        reports = oracle.run(progress=progress, live=live)
    finally:
        book.close()
    # Savings are only comparable together with the energy each run leaves in the batteries.
    storage = {
        "battery_start_kwh": sum(builder.initial_soc().values()) / 1000,
        "battery_end_kwh": sum(oracle.soc.values()) / 1000,
        "baseline_battery_end_kwh": baseline_end_wh / 1000,
    }
    kpis = write_results(index, community, paths.results, storage)
    return RunResult(market, index, ids, reports, kpis)


def baseline_rows(community: Community, config: CommunityConfig, builder: InputsBuilder) -> tuple[list[tuple], int]:
    """The no-trading baseline on the same data and tariffs, per interval and home, and
    the energy (Wh) it leaves in the batteries at the end."""
    first = builder.inputs(builder.first_interval, builder.initial_soc()).to_clearing_inputs().batteries
    times = pd.DatetimeIndex([builder.start_of(k) for k in builder.intervals])
    result = run_baseline(
        community.consumption_kwh,
        community.production_kwh,
        first,
        config.tariffs.buy_price(times),
        config.tariffs.sell_price(times),
    )
    imports = np.rint(result.grid_import_kwh * 1000).astype(np.int64)
    exports = np.rint(result.grid_export_kwh * 1000).astype(np.int64)
    cost = np.rint(result.cost * UNITS_PER_TOKEN).astype(np.int64)
    rows = []
    for step, interval in enumerate(builder.intervals):
        for row, pid in enumerate(builder.participants):
            rows.append((interval, int(pid), int(imports[row, step]), int(exports[row, step]), int(cost[row, step])))
    return rows, int(round(result.soc_kwh[:, -1].sum() * 1000))


def write_results(index: Index, community: Community, out: Path, storage: dict | None = None) -> dict:
    """Per-interval and per-home CSVs, KPIs as JSON and a summary plot; returns the KPIs.
    `storage` adds the battery energy at the start and end of both runs."""
    out.mkdir(parents=True, exist_ok=True)
    summary = index.summary()
    intervals = pd.DataFrame(index.intervals(limit=10**9))
    homes = pd.DataFrame(p for p in index.participants() if p["id"] != 0)
    per_home = _per_home(index)
    homes = homes.merge(per_home, left_on="id", right_index=True, how="left").fillna(0)
    intervals.to_csv(out / "intervals.csv", index=False)
    homes.to_csv(out / "participants.csv", index=False)
    kpis = {
        "intervals": summary["intervals"],
        "participants": summary["participants"],
        "community_cost": summary["community_cost"] / UNITS_PER_TOKEN,
        "baseline_cost": summary.get("baseline_cost", 0) / UNITS_PER_TOKEN,
        "savings": summary.get("savings", 0) / UNITS_PER_TOKEN,
        "savings_percent": 100 * summary.get("savings", 0) / summary["baseline_cost"] if summary.get("baseline_cost") else 0.0,
        "grid_import_kwh": summary["grid_import_wh"] / 1000,
        "baseline_grid_import_kwh": summary.get("baseline_import_wh", 0) / 1000,
        "grid_export_kwh": summary["grid_export_wh"] / 1000,
        "baseline_grid_export_kwh": summary.get("baseline_export_wh", 0) / 1000,
        "p2p_kwh": summary["p2p_wh"] / 1000,
        "gas_used": summary["gas_used"],
        **(storage or {}),
    }
    (out / "kpis.json").write_text(json.dumps(kpis, indent=2) + "\n")
    _plot(intervals, out / "summary.png")
    return kpis


def _per_home(index: Index) -> pd.DataFrame:
    frame = pd.DataFrame(index.participant_totals()).set_index("id")
    frame["savings_units"] = frame["baseline_cost_units"] - frame["cost_units"]
    return frame


def _plot(intervals: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if intervals.empty:
        return
    x = pd.to_datetime(intervals["start"])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(x, intervals["buy_price"] / UNITS_PER_TOKEN, label="grid buy tariff", color="#c0392b")
    top.plot(x, intervals["sell_price"] / UNITS_PER_TOKEN, label="grid sell tariff", color="#27ae60")
    top.plot(x, intervals["p2p_price"] / UNITS_PER_TOKEN, label="P2P price", color="#8e44ad")
    top.set_ylabel("price per kWh")
    top.legend(loc="upper left")
    bottom.plot(x, intervals["grid_import_wh"] / 1000, label="grid import", color="#c0392b")
    bottom.plot(x, -intervals["grid_export_wh"] / 1000, label="grid export (negative)", color="#27ae60")
    bottom.plot(x, intervals["p2p_wh"] / 1000, label="P2P traded", color="#8e44ad")
    if "import_capacity_wh" in intervals:
        bottom.plot(x, intervals["import_capacity_wh"] / 1000, "--", label="import capacity", color="#7f8c8d")
    bottom.set_ylabel("kWh per interval")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
