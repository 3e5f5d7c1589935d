"""The zonal clearing against cases solved by hand, the sign of its prices against a
finite difference, and its invariants on random small networks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from node.errors import InputError, SolverError
from optimizer.zonal import clear_zonal

TOL = 1e-6


def zone(name, load=0.0):
    return {"name": name, "load_mw": load}


def line(name, a, b, capacity, susceptance=1.0, **extra):
    return {"name": name, "zone_from": a, "zone_to": b, "susceptance": susceptance, "capacity_mw": capacity} | extra


def offer(generator, zone_name, quantity, price, tranche="t1"):
    return {"generator": generator, "zone": zone_name, "tranche": tranche, "quantity_mw": quantity,
            "price_per_mwh": price}


TWO_ZONES = dict(
    zones=[zone("A"), zone("B", 80)],
    lines=[line("AB", "A", "B", 50)],
    offers=[offer("GA", "A", 100, 10), offer("GB", "B", 100, 30)],
)


def loop(limit_13: float, load: float = 150) -> dict:
    """Three zones in a triangle of equal lines; cheap G1 in zone 1, dear G2 in zone 2,
    `load` MW in zone 3. A MW injected in 1 reaches 3 two thirds directly and one
    third through 2, so f13 = (2 P1 + P2) / 3, f23 = (P1 + 2 P2) / 3, f12 = (P1 - P2) / 3."""
    return dict(
        zones=[zone("1"), zone("2"), zone("3", load)],
        lines=[line("12", "1", "2", 150), line("13", "1", "3", limit_13), line("23", "2", "3", 150)],
        offers=[offer("G1", "1", 150, 10), offer("G2", "2", 150, 20)],
    )


# -- cases solved by hand --------------------------------------------------------------


def test_two_zones_with_a_binding_line_price_each_side_at_its_own_generator():
    # Line AB carries its 50 MW; the remaining 30 MW of B's load comes from GB.
    result = clear_zonal(**TWO_ZONES)
    assert result.flow_mw == {"AB": 50.0}
    assert result.dispatch_mw == {("GA", "t1"): 50.0, ("GB", "t1"): 30.0}
    assert result.lmp == {"A": 10.0, "B": 30.0}
    assert result.objective == pytest.approx(10 * 50 + 30 * 30)
    assert result.load_payment == {"A": 0.0, "B": 80 * 30.0}
    assert result.generator_revenue == {"GA": 50 * 10.0, "GB": 30 * 30.0}
    # Buyers pay 2400, sellers get 1400: the line's 50 MW times the 20 price difference.
    assert result.congestion_rent == pytest.approx(1000.0)
    assert result.line_shadow_price == {"AB": 20.0} and result.line_rent == {"AB": 1000.0}
    assert result.binding_lines == ("AB",)


def test_loop_with_a_binding_line_prices_a_zone_above_every_offer():
    # Limit f13 <= 80 binds: 2 P1 + P2 = 240 with P1 + P2 = 150, so P1 = 90, P2 = 60.
    # One more MW at zone 3 with f13 fixed: dP1 + dP2 = 1 and 2 dP1 + dP2 = 0, so
    # dP1 = -1, dP2 = 2 and the price at 3 is -10 + 2 x 20 = 30, above both offers.
    result = clear_zonal(**loop(80))
    assert result.dispatch_mw == {("G1", "t1"): 90.0, ("G2", "t1"): 60.0}
    assert result.flow_mw == {"12": 10.0, "13": 80.0, "23": 70.0}
    assert result.lmp == {"1": 10.0, "2": 20.0, "3": 30.0}
    assert result.lmp["3"] > max(o["price_per_mwh"] for o in loop(80)["offers"])
    # Loads pay 150 x 30 = 4500; G1 gets 900, G2 1200; the binding line's shadow price is
    # 30 (zone 1's price is 30 - 2/3 mu), so the rent is 30 x 80.
    assert result.congestion_rent == pytest.approx(4500 - 900 - 1200)
    assert result.line_shadow_price["13"] == pytest.approx(30.0)
    assert result.binding_lines == ("13",)


def test_mini_iso_three_zone_case_prices_the_load_zone_between_the_generators():
    # Mini-ISO's three_zones case 2: line 1-2 limited to 30 MW. f12 = (P1 - P2) / 3 = 30 with
    # P1 + P2 = 150 gives P1 = 120, P2 = 30; zone 3's MW splits half and half: 11.
    case = loop(150)
    case["lines"][0]["capacity_mw"] = 30
    case["offers"][1]["price_per_mwh"] = 12
    result = clear_zonal(**case)
    assert result.dispatch_mw == {("G1", "t1"): 120.0, ("G2", "t1"): 30.0}
    assert result.lmp == {"1": 10.0, "2": 12.0, "3": 11.0}


# (120 MW in the loop: with 150, G1 would be exhausted exactly and any price in [10, 20] optimal.)
@pytest.mark.parametrize("case", [dict(TWO_ZONES, lines=[line("AB", "A", "B", 500)]), loop(1000, load=120)])
def test_prices_are_equal_in_every_zone_when_no_line_binds(case):
    result = clear_zonal(**case)
    assert len(set(result.lmp.values())) == 1 and result.lmp["A" if "A" in result.lmp else "1"] == 10.0
    assert result.congestion_rent == 0.0 and result.binding_lines == ()


def test_a_reverse_limit_binds_only_against_its_own_direction():
    # Flow runs B -> A when the cheap generator sits in B; capacity_back_mw limits it.
    case = dict(zones=[zone("A", 80), zone("B")], lines=[line("AB", "A", "B", 500, capacity_back_mw=50)],
                offers=[offer("GA", "A", 100, 30), offer("GB", "B", 100, 10)])
    result = clear_zonal(**case)
    assert result.flow_mw == {"AB": -50.0} and result.lmp == {"A": 30.0, "B": 10.0}


def test_base_power_and_reference_zone_scale_angles_but_not_flows_or_prices():
    base = clear_zonal(**loop(80))
    other = clear_zonal(**loop(80), base_power_mva=100.0, reference_zone="3")
    assert other.lmp == base.lmp and other.flow_mw == base.flow_mw
    assert other.angle_rad["3"] == 0.0 and base.angle_rad["1"] == 0.0
    # f = S b (theta_from - theta_to): ten times less base power, ten times the angle.
    assert other.angle_rad["1"] - other.angle_rad["3"] == pytest.approx(10 * (base.angle_rad["1"] - base.angle_rad["3"]))
    assert base.angle_rad["1"] - base.angle_rad["3"] == pytest.approx(80 / 1000.0)


def test_input_order_does_not_change_the_clearing():
    case = loop(80)
    shuffled = {key: list(reversed(value)) for key, value in case.items()}
    assert clear_zonal(**shuffled).lmp == clear_zonal(**case).lmp
    assert clear_zonal(**shuffled).dispatch_mw == clear_zonal(**case).dispatch_mw


# -- the sign of the price ------------------------------------------------------------------


def test_lmp_is_the_cost_of_one_more_mw_of_load_in_that_zone():
    """The price's sign and meaning, checked against a finite difference: bump each
    zone's load a little, re-solve, and compare the change in cost."""
    case = loop(80)
    case["offers"] += [offer("G3", "3", 40, 45), offer("G1", "1", 50, 15, tranche="t2")]
    base = clear_zonal(**case)
    step = 1e-3
    for i, z in enumerate(case["zones"]):
        bumped = [dict(other) for other in case["zones"]]
        bumped[i]["load_mw"] += step
        slope = (clear_zonal(bumped, case["lines"], case["offers"]).objective - base.objective) / step
        assert slope == pytest.approx(base.lmp[z["name"]], abs=1e-6), z["name"]


