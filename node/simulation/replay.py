"""A full run of a community through the real pipeline, plus its no-trading baseline.

``simulate`` = deploy (or resume) the market, settle every interval of the data with
the oracle, then write CSV results and KPIs (node.metrics.kpis) against the baseline,
which runs on the same data under the same grid capacity. The demo is the same run on
a synthetic community.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from node.chain.chunks import MAX_ENTRIES
from node.chain.connection import Chain
from node.data.community import Community
from node.data.config import CommunityConfig
from node.chain.discovery import is_market
from node.simulation.state import StatePaths, write_description
from node.agents.fleet import AgentFleet
from node.errors import InputError
from node.simulation.bidding import FleetBidders
from node.simulation.day_ahead import DayAheadPrices
from node.simulation.flex import plan_flexibility
from node.simulation.setup import (
    deploy_market, find_community_market, home_accounts, post_zone_capacities, set_up_community,
)
from node.index.store import Index
from node.chain.market import Deployment, Market
from node.data.meter_policy import Repair
from node.oracle.inputs_builder import InputsBuilder
from node.simulation.meters import SimulatedMeters, meter_keys
from node.oracle.daemon import IntervalReport, Oracle, catch_up
from node.intent.orders import OrderBook
from node.metrics.kpis import Evaluation, caveats, job_local_pv_share
from node.oracle.terms import ChainTerms
from node.simulation.flows import baseline_rows, evaluate_run, placed_hvac_wh, placed_job_starts, run_baseline_of
from node.simulation.record import run_record
from node.units import UNITS_PER_TOKEN
from optimizer.baseline import BaselineResult

log = logging.getLogger("gridledger.simulation")


@dataclass
class RunResult:
    market: Market
    index: Index
    participants: np.ndarray
    reports: list[IntervalReport]
    kpis: dict  # flat: intervals, participants, gas_used and Evaluation.flat()
    evaluation: Evaluation
    record: dict  # what reproduces the run (node.simulation.record.run_record)


# Signs participants' orders into the order book before the oracle settles (an auction
# market's bidders); called with the market, the book and the inputs builder.
Agents = Callable[[Market, OrderBook, InputsBuilder], None]


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
    meters = meter_keys(paths.meters, community, np.arange(1, len(community.homes) + 1, dtype=np.int64),
                        config.community.seed)
    ids = set_up_community(market, community, config, index, meters)
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
    agents: Agents | None = None,
    clear_ahead: bool = True,
    intensity_g_per_kwh: np.ndarray | None = None,
    in_turn: int = 0,
    tick_s: float = 15.0,
    before_in_turn: Callable[[], None] | None = None,
    jobs_file: Path | None = None,
) -> RunResult:
    """`repairs` are the meter values `node.data.dataset.load_dataset_with_report` filled in;
    each goes into the committed inputs of its interval. `agents` sign orders into the
    book before the oracle settles. `clear_ahead=False` keeps the clearing in this
    process (a worker of an experiment must not start processes of its own).
    `intensity_g_per_kwh` (one value per interval of the data) adds the CO2 KPI.
    The last `in_turn` intervals are cleared one every `tick_s` seconds (after calling
    `before_in_turn`), so orders placed meanwhile (in the web UI) still make it in.
    `jobs_file` holds deferrable jobs (node.data.jobs); with `config.agents.enabled` (an
    auction market) every home's bidding agent (node.agents) signs and submits its order
    for each interval, and sees its outcome, as the oracle goes."""
    fleet_on = config.agents.enabled
    if fleet_on and config.market.mechanism != "auction":
        raise InputError('bidding agents bid in an auction market: set market.mechanism = "auction" '
                         "(or pass --mechanism auction)")
    if len(community.homes) > MAX_ENTRIES:
        # Refused before a contract is deployed or a home registered: every interval
        # would fail on chain (TooManyEntries) after its clearing.
        raise InputError(f"{len(community.homes):,} homes: the market contract settles at most {MAX_ENTRIES:,} "
                         "entries an interval (a dispute names every chunk of an interval and reverses it chunk by chunk); "
                         f"split the community into markets of at most {MAX_ENTRIES:,} homes")
    index = Index(paths.index)
    market, ids = open_market(chain, community, config, paths, index)
    catch_up(market, index)  # the book checks signatures against the owners the index knows
    book = open_book(paths, market, index)
    try:
        accounts = home_accounts(community, config)
        plan = plan_flexibility(community, config, jobs_file, book, market.domain(), ids, accounts, fleet_on)
        builder = InputsBuilder(plan.community, config, ids, repairs, plan.jobs, plan.hvac)
        if plan.thermostat_kwh is not None:  # the no-trading baseline runs the HVACs by thermostat
            builder.baseline_extra_wh = np.rint(plan.thermostat_kwh * 1000).astype(np.int64)
        meters = SimulatedMeters.of(market, plan.community, config, ids, paths.meters)
        # Each interval's own zone capacities (the limits file's rows) go on chain before
        # anything is cleared, so the contract checks each interval against its own.
        post_zone_capacities(market, builder.network, builder.intervals)
        prices = DayAheadPrices(market, config.tariffs, builder) if config.tariffs.dynamic else None
        if prices is not None:
            prices.post_ahead()  # the first day's, before anything is cleared
        terms = ChainTerms(market)
        terms.refresh()
        snapshot = terms.snapshot(builder.first_interval)
        baseline = run_baseline_of(builder, snapshot)
        index.store_baseline(baseline_rows(builder, baseline))
        index.store_baseline_battery(baseline_battery_rows(builder, baseline))
        # What this run will settle, so a watcher of the index (the web UI) can show progress.
        index.set_meta(run_first_interval=builder.first_interval, run_stop_interval=builder.intervals.stop)
        bidders = None
        if fleet_on:
            bidders = FleetBidders(AgentFleet(plan.community, config, ids, accounts, market.domain()), book, index)
        oracle = Oracle(market, index, builder, book, meters=meters, bidders=bidders)
        oracle.clear_ahead = clear_ahead
        if agents is not None:
            agents(market, book, builder)
        stop = builder.intervals.stop
        if prices is None:
            reports = oracle.run(progress=progress, live=live, until=stop - in_turn)
        else:
            reports = prices.settle(oracle, until=stop - in_turn, progress=progress, live=live)
        if in_turn and before_in_turn is not None:
            before_in_turn()
        for k in range(max(stop - in_turn, builder.first_interval), stop):
            log.info("interval %d clears in %.0f s: orders for it are taken until then", k, tick_s)
            time.sleep(tick_s)
            if prices is not None:
                prices.post_ahead()
            reports += oracle.run(progress=False, until=k + 1)
    finally:
        book.close()
    evaluation = evaluate_run(index, builder, oracle.soc, baseline, snapshot, intensity_g_per_kwh)
    record = run_record(config, community, {
        "chain_id": chain.chain_id, "chain": chain.description, "market": market.deployment.market,
        "token": market.deployment.token, "deploy_block": market.deployment.block,
    }, mechanism=config.market.mechanism, pricing=config.market.pricing)
    extra = dict(plan.kpis)
    if plan.jobs:
        extra.update(placed_job_kpis(index, builder, oracle.soc))
    if plan.hvac:
        extra["hvac_kwh"] = float(placed_hvac_wh(index, builder, oracle.soc).sum() / 1000)
    if bidders is not None:
        extra.update(bidders.fleet.summary())
        # What the homes' supplier settled outside the community belongs to their cost.
        extra["cost_with_outside"] = evaluation.market["adjusted_cost"] + extra.get("outside_cost", 0.0)
        extra["savings_with_outside"] = evaluation.baseline["adjusted_cost"] - extra["cost_with_outside"]
    kpis = write_results(index, paths.results, evaluation, record, extra)
    if bidders is not None:
        bidders.write(paths.results / "agents.csv")
    return RunResult(market, index, ids, reports, kpis, evaluation, record)


def placed_job_kpis(index: Index, builder: InputsBuilder, final_state) -> dict:
    """PySSMic's KPI of the jobs the optimiser placed, read back from the committed inputs."""
    energy = builder.job_energy_wh(placed_job_starts(index, builder, final_state)) / 1000
    share = job_local_pv_share(energy, builder.load_wh / 1000, builder.pv_wh / 1000)
    log.info("jobs placed by the optimiser: %.1f kWh, %.0f%% served by local PV", energy.sum(), 100 * share)
    return {"job_energy_placed_kwh": float(energy.sum()), "job_local_pv_share": share}


