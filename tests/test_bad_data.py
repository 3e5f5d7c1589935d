"""Bad and missing meter data: each case is rejected with a message naming file, row,
column and participant, or repaired by a stated rule and reported (node.data.meter_policy)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from node.chain.connection import Chain
from node.cli.main import main
from node.data.community import Community
from node.data.config import default_config
from node.data.dataset import load_dataset, load_dataset_with_report
from node.errors import DataError, InputError
from node.index.store import Index
from node.data.meter_policy import Repair, check_clock, committed_repairs, split_late
from node.simulation.replay import simulate
from node.simulation.state import StatePaths
from node.data.synthetic import generate_community
from tests.helpers import GOOD_ROWS, replaced, write_csv

CONFIG = default_config()
T0 = pd.Timestamp("2026-06-01T00:00:00Z")


def at(step: int) -> pd.Timestamp:
    return T0 + step * pd.Timedelta(minutes=15)


def series_rows(values: dict[str, np.ndarray], skip: dict[str, range] | None = None) -> list[str]:
    """Rows for each home's (consumption = production / 2 = value) series, minus the skipped steps."""
    skip = skip or {}
    steps = len(next(iter(values.values())))
    return [
        f"{at(j).isoformat()},{name},{float(series[j])!r},{float(series[j]) / 2!r}"
        for j in range(steps)
        for name, series in values.items()
        if j not in skip.get(name, ())
    ]


# -- gaps and NaN ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "row", "column", "fragment"),
    [
        (replaced(5, "2026-06-01T00:15:00Z,b,0.4,NaN"), 5, "production_kwh", "participant 'b': 'NaN' is not a finite number"),
        (replaced(4, "2026-06-01T00:15:00Z,a,,0"), 4, "consumption_kwh", "participant 'a': missing value"),
        ([r for r in GOOD_ROWS if not r.startswith("2026-06-01T00:15:00+00:00,a")], None, "timestamp", "participant 'a' has no row for 2026-06-01T00:15:00"),
    ],
)
def test_strict_policy_rejects_gaps_and_nan(tmp_path, rows, row, column, fragment):
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError) as raised:
        load_dataset(path, CONFIG)
    assert (raised.value.path, raised.value.row, raised.value.column) == (str(path), row, column)
    assert fragment in str(raised.value)


@pytest.mark.parametrize("cell", ["NaN", "", "null", "N/A"])
def test_repair_interpolates_a_missing_cell_and_reports_it(tmp_path, cell):
    loaded = load_dataset_with_report(write_csv(tmp_path, replaced(4, f"2026-06-01T00:15:00Z,a,{cell},0")), CONFIG, policy="repair")
    assert loaded.community.consumption_kwh[0].tolist() == pytest.approx([0.1, 0.3, 0.5])
    (repair,) = loaded.repairs
    assert repair == Repair("a", at(1), "consumption_kwh", "linear_interpolation", cell, pytest.approx(0.3), row=4)


def test_repair_fills_a_missing_row_in_both_columns(tmp_path):
    rows = [r for r in GOOD_ROWS if not r.startswith("2026-06-01T00:15:00+00:00,b")]
    loaded = load_dataset_with_report(write_csv(tmp_path, rows), CONFIG, policy="repair")
    assert loaded.community.consumption_kwh[1].tolist() == pytest.approx([0.2, 0.4, 0.6])
    assert loaded.community.production_kwh[1].tolist() == pytest.approx([0.5, 0.375, 0.25])
    assert [(r.participant, r.timestamp, r.column, r.rule, r.original, r.row) for r in loaded.repairs] == [
        ("b", at(1), "consumption_kwh", "linear_interpolation", "no row", None),
        ("b", at(1), "production_kwh", "linear_interpolation", "no row", None),
    ]


def test_repair_fills_an_interval_missing_for_everyone(tmp_path):
    rows = [r for r in GOOD_ROWS if "T00:15" not in r]
    loaded = load_dataset_with_report(write_csv(tmp_path, rows), CONFIG, policy="repair")
    assert len(loaded.community.timestamps) == 3
    assert loaded.community.consumption_kwh[:, 1].tolist() == pytest.approx([0.3, 0.4])
    assert {r.rule for r in loaded.repairs} == {"linear_interpolation"} and len(loaded.repairs) == 4