# -- bids and lost load ----------------------------------------------------------------------


def test_bids_are_served_only_at_or_below_their_price():
    bids = [{"bidder": "D1", "zone": "B", "tranche": "b1", "quantity_mw": 10, "price_per_mwh": 40},
            {"bidder": "D2", "zone": "B", "tranche": "b1", "quantity_mw": 10, "price_per_mwh": 25}]
    result = clear_zonal(**TWO_ZONES, bids=bids)
    assert result.lmp["B"] == 30.0
    assert result.served_mw == {("D1", "b1"): 10.0, ("D2", "b1"): 0.0}
    assert result.bid_payment == {"D1": 300.0, "D2": 0.0}
    assert result.congestion_rent == pytest.approx(sum(result.load_payment.values()) + 300 - sum(result.generator_revenue.values()))


def test_without_enough_offers_the_clearing_says_how_much_is_missing():
    case = dict(TWO_ZONES, zones=[zone("A"), zone("B", 250)])
    with pytest.raises(SolverError, match=r"offers \(200 MW\) cannot cover the load \(250 MW\).*50 MW more"):
        clear_zonal(**case)


def test_offers_stranded_behind_a_line_are_named_as_such():
    case = dict(TWO_ZONES, offers=[offer("GA", "A", 100, 10)])
    with pytest.raises(SolverError, match="within the line limits"):
        clear_zonal(**case)


