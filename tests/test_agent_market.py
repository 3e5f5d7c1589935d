"""Agents bidding through the real pipeline: signed orders in the book, the oracle's
auction, settlement on the embedded chain, the audit; an imported dataset replayed with
no human; jobs within signed windows; every mechanism on the same data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from node.agents.fleet import AGENT_NONCE_BASE, AgentFleet
from node.chain.connection import Chain
from node.data.community import Community
from node.data.config import default_config, load_config
from node.data.dataset import load_dataset
from node.data.importers.common import write_imported
from node.data.importers.pyssmic import import_pyssmic
from node.data.synthetic import generate_community
from node.index.store import Index
from node.intent.signing import SignedOrder
from node.simulation.bidding import FleetBidders
from node.simulation.compare import compare
from node.simulation.replay import simulate
from node.simulation.setup import home_accounts
from node.simulation.state import StatePaths, claim_state
from node.cli.main import main

DATA = Path(__file__).resolve().parent / "data"


def _auction_config(**community):
    config = default_config()
    return replace(config, market=replace(config.market, mechanism="auction"),
                   agents=replace(config.agents, enabled=True),
                   community=replace(config.community, **community))


def _midday(community: Community, steps: slice) -> Community:
    return Community(community.homes, community.timestamps[steps], community.consumption_kwh[:, steps],
                     community.production_kwh[:, steps])


def test_agents_bid_for_every_home_and_a_restarted_fleet_rebuilds_itself_from_the_index(tmp_path):
    config = _auction_config(homes=4, hvac_share=0.25, battery_share=0.25, pv_share=0.5)
    community = _midday(generate_community(config), slice(44, 48))
    claim_state(tmp_path, "simulate")
    with Chain.embedded(tmp_path) as chain:
        result = simulate(chain, community, config, StatePaths(tmp_path), progress=False)
        market, index = result.market, result.index
        for report in result.reports:
            assert report.settlement.participants.size > 0
            orders = [SignedOrder.from_json(o) for o in _inputs(index, report.settlement.interval)["orders"]]
            assert {o.order.participant for o in orders} == {1, 2, 3, 4}
            assert all(o.order.nonce == AGENT_NONCE_BASE + report.settlement.interval for o in orders)
        # A fleet started afresh and shown the settled intervals ends where the run's did.
        fleet = AgentFleet(community, config, result.participants, home_accounts(community, config), market.domain())
        FleetBidders(fleet, None, index).resume(market.next_interval())
    records = (tmp_path / "results" / "agents.csv").read_text().splitlines()
    assert len(records) == 1 + 4 * 4
    rebuilt = [",".join("" if v is None else str(v) for v in r.values()) for r in fleet.records]
    assert [r.split(",")[:7] for r in records[1:]] == [r.split(",")[:7] for r in rebuilt]
    kpis = json.loads((tmp_path / "results" / "kpis.json").read_text())
    assert kpis["intervals"] == 4 and kpis["outside_cost"] == 0.0  # price takers: the grid takes any rest
    assert kpis["hvac_kwh"] >= 0


def _inputs(index: Index, interval: int) -> dict:
    return json.loads(index.inputs(index.interval(interval)["inputs_hash"]))


def test_a_pyssmic_neighbourhood_runs_with_its_jobs_inside_their_signed_windows(tmp_path):
    out = tmp_path / "neighbourhood"
    write_imported(import_pyssmic(DATA / "pyssmic", 120), out, 120)
    config = replace(load_config(out / "community.toml"), market=replace(load_config(out / "community.toml").market,
                     mechanism="auction"))
    config = replace(config, agents=replace(config.agents, enabled=True))
    community = load_dataset(out / "data.csv", config)
    state = tmp_path / "state"
    claim_state(state, "simulate")
    with Chain.embedded(state) as chain:
        result = simulate(chain, community, config, StatePaths(state), progress=False, jobs_file=out / "jobs.csv")
    k = result.kpis
    assert k["jobs"] == 2 and k["jobs_flexible"] == 2 and k["intervals"] == 12
    assert k["job_local_pv_share"] > k["job_local_pv_share_at_earliest_start"]
    assert abs(k["job_energy_kwh"] - 1.9) < 1e-9


def test_an_imported_dataset_runs_as_an_auction_with_no_human_and_passes_the_audit(tmp_path, capsys):
    out, state = tmp_path / "ets", tmp_path / "state"
    assert main(["-q", "import", "ets", str(DATA / "ets" / "households.csv"), "--out", str(out),
                 "--timezone", "Europe/Budapest"]) == 0
    assert main(["-q", "simulate", "--config", str(out / "community.toml"), "--data", str(out / "data.csv"),
                 "--state", str(state), "--agents"]) == 2
    assert "add --mechanism auction" in capsys.readouterr().err and not state.exists()
    # Dynamic tariffs: the grid operator posts each interval's prices a day ahead on a
    # chain that starts before the data, and every entry settles at them.
    hours = [f"2024-06-03T{h:02d}:00:00+00:00,{0.08 if h % 2 == 0 else 0.12}" for h in range(24)]
    (out / "prices.csv").write_text("timestamp,day_ahead_per_kwh\n" + "\n".join(hours) + "\n")
    toml = (out / "community.toml").read_text()
    (out / "community.toml").write_text(toml.replace("[tariffs]\n", '[tariffs]\nprices_file = "prices.csv"\n'
                                                                     "grid_fee_per_kwh = 0.2\n"))
    run = ["-q", "simulate", "--config", str(out / "community.toml"), "--data", str(out / "data.csv"),
           "--state", str(state), "--mechanism", "auction", "--pricing", "pay_as_bid", "--agents", "--no-progress"]
    assert main(run) == 0
    assert "settled 8 intervals for 3 homes" in capsys.readouterr().out
    assert main(["-q", "audit", "--state", str(state)]) == 0
    captured = capsys.readouterr()
    assert "8 intervals audited: 8 passed, 0 failed" in captured.out + captured.err
    index = Index(state / "index.sqlite")
    tariffs = load_config(out / "community.toml").tariffs
    times = [pd.Timestamp(i["start"]) for i in index.intervals()]
    assert [i["buy_price"] for i in index.intervals()] == [round(p * 1e6) for p in tariffs.buy_price(times)]
    assert len({i["buy_price"] for i in index.intervals()}) == 2  # 0.28 and 0.32 by the hour


def test_every_mechanism_runs_on_the_same_data_and_the_table_accounts_for_outside_energy(tmp_path):
    config = _auction_config(homes=3, battery_share=0.3, pv_share=0.6, battery_size_spread=0.3)
    config = replace(config, agents=replace(config.agents, strategy="uniform_bid", bid_share=0.5))
    community = _midday(generate_community(config), slice(44, 47))
    rows = compare(community, config, tmp_path, Chain.embedded, progress=False)
    assert [r["run"] for r in rows] == ["community", "auction-uniform", "auction-pay-as-bid"]
    assert len({round(r["baseline_adjusted_cost"], 6) for r in rows}) == 1  # one reference for all
    for r in rows:
        assert r["intervals"] == 3
        assert np.isclose(r["cost_with_outside"], r["adjusted_cost"] + r["outside_cost"])
    assert (tmp_path / "compare.csv").read_text().count("\n") == 4


AGENT_CONFIG = """
[market]
interval_minutes = 120
horizon_steps = 4
mechanism = "auction"
[community]
homes = 4
seed = 5
battery_share = 0.25
hvac_share = 0.25
[agents]
enabled = true
"""


def test_an_agent_run_killed_after_its_orders_are_in_the_book_ends_like_an_uninterrupted_one(tmp_path):
    import signal

    from tests.helpers import settle_community, write_config
    from tests.test_crash import chain_state, run_oracle

    config_file = write_config(tmp_path, AGENT_CONFIG)
    reference = tmp_path / "reference"
    claim_state(reference, "simulate")
    with Chain.embedded(reference) as chain:
        settle_community(chain, config_file, StatePaths(reference))
    state = tmp_path / "state"
    # Killed once the agents' orders of an interval are in the book but before it settles,
    # and once while its settlement is on its way: the restart signs nothing twice.
    assert run_oracle(state, config_file, crash_at="before_inputs:3") == -signal.SIGKILL
    assert run_oracle(state, config_file, crash_at="before_send:4") == -signal.SIGKILL
    assert run_oracle(state, config_file) == 0
    assert chain_state(state) == chain_state(reference)
    agents = (state / "results" / "agents.csv").read_text()
    assert agents == (reference / "results" / "agents.csv").read_text()
