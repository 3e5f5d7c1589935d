"""No-trading baseline: per-home balance and batteries fed only by own PV."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer import Batteries, run_baseline

TOL = 1e-12


def make_case(seed: int, homes: int = 6, steps: int = 24, battery_homes: tuple[int, ...] = (0, 2, 2, 5)):
    rng = np.random.default_rng(seed)
    hours = np.arange(steps) % 24
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    load = rng.uniform(0.1, 1.5, (homes, steps))
    pv = rng.uniform(0, 4, (homes, 1)) * sun
    B = len(battery_homes)
    capacity = rng.uniform(2, 10, B)
    batteries = Batteries(
        home=np.array(battery_homes, dtype=np.int64),
        capacity_kwh=capacity,
        max_charge_kwh=rng.uniform(0.5, 3, B),
        max_discharge_kwh=rng.uniform(0.5, 3, B),
        charge_efficiency=rng.uniform(0.8, 1, B),
        discharge_efficiency=rng.uniform(0.8, 1, B),
        soc_kwh=capacity * rng.uniform(0.1, 1, B),
        min_soc_kwh=capacity * 0.1,
    )
    buy = rng.uniform(0.2, 0.4, steps)
    sell = rng.uniform(0.0, 0.1, steps)
    return load, pv, batteries, buy, sell


def home_sum(batteries: Batteries, flows: np.ndarray, homes: int) -> np.ndarray:
    out = np.zeros((homes, flows.shape[1]))
    np.add.at(out, batteries.home, flows)
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_baseline_balances_energy_per_home_and_step(seed: int) -> None:
    load, pv, batteries, buy, sell = make_case(seed)
    r = run_baseline(load, pv, batteries, buy, sell)
    charge = home_sum(batteries, r.battery_charge_kwh, load.shape[0])
    discharge = home_sum(batteries, r.battery_discharge_kwh, load.shape[0])
    np.testing.assert_allclose(
        load - pv + charge - discharge, r.grid_import_kwh - r.grid_export_kwh, atol=1e-9
    )
    assert not r.curtailed_kwh.any() and not r.shed_kwh.any(), "no capacity given, nothing curtailed or shed"
    assert np.all(r.grid_import_kwh >= -TOL) and np.all(r.grid_export_kwh >= -TOL)
    assert np.all(np.minimum(r.grid_import_kwh, r.grid_export_kwh) <= TOL), "import and export at once"


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_baseline_never_charges_a_battery_from_the_grid(seed: int) -> None:
    load, pv, batteries, buy, sell = make_case(seed)
    r = run_baseline(load, pv, batteries, buy, sell)
    surplus = np.maximum(pv - load, 0)
    assert np.all(home_sum(batteries, r.battery_charge_kwh, load.shape[0]) <= surplus + TOL)
    deficit = np.maximum(load - pv, 0)
    assert np.all(home_sum(batteries, r.battery_discharge_kwh, load.shape[0]) <= deficit + TOL)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_baseline_keeps_batteries_within_limits(seed: int) -> None:
    load, pv, b, buy, sell = make_case(seed)
    r = run_baseline(load, pv, b, buy, sell)
    assert np.all(r.soc_kwh >= np.minimum(b.min_soc_kwh, b.soc_kwh)[:, None] - 1e-9)
    assert np.all(r.soc_kwh <= b.capacity_kwh[:, None] + 1e-9)
    assert np.all(r.battery_charge_kwh <= b.max_charge_kwh[:, None] + TOL)
    assert np.all(r.battery_discharge_kwh <= b.max_discharge_kwh[:, None] + TOL)
    step = b.charge_efficiency[:, None] * r.battery_charge_kwh - r.battery_discharge_kwh / b.discharge_efficiency[:, None]
    np.testing.assert_allclose(np.diff(r.soc_kwh, axis=1), step, atol=1e-12)


def test_baseline_without_batteries_is_plain_net_metering_at_tariffs() -> None:
    load, pv, _, buy, sell = make_case(1)
    r = run_baseline(load, pv, Batteries.none(), buy, sell)
    np.testing.assert_array_equal(r.grid_import_kwh, np.maximum(load - pv, 0))
    np.testing.assert_array_equal(r.grid_export_kwh, np.maximum(pv - load, 0))
    np.testing.assert_allclose(r.cost, r.grid_import_kwh * buy - r.grid_export_kwh * sell)


def test_baseline_battery_lowers_its_home_bill() -> None:
    load, pv, batteries, buy, sell = make_case(2, battery_homes=(0,))
    with_battery = run_baseline(load, pv, batteries, buy, sell)
    without = run_baseline(load, pv, Batteries.none(), buy, sell)
    assert with_battery.cost[0].sum() < without.cost[0].sum()
    np.testing.assert_array_equal(with_battery.cost[1:], without.cost[1:])


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.0, 6.0), st.floats(0.0, 6.0))
def test_baseline_keeps_within_grid_capacity_by_curtailing_and_shedding(seed: int, import_cap: float, export_cap: float) -> None:
    load, pv, batteries, buy, sell = make_case(seed)
    free = run_baseline(load, pv, batteries, buy, sell)
    r = run_baseline(load, pv, batteries, buy, sell, import_cap, export_cap)
    assert np.all(r.grid_import_kwh.sum(axis=0) <= import_cap + 1e-9)
    assert np.all(r.grid_export_kwh.sum(axis=0) <= export_cap + 1e-9)
    # Same physics, every kWh accounted for: what the grid did not take was curtailed,
    # what it did not deliver was not served; the batteries ran exactly as without limits.
    charge = home_sum(batteries, r.battery_charge_kwh, load.shape[0])
    discharge = home_sum(batteries, r.battery_discharge_kwh, load.shape[0])
    np.testing.assert_allclose(load - pv + charge - discharge + r.curtailed_kwh - r.shed_kwh,
                               r.grid_import_kwh - r.grid_export_kwh, atol=1e-9)
    np.testing.assert_array_equal(r.soc_kwh, free.soc_kwh)
    np.testing.assert_allclose(r.curtailed_kwh.sum(axis=0), np.maximum(free.grid_export_kwh.sum(axis=0) - export_cap, 0), atol=1e-9)
    np.testing.assert_allclose(r.shed_kwh.sum(axis=0), np.maximum(free.grid_import_kwh.sum(axis=0) - import_cap, 0), atol=1e-9)
    np.testing.assert_allclose(r.cost, r.grid_import_kwh * buy - r.grid_export_kwh * sell)


def test_baseline_curtails_each_exporting_home_pro_rata() -> None:
    load = np.array([[0.0], [0.0], [1.0]])
    pv = np.array([[3.0], [1.0], [0.0]])
    r = run_baseline(load, pv, Batteries.none(), np.array([0.3]), np.array([0.1]), export_capacity_kwh=np.array([2.0]))
    np.testing.assert_allclose(r.grid_export_kwh[:, 0], [1.5, 0.5, 0.0])
    np.testing.assert_allclose(r.curtailed_kwh[:, 0], [1.5, 0.5, 0.0])
    np.testing.assert_allclose(r.grid_import_kwh[:, 0], [0.0, 0.0, 1.0])


def test_baseline_with_zero_capacity_trades_nothing_with_the_grid() -> None:
    load, pv, batteries, buy, sell = make_case(5)
    r = run_baseline(load, pv, batteries, buy, sell, 0.0, 0.0)
    assert not r.grid_import_kwh.any() and not r.grid_export_kwh.any() and not r.cost.any()