def test_a_value_of_lost_load_sheds_what_cannot_be_served_at_that_price():
    case = dict(TWO_ZONES, zones=[zone("A"), zone("B", 250)])
    result = clear_zonal(**case, value_of_lost_load=1000.0)
    assert result.shed_mw == {"B": 100.0} and result.lmp["B"] == 1000.0
    assert result.load_payment["B"] == 150 * 1000.0


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (lambda c: c["lines"][0].update(zone_to="C"), "zone_to 'C' is not one of the zones"),
    (lambda c: c["lines"][0].update(zone_to="A"), "connects zone A to itself"),
    (lambda c: c["lines"][0].update(susceptance=0), "susceptance must be > 0"),
    (lambda c: c["lines"][0].update(capacity_mw=-1), "capacity_mw must be >= 0"),
    (lambda c: c["offers"].append(offer("GA", "A", 5, 11)), "GA/t1' appears twice"),
    (lambda c: c["offers"][0].update(quantity_mw=float("nan")), "quantity_mw must be a finite number"),
    (lambda c: c["offers"][0].update(price_per_mwh="cheap"), "price_per_mwh must be a number"),
    (lambda c: c["offers"][0].update(zone="Z"), "zone 'Z' is not one of the zones"),
    (lambda c: c["zones"].append(zone("A")), "zone name 'A' appears twice"),
    (lambda c: c["zones"].append(zone("C")), r"zone\(s\) C have no path of lines"),
    (lambda c: c["zones"][1].pop("load_mw"), "zone B has no load_mw"),
])
def test_malformed_input_is_refused_with_the_element_named(change, message):
    case = {key: [dict(item) for item in value] for key, value in TWO_ZONES.items()}
    change(case)
    with pytest.raises(InputError, match=message):
        clear_zonal(**case)


def test_an_unknown_reference_zone_is_refused():
    with pytest.raises(InputError, match="reference zone 'C' is not one of the zones"):
        clear_zonal(**TWO_ZONES, reference_zone="C")


# -- invariants on random networks ---------------------------------------------------------


@st.composite
def networks(draw):
    n = draw(st.integers(2, 5))
    names = [f"z{i}" for i in range(n)]
    pairs = [(draw(st.integers(0, i - 1)), i) for i in range(1, n)]  # a spanning tree: connected
    extra = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=3))
    pairs += [(a, b) for a, b in extra if a != b]
    money = st.floats(-20, 100, allow_nan=False).map(lambda v: round(v, 1))
    lines = [line(f"l{k}", names[a], names[b], draw(st.floats(1, 150).map(lambda v: round(v, 1))),
                  susceptance=draw(st.floats(0.2, 40).map(lambda v: round(v, 2))))
             for k, (a, b) in enumerate(pairs)]
    zones = [zone(z, draw(st.floats(0, 120).map(lambda v: round(v, 1)))) for z in names]
    offers = [offer(f"g{k}", draw(st.sampled_from(names)), draw(st.floats(0, 150).map(lambda v: round(v, 1))),
                    draw(money), tranche=f"t{k % 2}") for k in range(draw(st.integers(1, 7)))]
    return dict(zones=zones, lines=lines, offers=offers)


