"""Dataset import: every bad file is rejected naming file, row (header = row 1) and column."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.data.community import Community, Home
from node.data.config import default_config
from node.data.dataset import load_dataset, save_dataset
from node.errors import DataError
from node.data.synthetic import generate_community
from tests.helpers import GOOD_ROWS, HEADER, replaced, write_csv

CONFIG = default_config()


def test_minimal_table_loads_in_order_of_first_appearance(tmp_path: Path) -> None:
    community = load_dataset(write_csv(tmp_path, GOOD_ROWS), CONFIG)
    assert community.names == ("a", "b")
    assert community.timestamps.equals(pd.date_range("2026-06-01", periods=3, freq="15min", tz="UTC"))
    assert community.consumption_kwh.tolist() == [[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]
    assert community.production_kwh.tolist() == [[0.0, 0.0, 0.0], [0.5, 1.0, 0.25]]


def test_row_order_does_not_matter(tmp_path: Path) -> None:
    shuffled = load_dataset(write_csv(tmp_path, GOOD_ROWS[::-1]), CONFIG)
    assert shuffled.names == ("b", "a")
    assert shuffled.consumption_kwh.tolist() == [[0.2, 0.4, 0.6], [0.1, 0.3, 0.5]]


def test_naive_timestamps_are_utc_and_offsets_are_converted(tmp_path: Path) -> None:
    naive = [row.replace("+00:00", "") for row in GOOD_ROWS]
    shifted = [row.replace("T00:", "T02:").replace("+00:00", "+02:00") for row in GOOD_ROWS]
    expected = load_dataset(write_csv(tmp_path, GOOD_ROWS), CONFIG).timestamps
    assert load_dataset(write_csv(tmp_path, naive), CONFIG).timestamps.equals(expected)
    assert load_dataset(write_csv(tmp_path, shifted), CONFIG).timestamps.equals(expected)


def test_missing_home_columns_are_inferred(tmp_path: Path) -> None:
    community = load_dataset(write_csv(tmp_path, GOOD_ROWS), CONFIG)
    a, b = community.homes
    assert (a.pv_kwp, a.zone) == (0.0, 0)
    assert b.pv_kwp == 4.0  # peak 1.0 kWh in 15 min = 4 kW
    # battery_share 0.3 of 2 homes rounds to 1, and only b produces.
    assert (a.battery, b.battery) == (False, True)


def test_battery_inference_follows_the_config_share_among_producing_homes(tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, community=dataclasses.replace(CONFIG.community, battery_share=0.0))
    community = load_dataset(write_csv(tmp_path, GOOD_ROWS), config)
    assert not any(home.battery for home in community.homes)


def test_optional_home_columns_are_read(tmp_path: Path) -> None:
    rows = [row + (",6.5,TRUE,2" if ",b," in row else ",0,no,1") for row in GOOD_ROWS]
    community = load_dataset(write_csv(tmp_path, rows, HEADER + ",pv_kwp,battery,zone"), CONFIG)
    assert community.homes == (Home("a", 1, 0.0, False), Home("b", 2, 6.5, True))


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS[:2], "", *GOOD_ROWS[2:4], "2026-06-01T00:30:00+00:00,a,x,0", GOOD_ROWS[5]]
    with pytest.raises(DataError) as raised:
        load_dataset(write_csv(tmp_path, rows), CONFIG)
    assert (raised.value.row, raised.value.column) == (7, "consumption_kwh")


def test_spreadsheet_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("\ufeff" + "\n".join([HEADER, *GOOD_ROWS]) + "\n")
    assert load_dataset(path, CONFIG).names == ("a", "b")


@pytest.mark.parametrize(
    ("rows", "header", "row", "column", "fragment"),
    [
        (
            [row.rsplit(",", 1)[0] for row in GOOD_ROWS],
            "timestamp,participant,consumption_kwh",
            None,
            "production_kwh",
            "missing required column",
        ),
        (replaced(4, "2026-06-01T00:15:00Z,a,0,3,0"), HEADER, 4, None, "has 5 cells but the header has 4"),
        (
            [row + ",x" for row in GOOD_ROWS],
            HEADER + ",comment",
            None,
            "comment",
            "unknown column",
        ),
        (GOOD_ROWS, HEADER + ",zone,zone", 1, "zone", "more than once"),
        (replaced(3, "1 June 2026,b,0.2,0.5"), HEADER, 3, "timestamp", "cannot read '1 June 2026'"),
        (replaced(3, "2026-06-01T25:00:00,b,0.2,0.5"), HEADER, 3, "timestamp", "ISO 8601"),
        (replaced(4, ",a,0.3,0"), HEADER, 4, "timestamp", "missing timestamp"),
        (replaced(4, "2026-06-01T00:15:00Z, ,0.3,0"), HEADER, 4, "participant", "missing participant"),
        (replaced(5, "2026-06-01T00:15:00Z,b,abc,1.0"), HEADER, 5, "consumption_kwh", "'abc' is not a finite number"),
        (replaced(5, "2026-06-01T00:15:00Z,b,0.4,NaN"), HEADER, 5, "production_kwh", "not a finite number"),
        (replaced(5, "2026-06-01T00:15:00Z,b,0.4,inf"), HEADER, 5, "production_kwh", "not a finite number"),
        (replaced(5, "2026-06-01T00:15:00Z,b,,1.0"), HEADER, 5, "consumption_kwh", "missing value"),
        (replaced(5, "2026-06-01T00:15:00Z,b,0.4"), HEADER, 5, "production_kwh", "missing value"),
        (replaced(6, "2026-06-01T00:30:00Z,a,-0.5,0"), HEADER, 6, "consumption_kwh", "negative"),
        (replaced(7, "2026-06-01T00:30:00Z,b,0.6,2500"), HEADER, 7, "production_kwh", "implausibly large"),
        (replaced(7, "2026-06-01T00:15:00Z,b,0.6,0.2"), HEADER, 7, "timestamp", "second row for participant 'b'"),
        (replaced(6, "2026-06-01T00:37:00Z,a,0.5,0"), HEADER, 6, "timestamp", "not the start of a 15-minute interval"),
    ],
)
def test_bad_cell_is_reported_with_row_and_column(
    tmp_path: Path, rows: list[str], header: str, row: int | None, column: str | None, fragment: str
) -> None:
    path = write_csv(tmp_path, rows, header)
    with pytest.raises(DataError) as raised:
        load_dataset(path, CONFIG)
    error = raised.value
    assert (error.path, error.row, error.column) == (str(path), row, column)
    assert fragment in str(error)
    assert str(error).startswith(str(path))
    if row is not None and column is not None:
        assert f"row {row}, column '{column}'" in str(error)


def test_duplicate_names_the_first_row_too(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 7, column 'timestamp': .*\(first at row 5\)"):
        load_dataset(write_csv(tmp_path, replaced(7, "2026-06-01T00:15:00Z,b,0.6,0.2")), CONFIG)


def test_participant_with_a_missing_interval_is_a_gap(tmp_path: Path) -> None:
    rows = [row for row in GOOD_ROWS if not row.startswith("2026-06-01T00:15:00+00:00,a")]
    with pytest.raises(DataError, match=r"participant 'a' has no row for 2026-06-01T00:15:00\+00:00") as raised:
        load_dataset(write_csv(tmp_path, rows), CONFIG)
    assert raised.value.column == "timestamp"


def test_interval_missing_for_everyone_is_a_gap(tmp_path: Path) -> None:
    rows = [row for row in GOOD_ROWS if "T00:15" not in row]
    with pytest.raises(DataError, match=r"no rows at all for 2026-06-01T00:15:00\+00:00"):
        load_dataset(write_csv(tmp_path, rows), CONFIG)


def test_timestamps_before_the_epoch_on_the_grid_are_fine(tmp_path: Path) -> None:
    rows = [row.replace("2026-06-01", "2025-01-15") for row in GOOD_ROWS]
    assert load_dataset(write_csv(tmp_path, rows), CONFIG).timestamps[0] == pd.Timestamp("2025-01-15T00:00Z")


@pytest.mark.parametrize(
    ("values", "row", "column", "fragment"),
    [
        ({"pv_kwp": ("6.5", "7.0")}, 5, "pv_kwp", "'7.0' here but '6.5' at row 3"),
        ({"pv_kwp": ("-1", "-1")}, 3, "pv_kwp", "negative"),
        ({"battery": ("maybe", "maybe")}, 3, "battery", "'maybe' is not true or false"),
        ({"battery": ("true", "false")}, 5, "battery", "same on every row"),
        ({"zone": ("1.5", "1.5")}, 3, "zone", "expected an integer >= 0"),
        ({"zone": ("-1", "-1")}, 3, "zone", "expected an integer >= 0"),
        ({"zone": ("", "")}, 3, "zone", "missing zone"),
    ],
)
def test_bad_home_attribute_is_reported_with_row_and_column(
    tmp_path: Path, values: dict[str, tuple[str, str]], row: int, column: str, fragment: str
) -> None:
    # Participant b (rows 3, 5, 7) gets the first value on row 3 and the second after.
    ((name, (first, later)),) = values.items()
    fine = "false" if name == "battery" else "0"
    rows = [row + "," + (fine if ",a," in row else first if "T00:00" in row else later) for row in GOOD_ROWS]
    with pytest.raises(DataError) as raised:
        load_dataset(write_csv(tmp_path, rows, HEADER + "," + name), CONFIG)
    assert (raised.value.row, raised.value.column) == (row, column)
    assert fragment in str(raised.value)


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_dataset(path, CONFIG)


def test_header_without_rows_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no data rows"):
        load_dataset(write_csv(tmp_path, []), CONFIG)


@pytest.mark.parametrize("name", ["meters.xlsx", "meters.txt", "meters"])
def test_unsupported_extension_is_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match="unsupported file type.*use .csv or .parquet"):
        load_dataset(write_csv(tmp_path, GOOD_ROWS, name=name), CONFIG)


def test_missing_file_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_dataset(tmp_path / "nope.csv", CONFIG)


def test_semicolon_separated_file_gets_a_hint(tmp_path: Path) -> None:
    rows = [row.replace(",", ";") for row in GOOD_ROWS]
    with pytest.raises(DataError, match="';' as separator"):
        load_dataset(write_csv(tmp_path, rows, HEADER.replace(",", ";")), CONFIG)


def test_corrupt_parquet_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "meters.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable parquet file"):
        load_dataset(path, CONFIG)


def test_parquet_rows_are_numbered_like_the_csv(tmp_path: Path) -> None:
    frame = pd.read_csv(write_csv(tmp_path, replaced(6, "2026-06-01T00:30:00Z,a,-0.5,0")))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame.to_parquet(tmp_path / "meters.parquet")
    with pytest.raises(DataError) as raised:
        load_dataset(tmp_path / "meters.parquet", CONFIG)
    assert (raised.value.row, raised.value.column) == (6, "consumption_kwh")


def test_parquet_with_naive_timestamps_is_read_as_utc(tmp_path: Path) -> None:
    frame = pd.read_csv(write_csv(tmp_path, GOOD_ROWS))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"]).dt.tz_localize(None)
    frame.to_parquet(tmp_path / "meters.parquet")
    community = load_dataset(tmp_path / "meters.parquet", CONFIG)
    assert community.timestamps[0] == pd.Timestamp("2026-06-01T00:00Z")


def assert_same(left: Community, right: Community) -> None:
    assert left.homes == right.homes
    assert left.timestamps.equals(right.timestamps)
    assert np.array_equal(left.consumption_kwh, right.consumption_kwh)
    assert np.array_equal(left.production_kwh, right.production_kwh)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_saved_community_loads_back_identically(tmp_path: Path, suffix: str) -> None:
    community = generate_community(CONFIG)
    path = tmp_path / f"community{suffix}"
    save_dataset(community, path)
    assert_same(load_dataset(path, CONFIG), community)


def test_saving_to_an_unsupported_extension_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unsupported file type"):
        save_dataset(generate_community(CONFIG), tmp_path / "community.json")


names = st.text(alphabet="abcxyz-_ ,\"'0123456789", min_size=1, max_size=8).map(str.strip).filter(bool)
energies = st.floats(0, 1000, allow_subnormal=False)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    homes=st.lists(
        st.tuples(names, st.integers(0, 3), st.sampled_from([0.0, 3.5, 7.25]), st.booleans()),
        min_size=1,
        max_size=4,
        unique_by=lambda home: home[0],
    ),
    steps=st.integers(1, 5),
    data=st.data(),
    suffix=st.sampled_from([".csv", ".parquet"]),
)
def test_any_community_survives_a_round_trip(
    tmp_path: Path, homes: list[tuple[str, int, float, bool]], steps: int, data: st.DataObject, suffix: str
) -> None:
    shape = (len(homes), steps)
    consumption = np.array(data.draw(st.lists(energies, min_size=shape[0] * steps, max_size=shape[0] * steps)))
    production = np.array(data.draw(st.lists(energies, min_size=shape[0] * steps, max_size=shape[0] * steps)))
    community = Community(
        tuple(Home(*home) for home in homes),
        pd.date_range("2026-06-01T06:00Z", periods=steps, freq="15min"),
        consumption.reshape(shape),
        production.reshape(shape),
    )
    path = tmp_path / f"round-trip{suffix}"
    save_dataset(community, path)
    assert_same(load_dataset(path, CONFIG), community)
