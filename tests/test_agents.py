"""Bidding agents without a chain: how device bids become one order and its fill comes
back, TESP's double ramp, the thermal model, the battery, and signatures."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.agents.bids import Step, allocate, compose
from node.agents.fleet import AGENT_NONCE_BASE, AgentFleet
from node.agents.home import Battery
from node.agents.thermal import Thermostat
from node.data.community import BatterySpec, Community, Home, HvacSpec
from node.data.config import default_config
from node.data.devices import HvacConfig
from node.intent.signing import BUY, SELL, Domain, recover_signer
from node.simulation.setup import home_accounts

B, S = 300_000, 60_000


def test_a_flexible_step_joins_only_when_in_the_money_and_sets_the_order_limit():
    base = Step("base", 500, B, True)
    hvac = Step("hvac", 375, 150_000, False)
    assert compose([base, hvac], expected_price=200_000).energy_wh == 500  # HVAC out of the money: idle
    order = compose([base, hvac], expected_price=100_000)
    assert (order.side, order.energy_wh, order.limit) == (BUY, 875, 150_000)


def test_own_production_nets_against_consumption_before_the_market():
    order = compose([Step("base", -1000, S, True), Step("charge", 400, 132_000, False)], expected_price=S)
    assert (order.side, order.energy_wh, order.limit) == (SELL, 600, S)
    assert allocate(order, 600) == {"base": -1000, "charge": 400}
    assert allocate(order, 100) == {"base": -500, "charge": 400}  # the rest of the PV goes outside


def test_the_fill_serves_must_run_steps_first_and_the_rest_goes_outside():
    order = compose([Step("base", 500, B, True), Step("hvac", 375, 150_000, False)], expected_price=0)
    assert allocate(order, 600) == {"base": 500, "hvac": 100}
    assert allocate(order, 0) == {"base": 0, "hvac": 0}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-5000, 5000).filter(bool), st.integers(0, 400_000), st.booleans()), min_size=1,
                max_size=5), st.integers(0, 400_000), st.integers(0, 20_000))
def test_no_step_gets_more_than_it_asked_and_the_order_side_gets_own_supply_plus_fill(raw, expected, fill):
    steps = [Step(f"d{i}", e, p, m) for i, (e, p, m) in enumerate(raw)]
    order = compose(steps, expected)
    served = allocate(order, fill)
    for s in order.steps:
        assert 0 <= served[s.device] * np.sign(s.energy_wh) <= abs(s.energy_wh)
    if order.side is not None:
        buying = order.side == BUY
        mine = sum(abs(served[s.device]) for s in order.steps if (s.energy_wh > 0) == buying)
        own = sum(abs(s.energy_wh) for s in order.steps if (s.energy_wh > 0) != buying)
        assert mine == own + min(fill, order.energy_wh)


def _unit(mode: str, indoor: float) -> Thermostat:
    unit = Thermostat.start(HvacSpec(mode, 1.5, 3.0, 22.0), HvacConfig(range_low_c=2, range_high_c=3, ramp_low=1.5, ramp_high=2.5))
    unit.indoor_c = indoor
    return unit


def test_double_ramp_bids_the_cap_beyond_the_band_nothing_below_and_the_mean_at_the_setpoint():
    assert _unit("cool", 25.5).bid(0.15, 0.05, 0.3) == 0.3
    assert _unit("cool", 19.5).bid(0.15, 0.05, 0.3) is None
    assert _unit("cool", 22.0).bid(0.15, 0.05, 0.3) == pytest.approx(0.15)
    assert _unit("cool", 23.5).bid(0.15, 0.05, 0.3) == pytest.approx(0.15 + 1.5 * 2.5 * 0.05 / 3)
    assert _unit("heat", 19.5).bid(0.15, 0.05, 0.3) == 0.3  # cold: a heat pump must run
    assert _unit("heat", 25.5).bid(0.15, 0.05, 0.3) is None
    assert _unit("heat", 21.0).bid(0.15, 0.05, 0.3) == pytest.approx(0.15 + 1.0 * 1.5 * 0.05 / 2)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["cool", "heat"]), st.floats(20.2, 24.8), st.floats(20.2, 24.8))
def test_the_bid_rises_with_need_and_the_setpoint_offset_inverts_it(mode, colder, warmer):
    colder, warmer = min(colder, warmer), max(colder, warmer)
    low, high = _unit(mode, colder).bid(0.15, 0.05, 1.0), _unit(mode, warmer).bid(0.15, 0.05, 1.0)
    assert (low <= high) if mode == "cool" else (low >= high)
    unit = _unit(mode, warmer)
    unit.respond(unit.bid(0.15, 0.05, 1.0), 0.15, 0.05)
    assert unit.setpoint_c == pytest.approx(warmer)  # cleared at its bid: its setpoint is where it stands


def test_the_thermal_model_relaxes_to_outdoors_and_running_moves_it_exactly():
    unit = _unit("cool", 22.0)
    unit.advance(0.0, 30.0, 1.0)
    tau = unit.model.resistance_k_per_kw * unit.model.capacitance_kwh_per_k
    assert unit.indoor_c == pytest.approx(30 - 8 * math.exp(-1 / tau))
    unit.indoor_c = 22.0
    unit.advance(1.0, 30.0, 1.0)
    equilibrium = 30 - 3.0 * 1.5 * unit.model.resistance_k_per_kw
    assert unit.indoor_c == pytest.approx(equilibrium + (22 - equilibrium) * math.exp(-1 / tau))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 5000)), max_size=30))
def test_a_battery_run_by_its_agent_stays_within_its_bounds(moves):
    battery = Battery(BatterySpec(10, 4, 0.9, 0.9, 0.1, 0.5), 1000)
    for charge, discharge in moves:
        battery.apply(min(charge, battery.charge_room_wh()), 0)
        battery.apply(0, min(discharge, battery.discharge_room_wh()))
        assert 1000 - 1e-6 <= battery.soc_wh <= 10_000 + 1e-6


def _fleet(strategy: str = "price_taker"):
    config = default_config()
    config = replace(config, agents=replace(config.agents, strategy=strategy, bid_share=0.25))
    times = config.market.start + np.arange(4) * config.market.interval
    homes = (Home("a", 0, 0.0, False), Home("b", 0, 5.0, True, battery_spec=BatterySpec(10, 4, 0.95, 0.95, 0.1, 0.5)),
             Home("c", 0, 0.0, False, hvac=HvacSpec("cool", 1.5, 3.0, 22.0)))
    load = np.array([[0.3] * 4, [0.1] * 4, [0.2] * 4])
    pv = np.array([[0.0] * 4, [1.2] * 4, [0.0] * 4])
    community = Community(homes, times, load, pv)
    domain = Domain(1, "0x" + "11" * 20)
    return AgentFleet(community, config, [1, 2, 3], home_accounts(community, config), domain), domain, community


def test_agents_sign_with_the_home_key_that_a_wallet_would_produce():
    fleet, domain, community = _fleet()
    orders = fleet.sign(fleet.first_interval, fleet.decide(fleet.first_interval), now=1_700_000_000)
    for signed, account in zip(orders, fleet.accounts):
        assert recover_signer(domain, signed.order, signed.signature) == account.address
        assert signed.order.nonce == AGENT_NONCE_BASE + fleet.first_interval
    from node.intent.signing import sign_order

    assert orders[0].signature == sign_order(fleet.accounts[0], domain, orders[0].order).signature


def test_the_uniform_bid_rule_prices_between_the_tariffs():
    fleet, _, _ = _fleet("uniform_bid")
    orders = fleet.decide(fleet.first_interval)
    assert orders[0].limit == round(0.25 * S + 0.75 * B)  # a x SMP + (1 - a) x retail


def test_replaying_the_outcomes_rebuilds_every_agent_and_its_next_order():
    fleet, _, _ = _fleet()
    outcomes = []
    for k in range(fleet.first_interval, fleet.first_interval + 3):
        orders = fleet.decide(k)
        served = {pid: o.energy_wh // 2 for pid, o in zip(fleet.participants, orders)}
        fleet.observe(k, served, 100_000 + 1000 * k)
        outcomes.append((k, served, 100_000 + 1000 * k))
    again, _, _ = _fleet()
    for k, served, price in outcomes:
        again.observe(k, served, price)
    last = fleet.first_interval + 3
    assert fleet.decide(last) == again.decide(last)
    assert [a.battery.soc_wh for a in fleet.agents if a.battery] == [a.battery.soc_wh for a in again.agents if a.battery]
    assert fleet.records == again.records
