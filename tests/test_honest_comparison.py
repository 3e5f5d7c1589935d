"""The comparison with the baseline is honest: the baseline obeys the same grid limits
and reports its curtailment, the market's curtailment is what its clearings curtailed,
and the CLI, kpis.json and the web UI say the same things with the same caveats."""

from __future__ import annotations

import contextlib
import html
import io
import json

import numpy as np
import pytest

from node.cli.main import main
from node.clearing.inputs import IntervalInputs
from node.clearing.interval import run_clearing
from node.data.config import config_from_mapping, load_config
from node.index.store import Index
from tests.helpers import write_config

# Four homes, six 4-hour intervals; 1 kW of export capacity binds at midday.
TINY = """
[market]
interval_minutes = 240
horizon_steps = 6
[community]
homes = 4
days = 1
pv_share = 0.75
battery_share = 0.5
[grid]
import_capacity_kw = 3.0
export_capacity_kw = 1.0
"""

# Grid CO2 intensity: 400 g/kWh overnight, 200 from noon (each interval takes the last value).
INTENSITY = "timestamp,g_per_kwh\n2026-06-01T00:00:00+00:00,400\n2026-06-01T12:00:00+00:00,200\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("honest")
    config_file = write_config(directory, TINY)
    state = directory / "state"
    intensity = directory / "co2.csv"
    intensity.write_text(INTENSITY)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["-q", "simulate", "--config", str(config_file), "--state", str(state), "--no-progress",
                     "--intensity", str(intensity)]) == 0
    kpis = json.loads((state / "results" / "kpis.json").read_text())
    index = Index(state / "index.sqlite")
    yield out.getvalue(), kpis, index, state, load_config(config_file)
    index.close()


def test_baseline_obeys_the_same_export_capacity_and_reports_its_curtailment(run):
    _, kpis, index, _, config = run
    capacity_wh = config.grid.export_capacity_kwh(config.market.interval_minutes) * 1000
    exported = index.db.execute("SELECT interval, SUM(grid_export_wh) FROM baseline GROUP BY interval").fetchall()
    assert max(wh for _, wh in exported) <= capacity_wh + len(exported)  # whole-Wh rounding per home
    assert kpis["baseline"]["export_cap_steps"] >= 1
    assert kpis["baseline"]["curtailed_kwh"] > 0


def test_market_curtailment_is_what_its_clearings_left_unused(run):
    """The KPI counts PV that served nothing: the optimiser's curtailment plus what its
    batteries lost charging and discharging in the same interval (which the settled
    states of charge show only as a net change)."""
    _, kpis, index, _, _ = run
    curtailed = lost = shed = 0.0
    for row in index.intervals():
        inputs = IntervalInputs.from_json(index.inputs(row["inputs_hash"]))
        clearing = run_clearing(inputs).optimiser
        b = inputs.to_clearing_inputs().batteries
        charge, discharge = clearing.battery_charge_kwh, clearing.battery_discharge_kwh
        stored = b.charge_efficiency * charge - discharge / b.discharge_efficiency
        net_seen = np.where(stored > 0, stored / b.charge_efficiency, stored * b.discharge_efficiency)
        lost += float(((charge - discharge) - net_seen).sum())
        curtailed += clearing.curtailed_kwh.sum()
        shed += clearing.shed_kwh.sum()
    homes, steps = kpis["participants"], kpis["intervals"]
    slack = homes * steps * 0.002  # the flows' whole-Wh rounding tolerance
    assert curtailed > 0, "the export capacity binds in this community"
    assert kpis["market"]["curtailed_kwh"] == pytest.approx(curtailed + lost, abs=slack)
    assert kpis["market"]["unserved_kwh"] == pytest.approx(shed, abs=slack)


def test_cli_kpis_json_and_web_ui_show_the_same_caveats(run):
    printed, kpis, _, state, _ = run
    from webui import create_app

    page = html.unescape(create_app({"INDEX_PATH": str(state / "index.sqlite")}).test_client().get("/").data.decode())
    assert kpis["caveats"], "the comparison always has caveats"
    for note in kpis["caveats"]:
        assert f"note: {note}" in printed
        assert note in page
    assert "of the baseline's gross cost" in printed
    assert "gross cost" in page and "PV curtailed" in page


def test_percentages_of_savings_are_of_the_baseline_gross_cost(run):
    _, kpis, _, _, _ = run
    c, b = kpis["comparison"], kpis["baseline"]
    assert c["savings_percent"] == pytest.approx(100 * c["savings"] / b["gross_cost"])
    assert b["gross_cost"] >= b["cost"]


def test_run_record_holds_config_seed_versions_and_market(run):
    _, _, index, state, config = run
    record = json.loads((state / "results" / "run.json").read_text())
    assert config_from_mapping(record["config"]) == config
    assert record["seed"] == config.community.seed
    assert record["market"] == index.meta()["market"]
    assert {"cvxpy", "numpy", "web3", "python"} <= set(record["versions"])
    assert len(record["data_sha256"]) == 64


def test_per_home_kpis_add_up_to_the_community_kpis(run):
    _, kpis, _, state, _ = run
    import pandas as pd

    homes = pd.read_csv(state / "results" / "participants.csv")
    assert homes["kpi_savings"].sum() == pytest.approx(kpis["comparison"]["savings"], abs=1e-6)
    assert homes["kpi_curtailed_kwh"].sum() == pytest.approx(kpis["market"]["curtailed_kwh"], abs=1e-6)
    table = pd.read_csv(state / "results" / "kpis.csv")
    assert np.isclose(table.set_index("kpi").loc["p2p_kwh", "market"], kpis["market"]["p2p_kwh"])


def test_co2_is_the_grid_import_times_the_intensity_series(run):
    _, kpis, index, _, _ = run
    rows = index.intervals()
    expected = sum(r["grid_import_wh"] / 1000 * (400 if r["interval"] < 3 else 200) for r in rows) / 1000
    assert kpis["market"]["co2_kg"] == pytest.approx(expected, abs=1e-9)
    assert kpis["baseline"]["co2_kg"] > 0


@pytest.mark.parametrize("text, problem", [
    ("timestamp,g_per_kwh\n2026-06-02T00:00:00+00:00,300\n", "no CO2 intensity at or before 2026-06-01T00:00:00"),
    ("timestamp,g_per_kwh\n2026-06-01T00:00:00+00:00,-5\n", "row 2, column 'g_per_kwh'"),
    ("time,grams\n2026-06-01T00:00:00+00:00,5\n", "column 'timestamp': missing"),
])
def test_a_bad_intensity_file_is_refused_before_anything_settles(tmp_path, capsys, text, problem):
    config_file = write_config(tmp_path, TINY)
    (tmp_path / "co2.csv").write_text(text)
    state = tmp_path / "state"
    code = main(["-q", "simulate", "--config", str(config_file), "--state", str(state), "--intensity",
                 str(tmp_path / "co2.csv"), "--no-progress"])
    assert code == 2 and problem in capsys.readouterr().err
    assert not state.exists()
