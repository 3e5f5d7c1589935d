"""Networks from pandapower's grids and MATPOWER files, checked against pandapower's own
DC power flow, and written back to MATPOWER without changing the market."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pp = pytest.importorskip("pandapower", reason="the network extra (pip install 'gridledger[network]') is not installed")

from node.data.pandapower_io import (  # noqa: E402
    case_from_pandapower,
    load_matpower,
    load_pandapower_grid,
    pandapower_grids,
    save_matpower,
)
from node.data.wholesale import load_mini_iso  # noqa: E402
from node.errors import InputError  # noqa: E402
from optimizer.zonal import clear_zonal  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CASE3 = REPO / "tests" / "data" / "case3_loop.m"
MINI_ISO = REPO / "examples" / "mini-iso" / "three_zones.json"


def dc_flows_agree(name: str) -> tuple:
    """Our flows for the injections pandapower's DC power flow found, against its flows."""
    import pandapower.networks as pn

    net = getattr(pn, name)()
    case = case_from_pandapower(net, name)
    pp.rundcpp(net, numba=False)
    injection = np.array([-net.res_bus.at[z.id, "p_mw"] for z in case.network.zones])
    theirs = np.concatenate([net.res_line.p_from_mw.to_numpy(), net.res_trafo.p_hv_mw.to_numpy()])
    return case, case.network.flows(injection), theirs


@pytest.mark.parametrize("name", ["case9", "create_kerber_landnetz_kabel_1"])
def test_imported_grids_carry_the_flows_pandapowers_dc_power_flow_finds(name):
    _, ours, theirs = dc_flows_agree(name)
    assert ours == pytest.approx(theirs, abs=1e-9)


def test_a_radial_lv_feeder_becomes_a_tree_under_its_transformer():
    case = load_pandapower_grid("create_kerber_landnetz_kabel_1")
    network = case.network
    assert len(network.lines) == len(network.zones) - 1  # radial: a tree
    transformer = [line for line in network.lines if line.kind == "transformer"]
    assert len(transformer) == 1 and transformer[0].capacity_mw == pytest.approx(0.1)  # its 100 kVA rating
    grid = [z for z in network.zones if z.grid_connected]
    assert [z.name for z in grid] == ["Trafostation_OS"] and grid[0].grid_import_mw == float("inf")
    assert sum(case.loads_mw.values()) == pytest.approx(8 * 0.008)
    assert case.generators == ()  # an LV feeder has no priced generators: the grid connection supplies it


def test_case9_generators_with_quadratic_costs_offer_three_rising_tranches():
    case = load_pandapower_grid("case9")
    # gen0 (bus 2 of MATPOWER's case9): 1.2 + 2 x 0.085 x P per MWh, up to 300 MW.
    offers = case.offers_of("gen0")
    assert [o.quantity_mw for o in offers] == pytest.approx([100, 100, 100])
    assert [o.price_per_mwh for o in offers] == pytest.approx([1.2 + 0.17 * 50, 1.2 + 0.17 * 150, 1.2 + 0.17 * 250])
    # The slack with a cost is a generator, not a grid connection.
    assert not any(z.grid_connected for z in case.network.zones)
    assert clear_zonal(**case.clearing_input()).objective > 0


def test_a_matpower_m_file_reads_as_the_hand_solved_loop():
    case = load_matpower(CASE3)
    assert [line.susceptance for line in case.network.lines] == pytest.approx([10, 10, 10])  # 1 / x
    assert [line.capacity_mw for line in case.network.lines] == [150, 80, 150]
    result = clear_zonal(**case.clearing_input())
    assert result.lmp == {"bus0": 10.0, "bus1": 20.0, "bus2": 30.0}


def test_a_case_exported_to_matpower_and_read_back_clears_the_same(tmp_path):
    case = load_mini_iso(MINI_ISO)
    again = load_matpower(save_matpower(case, tmp_path / "three.mat"))
    # MATPOWER keeps no names: zones and lines come back in order, as bus0.. and line0..
    assert [line.capacity_mw for line in again.network.lines] == [line.capacity_mw for line in case.network.lines]
    assert [line.susceptance for line in again.network.lines] == pytest.approx([line.susceptance for line in case.network.lines])
    assert list(again.loads_mw.values()) == list(case.loads_mw.values())
    before, after = clear_zonal(**case.clearing_input()), clear_zonal(**again.clearing_input())
    assert list(after.lmp.values()) == list(before.lmp.values())
    assert list(after.flow_mw.values()) == list(before.flow_mw.values())
    assert sorted(o.price_per_mwh for o in again.offers) == sorted(o.price_per_mwh for o in case.offers)


def test_unknown_grid_and_bad_files_are_refused_with_a_hint(tmp_path):
    assert "create_kerber_landnetz_kabel_1" in pandapower_grids()
    with pytest.raises(InputError, match="no built-in grid 'case_nowhere'"):
        load_pandapower_grid("case_nowhere")
    with pytest.raises(InputError, match="MATPOWER file not found"):
        load_matpower(tmp_path / "missing.m")
    bad = tmp_path / "bad.m"
    bad.write_text("function mpc = bad\nmpc.version = '2';\n")
    with pytest.raises(InputError, match="not a MATPOWER case pandapower can read"):
        load_matpower(bad)
    with pytest.raises(InputError, match="name it case.mat"):
        save_matpower(load_mini_iso(MINI_ISO), tmp_path / "case.m")


def test_elements_the_dc_model_cannot_hold_are_named():
    import pandapower.networks as pn

    net = pn.example_multivoltage()  # has a three-winding transformer and bus-bus switches
    with pytest.raises(InputError, match="trafo3w|bus-bus switches"):
        case_from_pandapower(net, "example_multivoltage")
