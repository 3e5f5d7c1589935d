"""A community on pandapower's radial LV feeder, end to end: the grid imported with
`gridledger network import`, homes at its load buses, cleared with the network, settled at
one price per zone on the embedded chain, indexed and audited (issue 11). Runs in the
network extra's venv (scripts/test_network_extra.sh): pandapower pins pandas 2.3."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("pandapower")

from node.audit.verify import IndexInputs, audit, report  # noqa: E402
from node.chain.connection import Chain  # noqa: E402
from node.cli.main import main  # noqa: E402
from node.clearing.inputs import IntervalInputs  # noqa: E402
from node.data.community import Community  # noqa: E402
from node.data.config import config_from_mapping  # noqa: E402
from node.data.network_file import load_network  # noqa: E402
from node.data.pandapower_io import load_pandapower_grid  # noqa: E402
from node.data.synthetic import generate_community  # noqa: E402
from node.index.rebuild import check_index  # noqa: E402
from node.simulation.replay import simulate  # noqa: E402
from node.simulation.setup import first_interval_of  # noqa: E402
from node.simulation.state import StatePaths  # noqa: E402

GRID = "create_kerber_landnetz_kabel_1"  # 8 homes of 8 kW on two cable feeders under a 100 kVA transformer
FAR = ("loadbus_1_4", "loadbus_1_5", "loadbus_1_6")  # feeder 1's far end, behind cable line_1_4
CABLE_KW = 0.6  # line_1_4's limit in the run (limits file rows): the far end's batteries export more


def _kerber_community(tmp_path, capsys):
    """The feeder imported in kW; a home at each load bus (its zone: the bus's id in the
    network file), in an evening window; the far end's homes have PV and a battery, the
    others neither."""
    code = main(["network", "import", f"pandapower:{GRID}", "--out", str(tmp_path / "kerber"), "--unit", "kW"])
    out, _ = capsys.readouterr()
    assert code == 0 and "zones" in out
    manifest = tmp_path / "kerber" / "network.toml"
    network = load_network(manifest)
    case = load_pandapower_grid(GRID)
    index = network.zone_index
    load_zones = sorted(index[bus] for bus, mw in case.loads_mw.items() if mw > 0)
    assert len(load_zones) == 8
    config = config_from_mapping({"community": {"homes": len(load_zones), "seed": 11, "pv_share": 1.0, "battery_share": 1.0}, "market": {"horizon_steps": 4},
                                  "grid": {"network": str(manifest)}}, base=tmp_path)
    full = generate_community(config)
    window = slice(72, 76)  # 18:00-19:00: every home draws
    far = {index[bus] for bus in FAR}
    homes = tuple(replace(h, zone=network.zones[z].id if network.zones[z].id is not None else z,
                          **({} if z in far else {"pv_kwp": 0.0, "battery": False}))
                  for h, z in zip(full.homes, load_zones))
    assert all(h.battery for h, z in zip(homes, load_zones) if z in far)
    production = full.production_kwh[:, window] * np.array([[z in far] for z in load_zones])
    community = Community(homes, full.timestamps[window], full.consumption_kwh[:, window], production)
    return community, config, network, manifest, load_zones


def test_a_community_on_pandapowers_lv_feeder_clears_settles_and_audits_with_a_binding_cable(tmp_path, capsys):
    community, config, network, manifest, load_zones = _kerber_community(tmp_path, capsys)
    (connection,) = [z for z in network.zones if z.grid_connected]
    first = first_interval_of(community, config)
    k = first + 1
    # The far end's cable carries at most CABLE_KW in every interval, and the grid
    # connection is limited in interval k alone (put on chain before k settles).
    rows = "".join(f"{i},line_1_4,{CABLE_KW},{CABLE_KW}\n" for i in range(first, first + 4))
    (tmp_path / "kerber" / "limits.csv").write_text(f"interval,element,import,export\n{rows}{k},{connection.name},40,40\n")
    manifest.write_text(manifest.read_text() + 'limits = "limits.csv"\n')

    result = simulate(Chain.embedded(), community, config, StatePaths(tmp_path / "state"), progress=False)
    market, index = result.market, result.index
    zone_of = {i + 1: z for i, z in enumerate(load_zones)}  # on chain: the zone's position in the network
    assert [market.market.functions.accountOf(p).call()[1] for p in zone_of] == list(zone_of.values())
    c = network.zone_index[connection.name]
    assert market.zone_capacity(k, c) == (10_000, 10_000)  # 40 kW for 15 minutes, this interval only
    assert market.zone_capacity(k + 1, c) == (2**48 - 1, 2**48 - 1)  # the external grid: no limit

    settled = [row["interval"] for row in index.intervals()]
    assert settled == list(range(first, first + 4))
    series = {s["interval"]: s for s in index.zone_price_series()}
    inputs = IntervalInputs.from_json(index.inputs(index.interval(k)["inputs_hash"]))
    cable = network.line_index["line_1_4"]
    assert inputs.network.line_forward_wh[cable][0] == int(CABLE_KW * 250)
    # The cable binds: its far end's batteries sell P2P cheaper than the near homes buy.
    far = {network.zone_index[bus] for bus in FAR}
    bound = [i for i, s in series.items()
             if max(s["prices"][z] for z in far) < min(s["prices"][z] for z in set(zone_of.values()) - far)]
    assert bound and all(series[i]["rent_milli"] > 0 for i in bound)
    k = bound[0]
    # Energy conserved to the Wh: P2P sums to 0; what leaves the far end stays within its cable.
    entries = index.entries_between(k, k + 1)
    assert sum(p2p for _, _, _, p2p, _ in entries) == 0
    out_of_far = -sum(grid + p2p for _, pid, grid, p2p, _ in entries if zone_of[pid] in far)
    assert out_of_far <= int(CABLE_KW * 250) + len(entries)  # one Wh of rounding per home
    # Money to the minor unit: the entries and the grid's side (the rent with it) sum to 0.
    (grid_amount,) = index.db.execute("SELECT grid_amount FROM intervals WHERE interval = ?", (k,)).fetchone()
    assert sum(amount for *_, amount in entries) + grid_amount == 0
    assert check_index(market, index) == []
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert len(verdicts) == 4 and all(v.ok for v in verdicts), report(verdicts)

