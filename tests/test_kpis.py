"""The KPIs, defined once (node.metrics.kpis): each formula on flows small enough to
check by hand, and the comparison's honesty: stored energy valued alike, percentages of
the gross cost, undefined ratios never made up."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.metrics.kpis import COMPARISON_KPIS, KPIS, RUN_KPIS, RunFlows, caveats, evaluate, gini, run_kpis


def flows(**changes) -> RunFlows:
    """Two homes, two one-hour steps. Home 0: load 1+1, PV 3+0, a 5 kWh battery that stores
    1 kWh in step 0 (losses ignored) and gives it back in step 1, exports 1 kWh in step 0.
    Home 1: load 2+2, no PV, imports all of it."""
    base = dict(
        load_kwh=np.array([[1.0, 1.0], [2.0, 2.0]]),
        pv_kwh=np.array([[3.0, 0.0], [0.0, 0.0]]),
        grid_import_kwh=np.array([[0.0, 0.0], [2.0, 2.0]]),
        grid_export_kwh=np.array([[1.0, 0.0], [0.0, 0.0]]),
        p2p_buy_kwh=np.zeros((2, 2)), p2p_sell_kwh=np.zeros((2, 2)),
        charge_kwh=np.array([[1.0, 0.0], [0.0, 0.0]]),
        discharge_kwh=np.array([[0.0, 1.0], [0.0, 0.0]]),
        curtailed_kwh=np.zeros((2, 2)), unserved_kwh=np.zeros((2, 2)),
        paid=np.array([[-0.1, 0.0], [0.6, 0.8]]),
        storage_start_kwh=np.array([2.0, 0.0]), storage_end_kwh=np.array([2.0, 0.0]),
        battery_capacity_kwh=np.array([5.0, 0.0]),
        import_capacity_kwh=np.array([2.0, 10.0]), export_capacity_kwh=np.array([5.0, 5.0]),
        step_hours=1.0, homes=("a", "b"),
    )
    return RunFlows(**(base | changes))


def test_run_kpis_follow_their_formulas():
    f = flows()
    assert np.abs(f.balance_residual_kwh()).max() == 0
    k = run_kpis(f, storage_value=0.05)
    assert k["cost"] == pytest.approx(1.3)
    assert k["gross_cost"] == pytest.approx(1.4)
    assert k["adjusted_cost"] == pytest.approx(1.3)  # storage unchanged
    assert k["cost_per_home"] == pytest.approx(0.65)
    assert k["grid_import_kwh"] == 4 and k["grid_export_kwh"] == 1
    assert k["self_sufficiency"] == pytest.approx(1 - 4 / 6)
    assert k["self_consumption"] == pytest.approx(2 / 3)
    assert k["local_pv_share"] == pytest.approx(2 / 6)
    assert k["peak_import_kw"] == 2 and k["peak_to_average"] == 1
    assert k["import_cap_steps"] == 1 and k["export_cap_steps"] == 0
    assert k["battery_cycles"] == pytest.approx(1 / 5)
    assert math.isnan(k["co2_kg"]), "no intensity series, no CO2 figure"
    with_co2 = run_kpis(replace(f, intensity_g_per_kwh=np.array([400.0, 200.0])), 0.05)
    assert with_co2["co2_kg"] == pytest.approx((2 * 400 + 2 * 200) / 1000)


def test_every_kpi_has_a_definition_and_a_value():
    e = evaluate(flows(), flows(), 0.05)
    assert set(e.market) == set(e.baseline) == {k.name for k in RUN_KPIS}
    assert set(e.comparison) == {k.name for k in COMPARISON_KPIS}
    assert all(k.formula and k.label and k.unit for k in KPIS.values())


def test_stored_energy_left_at_the_end_is_credited_alike_in_both_runs():
    baseline = flows()
    # The market keeps 2 kWh more in home 0's battery: it stores the kWh the baseline
    # exported (forgoing 0.10) and buys another from the grid (0.30).
    market = flows(grid_import_kwh=np.array([[1.0, 0.0], [2.0, 2.0]]), charge_kwh=np.array([[3.0, 0.0], [0.0, 0.0]]),
                   paid=np.array([[0.3, 0.0], [0.6, 0.8]]), storage_end_kwh=np.array([4.0, 0.0]),
                   grid_export_kwh=np.zeros((2, 2)))
    assert np.abs(market.balance_residual_kwh()).max() == pytest.approx(0)
    e = evaluate(market, baseline, storage_value=0.05)
    # Net cost alone says the market lost 0.4; the 2 kWh it kept are worth 0.1 in either run.
    assert e.market["cost"] - e.baseline["cost"] == pytest.approx(0.4)
    assert e.comparison["savings"] == pytest.approx(-0.4 + 2 * 0.05)
    assert e.comparison["savings_per_home_min"] == pytest.approx(-0.3) and e.comparison["homes_worse_off"] == 1


def test_savings_percent_is_of_the_baseline_gross_cost_not_its_small_net_cost():
    # The baseline's export revenue nearly cancels its bill: a percentage of the net cost
    # would be several hundred percent.
    baseline = flows(paid=np.array([[-1.3, 0.0], [0.6, 0.8]]))
    market = flows(paid=np.array([[-1.3, 0.0], [0.5, 0.7]]))
    e = evaluate(market, baseline, 0.05)
    assert e.baseline["cost"] == pytest.approx(0.1)
    assert e.comparison["savings"] == pytest.approx(0.2)
    assert e.comparison["savings_percent"] == pytest.approx(100 * 0.2 / 1.4)


def test_undefined_ratios_are_nan_and_null_in_json_never_made_up():
    idle = flows(load_kwh=np.zeros((2, 2)), pv_kwh=np.zeros((2, 2)), grid_import_kwh=np.zeros((2, 2)),
                 grid_export_kwh=np.zeros((2, 2)), charge_kwh=np.zeros((2, 2)), discharge_kwh=np.zeros((2, 2)),
                 paid=np.zeros((2, 2)), battery_capacity_kwh=np.zeros(2))
    e = evaluate(idle, idle, 0.05)
    for name in ("self_sufficiency", "self_consumption", "local_pv_share", "peak_to_average", "battery_cycles"):
        assert math.isnan(e.market[name]), name
    assert math.isnan(e.comparison["savings_percent"]) and math.isnan(e.comparison["savings_gini"])
    document = json.loads(json.dumps(e.to_json(), allow_nan=False))
    assert document["market"]["self_sufficiency"] is None
    assert document["definitions"]["savings_percent"]["unit"] == "%"


def test_caveats_name_the_storage_value_the_base_of_percentages_and_curtailment():
    market = flows(curtailed_kwh=np.array([[0.5, 0.0], [0.0, 0.0]]), grid_export_kwh=np.array([[0.5, 0.0], [0.0, 0.0]]))
    notes = caveats(evaluate(market, flows(), 0.057, "EUR"))
    assert any("0.0570 EUR/kWh" in n for n in notes)
    assert any("gross cost" in n for n in notes)
    assert any(n.startswith("PV curtailed: 0.5 kWh in the market, 0.0 kWh in the baseline") for n in notes)


def test_more_load_shed_than_the_baseline_on_a_short_horizon_is_explained_with_what_to_change():
    shed = flows(unserved_kwh=np.array([[0.0, 1.0], [0.0, 0.0]]))
    short = caveats(evaluate(shed, flows(), 0.057, "EUR", horizon_hours=1.0))
    assert any("looks 1 h ahead" in n and "horizon_steps" in n for n in short)
    # Not on a day-long horizon, and not when the market sheds no more than the baseline.
    assert not any("horizon_steps" in n for n in caveats(evaluate(shed, flows(), 0.057, "EUR", horizon_hours=24.0)))
    assert not any("horizon_steps" in n for n in caveats(evaluate(flows(), flows(), 0.057, "EUR", horizon_hours=1.0)))


def test_flows_of_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="paid"):
        flows(paid=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one value per step"):
        flows(import_capacity_kwh=np.zeros(3))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=30))
def test_gini_equals_the_mean_absolute_difference_over_twice_the_mean(values):
    x = np.array(values)
    if abs(x.mean()) < 1e-12:
        assert math.isnan(gini(x))
        return
    brute = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * abs(x.mean()))
    assert gini(x) == pytest.approx(brute, rel=1e-6)


def test_gini_is_zero_for_equal_savings_and_near_one_when_one_home_gets_all():
    assert gini(np.full(5, 3.0)) == 0
    assert gini(np.array([0, 0, 0, 0, 10.0])) == pytest.approx(1 - 1 / 5)
