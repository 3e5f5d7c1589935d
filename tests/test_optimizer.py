"""Community clearing: physics, market invariants, determinism and model reuse."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import InputError, SolverError
from optimizer import Batteries, Clearing, ClearingInputs, CommunityModel, clear, run_baseline
from optimizer import community, solvers
from optimizer.types import ZoneNetwork

TOL = 1e-6  # interior-point feasibility tolerance, well below one Wh
SEEDS = st.integers(min_value=0, max_value=2**32 - 1)
PROPERTY = settings(max_examples=25, deadline=None)


def make_batteries(homes: np.ndarray, rng: np.random.Generator, soc_fraction: float = 0.5) -> Batteries:
    B = homes.size
    capacity = rng.uniform(4.0, 12.0, B)
    min_soc = 0.1 * capacity
    return Batteries(
        home=np.asarray(homes, dtype=np.int64),
        capacity_kwh=capacity,
        max_charge_kwh=rng.uniform(1.0, 3.0, B),
        max_discharge_kwh=rng.uniform(1.0, 3.0, B),
        charge_efficiency=rng.uniform(0.85, 1.0, B),
        discharge_efficiency=rng.uniform(0.85, 1.0, B),
        soc_kwh=min_soc + soc_fraction * (capacity - min_soc),
        min_soc_kwh=min_soc,
    )


def make_inputs(
    seed: int,
    homes: int = 8,
    horizon: int = 6,
    battery_homes: tuple[int, ...] = (1, 4, 6),
    import_cap: float = 1e3,
    export_cap: float = 1e3,
    p2p_cost: float = 0.01,
    batteries: Batteries | None = None,
) -> ClearingInputs:
    """Random but plausible homes: some with PV, a day-shaped tariff."""
    rng = np.random.default_rng(seed)
    load = rng.uniform(0.1, 2.0, (homes, horizon))
    pv = rng.uniform(0.0, 4.0, (homes, horizon)) * (rng.random((homes, 1)) < 0.6)
    buy = rng.uniform(0.20, 0.40, horizon)
    sell = rng.uniform(0.02, 0.10, horizon)
    if batteries is None:
        batteries = make_batteries(np.array(battery_homes), rng)
    return ClearingInputs(
        load_kwh=load,
        pv_kwh=pv,
        buy_price_per_kwh=buy,
        sell_price_per_kwh=sell,
        import_capacity_kwh=np.full(horizon, import_cap),
        export_capacity_kwh=np.full(horizon, export_cap),
        p2p_cost_per_kwh=p2p_cost,
        batteries=batteries,
    )


def home_battery_flows(inputs: ClearingInputs, result: Clearing) -> np.ndarray:
    net = result.battery_charge_kwh - result.battery_discharge_kwh
    return np.bincount(inputs.batteries.home, weights=net, minlength=inputs.homes)


# ---------------------------------------------------------------- physics
@PROPERTY
@given(SEEDS)
def test_clearing_satisfies_per_home_energy_identity(seed: int) -> None:
    inputs = make_inputs(seed)
    result = clear(inputs)
    lhs = (
        inputs.load_kwh[:, 0]
        - inputs.pv_kwh[:, 0]
        + result.curtailed_kwh
        - result.shed_kwh
        + home_battery_flows(inputs, result)
    )
    rhs = result.grid_import_kwh - result.grid_export_kwh + result.p2p_buy_kwh - result.p2p_sell_kwh
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-9)


@PROPERTY
@given(SEEDS)
def test_clearing_reports_non_negative_flows(seed: int) -> None:
    result = clear(make_inputs(seed))
    for name in (
        "grid_import_kwh", "grid_export_kwh", "p2p_buy_kwh", "p2p_sell_kwh",
        "curtailed_kwh", "shed_kwh", "battery_charge_kwh", "battery_discharge_kwh",
    ):
        assert np.all(getattr(result, name) >= 0), name


@PROPERTY
@given(SEEDS, st.floats(0.0, 1.0))
def test_clearing_keeps_battery_soc_and_power_within_bounds(seed: int, soc_fraction: float) -> None:
    rng = np.random.default_rng(seed)
    batteries = make_batteries(np.array([0, 3, 5]), rng, soc_fraction)
    inputs = make_inputs(seed, batteries=batteries)
    result = clear(inputs)
    b = inputs.batteries
    soc = result.soc_path_kwh
    assert soc.shape == (b.count, inputs.horizon + 1)
    np.testing.assert_array_equal(soc[:, 0], b.soc_kwh)
    assert np.all(soc >= b.min_soc_kwh[:, None] - TOL)
    assert np.all(soc <= b.capacity_kwh[:, None] + TOL)
    assert np.all(result.battery_charge_kwh <= b.max_charge_kwh + TOL)
    assert np.all(result.battery_discharge_kwh <= b.max_discharge_kwh + TOL)
    expected = (
        b.soc_kwh
        + b.charge_efficiency * result.battery_charge_kwh
        - result.battery_discharge_kwh / b.discharge_efficiency
    )
    np.testing.assert_allclose(soc[:, 1], expected, atol=1e-12)


def test_clearing_supports_two_batteries_at_one_home() -> None:
    rng = np.random.default_rng(3)
    inputs = make_inputs(3, batteries=make_batteries(np.array([2, 2, 5]), rng))
    result = clear(inputs)
    assert result.status == "optimal"
    assert result.battery_charge_kwh.shape == (3,)


def test_clearing_works_without_batteries() -> None:
    inputs = make_inputs(4, batteries=Batteries.none())
    result = clear(inputs)
    assert result.status == "optimal"
    assert result.soc_path_kwh.shape == (0, inputs.horizon + 1)


# ---------------------------------------------------------------- grid capacity
def test_clearing_respects_import_capacity_and_sheds_when_it_binds() -> None:
    inputs = make_inputs(7, import_cap=0.5, battery_homes=(2,))
    inputs = dataclasses.replace(inputs, pv_kwh=np.zeros_like(inputs.pv_kwh))
    result = clear(inputs)
    assert result.grid_import_kwh.sum() <= 0.5 + TOL
    assert result.shed_kwh.sum() > 0.1
    assert np.all(result.shed_kwh <= inputs.load_kwh[:, 0] + TOL)


def test_clearing_respects_export_capacity_and_curtails_when_it_binds() -> None:
    inputs = make_inputs(8, export_cap=0.3, battery_homes=(2,))
    inputs = dataclasses.replace(inputs, pv_kwh=inputs.pv_kwh + 5.0)
    result = clear(inputs)
    assert result.grid_export_kwh.sum() <= 0.3 + TOL
    assert result.curtailed_kwh.sum() > 0.1
    assert np.all(result.curtailed_kwh <= inputs.pv_kwh[:, 0] + TOL)


@PROPERTY
@given(SEEDS, st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_clearing_never_exceeds_grid_capacity(seed: int, import_cap: float, export_cap: float) -> None:
    result = clear(make_inputs(seed, import_cap=import_cap, export_cap=export_cap))
    assert result.grid_import_kwh.sum() <= import_cap + TOL
    assert result.grid_export_kwh.sum() <= export_cap + TOL


def test_capacity_margin_leaves_room_for_rounding() -> None:
    inputs = make_inputs(9, import_cap=1.0)
    inputs = dataclasses.replace(inputs, pv_kwh=np.zeros_like(inputs.pv_kwh))
    result = clear(inputs, capacity_margin_kwh=0.008)
    assert result.grid_import_kwh.sum() <= 1.0 - 0.008 + TOL
    assert result.grid_import_kwh.sum() >= 1.0 - 0.008 - TOL


# ---------------------------------------------------------------- market
@PROPERTY
@given(SEEDS)
def test_p2p_bought_equals_p2p_sold(seed: int) -> None:
    result = clear(make_inputs(seed))
    assert result.p2p_buy_kwh.sum() == pytest.approx(result.p2p_sell_kwh.sum(), abs=1e-9)
    assert np.all(result.p2p_buy_kwh * result.p2p_sell_kwh == 0), "a home both buys and sells"


@PROPERTY
@given(SEEDS, st.floats(0.0, 3.0), st.floats(0.0, 3.0))
def test_price_lies_between_sell_and_buy_tariffs(seed: int, import_cap: float, export_cap: float) -> None:
    inputs = make_inputs(seed, import_cap=import_cap, export_cap=export_cap)
    result = clear(inputs)
    assert inputs.sell_price_per_kwh[0] <= result.p2p_price_per_kwh <= inputs.buy_price_per_kwh[0]


def test_price_is_grid_tariff_on_the_side_the_community_trades() -> None:
    importing = make_inputs(10, batteries=Batteries.none(), p2p_cost=0.0)
    importing = dataclasses.replace(importing, pv_kwh=np.zeros_like(importing.pv_kwh))
    exporting = dataclasses.replace(importing, pv_kwh=importing.load_kwh + 1.0)
    assert clear(importing).p2p_price_per_kwh == pytest.approx(importing.buy_price_per_kwh[0], abs=1e-6)
    assert clear(exporting).p2p_price_per_kwh == pytest.approx(exporting.sell_price_per_kwh[0], abs=1e-6)


# ---------------------------------------------------------------- determinism and reuse
def assert_identical(a: Clearing, b: Clearing) -> None:
    for f in dataclasses.fields(Clearing):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.tobytes() == y.tobytes(), f.name
        else:
            assert x == y, f.name


def test_same_inputs_give_bit_identical_clearing_even_after_another_instance() -> None:
    inputs, other = make_inputs(11), make_inputs(12)
    first = clear(inputs)
    second = clear(inputs)
    clear(other)
    third = clear(inputs)
    fresh = CommunityModel(inputs.homes, inputs.horizon, inputs.batteries).clear(inputs)
    assert_identical(first, second)
    assert_identical(first, third)
    assert_identical(first, fresh)


def test_homes_without_batteries_create_no_variables() -> None:
    rng = np.random.default_rng(0)
    batteries = make_batteries(np.array([0, 1]), rng)
    small = CommunityModel(homes=5, horizon=6, batteries=batteries)
    large = CommunityModel(homes=500, horizon=6, batteries=batteries)
    sizes = {name: block.size for name, block in small.lp.column_blocks.items()}
    assert sizes == {name: block.size for name, block in large.lp.column_blocks.items()}
    assert small.lp.matrix.shape == large.lp.matrix.shape
    T, B, battery_homes = 6, 2, 2
    # charge and state per battery, buy side per battery home; per step grid import and
    # export, the pool's four shedding/curtailment amounts and the battery homes' two
    assert sum(sizes.values()) == 2 * B * T + battery_homes * T + 8 * T


def test_rolling_resolve_reuses_the_built_problem() -> None:
    base = make_inputs(13, horizon=6)
    model = community.model_for(base)
    lp, matrix = model.lp, model.lp.matrix
    clear(base)
    (workspace,) = model._workspaces.values()
    solver = workspace._solver
    soc = base.batteries.soc_kwh
    for step in range(3):
        shifted = make_inputs(100 + step, horizon=6, batteries=dataclasses.replace(base.batteries, soc_kwh=soc))
        result = clear(shifted)
        soc = result.soc_path_kwh[:, 1]
        assert community.model_for(shifted) is model
        assert model.lp is lp and model.lp.matrix is matrix, "re-solve assembled the matrix again"
        assert workspace._solver is solver, "re-solve set the solver up again"
        assert model.last_solution.solver == "PIQP"


def test_clearing_rejects_inputs_of_another_shape() -> None:
    inputs = make_inputs(14)
    model = CommunityModel(inputs.homes, inputs.horizon + 1, inputs.batteries)
    with pytest.raises(InputError, match="model built for"):
        model.clear(inputs)


def test_clearing_rejects_nan_inputs() -> None:
    inputs = make_inputs(15)
    load = inputs.load_kwh.copy()
    load[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        clear(dataclasses.replace(inputs, load_kwh=load))


def test_solver_failure_raises_solver_error(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = make_inputs(16)

    def broken(*args: object, **kwargs: object) -> None:
        raise solvers.SolverFailure("numerical trouble")

    monkeypatch.setattr(solvers.PiqpWorkspace, "solve", broken)
    monkeypatch.setattr(solvers, "solve_clarabel", broken)
    with pytest.raises(SolverError, match="numerical trouble"):
        clear(inputs)


# ---------------------------------------------------------------- economics
def simulate_community_day(
    load: np.ndarray, pv: np.ndarray, batteries: Batteries, buy: np.ndarray, sell: np.ndarray,
    steps: int, window: int, p2p_cost: float,
) -> tuple[float, np.ndarray]:
    """Rolling-horizon clearing with perfect forecasts; returns cost and final SoC."""
    cost, soc = 0.0, batteries.soc_kwh
    big = np.full(window, 1e6)
    for t in range(steps):
        window_slice = slice(t, t + window)
        result = clear(
            ClearingInputs(
                load_kwh=load[:, window_slice],
                pv_kwh=pv[:, window_slice],
                buy_price_per_kwh=buy[window_slice],
                sell_price_per_kwh=sell[window_slice],
                import_capacity_kwh=big,
                export_capacity_kwh=big,
                p2p_cost_per_kwh=p2p_cost,
                batteries=dataclasses.replace(batteries, soc_kwh=soc),
            )
        )
        cost += buy[t] * result.grid_import_kwh.sum() - sell[t] * result.grid_export_kwh.sum()
        cost += p2p_cost * result.p2p_buy_kwh.sum()  # P2P payments cancel; friction does not
        soc = result.soc_path_kwh[:, 1]
    return cost, soc


def test_clearing_costs_no_more_than_baseline_over_a_day() -> None:
    rng = np.random.default_rng(21)
    homes, steps, window = 10, 24, 8
    hours = np.arange(steps + window) % 24
    sun = np.clip(np.sin((hours - 6) / 12 * np.pi), 0, None)
    load = rng.uniform(0.2, 1.2, (homes, steps + window)) * (1 + 0.8 * (hours >= 17))
    pv = rng.uniform(0, 4, (homes, 1)) * (rng.random((homes, 1)) < 0.5) * sun
    buy = np.where((hours >= 17) & (hours < 21), 0.40, 0.25)
    sell = np.full(steps + window, 0.07)
    batteries = make_batteries(np.array([0, 3, 7]), rng, soc_fraction=0.2)

    community_cost, community_soc = simulate_community_day(
        load, pv, batteries, buy, sell, steps, window, p2p_cost=0.01
    )
    base = run_baseline(load[:, :steps], pv[:, :steps], batteries, buy[:steps], sell[:steps])
    # Energy left in the batteries is worth the same to both; value it at export.
    value = sell.mean() * batteries.discharge_efficiency
    community_net = community_cost - value @ community_soc
    baseline_net = base.total_cost - value @ base.soc_kwh[:, -1]
    assert community_net <= baseline_net + 1e-6


def test_clearing_falls_back_to_robust_solver_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = make_inputs(17)
    expected = clear(inputs)
    stalled = (solvers.PIQP, {**community.SOLVER_ATTEMPTS[0][1], "max_iter": 1})  # stops early: not "optimal"
    monkeypatch.setattr(community, "SOLVER_ATTEMPTS", (stalled, community.SOLVER_ATTEMPTS[-1]))
    result = clear(inputs)
    assert result.status == "optimal"
    assert community.model_for(inputs).last_solution.solver == "CLARABEL"
    assert result.objective == pytest.approx(expected.objective, rel=1e-6)
    assert result.p2p_price_per_kwh == pytest.approx(expected.p2p_price_per_kwh, abs=1e-6)


def test_clearing_rejects_battery_state_outside_its_bounds() -> None:
    inputs = make_inputs(18)
    b = inputs.batteries
    broken = dataclasses.replace(b, soc_kwh=b.capacity_kwh + 0.5)
    with pytest.raises(InputError, match="outside"):
        clear(dataclasses.replace(inputs, batteries=broken))


def test_clearing_rejects_export_tariff_above_import_tariff() -> None:
    inputs = make_inputs(19)
    sell = inputs.sell_price_per_kwh.copy()
    sell[2] = inputs.buy_price_per_kwh[2] + 0.01
    with pytest.raises(InputError, match="sell_price_per_kwh .* exceeds buy_price_per_kwh .* at step 2"):
        clear(dataclasses.replace(inputs, sell_price_per_kwh=sell))


@pytest.mark.parametrize("solver", [solvers.PIQP, solvers.CLARABEL])
def test_price_is_the_marginal_cost_of_demand_at_step_0(monkeypatch: pytest.MonkeyPatch, solver: str) -> None:
    """The balance dual's sign: one more kWh of load at step 0 raises the cost by the price.

    A battery that can just cover step 0 sets a price strictly between the tariffs,
    so neither clip applies and the finite difference measures the dual itself."""
    attempts = tuple(a for a in community.SOLVER_ATTEMPTS if a[0] == solver)
    monkeypatch.setattr(community, "SOLVER_ATTEMPTS", attempts)
    rng = np.random.default_rng(20)
    batteries = make_batteries(np.array([0]), rng, soc_fraction=1.0)
    inputs = make_inputs(20, homes=3, horizon=4, batteries=batteries, p2p_cost=0.0)
    load = np.full((3, 4), 0.3)
    inputs = dataclasses.replace(inputs, load_kwh=load, pv_kwh=np.zeros((3, 4)),
                                 buy_price_per_kwh=np.array([0.30, 0.20, 0.40, 0.25]),
                                 sell_price_per_kwh=np.full(4, 0.05))
    base = clear(inputs)
    assert inputs.sell_price_per_kwh[0] < base.p2p_price_per_kwh < inputs.buy_price_per_kwh[0]
    bumped = load.copy()
    bumped[2, 0] += 1e-3
    step = clear(dataclasses.replace(inputs, load_kwh=bumped))
    assert (step.objective - base.objective) / 1e-3 == pytest.approx(base.p2p_price_per_kwh, abs=1e-4)


def test_large_fleets_enter_the_balance_in_groups_so_piqp_can_order_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(community, "PIQP_MAX_BATTERY_STEPS", 1)
    inputs = make_inputs(22)
    result = clear(inputs)
    model = community.model_for(inputs)
    assert "battery_group" in model.lp.row_blocks
    assert model.last_solution.solver == solvers.PIQP
    assert result.status == "optimal"
    monkeypatch.setattr(community, "PIQP_MAX_BATTERY_STEPS", 10**9)
    community._models.clear()
    assert clear(inputs).objective == pytest.approx(result.objective, rel=1e-7)


def test_large_fleets_on_a_network_skip_the_solver_whose_ordering_does_not_scale(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(community, "PIQP_MAX_BATTERY_STEPS", 1)
    inputs = make_inputs(22)
    T = inputs.horizon
    one_zone = ZoneNetwork(np.zeros(inputs.homes, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64),
                           np.zeros(0), np.zeros((0, T)), np.zeros((0, T)), np.full((1, T), 1e6), np.full((1, T), 1e6))
    inputs = dataclasses.replace(inputs, network=one_zone)
    result = clear(inputs)
    model = community.model_for(inputs)
    assert "battery_group" not in model.lp.row_blocks
    assert model.last_solution.solver == solvers.CLARABEL
    assert result.status == "optimal"
