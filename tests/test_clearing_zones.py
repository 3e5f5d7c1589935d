"""The community clearing on a network: one balance per zone, DC line flows, zonal prices.

Attacks on what optimizer.zones promises: the clearing must equal the naive per-home LP
with the same network (optimizer.reference, whose flows come from PTDFs, not angles); a
zone's price must be the marginal cost of demand there (finite differences on both
sides); prices must agree where nothing binds and split where a line does; a one-zone
network must clear exactly as the copper plate; a malformed network is refused.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import InputError
from optimizer import Batteries, ClearingInputs, clear
from optimizer.community import model_for
from optimizer.reference import solve_reference
from optimizer.types import ZoneNetwork
from tests.test_clearing_exact import CAPACITY, SOC, TARIFF, community

LOOP = ((0, 1), (1, 2), (0, 2))  # three zones in a loop: DC loop flows


def network(homes: int, horizon: int, zones: int, lines: tuple[tuple[int, int], ...], capacity: float,
            grid_zone: int = 0, home_zone: np.ndarray | None = None, susceptance: np.ndarray | None = None) -> ZoneNetwork:
    """``zones`` zones joined by ``lines`` of one capacity; the grid meets zone ``grid_zone`` only."""
    grid = np.zeros((zones, horizon))
    grid[grid_zone] = 1e3
    L = len(lines)
    return ZoneNetwork(
        home_zone=np.arange(homes) % zones if home_zone is None else home_zone,
        line_from=np.array([a for a, _ in lines], dtype=np.int64),
        line_to=np.array([b for _, b in lines], dtype=np.int64),
        susceptance=np.ones(L) if susceptance is None else susceptance,
        line_forward_kwh=np.full((L, horizon), capacity),
        line_back_kwh=np.full((L, horizon), capacity),
        grid_import_kwh=grid,
        grid_export_kwh=grid.copy(),
    )


def two_zones(line_kwh: float) -> ClearingInputs:
    """Zone 0 has the grid and a big PV home; zone 1 has two homes in deficit behind one line."""
    T = 2
    load = np.array([[0.0, 0.0], [0.5, 0.5], [2.0, 2.0], [1.0, 1.0]])
    pv = np.array([[3.0, 3.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    return ClearingInputs(
        load, pv, np.full(T, 0.30), np.full(T, 0.05), np.full(T, 100.0), np.full(T, 100.0), 0.01,
        network=network(4, T, 2, ((0, 1),), line_kwh, home_zone=np.array([0, 0, 1, 1])),
    )


def test_prices_are_equal_in_every_zone_when_no_line_binds() -> None:
    inputs = dataclasses.replace(community(1, 6, 3, (0, 4), "ample", "ample", "random", "normal"),)
    inputs = dataclasses.replace(inputs, network=network(6, 3, 3, LOOP, 1e3))
    result = clear(inputs)
    assert np.ptp(result.zone_price_per_kwh) < 1e-6
    assert result.congestion_rent == pytest.approx(0.0, abs=1e-6)


def test_a_binding_line_separates_the_prices_and_its_rent_is_flow_times_price_difference() -> None:
    result = clear(two_zones(1.0))
    low, high = result.zone_price_per_kwh
    assert result.line_flow_kwh[0] == pytest.approx(1.0, abs=1e-6)
    assert (low, high) == (pytest.approx(0.05, abs=1e-6), pytest.approx(0.30, abs=1e-6))
    # zone 1 gets 1 kWh over the line, all of it P2P from zone 0's PV home
    assert result.congestion_rent == pytest.approx(1.0 * (high - low), abs=1e-6)
    assert result.shed_kwh[2:].sum() == pytest.approx(2.0, abs=1e-6)  # 3 kWh needed, 1 arrives
    assert clear(two_zones(1e3)).zone_price_per_kwh == pytest.approx([0.29, 0.29], abs=1e-6)


def test_a_binding_loop_line_prices_a_zone_above_the_cheap_zone_as_dc_flows_do() -> None:
    """Zone 0 has the grid; zones 1 and 2 draw through a loop whose 0-2 line is tight.
    Power from 0 to 2 splits 2/3 on the direct line and 1/3 through zone 1."""
    T, homes = 1, 3
    load = np.array([[0.0], [0.0], [3.0]])
    inputs = ClearingInputs(
        load, np.zeros((homes, T)), np.full(T, 0.3), np.full(T, 0.05), np.full(T, 1e3), np.full(T, 1e3), 0.01,
        network=dataclasses.replace(network(homes, T, 3, LOOP, 1e3, home_zone=np.array([0, 1, 2])),
                                    line_forward_kwh=np.array([[1e3], [1e3], [1.0]])),
    )
    result = clear(inputs)
    flow = result.line_flow_kwh
    assert flow[2] == pytest.approx(1.0, abs=1e-6)  # the direct line at its limit
    assert flow[0] == pytest.approx(0.5, abs=1e-6) and flow[1] == pytest.approx(0.5, abs=1e-6)
    assert result.shed_kwh[2] == pytest.approx(1.5, abs=1e-6)
    assert solve_reference(inputs).objective == pytest.approx(result.objective, rel=1e-6)


@pytest.mark.parametrize("line_kwh", [0.5, 1.0, 2.5, 1e3])
def test_each_zone_price_is_the_marginal_cost_of_demand_in_that_zone(line_kwh: float) -> None:
    """The unclipped row price of zone z lies between the left and right finite
    differences of the optimal cost in the load of a home of z at step 0 (the cost is
    convex in demand, so its row price is a subgradient). Without a P2P cost, as in
    test_optimizer's copper-plate check: the LP folds that cost into a constant of the
    pool's deficit, which a kWh of load moves beside the row."""
    inputs = dataclasses.replace(two_zones(line_kwh), p2p_cost_per_kwh=0.0)
    base = clear(inputs).objective
    model = model_for(inputs)
    dual = model._network_block.zone_prices(model.last_solution)[:, 0].copy()
    delta = 1e-3
    for zone, home in ((0, 1), (1, 2)):
        def cost(change: float) -> float:
            load = inputs.load_kwh.copy()
            load[home, 0] += change
            return clear(dataclasses.replace(inputs, load_kwh=load)).objective

        left, right = (base - cost(-delta)) / delta, (cost(delta) - base) / delta
        assert left - 1e-5 <= dual[zone] <= right + 1e-5, (zone, left, dual[zone], right)