def test_repair_uses_the_previous_day_for_a_gap_longer_than_an_hour(tmp_path):
    series = np.arange(1, 2 * 96 + 1) / 1000  # every reading distinct
    gap = range(96 + 40, 96 + 48)  # two hours on day two
    loaded = load_dataset_with_report(write_csv(tmp_path, series_rows({"a": series}, {"a": gap})), CONFIG, policy="repair")
    filled = loaded.community.consumption_kwh[0]
    assert filled[list(gap)].tolist() == pytest.approx(series[[j - 96 for j in gap]].tolist())
    assert {(r.rule, r.original) for r in loaded.repairs} == {("previous_day", "no row")}
    assert len(loaded.repairs) == 2 * len(gap)


def test_repair_without_a_previous_day_uses_zero_production_and_mean_consumption(tmp_path):
    series = np.arange(1, 21) / 100
    gap = range(8, 13)  # 75 minutes: too long to interpolate, and day one
    loaded = load_dataset_with_report(write_csv(tmp_path, series_rows({"a": series}, {"a": gap})), CONFIG, policy="repair")
    real = np.delete(series, list(gap))
    assert loaded.community.consumption_kwh[0, list(gap)].tolist() == pytest.approx([real.mean()] * len(gap))
    assert loaded.community.production_kwh[0, list(gap)].tolist() == [0.0] * len(gap)
    assert {r.rule for r in loaded.repairs if r.column == "consumption_kwh"} == {"mean_consumption"}
    assert {r.rule for r in loaded.repairs if r.column == "production_kwh"} == {"zero_production"}


def test_repair_rejects_a_gap_longer_than_a_day(tmp_path):
    series = np.full(2 * 96 + 10, 0.2)
    rows = series_rows({"a": series, "b": series}, {"b": range(5, 5 + 97)})
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError) as raised:
        load_dataset(path, CONFIG, policy="repair")
    assert raised.value.column == "consumption_kwh"
    assert f"participant 'b' has no reading from {at(5).isoformat()} to {at(101).isoformat()} (97 intervals)" in str(raised.value)
    assert str(raised.value).startswith(str(path))


def test_repair_rejects_a_participant_that_never_read_consumption(tmp_path):
    rows = [r.replace(",a,0.10,", ",a,NaN,").replace(",a,0.30,", ",a,,").replace(",a,0.50,", ",a,NaN,") for r in GOOD_ROWS]
    with pytest.raises(DataError, match="participant 'a' has no consumption_kwh reading at all"):
        load_dataset(write_csv(tmp_path, rows), CONFIG, policy="repair")


def test_repair_reads_parquet_nan_as_a_gap(tmp_path):
    frame = pd.read_csv(write_csv(tmp_path, GOOD_ROWS))
    frame.loc[2, "consumption_kwh"] = np.nan  # row 4: a at 00:15
    frame.to_parquet(tmp_path / "meters.parquet")
    loaded = load_dataset_with_report(tmp_path / "meters.parquet", CONFIG, policy="repair")
    assert loaded.community.consumption_kwh[0, 1] == pytest.approx(0.3)
    assert (loaded.repairs[0].row, loaded.repairs[0].original) == (4, "nan")


@pytest.mark.parametrize("policy", ["strict", "repair"])
@pytest.mark.parametrize(("cell", "fragment"), [("abc", "'abc' is not a finite number"), ("inf", "'inf' is not a finite number")])
def test_corrupt_values_are_rejected_under_both_policies(tmp_path, policy, cell, fragment):
    with pytest.raises(DataError) as raised:
        load_dataset(write_csv(tmp_path, replaced(5, f"2026-06-01T00:15:00Z,b,{cell},1.0")), CONFIG, policy=policy)
    assert (raised.value.row, raised.value.column) == (5, "consumption_kwh")
    assert f"participant 'b': {fragment}" in str(raised.value)


def test_no_repairs_under_the_strict_policy_and_none_needed_under_repair(tmp_path):
    path = write_csv(tmp_path, GOOD_ROWS)
    assert load_dataset_with_report(path, CONFIG).repairs == ()
    repaired = load_dataset_with_report(path, CONFIG, policy="repair")
    assert repaired.repairs == ()
    assert np.array_equal(repaired.community.consumption_kwh, load_dataset(path, CONFIG).consumption_kwh)


def test_unknown_policy_is_rejected(tmp_path):
    with pytest.raises(InputError, match="unknown meter data policy 'lenient'"):
        load_dataset(write_csv(tmp_path, GOOD_ROWS), CONFIG, policy="lenient")