def ptdf(case) -> np.ndarray:
    """Flow on each line per MW injected in each zone and withdrawn at the first zone,
    computed independently of the clearing (reduced nodal susceptance matrix)."""
    names = [z["name"] for z in case["zones"]]
    A = np.zeros((len(case["lines"]), len(names)))
    for i, l in enumerate(case["lines"]):
        A[i, names.index(l["zone_from"])], A[i, names.index(l["zone_to"])] = 1, -1
    Bd = np.diag([1000.0 * l["susceptance"] for l in case["lines"]])
    Bbus = A.T @ Bd @ A
    H = np.zeros_like(A)
    H[:, 1:] = Bd @ A[:, 1:] @ np.linalg.inv(Bbus[1:, 1:])
    return H


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_random_networks_keep_limits_kkt_and_a_non_negative_rent(case):
    voll = 500.0
    result = clear_zonal(**case, value_of_lost_load=voll)
    lmp = result.lmp
    # Flows within limits and consistent with the angles.
    for l in case["lines"]:
        f = result.flow_mw[l["name"]]
        assert abs(f) <= l["capacity_mw"] + TOL
        assert f == pytest.approx(1000 * l["susceptance"] * (result.angle_rad[l["zone_from"]] - result.angle_rad[l["zone_to"]]), abs=1e-5)
    # Each zone balances.
    for z in case["zones"]:
        supply = sum(result.dispatch_mw[(o["generator"], o["tranche"])] for o in case["offers"] if o["zone"] == z["name"])
        inflow = sum(result.flow_mw[l["name"]] * (1 if l["zone_to"] == z["name"] else -1)
                     for l in case["lines"] if z["name"] in (l["zone_from"], l["zone_to"]))
        assert supply + inflow == pytest.approx(z["load_mw"] - result.shed_mw.get(z["name"], 0.0), abs=1e-5)
    # Complementary slackness of every tranche against its zone's price.
    for o in case["offers"]:
        p, price = result.dispatch_mw[(o["generator"], o["tranche"])], lmp[o["zone"]]
        if p > TOL:
            assert o["price_per_mwh"] <= price + TOL, o
        if p < o["quantity_mw"] - TOL:
            assert o["price_per_mwh"] >= price - TOL, o
    loads = {z["name"]: z["load_mw"] for z in case["zones"]}
    for z, shed in result.shed_mw.items():  # shedding is a tranche of demand at the value of lost load
        assert lmp[z] >= voll - TOL
        if shed < loads[z] - TOL:
            assert lmp[z] == pytest.approx(voll, abs=TOL)
    # A line's shadow price is zero unless the line is at its limit.
    for l in case["lines"]:
        if abs(result.flow_mw[l["name"]]) < l["capacity_mw"] - 1e-5:
            assert result.line_shadow_price[l["name"]] == 0.0
    # Prices: equal everywhere unless a line binds, and otherwise decomposed over the
    # binding lines by the PTDF: lmp_z = lmp_ref - sum_l mu_l sign(f_l) PTDF[l, z].
    prices = np.array([lmp[z["name"]] for z in case["zones"]])
    mu = np.array([result.line_shadow_price[l["name"]] * math.copysign(1, result.flow_mw[l["name"]]) for l in case["lines"]])
    if not result.binding_lines:
        assert np.ptp(prices) == pytest.approx(0, abs=TOL)
    assert prices == pytest.approx(prices[0] - ptdf(case).T @ mu, abs=1e-5)
    # Rent: never negative, equal to payments minus revenue and to the lines' sum.
    assert result.congestion_rent >= -TOL
    assert result.congestion_rent == pytest.approx(sum(result.line_rent.values()), abs=1e-4)
    by_price_difference = sum(result.flow_mw[l["name"]] * (lmp[l["zone_to"]] - lmp[l["zone_from"]]) for l in case["lines"])
    assert result.congestion_rent == pytest.approx(by_price_difference, abs=1e-4)


