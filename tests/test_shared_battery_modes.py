"""Shared batteries' accounts on a network of zones and in an auction market (issue 12):
each runs end to end on the embedded chain, the accounts' energy within their shares as
the contract keeps it, and the audit passes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from node.audit.verify import IndexInputs, audit
from node.chain.connection import Chain
from node.chain.shares import share_energy_of
from node.data.community import Community
from node.data.config import config_from_mapping
from node.data.shared_batteries import load_shared_batteries, with_shared_batteries
from node.data.synthetic import generate_community
from node.simulation.replay import simulate
from node.simulation.state import StatePaths
from tests.test_zonal_chain import _network_file

SHARED = (Path(__file__).resolve().parents[1] / "examples" / "shared_batteries.toml").read_text()


def _run(tmp_path, settings: dict, window: slice, zones: list[int] | None = None):
    (tmp_path / "shared.toml").write_text(SHARED)
    settings = {**settings, "community": {"homes": 4, "seed": 5, "pv_share": 1.0, "battery_share": 0.0,
                                          "shared_batteries_file": "shared.toml"}}
    config = config_from_mapping(settings, base=tmp_path)
    full = generate_community(config)
    homes = full.homes if zones is None else tuple(replace(h, zone=z) for h, z in zip(full.homes, zones))
    community = Community(homes, full.timestamps[window], full.consumption_kwh[:, window],
                          full.production_kwh[:, window])
    community = with_shared_batteries(community, load_shared_batteries(tmp_path / "shared.toml"))
    result = simulate(Chain.embedded(), community, config, StatePaths(tmp_path / "state"), progress=False)
    ids = {home.name: int(pid) for home, pid in zip(community.homes, result.participants)}
    return community, result, ids


def _accounts_within_their_shares(result, ids) -> list[int]:
    accounts = [ids[f"home-0{i}@school"] for i in (1, 2, 3)]
    for pid in accounts:
        held, capacity = share_energy_of(result.market, pid)
        assert 0 <= held <= capacity
    return accounts


def test_accounts_in_network_zones_settle_at_their_homes_zone_price(tmp_path):
    _network_file(tmp_path, line_kw=1.0)
    community, result, ids = _run(tmp_path, {"market": {"horizon_steps": 8}, "grid": {"network": "network.toml"}},
                                  slice(44, 56), zones=[0, 0, 1, 1])
    accounts = _accounts_within_their_shares(result, ids)
    zones = {pid: result.market.market.functions.accountOf(pid).call()[1] for pid in accounts}
    assert zones == {ids["home-01@school"]: 0, ids["home-02@school"]: 0, ids["home-03@school"]: 1}
    assert all(r.settlement.zone_prices for r in result.reports)
    assert any(pid in r.settlement.participants.tolist() and r.settlement.storage_fees > 0
               for r in result.reports for pid in accounts)
    verdicts = audit(result.market, IndexInputs(result.index), progress=False)
    assert verdicts and [v.reasons for v in verdicts if not v.ok] == []


def test_accounts_in_an_auction_market_settle_what_their_agents_bid(tmp_path):
    community, result, ids = _run(tmp_path, {"market": {"mechanism": "auction", "horizon_steps": 4},
                                             "agents": {"enabled": True}}, slice(44, 52))
    accounts = _accounts_within_their_shares(result, ids)
    assert len(result.reports) == 8
    verdicts = audit(result.market, IndexInputs(result.index), progress=False)
    assert verdicts and [v.reasons for v in verdicts if not v.ok] == []
    # The accounts' agents bid (battery arbitrage): some of their orders settled.
    assert any(pid in r.settlement.participants.tolist() for r in result.reports for pid in accounts)


def test_an_accounts_auction_order_is_bounded_by_its_account_and_its_buy_by_the_fee():
    """An account that can deliver 1,000 Wh and has room for 5,800 Wh taken in at the
    meter (a 3,900 Wh share at 50 % charge, 100 % discharge efficiency): it sells at most
    1,000 Wh, buys with its limit less the 20,000-unit fee, cannot sell from an empty
    account, and under pay-as-bid cannot buy at all (the contract prices a buyer at its
    own limit, leaving no room for the fee). The clearing's integer step is trimmed to
    the account: 1,001 Wh out becomes 1,000."""
    from types import SimpleNamespace

    import numpy as np

    from node.clearing.inputs import BatteryInputs, ShareInputs
    from node.clearing.interval import IntervalClearing
    from node.clearing.shares import auction_order_bounds, clamp_shares

    battery = BatteryInputs(7, 3_900, 5_000, 5_000, 500_000, 1_000_000, 1_000, 0)
    share = ShareInputs(7, 0, 3_900, deliverable_pwh=1_000 * 10**12)

    def inputs(pricing: str = "uniform", deliverable_pwh: int = 1_000 * 10**12):
        return SimpleNamespace(batteries=[battery], shares=[replace(share, deliverable_pwh=deliverable_pwh)],
                               storage_fee=20_000, pricing=pricing)

    assert auction_order_bounds(inputs(), 7, False, 5_000, 60_000) == (1_000, 60_000)
    assert auction_order_bounds(inputs(), 7, True, 9_000, 300_000) == (5_800, 280_000)
    assert auction_order_bounds(inputs(deliverable_pwh=0), 7, False, 10, 60_000) is None
    assert auction_order_bounds(inputs("pay_as_bid"), 7, True, 10, 300_000) is None
    assert auction_order_bounds(inputs(), 8, True, 10, 1) == (10, 1)  # not an account
    step = IntervalClearing(np.array([7]), np.array([-1_001]), np.array([0]), 60_000)
    assert clamp_shares(inputs(), step).grid_wh.tolist() == [-1_000]