def test_one_zone_network_clears_exactly_as_the_copper_plate() -> None:
    """Without batteries, so that per-home flows are unique (a battery may be indifferent)."""
    inputs = community(7, 5, 3, (), "tight", "tight", "random", "normal")
    plain = clear(inputs)
    zoned = clear(dataclasses.replace(inputs, network=ZoneNetwork(
        np.zeros(5, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0),
        np.zeros((0, 3)), np.zeros((0, 3)), np.full((1, 3), 1e6), np.full((1, 3), 1e6))))
    assert zoned.objective == pytest.approx(plain.objective, rel=1e-7, abs=1e-9)
    assert zoned.zone_price_per_kwh[0] == pytest.approx(plain.p2p_price_per_kwh, abs=1e-7)
    for name in ("grid_import_kwh", "grid_export_kwh", "p2p_buy_kwh", "p2p_sell_kwh", "shed_kwh", "curtailed_kwh"):
        np.testing.assert_allclose(getattr(zoned, name), getattr(plain, name), atol=1e-6, err_msg=name)


@st.composite
def zoned_communities(draw: st.DrawFn) -> ClearingInputs:
    homes = draw(st.integers(2, 6))
    horizon = draw(st.integers(1, 3))
    inputs = community(
        seed=draw(st.integers(0, 2**32 - 1)),
        homes=homes,
        horizon=horizon,
        battery_homes=draw(st.lists(st.integers(0, homes - 1), max_size=3).map(sorted).map(tuple)),
        import_cap=draw(st.sampled_from(sorted(CAPACITY))),
        export_cap=draw(st.sampled_from(sorted(CAPACITY))),
        soc=draw(st.sampled_from(SOC)),
        tariff=draw(st.sampled_from(TARIFF)),
        pv_scale=draw(st.sampled_from([0.2, 1.0, 3.0])),
    )
    zones = draw(st.integers(2, 3))
    lines = ((0, 1),) if zones == 2 else draw(st.sampled_from([LOOP, ((0, 1), (1, 2))]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    net = network(homes, horizon, zones, lines, 1e3, grid_zone=draw(st.integers(0, zones - 1)),
                  home_zone=rng.integers(0, zones, homes), susceptance=rng.uniform(0.5, 2.0, len(lines)))
    limits = rng.choice([0.0, 0.3, 1.0, np.inf], (2, len(lines), horizon))
    grid = net.grid_import_kwh * rng.choice([0.0, 1e-3, 1.0], (zones, horizon))
    return dataclasses.replace(inputs, network=dataclasses.replace(
        net, line_forward_kwh=limits[0], line_back_kwh=limits[1],
        grid_import_kwh=grid, grid_export_kwh=grid[::-1].copy() if zones == 2 else grid))


@settings(max_examples=40, deadline=None)
@given(zoned_communities())
def test_zoned_clearing_equals_naive_lp_with_the_same_network(inputs: ClearingInputs) -> None:
    """Objectives agree to 1e-6 relative, or 1e-5 absolute below 10: a line row that the
    balance pins to zero (a network whose other zones are empty) leaves PIQP's interior
    point a microwatt-hour of shedding at VoLL, a few millionths of a currency unit."""
    result = clear(inputs)
    reference = solve_reference(inputs).objective
    assert result.objective == pytest.approx(reference, rel=1e-6, abs=1e-5)
    net = inputs.network
    assert np.all(result.line_flow_kwh <= net.line_forward_kwh[:, 0] + 1e-6)
    assert np.all(-result.line_flow_kwh <= net.line_back_kwh[:, 0] + 1e-6)
    position = (inputs.load_kwh[:, 0] - inputs.pv_kwh[:, 0] + result.curtailed_kwh - result.shed_kwh
                + np.bincount(inputs.batteries.home, result.battery_charge_kwh - result.battery_discharge_kwh,
                              minlength=inputs.homes))
    traded = result.grid_import_kwh - result.grid_export_kwh + result.p2p_buy_kwh - result.p2p_sell_kwh
    np.testing.assert_allclose(position, traded, atol=1e-7)
    assert result.p2p_buy_kwh.sum() == pytest.approx(result.p2p_sell_kwh.sum(), abs=1e-7)
    for name in ("grid_import_kwh", "grid_export_kwh", "p2p_buy_kwh", "p2p_sell_kwh"):
        assert np.all(getattr(result, name) >= 0), name
    price = result.zone_price_per_kwh[net.home_zone]
    assert result.congestion_rent == pytest.approx(price @ result.p2p_buy_kwh - price @ result.p2p_sell_kwh)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"home_zone": np.array([0, 0, 5, 1])}, "home_zone"),
        ({"line_to": np.array([0])}, "itself"),
        ({"susceptance": np.array([0.0])}, "susceptance"),
        ({"line_forward_kwh": np.full((1, 2), -1.0)}, "line_forward_kwh"),
        ({"grid_export_kwh": np.zeros((3, 2))}, "grid_export_kwh"),
    ],
)
def test_a_malformed_network_is_refused_with_its_field_named(change: dict, message: str) -> None:
    inputs = two_zones(1.0)
    with pytest.raises(InputError, match=message):
        clear(dataclasses.replace(inputs, network=dataclasses.replace(inputs.network, **change)))


