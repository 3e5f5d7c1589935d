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

GRID = "create_kerber_landnetz_kabel_1"  # 8 homes of 8 kW on cables under a 100 kVA transformer
TRANSFORMER_KW = 6.0  # the transformer's limit in the run's binding interval (a limits file row)


def _kerber_community(tmp_path, capsys):
    """The feeder imported in kW; a home at each load bus, zone = the bus's position in
    the network file; an evening window in which the homes draw more than TRANSFORMER_KW."""
    code = main(["network", "import", f"pandapower:{GRID}", "--out", str(tmp_path / "kerber"), "--unit", "kW"])
    out, _ = capsys.readouterr()
    assert code == 0 and "zones" in out
    manifest = tmp_path / "kerber" / "network.toml"
    network = load_network(manifest)
    case = load_pandapower_grid(GRID)
    index = network.zone_index
    load_zones = sorted(index[bus] for bus, mw in case.loads_mw.items() if mw > 0)
    assert len(load_zones) == 8 and all(network.zones[z].id is None for z in load_zones)
    config = config_from_mapping({"community": {"homes": len(load_zones), "seed": 11}, "market": {"horizon_steps": 4},
                                  "grid": {"network": str(manifest)}}, base=tmp_path)
    full = generate_community(config)
    window = slice(72, 76)  # 18:00-19:00: every home draws
    homes = tuple(replace(h, zone=z) for h, z in zip(full.homes, load_zones))
    community = Community(homes, full.timestamps[window], full.consumption_kwh[:, window],
                          full.production_kwh[:, window])
    return community, config, network, manifest


def test_a_community_on_pandapowers_lv_feeder_clears_settles_and_audits_with_a_binding_transformer(tmp_path, capsys):
    community, config, network, manifest = _kerber_community(tmp_path, capsys)
    (transformer,) = [line for line in network.lines if line.kind == "transformer"]
    (connection,) = [z for z in network.zones if z.grid_connected]
    k = first_interval_of(community, config) + 1
    # In interval k the transformer carries at most TRANSFORMER_KW and the grid
    # connection is limited too (a row of the limits file, put on chain before k settles).
    (tmp_path / "kerber" / "limits.csv").write_text(
        f"interval,element,import,export\n{k},{transformer.name},{TRANSFORMER_KW},{TRANSFORMER_KW}\n"
        f"{k},{connection.name},40,40\n")
    manifest.write_text(manifest.read_text() + 'limits = "limits.csv"\n')
    wanted_kwh = community.consumption_kwh[:, 1].sum() - community.production_kwh[:, 1].sum()
    assert wanted_kwh > TRANSFORMER_KW / 4 + 0.5  # the homes want more than the transformer carries

    result = simulate(Chain.embedded(), community, config, StatePaths(tmp_path / "state"), progress=False)
    market, index = result.market, result.index
    zone_of = {i + 1: h.zone for i, h in enumerate(community.homes)}
    assert [market.market.functions.accountOf(p).call()[1] for p in zone_of] == list(zone_of.values())
    c = network.zone_index[connection.name]
    assert market.zone_capacity(k, c) == (10_000, 10_000)  # 40 kW for 15 minutes, this interval only
    assert market.zone_capacity(k + 1, c) == (2**48 - 1, 2**48 - 1)  # the external grid: no limit

    settled = [row["interval"] for row in index.intervals()]
    assert settled == list(range(k - 1, k + 3))
    series = {s["interval"]: s for s in index.zone_price_series()}
    inputs = IntervalInputs.from_json(index.inputs(index.interval(k)["inputs_hash"]))
    t = network.line_index[transformer.name]
    assert inputs.network.line_forward_wh[t][0] == int(TRANSFORMER_KW * 250)
    # The transformer binds in k: behind it every home pays more than the grid side's price.
    prices = series[k]["prices"]
    lv = sorted(set(zone_of.values()))
    assert min(prices[z] for z in lv) > prices[c] and series[k]["rent_milli"] > 0
    # ...and nowhere else: one price in every zone.
    assert all(len(set(series[i]["prices"])) == 1 and series[i]["rent_milli"] == 0 for i in (k - 1, k + 1))
    # Energy conserved to the Wh: P2P sums to 0; what comes through the transformer stays within it.
    entries = index.entries_between(k, k + 1)
    assert sum(p2p for _, _, _, p2p, _ in entries) == 0
    through = sum(grid + p2p for _, pid, grid, p2p, _ in entries if zone_of[pid] in lv)
    assert through <= int(TRANSFORMER_KW * 250) + len(entries)
    # Money to the minor unit: the wallets sum to what was deposited.
    deposits = sum(market.balance(p) for p in range(len(zone_of) + 1))
    assert deposits == index_total_deposits(index)
    assert check_index(market, index) == []
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert len(verdicts) == 4 and all(v.ok for v in verdicts), report(verdicts)


def index_total_deposits(index) -> int:
    """Everything paid into the wallets, by the index's wallet changes."""
    rows = index.db.execute("SELECT COALESCE(SUM(amount), 0) FROM wallet_changes WHERE kind = 'deposit'").fetchone()
    return int(rows[0])
