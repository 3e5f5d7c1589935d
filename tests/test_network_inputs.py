"""The network in an interval's committed inputs: integers in the canonical JSON, hashed,
read back to the same zonal clearing; inputs without one hash as before; the interval path
clears them at one price per zone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from node.clearing.inputs import IntervalInputs
from node.clearing.interval import run_clearing
from node.clearing.network_inputs import NO_LIMIT, NetworkInputs
from node.errors import InputError
from node.units import round_price_units
from optimizer import clear
from tests.test_clearing_zones import two_zones


def interval_inputs(network: NetworkInputs | None) -> IntervalInputs:
    """two_zones' community (four homes, a line of 1 kWh per step) as committed inputs."""
    case = two_zones(1.0)
    wh = lambda kwh: np.rint(np.asarray(kwh) * 1000).astype(int).tolist()  # noqa: E731
    return IntervalInputs(
        interval=3, start="2026-01-01T00:45:00+00:00", participants=[1, 2, 3, 4],
        load_wh=wh(case.load_kwh), pv_wh=wh(case.pv_kwh),
        buy_price=[round_price_units(p) for p in case.buy_price_per_kwh],
        sell_price=[round_price_units(p) for p in case.sell_price_per_kwh],
        import_capacity_wh=wh(case.import_capacity_kwh), export_capacity_wh=wh(case.export_capacity_kwh),
        p2p_cost=round_price_units(case.p2p_cost_per_kwh), batteries=[], network=network,
    )


def committed_network() -> NetworkInputs:
    return NetworkInputs.from_network(two_zones(1.0).network, ["substation", "feeder"])


def test_inputs_without_a_network_hash_as_before_it_existed() -> None:
    plain = interval_inputs(None)
    assert b'"network"' not in plain.canonical_json()
    assert dataclasses.replace(plain, network=committed_network()).hash() != plain.hash()


def test_the_committed_network_reads_back_to_the_same_zonal_clearing() -> None:
    inputs = interval_inputs(committed_network())
    again = IntervalInputs.from_json(inputs.canonical_json())
    assert again.hash() == inputs.hash() and again.network == inputs.network
    result = clear(again.to_clearing_inputs())
    expected = clear(two_zones(1.0))
    np.testing.assert_allclose(result.zone_price_per_kwh, expected.zone_price_per_kwh, atol=1e-6)
    np.testing.assert_allclose(result.line_flow_kwh, expected.line_flow_kwh, atol=1e-6)


def test_a_changed_line_limit_or_zone_changes_the_hash() -> None:
    base = interval_inputs(committed_network())
    net = base.network
    for changed in (dataclasses.replace(net, line_forward_wh=[[2000, 1000]]),
                    dataclasses.replace(net, participant_zone=[0, 1, 1, 1]),
                    dataclasses.replace(net, susceptance_ppm=[2_000_000])):
        assert dataclasses.replace(base, network=changed).hash() != base.hash()


def test_limits_are_whole_wh_rounded_down_and_no_limit_is_kept() -> None:
    net = two_zones(1.0).network
    loose = dataclasses.replace(net, line_forward_kwh=np.array([[0.4567, np.inf]]))
    committed = NetworkInputs.from_network(loose, ["a", "b"])
    assert committed.line_forward_wh == [[456, NO_LIMIT]]
    assert np.isinf(committed.to_network().line_forward_kwh[0, 1])
    with pytest.raises(InputError, match="zone names"):
        NetworkInputs.from_network(net, ["only one"])


def test_the_interval_path_clears_a_network_at_one_price_per_zone() -> None:
    result = run_clearing(interval_inputs(committed_network()))
    low, high = result.zone_prices
    assert low < high and result.p2p_price == low
    assert result.p2p_prices.tolist() == [low, low, high, high]  # each home at its zone's price
    assert int(result.p2p_wh.sum()) == 0