@settings(max_examples=15, deadline=None)
@given(networks(), st.integers(0, 4))
def test_random_prices_match_a_finite_difference_where_the_solution_is_not_degenerate(case, which):
    voll = 500.0
    base = clear_zonal(**case, value_of_lost_load=voll)
    z = case["zones"][which % len(case["zones"])]
    # A zone whose load is all shed can be priced above the value of lost load (serving a
    # MW there costs more); bumping its load only sheds the MW, which costs V.
    assume(base.lmp[z["name"]] <= voll or base.shed_mw.get(z["name"], 0.0) < z["load_mw"] - TOL)
    step = 1e-4
    slopes = []
    for sign in (1, -1):
        if sign < 0 and z["load_mw"] < step:
            continue
        zones = [dict(other, load_mw=other["load_mw"] + (sign * step if other is z else 0)) for other in case["zones"]]
        slopes.append(sign * (clear_zonal(zones, case["lines"], case["offers"], value_of_lost_load=voll).objective
                              - base.objective) / step)
    # At a degenerate vertex the cost has a kink and the price is one of its slopes.
    assume(len(slopes) == 2 and abs(slopes[0] - slopes[1]) < 1e-3)
    assert base.lmp[z["name"]] == pytest.approx(slopes[0], abs=1e-3)


# -- each zone's grid energy within its connection, to the Wh (fit_zone_grid) ----------

def test_fit_zone_grid_moves_grid_energy_from_a_zone_over_its_connection_to_one_with_room():
    from node.clearing.network_inputs import NO_LIMIT
    from node.clearing.zonal import fit_zone_grid

    # Zone 0 (2 homes) may import 1,000 Wh, zone 1 (2 homes) 10,000; the community-wide
    # split gave zone 0's homes 1,600 Wh of grid energy and zone 1's a P2P seller.
    net = np.array([1_000, 800, 2_000, -1_000])
    p2p = np.array([100, 100, 800, -1_000])
    fitted = fit_zone_grid(net, p2p, np.array([0, 0, 1, 1]), np.array([1_000, 10_000]), np.array([0, 10_000]))
    grid = net - fitted
    assert grid[:2].sum() == 1_000 and -10_000 <= grid[2:].sum() <= 10_000
    assert fitted.sum() == 0 and (fitted != p2p).sum() == 2  # one home each side moved
    # Within every limit already (or without limits): nothing moves.
    assert (fit_zone_grid(net, p2p, np.array([0, 0, 1, 1]), np.array([NO_LIMIT, NO_LIMIT]),
                          np.array([NO_LIMIT, NO_LIMIT])) == p2p).all()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-3_000, 3_000), st.integers(-5, 5)), min_size=3, max_size=12),
       st.lists(st.integers(0, 40), min_size=3, max_size=3))
def test_fit_zone_grid_conserves_p2p_and_keeps_every_zone_with_room_within_its_limit(homes, slack):
    from node.clearing.zonal import fit_zone_grid

    zone = np.array([z for z, _, _ in homes])
    assume((zone == 2).any())
    net = np.array([n for _, n, _ in homes])
    # A clearing's split: grid energy within each limit but for a few Wh of rounding.
    p2p = np.array([n for _, n, _ in homes]) - np.array([r for *_, r in homes])
    p2p[-1] -= p2p.sum()
    grid = net - p2p
    limit = np.array([max(int(grid[zone == z].sum()), 0) for z in range(3)]) - np.array(slack) % 7
    limit = np.maximum(limit, 0) + 100  # zone 2 always has room
    limit[2] += 10_000
    fitted = fit_zone_grid(net, p2p, zone, limit, np.full(3, 10**9))
    assert fitted.sum() == 0
    for z in range(3):
        if (zone == z).any():
            assert (net - fitted)[zone == z].sum() <= limit[z]
