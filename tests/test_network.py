"""The network model and its files: levels of a radial grid, limits per interval, DC
flows, and every bad cell reported with its file, row and column."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from node.data.network import Line, Network, Zone
from node.data.network_file import load_network, save_network
from node.data.wholesale import Offer, load_mini_iso, save_mini_iso
from node.errors import DataError, InputError
from optimizer.zonal import clear_zonal

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "network" / "network.toml"
MINI_ISO = REPO / "examples" / "mini-iso" / "three_zones.json"


def write(directory: Path, files: dict[str, str], manifest: str | None = None) -> Path:
    """A network manifest (default: every file given, in MW) and its tables in `directory`."""
    for name, text in files.items():
        (directory / name).write_text(text)
    if manifest is None:
        keys = {"zones.csv": "zones", "lines.csv": "lines", "levels.csv": "levels", "limits.csv": "limits"}
        manifest = "[network]\n" + "".join(f'{keys[name]} = "{name}"\n' for name in files if name in keys)
    path = directory / "network.toml"
    path.write_text(manifest)
    return path


ZONES = "name,grid_import,grid_export\nA,100,50\nB,,\nC,,\n"
LINES = "name,zone_from,zone_to,susceptance,capacity\nab,A,B,1,40\nbc,B,C,2,30\nca,C,A,1,60\n"


# -- the example and the model --------------------------------------------------------------


def test_example_levels_become_zones_joined_to_their_parents_by_limited_lines():
    network = load_network(EXAMPLE)
    assert [(z.name, z.id, z.kind) for z in network.zones] == [
        ("substation", 0, "substation"), ("feeder-north", 1, "feeder"), ("feeder-south", 2, "feeder")]
    # kW in the file, MW in the model; the top level is the grid connection.
    substation = network.zone("substation")
    assert (substation.grid_import_mw, substation.grid_export_mw) == (0.4, 0.25)
    north = network.lines[network.line_index["feeder-north"]]
    assert (north.zone_from, north.zone_to, north.capacity_mw, north.capacity_back_mw) == ("substation", "feeder-north", 0.15, 0.1)
    assert network.reference_zone == "substation" and network.name == "Two feeders under one substation"


def test_limits_change_only_in_the_intervals_that_override_them():
    network = load_network(EXAMPLE)
    default = network.limits()
    assert default.line_forward_mw.tolist() == [0.15, 0.12] and default.grid_import_mw.tolist() == [0.4, 0, 0]
    assert network.limits(39).line_forward_mw.tolist() == [0.15, 0.12]
    assert network.limits(40).line_forward_mw.tolist() == [0.06, 0.12]
    in_41 = network.limits(41)
    assert in_41.line_forward_mw.tolist() == [0.06, 0.12] and in_41.grid_import_mw.tolist() == [0.3, 0, 0]
    assert network.clearing_lines(40)[0]["capacity_mw"] == 0.06


def test_a_radial_feeder_carries_what_is_injected_below_it_whatever_its_susceptance():
    network = load_network(EXAMPLE)
    # 0.05 MW drawn in the north, 0.02 MW fed in in the south: the substation supplies 0.03.
    flows = network.flows([0.03, -0.05, 0.02])
    assert flows == pytest.approx([0.05, -0.02])


def test_ptdf_flows_match_the_zonal_clearing_of_a_meshed_case():
    case = load_mini_iso(MINI_ISO)
    result = clear_zonal(**case.clearing_input())
    injection = np.zeros(len(case.network.zones))
    zone_of = {g.name: g.zone for g in case.generators}
    for (generator, _), mw in result.dispatch_mw.items():
        injection[case.network.zone_index[zone_of[generator]]] += mw
    for zone, load in case.loads_mw.items():
        injection[case.network.zone_index[zone]] -= load
    assert case.network.flows(injection) == pytest.approx([result.flow_mw[line.name] for line in case.network.lines])


def test_saving_and_loading_gives_the_same_network(tmp_path):
    network = load_network(EXAMPLE)
    again = load_network(save_network(network, tmp_path / "out", power_unit="kW"))
    assert again.zones == network.zones and again.lines == network.lines
    assert again.overrides == network.overrides and again.reference_zone == network.reference_zone
    in_mw = load_network(save_network(network, tmp_path / "mw"))
    assert in_mw.lines == network.lines


def test_unlimited_lines_and_grid_connections_read_inf(tmp_path):
    path = write(tmp_path, {"zones.csv": "name,grid_import,grid_export\nA,inf,0\nB,,\n",
                            "lines.csv": "name,zone_from,zone_to,susceptance,capacity,capacity_back\nab,A,B,1,inf,5\n"})
    network = load_network(path)
    assert network.zone("A").grid_import_mw == float("inf") and network.lines[0].capacity_mw == float("inf")
    assert network.lines[0].capacity_back_mw == 5.0


def test_a_network_object_refuses_what_the_file_reader_would(tmp_path):
    zones = (Zone("A"), Zone("B"))
    with pytest.raises(InputError, match="zone 'Z' is not a zone"):
        Network(zones, (Line("ab", "A", "Z", 1.0, 1.0, 1.0),))
    with pytest.raises(InputError, match=r"zone\(s\) B have no path of lines"):
        Network(zones, ())
    with pytest.raises(InputError, match="neither a line nor a zone with a grid connection"):
        Network(zones, (Line("ab", "A", "B", 1.0, 1.0, 1.0),), overrides={3: {"A": (1.0, 1.0)}})


# -- bad files: file, row, column -------------------------------------------------------------


@pytest.mark.parametrize("files, where, problem", [
    ({"zones.csv": ZONES, "lines.csv": LINES.replace("bc,B,C", "bc,B,D")}, ("lines.csv", 3, "zone_to"), "'D' is not a known zone"),
    ({"zones.csv": ZONES, "lines.csv": LINES.replace("ca,C,A,1,60", "ca,C,A,1,-60")}, ("lines.csv", 4, "capacity"), "negative"),
    ({"zones.csv": ZONES, "lines.csv": LINES.replace("bc,B,C,2", "bc,B,C,two")}, ("lines.csv", 3, "susceptance"), "not a number"),
    ({"zones.csv": ZONES, "lines.csv": LINES.replace("bc,B,C,2", "bc,B,C,0")}, ("lines.csv", 3, "susceptance"), "must be > 0"),
    ({"zones.csv": ZONES, "lines.csv": LINES.replace("ca,C,A,1,60", "ca,C,A,1,-inf")}, ("lines.csv", 4, "capacity"), "only +inf"),
    ({"zones.csv": ZONES, "lines.csv": LINES.replace("ca,C,A", "ab,C,A")}, ("lines.csv", 4, "name"), "line 'ab' appears twice"),
    ({"zones.csv": ZONES, "lines.csv": LINES.replace("bc,B,C", "bc,B,B")}, ("lines.csv", 3, "zone_to"), "to itself"),
    ({"zones.csv": ZONES + "B,,\n", "lines.csv": LINES}, ("zones.csv", 5, "name"), "zone 'B' appears twice"),
    ({"zones.csv": ZONES.replace("A,100,50", "A,100,"), "lines.csv": LINES}, ("zones.csv", 2, "grid_export"), "both"),
    ({"zones.csv": ZONES, "lines.csv": LINES.replace("capacity", "capacty")}, ("lines.csv", 1, None), "missing column(s) capacity"),
    ({"zones.csv": ZONES.replace("grid_export", "grid_export,colour").replace("50\n", "50,red\n"), "lines.csv": LINES},
     ("zones.csv", 1, "colour"), "unknown column"),
    ({"zones.csv": ZONES, "lines.csv": LINES, "limits.csv": "interval,element,import,export\n3,ab,10,10\n3,B,1,1\n"},
     ("limits.csv", 3, "element"), "'B' is neither a line nor a zone with a grid connection"),
    ({"zones.csv": ZONES, "lines.csv": LINES, "limits.csv": "interval,element,import,export\n3,ab,10,10\n3,ab,5,5\n"},
     ("limits.csv", 3, "element"), "two rows for interval 3"),
    ({"zones.csv": ZONES, "lines.csv": LINES, "limits.csv": "interval,element,import,export\n2.5,ab,10,10\n"},
     ("limits.csv", 2, "interval"), "not an integer"),
    ({"levels.csv": "name,kind,parent,import,export\ntop,grid,,1,1\nf1,feeder,f2,1,1\nf2,feeder,f1,1,1\n"},
     ("levels.csv", 3, "parent"), "f1 -> f2 -> f1 form a cycle"),
    ({"levels.csv": "name,kind,parent,import,export\ntop,substation,,1,1\nf1,grid,top,1,1\n"},
     ("levels.csv", 3, "parent"), "kind grid is the top"),
    ({"levels.csv": "name,kind,parent,import,export\ntop,substation,,1,1\nf1,busbar,top,1,1\n"},
     ("levels.csv", 3, "kind"), "'busbar' is not one of"),
    ({"levels.csv": "name,kind,parent,import,export\ntop,substation,,1,1\nf1,feeder,nowhere,1,1\n"},
     ("levels.csv", 3, "parent"), "'nowhere' is not a known zone"),
])
def test_bad_cells_are_named_by_file_row_and_column(tmp_path, files, where, problem):
    path = write(tmp_path, files)
    with pytest.raises(DataError) as caught:
        load_network(path)
    file, row, column = where
    assert (Path(caught.value.path).name, caught.value.row, caught.value.column) == (file, row, column)
    assert problem in caught.value.problem


@pytest.mark.parametrize("manifest, problem", [
    ('[network]\nzones = "zones.csv"\nlines = "lines.csv"\ncolour = "red"\n', "network.colour: unknown key"),
    ('[network]\npower_unit = "GW"\nzones = "zones.csv"\n', "power_unit must be one of MW, kW"),
    ('[network]\nbase_power_mva = 0\nzones = "zones.csv"\nlines = "lines.csv"\n', "base_power_mva must be a number > 0"),
    ('[network]\nreference_zone = "Q"\nzones = "zones.csv"\nlines = "lines.csv"\n', "reference_zone 'Q' is not a zone"),
    ('[network]\nlines = "lines.csv"\n', "name a zones table, a levels table or both"),
    ('[network]\nzones = "zones.csv"\n', r"zone\(s\) B, C have no path of lines"),
    ('[network\n', "not a readable TOML file"),
])
def test_bad_manifests_say_what_to_fix(tmp_path, manifest, problem):
    path = write(tmp_path, {"zones.csv": ZONES, "lines.csv": LINES}, manifest)
    with pytest.raises(InputError, match=problem):
        load_network(path)


def test_a_missing_table_is_named(tmp_path):
    path = write(tmp_path, {"zones.csv": ZONES}, '[network]\nzones = "zones.csv"\nlines = "gone.csv"\n')
    with pytest.raises(DataError, match="gone.csv: file not found"):
        load_network(path)


# -- Mini-ISO -----------------------------------------------------------------------------------


def copy_mini_iso(tmp_path: Path) -> Path:
    target = tmp_path / "case"
    shutil.copytree(MINI_ISO.parent, target)
    return target / MINI_ISO.name


def test_mini_iso_case_loads_with_its_loads_generators_and_offers():
    case = load_mini_iso(MINI_ISO)
    assert case.loads_mw == {"North": 0.0, "East": 0.0, "City": 150.0}
    assert [(g.name, g.zone, g.capacity_mw, g.cost_per_mwh) for g in case.generators] == [
        ("Hydro", "North", 150.0, 8.0), ("Gas", "East", 150.0, 18.0), ("Peaker", "City", 40.0, 40.0)]
    assert case.offers_of("Hydro") == (Offer("Hydro", "t1", 100.0, 10.0), Offer("Hydro", "t2", 50.0, 12.0))
    assert (case.network.zone("City").x, case.network.zone("City").y) == (100.0, 160.0)
    assert case.network.base_power_mva == 1000.0


def test_mini_iso_offers_beyond_a_generators_capacity_name_the_row(tmp_path):
    manifest = copy_mini_iso(tmp_path)
    offers = manifest.parent / "offers.csv"
    offers.write_text(offers.read_text().replace("Gas,t2,50,25", "Gas,t2,50.5,25"))
    with pytest.raises(DataError) as caught:
        load_mini_iso(manifest)
    assert (caught.value.row, caught.value.column) == (5, "quantity")
    assert "Gas's offers reach 150.5 MW here, more than its capacity of 150 MW" in caught.value.problem


@pytest.mark.parametrize("file, old, new, where, problem", [
    ("offers.csv", "Peaker,t1", "Diesel,t1", (6, "generator"), "'Diesel' is not a known generator"),
    ("offers.csv", "Hydro,t2", "Hydro,t1", (3, "tranche"), "offers tranche 't1' twice"),
    ("generators.csv", "Gas,East", "Gas,West", (3, "zone"), "'West' is not a known zone"),
    ("zones.csv", "City,150", "City,-150", (4, "load"), "negative"),
])
def test_mini_iso_bad_references_are_named(tmp_path, file, old, new, where, problem):
    manifest = copy_mini_iso(tmp_path)
    table = manifest.parent / file
    table.write_text(table.read_text().replace(old, new))
    with pytest.raises(DataError) as caught:
        load_mini_iso(manifest)
    assert ((caught.value.row, caught.value.column), Path(caught.value.path).name) == (where, file)
    assert problem in caught.value.problem


def test_mini_iso_extra_columns_are_passed_over_as_mini_iso_does(tmp_path):
    manifest = copy_mini_iso(tmp_path)
    generators = manifest.parent / "generators.csv"
    rows = generators.read_text().splitlines()
    generators.write_text("\n".join([rows[0] + ",old cost"] + [r + ",1" for r in rows[1:]]) + "\n")
    assert load_mini_iso(manifest).generator("Gas").capacity_mw == 150.0


def test_mini_iso_manifest_must_name_all_four_tables(tmp_path):
    manifest = copy_mini_iso(tmp_path)
    manifest.write_text(json.dumps({"generators": "generators.csv", "lines": "lines.csv", "zones": "zones.csv"}))
    with pytest.raises(InputError, match="must name a file for offers"):
        load_mini_iso(manifest)


def test_mini_iso_case_written_back_reads_the_same(tmp_path):
    case = load_mini_iso(MINI_ISO)
    again = load_mini_iso(save_mini_iso(case, tmp_path / "out"))
    assert again.loads_mw == case.loads_mw and again.generators == case.generators and again.offers == case.offers
    assert again.network.zones == case.network.zones and again.network.lines == case.network.lines


def test_replacing_a_generators_offers_is_checked_against_its_capacity():
    case = load_mini_iso(MINI_ISO)
    updated = case.with_offers("Peaker", [Offer("Peaker", "a", 20, 30), Offer("Peaker", "b", 20, 35)])
    assert updated.offers_of("Peaker") == (Offer("Peaker", "a", 20, 30), Offer("Peaker", "b", 20, 35))
    assert updated.offers_of("Hydro") == case.offers_of("Hydro")
    with pytest.raises(InputError, match="Peaker offers 41 MW in all, more than its capacity of 40 MW"):
        case.with_offers("Peaker", [Offer("Peaker", "a", 21, 30), Offer("Peaker", "b", 20, 35)])
    with pytest.raises(InputError, match="include tranches of Gas"):
        case.with_offers("Peaker", [Offer("Gas", "a", 1, 30)])


def test_an_intervals_limits_in_whole_wh_feed_the_zonal_auction():
    from optimizer.auction import AuctionOrder
    from optimizer.zonal_auction import clear_zonal_auction

    network = load_network(EXAMPLE)
    lines, grid = network.energy_limits(40, 15)
    # 60 kW for a quarter hour into the north feeder in interval 40: 15,000 Wh.
    assert [(line["name"], line["capacity_wh"], line["capacity_back_wh"]) for line in lines] == [
        ("feeder-north", 15_000, 25_000), ("feeder-south", 30_000, 20_000)]
    assert grid == {"substation": (100_000, 62_500)}
    zone_of = {1: "feeder-north", 2: "feeder-south"}
    orders = [AuctionOrder("n", 1, "buy", 20_000, 400_000), AuctionOrder("s", 2, "sell", 5_000, 50_000)]
    result = clear_zonal_auction(orders, zone_of, [z.name for z in network.zones], lines, grid, 300_000, 60_000,
                                 network.reference_zone)
    # The north feeder takes 15,000 Wh less the 3 Wh rounding margin; its buyer sets its price.
    assert result.fill("n").filled_wh == 14_997 and result.zone_price["feeder-north"] == 400_000
    assert result.flow_wh["feeder-north"] <= 15_000
