"""The importers on small samples of each published layout (tests/data/): what they
read, how they resample, and the row they name when a file is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from node.data.assets import apply_assets, load_assets
from node.data.config import load_config
from node.data.dataset import load_dataset
from node.data.importers.ausgrid import import_ausgrid
from node.data.importers.common import write_imported
from node.data.importers.ets import import_ets
from node.data.importers.pyssmic import import_pyssmic
from node.data.jobs import load_jobs
from node.errors import DataError, InputError

DATA = Path(__file__).resolve().parent / "data"
AUSGRID = DATA / "ausgrid" / "solar_home_sample.csv"


def _ausgrid_rows() -> list[list[str]]:
    return [line.split(",") for line in AUSGRID.read_text().splitlines()]


def test_ausgrid_sums_general_and_controlled_load_and_splits_half_hours():
    rows = _ausgrid_rows()
    imported = import_ausgrid(AUSGRID, 15)
    c = imported.community
    assert c.names == ("customer-1", "customer-2") and [h.pv_kwp for h in c.homes] == [3.78, 1.62]
    assert c.timestamps[0] == pd.Timestamp("2012-06-30T14:00:00+00:00")  # local midnight, UTC+10
    gc, cl, gg = (np.array(r[5:53], dtype=float) for r in rows[2:5])
    np.testing.assert_allclose(c.consumption_kwh[0, :2], [(gc[0] + cl[0]) / 2] * 2)
    np.testing.assert_allclose(c.consumption_kwh[0].sum(), gc.sum() + cl.sum())
    np.testing.assert_allclose(c.production_kwh[0].sum(), gg.sum())
    assert any("Row Quality" in note for note in imported.notes)
    hourly = import_ausgrid(AUSGRID, 60).community
    np.testing.assert_allclose(hourly.consumption_kwh[0, 0], gc[:2].sum() + cl[:2].sum())


@pytest.mark.parametrize(
    "edit, row, column, fragment",
    [
        (lambda rows: rows[2].__setitem__(3, "XX"), 3, "Consumption Category", "'XX' is not a channel"),
        (lambda rows: rows[3].__setitem__(4, "2012-07-01"), 4, "date", "is not a date dd/mm/yyyy"),
        (lambda rows: rows[3].__setitem__(10, "-0.2"), 4, "3:00", "'-0.2' is negative"),
        (lambda rows: rows[4].__setitem__(1, "9.9"), 5, "Generator Capacity", "differs from this customer's earlier rows"),
        (lambda rows: rows.append(list(rows[2])), 8, "date", "a second"),
    ],
)
def test_a_bad_ausgrid_row_is_named(tmp_path, edit, row, column, fragment):
    rows = _ausgrid_rows()
    edit(rows)
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(DataError) as error:
        import_ausgrid(path, 15)
    assert (error.value.row, error.value.column) == (row, column)
    assert fragment in str(error.value)


def test_ausgrid_refuses_a_customer_without_production_or_a_clock_that_changes(tmp_path):
    rows = [r for r in _ausgrid_rows() if not (r[0] == "2" and r[3] == "GG")]
    path = tmp_path / "no_gg.csv"
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(InputError, match="customer 2 has no GG row for 01/07/2012"):
        import_ausgrid(path, 15)
    rows = _ausgrid_rows()
    for r in rows[2:]:
        r[4] = "07/10/2012"  # Sydney's clocks jump forward that night
    path.write_text("\n".join(",".join(r) for r in rows) + "\n")
    with pytest.raises(InputError, match="standard time"):
        import_ausgrid(path, 15, timezone="Australia/Sydney")


def test_pyssmic_background_loads_are_consumption_and_deferrable_jobs_go_to_the_jobs_file(tmp_path):
    imported = import_pyssmic(DATA / "pyssmic", 30)
    c = imported.community
    assert c.names == ("house-7", "house-9")
    np.testing.assert_allclose(c.consumption_kwh.sum(axis=1), [1.8, 0.9])  # the two background profiles
    assert c.production_kwh[1].sum() == 0 and c.homes[0].pv_kwp > 0
    # Morning from the first prediction, afternoon from the noon update (80 %).
    noon = c.timestamps.get_loc(pd.Timestamp("2016-07-01T12:00:00+00:00"))
    assert c.production_kwh[0, noon + 2] == pytest.approx(0.8 * 0.5 * 3.2 * np.sin(np.pi * 9 / 14), rel=1e-3)
    write_imported(imported, tmp_path / "out", 30)
    jobs = load_jobs(tmp_path / "out" / "jobs.csv", c.names)
    assert [(j.participant, j.energy_wh) for j in jobs] == [("house-7", 1100), ("house-9", 800)]
    with pytest.raises(InputError, match="exists already"):
        write_imported(imported, tmp_path / "out", 30)


def test_ets_households_are_resampled_and_the_output_loads_back(tmp_path):
    imported = import_ets(DATA / "ets" / "households.csv", 30, timezone="Europe/Budapest")
    c = imported.community
    assert c.names == ("household-3", "household-11", "household-27")
    assert c.timestamps[0] == pd.Timestamp("2024-06-03T08:00:00+00:00") and len(c.timestamps) == 4
    raw = pd.read_csv(DATA / "ets" / "households.csv")
    np.testing.assert_allclose(c.consumption_kwh.sum(), raw["consumption"].sum())
    files = write_imported(imported, tmp_path / "out", 30)
    config = load_config(files[2])
    loaded = apply_assets(load_dataset(files[0], config), load_assets(config.community.assets_file), config)
    assert loaded.homes == c.homes
    np.testing.assert_allclose(loaded.production_kwh, c.production_kwh)


def test_ets_names_a_missing_step(tmp_path):
    lines = (DATA / "ets" / "households.csv").read_text().splitlines()
    path = tmp_path / "gap.csv"
    path.write_text("\n".join(lines[:5] + lines[6:]) + "\n")  # household 11 loses 10:15
    with pytest.raises(InputError, match="household '11' has no row for 2024-06-03T08:15:00"):
        import_ets(path, 15, timezone="Europe/Budapest")