# -- negative values --------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["strict", "repair"])
def test_negative_reading_is_rejected_with_the_net_meter_hint(tmp_path, policy):
    path = write_csv(tmp_path, replaced(7, "2026-06-01T00:30:00Z,b,0.6,-0.25"))
    with pytest.raises(DataError) as raised:
        load_dataset(path, CONFIG, policy=policy)
    message = str(raised.value)
    assert message.startswith(f"{path}, row 7, column 'production_kwh': participant 'b': '-0.25' is negative")
    assert "net meter" in message and "split" in message


# -- duplicates ---------------------------------------------------------------------------


def test_exact_duplicate_is_rejected_strictly_and_dropped_with_a_note_under_repair(tmp_path):
    path = write_csv(tmp_path, [*GOOD_ROWS, GOOD_ROWS[1]])  # row 8 repeats row 3
    with pytest.raises(DataError, match=r"row 8, column 'timestamp': second row for participant 'b' .*\(first at row 3\)"):
        load_dataset(path, CONFIG)
    loaded = load_dataset_with_report(path, CONFIG, policy="repair")
    assert loaded.community.consumption_kwh.tolist() == [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]
    assert loaded.repairs == (Repair("b", at(0), "row", "duplicate_dropped", "repeats row 3", None, row=8),)


@pytest.mark.parametrize("policy", ["strict", "repair"])
def test_conflicting_duplicates_are_rejected_naming_both_rows(tmp_path, policy):
    path = write_csv(tmp_path, [*GOOD_ROWS, "2026-06-01T00:00:00+00:00,b,0.21,0.50"])
    with pytest.raises(DataError) as raised:
        load_dataset(path, CONFIG, policy=policy)
    assert (raised.value.row, raised.value.column) == (8, "timestamp")
    assert "second row for participant 'b' at 2026-06-01T00:00:00+00:00 (first at row 3)" in str(raised.value)


# -- unknown participants -----------------------------------------------------------------


@pytest.mark.parametrize("policy", ["strict", "repair"])
def test_unknown_participants_are_rejected_naming_each(tmp_path, policy):
    rows = [*GOOD_ROWS, "2026-06-01T00:00:00Z,zed,0.1,0", "2026-06-01T00:15:00Z,yan,0.1,0"]
    path = write_csv(tmp_path, rows)
    with pytest.raises(DataError) as raised:
        load_dataset(path, CONFIG, policy=policy, registry={"a", "b"})
    assert (raised.value.row, raised.value.column) == (8, "participant")
    assert "2 participant(s) not in the market's registry: 'zed' (first at row 8), 'yan' (first at row 9)" in str(raised.value)


def test_registered_participants_pass_and_no_registry_means_no_check(tmp_path):
    path = write_csv(tmp_path, GOOD_ROWS)
    assert load_dataset(path, CONFIG, registry=["b", "a", "c"]).names == ("a", "b")
    assert load_dataset(path, CONFIG).names == ("a", "b")


# -- committed repairs ----------------------------------------------------------------------


def test_repairs_become_canonical_entries_of_their_interval(tmp_path):
    rows = [r for r in GOOD_ROWS if not r.startswith("2026-06-01T00:15:00+00:00,b")] + [GOOD_ROWS[0]]
    loaded = load_dataset_with_report(write_csv(tmp_path, rows), CONFIG, policy="repair")
    committed = committed_repairs(loaded.repairs, loaded.community, [7, 8])
    assert committed == {
        0: [{"participant": 7, "column": "row", "rule": "duplicate_dropped", "original": "repeats row 2"}],
        1: [
            {"participant": 8, "column": "load_wh", "rule": "linear_interpolation", "original": "no row", "value_wh": 400},
            {"participant": 8, "column": "pv_wh", "rule": "linear_interpolation", "original": "no row", "value_wh": 375},
        ],
    }
    json.dumps(committed, sort_keys=True, allow_nan=False)  # integers and strings only


# -- late readings ------------------------------------------------------------------------


def small_community(steps: int) -> tuple[Community, object]:
    config = default_config()
    config = replace(config, community=replace(config.community, homes=3, seed=5), market=replace(config.market, horizon_steps=4))
    full = generate_community(config)
    return Community(full.homes, full.timestamps[:steps], full.consumption_kwh[:, :steps], full.production_kwh[:, :steps]), config


def test_split_late_separates_settled_intervals_without_changing_them():
    community, config = small_community(6)
    split = split_late(community, next_interval=4, market=config.market)
    assert split.late.timestamps.equals(community.timestamps[:4])
    assert split.pending.timestamps.equals(community.timestamps[4:])
    assert np.array_equal(np.hstack([split.late.consumption_kwh, split.pending.consumption_kwh]), community.consumption_kwh)
    assert "4 interval(s) of readings" in split.describe() and "not applied" in split.describe()
    assert split_late(community, 0, config.market).late.timestamps.size == 0