def test_a_zone_without_a_line_to_the_reference_is_refused() -> None:
    inputs = two_zones(1.0)
    net = inputs.network
    isolated = dataclasses.replace(net, line_from=np.zeros(0, np.int64), line_to=np.zeros(0, np.int64),
                                   susceptance=np.zeros(0), line_forward_kwh=np.zeros((0, 2)),
                                   line_back_kwh=np.zeros((0, 2)))
    with pytest.raises(InputError, match="no line path"):
        clear(dataclasses.replace(inputs, network=isolated))


def test_a_network_file_clears_a_community_with_its_interval_limits() -> None:
    """examples/network: feeder-north's import drops to 60 kW in intervals 40 and 41. Ten
    homes there drawing 12 kW each get 60 kW (all of it the south feeder's PV), so that
    feeder's price rises to the import tariff while the south, exporting the PV north
    cannot take, stays at the export tariff; in interval 39 the same homes are served in
    full at one price."""
    from node.data.network import community_network
    from node.data.network_file import load_network

    grid = load_network("examples/network/network.toml")
    zones = ["feeder-north"] * 10 + ["feeder-south"] * 5
    load = np.array([[3.0, 3.0]] * 10 + [[0.0, 0.0]] * 5)
    pv = np.array([[0.0, 0.0]] * 10 + [[3.5, 3.5]] * 5)

    def cleared(first_interval: int):
        inputs = ClearingInputs(load, pv, np.full(2, 0.30), np.full(2, 0.05), np.full(2, 1e3), np.full(2, 1e3), 0.01,
                                network=community_network(grid, zones, [first_interval, first_interval + 1], 15))
        return clear(inputs)

    tight = cleared(40)
    north, south = tight.zone_price_per_kwh[grid.zone_index["feeder-north"]], tight.zone_price_per_kwh[grid.zone_index["feeder-south"]]
    assert (north, south) == (pytest.approx(0.30), pytest.approx(0.05))
    assert tight.shed_kwh[:10].sum() == pytest.approx(30.0 - 15.0, abs=1e-6)  # 60 kW x 15 min arrive
    assert tight.congestion_rent > 0
    loose = cleared(39)
    assert np.ptp(loose.zone_price_per_kwh) < 1e-6 and loose.shed_kwh.sum() < 1e-6
    with pytest.raises(InputError, match="feeder-east"):
        community_network(grid, ["feeder-east"], [0], 15)