def baseline_battery_rows(builder: InputsBuilder, result: BaselineResult) -> list[tuple]:
    """The baseline's battery states as the index keeps them: (interval, participant,
    soc_wh at the interval's start); the batteries are those of the builder's inputs."""
    soc = np.rint(result.soc_kwh * 1000).astype(np.int64)
    owners = [int(builder.participants[row]) for row in builder.battery_rows]
    return [(interval, owner, int(soc[b, step])) for step, interval in enumerate(builder.intervals)
            for b, owner in enumerate(owners)]


def write_results(index: Index, out: Path, evaluation: Evaluation, record: dict | None = None,
                  extra: dict | None = None) -> dict:
    """Per-interval and per-home CSVs, the KPIs (kpis.json with their definitions and
    caveats, kpis.csv one row per KPI), the run's record (run.json) and a summary plot;
    the KPIs also go into the index for the web UI. `extra` (jobs, agents) joins
    kpis.json and the returned KPIs. Returns the flat KPIs."""
    out.mkdir(parents=True, exist_ok=True)
    summary = index.summary()
    intervals = pd.DataFrame(index.intervals(limit=10**9))
    homes = pd.DataFrame(p for p in index.participants() if p["id"] != 0)
    per_home = _per_home(index)
    homes = homes.merge(per_home, left_on="id", right_index=True, how="left").fillna(0)
    # The KPIs per home (stored energy valued as in the totals), by name.
    homes = homes.merge(pd.DataFrame(evaluation.per_home).add_prefix("kpi_"), left_on="name", right_on="kpi_name",
                        how="left").drop(columns="kpi_name")
    intervals.to_csv(out / "intervals.csv", index=False)
    homes.to_csv(out / "participants.csv", index=False)
    document = {
        "intervals": summary["intervals"],
        "participants": summary["participants"],
        "gas_used": summary["gas_used"],
        "as_of_interval": summary["last_interval"],
        **evaluation.to_json(),
        "caveats": caveats(evaluation),
    }
    document.update(extra or {})
    (out / "kpis.json").write_text(json.dumps(document, indent=2) + "\n")
    pd.DataFrame(evaluation.rows()).to_csv(out / "kpis.csv", index=False)
    if record is not None:
        (out / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    index.store_kpis(document)
    _plot(intervals, out / "summary.png")
    return {"intervals": summary["intervals"], "participants": summary["participants"],
            "gas_used": summary["gas_used"], **evaluation.flat(), **(extra or {})}


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