def test_late_readings_never_change_a_settled_interval(tmp_path):
    first, config = small_community(4)
    paths = StatePaths(tmp_path)
    chain = Chain.embedded()
    before = simulate(chain, first, config, paths, progress=False)
    settled = [before.index.interval(k) for k in range(4)]
    later, _ = small_community(6)
    corrected = later.consumption_kwh.copy()
    corrected[0, 1] += 1.0  # a late, different reading for settled interval 1
    later = Community(later.homes, later.timestamps, corrected, later.production_kwh)
    assert split_late(later, before.market.next_interval(), config.market).late.consumption_kwh[0, 1] == corrected[0, 1]
    after = simulate(chain, later, config, paths, progress=False)
    assert [r.interval for r in after.reports] == [4, 5]
    assert [after.index.interval(k) for k in range(4)] == settled
    head = chain.w3.eth.block_number
    settled_on_chain = [e.args["interval"] for e in after.market.logs(after.market.deployment.block, head) if e.name == "IntervalSettled"]
    assert settled_on_chain == list(range(6))


# -- clock skew ---------------------------------------------------------------------------


def test_check_clock_refuses_an_interval_still_open_by_the_chains_clock():
    end = pd.Timestamp("2026-06-01T10:15:00Z")
    with pytest.raises(InputError) as raised:
        check_clock(end, chain_timestamp=end - pd.Timedelta(seconds=90), local_now=end + pd.Timedelta(seconds=5), tolerance_s=30)
    message = str(raised.value)
    assert "90 s in the future by the chain's clock (tolerance 30 s)" in message
    assert "oracle clock 2026-06-01T10:15:05+00:00, chain clock 2026-06-01T10:13:30+00:00" in message


def test_check_clock_refuses_an_interval_still_open_by_the_oracles_clock():
    end = pd.Timestamp("2026-06-01T10:15:00Z")
    with pytest.raises(InputError, match="has not ended"):
        check_clock(end, chain_timestamp=end, local_now=end - pd.Timedelta(seconds=1), tolerance_s=30)


def test_check_clock_accepts_skew_within_tolerance_and_reports_it():
    end = pd.Timestamp("2026-06-01T10:15:00Z")
    now = end + pd.Timedelta(seconds=10)
    assert check_clock(end, chain_timestamp=end - pd.Timedelta(seconds=20), local_now=now, tolerance_s=30) == -30.0
    assert check_clock(end, chain_timestamp=now + pd.Timedelta(seconds=600), local_now=now, tolerance_s=30) == 600.0


# -- a rejected file touches nothing ------------------------------------------------------


def snapshot(state: Path) -> dict[str, str]:
    """Every file's hash; an SQLite database's by its content (its dump), since when its
    write-ahead log is folded into the file depends on which connection closes last."""
    def digest(p: Path) -> str:
        if p.suffix == ".sqlite":
            with contextlib.closing(sqlite3.connect(p)) as db:
                return hashlib.sha256("\n".join(db.iterdump()).encode()).hexdigest()
        return hashlib.sha256(p.read_bytes()).hexdigest()

    return {str(p.relative_to(state)): digest(p) for p in sorted(state.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_a_rejected_file_leaves_the_chain_and_index_untouched(tmp_path, capsys):
    state = tmp_path / "state"
    good = write_csv(tmp_path, GOOD_ROWS, name="good.csv")
    assert main(["-q", "simulate", "--data", str(good), "--state", str(state), "--no-progress"]) == 0
    index = Index(state / "index.sqlite")
    rows = {t: index.db.execute(f"SELECT * FROM {t}").fetchall() for t in ("intervals", "entries", "participants", "meta")}
    rows = {t: [tuple(r) for r in v] for t, v in rows.items()}
    index.close()
    before = snapshot(state)

    bad = write_csv(tmp_path, replaced(6, "2026-06-01T00:30:00Z,a,-0.5,0"), name="bad.csv")
    capsys.readouterr()
    for extra in ([], ["--fresh"]):
        assert main(["-q", "simulate", "--data", str(bad), "--state", str(state), "--no-progress", *extra]) == 2
        assert "row 6, column 'consumption_kwh': participant 'a'" in capsys.readouterr().err
        assert snapshot(state) == before
    index = Index(state / "index.sqlite")
    assert {t: [tuple(r) for r in index.db.execute(f"SELECT * FROM {t}").fetchall()] for t in rows} == rows