def test_a_network_falls_back_to_piqp_when_clarabel_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from optimizer import solvers

    def fail(*args, **kwargs):
        raise solvers.SolverFailure("CLARABEL: made to fail")

    monkeypatch.setattr(solvers, "solve_clarabel", fail)
    inputs = two_zones(1.0)
    result = clear(inputs)
    assert model_for(inputs).last_solution.solver == solvers.PIQP
    assert result.zone_price_per_kwh[1] > result.zone_price_per_kwh[0]


def test_a_zone_that_gains_a_grid_connection_gets_one_in_the_next_clearing() -> None:
    """Zones without a grid connection have no grid columns in the LP (optimizer.community
    says why); a zone connected in a later interval must not be cleared on the old model."""
    cut_off = two_zones(1.0)  # zone 1 reaches the grid only over its 1 kWh line: 2 kWh shed
    assert clear(cut_off).shed_kwh.sum() == pytest.approx(2.0, abs=1e-6)
    grid = cut_off.network.grid_import_kwh.copy()
    grid[1] = 5.0
    connected = dataclasses.replace(cut_off, network=dataclasses.replace(cut_off.network, grid_import_kwh=grid))
    result = clear(connected)
    assert result.shed_kwh.sum() == pytest.approx(0.0, abs=1e-6)
    assert result.objective == pytest.approx(solve_reference(connected).objective, rel=1e-6)
    with pytest.raises(InputError, match="network differs"):
        model_for(cut_off).clear(connected)


def test_piqp_on_a_network_stops_at_the_optimum_not_a_gap_above_it() -> None:
    """Found by the property test above: a line pinned to 0 one way in two steps, both homes
    behind it, export capacity 0. At PIQP's default duality gap the clearing came out 1.35e-5
    above the naive LP (Clarabel 8e-9); community.NETWORK_PIQP_GAP tightens it."""
    T = 3
    tariff = np.array([0.1084959013436389, 0.13728498294986918, 0.30118732440808915])
    grid = np.array([[1.0, 1000.0, 1.0], [0.0, 0.0, 0.0]])
    inputs = ClearingInputs(
        load_kwh=np.array([[1.2739233746429086, 0.5395734275277406, 0.08194704787238938],
                           [0.0, 1.6265404784005448, 1.8255111545554434]]),
        pv_kwh=np.array([[10.288851319050831, 0.40302690366557226, 8.75586535715933],
                         [2.107867447230708, 10.358147068198639, 6.4975346429891]]),
        buy_price_per_kwh=tariff, sell_price_per_kwh=tariff.copy(),
        import_capacity_kwh=np.full(T, 0.05447439171745001), export_capacity_kwh=np.zeros(T),
        p2p_cost_per_kwh=0.01,
        batteries=Batteries(
            home=np.array([0, 0]), capacity_kwh=np.array([5.986049678946055, 5.90417669388115]),
            max_charge_kwh=np.array([0.7778428479582076, 0.27019301004482243]),
            max_discharge_kwh=np.array([1.4429766803881634, 1.0507086449514518]),
            charge_efficiency=np.ones(2), discharge_efficiency=np.ones(2),
            soc_kwh=np.array([3.8936815418704454, 4.248657696842173]),
            min_soc_kwh=np.array([0.0, 0.590417669388115])),
        network=ZoneNetwork(
            home_zone=np.array([1, 1]), line_from=np.array([0]), line_to=np.array([1]),
            susceptance=np.array([0.9046800706458055]),
            line_forward_kwh=np.array([[0.3, 0.0, 0.0]]), line_back_kwh=np.array([[0.0, 0.0, np.inf]]),
            grid_import_kwh=grid, grid_export_kwh=grid[::-1].copy()),
    )
    result = clear(inputs)
    assert model_for(inputs).last_solution.solver == "PIQP"
    assert result.objective == pytest.approx(solve_reference(inputs).objective, rel=1e-7, abs=1e-6)
