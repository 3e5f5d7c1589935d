"""Reading a table file (CSV or parquet) cell by cell, with errors that name the file,
the row as a spreadsheet numbers it (the header is row 1) and the column.

Every cell is read as text and checked here rather than guessed at by a CSV reader, so
a dataset, a community file or an importer reports a bad cell the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from node.errors import DataError

MAX_KWH_PER_INTERVAL = 1000.0
"""Above this a household reading is surely a unit or typing error (Wh for kWh)."""

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_FIRST_DATA_ROW = 2  # the header is row 1
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
EXPECTED_ROWS = "expected a header and one row per timestamp and participant"
# What meter exports write for "no reading"; under the repair policy these are gaps.
_MISSING_MARKERS = {"nan", "na", "n/a", "null", "none"}


def file_kind(path: Path) -> str:
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(str(path), None, None, f"unsupported file type '{path.suffix}'; use .csv or .parquet")
    return kind


def read_table(path: Path) -> pd.DataFrame:
    """The raw table with its index set to the spreadsheet row numbers."""
    kind = file_kind(path)
    if not path.is_file():
        raise DataError(str(path), None, None, "file not found")
    if kind == "csv":
        table = read_csv(path)
    else:
        try:
            table = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several unrelated types
            raise DataError(str(path), None, None, f"not a readable parquet file ({error})") from None
        table.index = pd.RangeIndex(_FIRST_DATA_ROW, _FIRST_DATA_ROW + len(table))
    if table.empty:
        raise DataError(str(path), None, None, f"no data rows; {EXPECTED_ROWS}")
    return table


def read_csv(path: Path) -> pd.DataFrame:
    try:
        # Everything as text so that every cell is checked here, with its row
        # number, rather than guessed at by the CSV reader. utf-8-sig drops
        # the byte-order mark spreadsheet programs put in front.
        cells = pd.read_csv(
            path,
            header=None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise DataError(str(path), None, None, f"empty file; {EXPECTED_ROWS}") from None
    except pd.errors.ParserError as error:
        raise csv_shape_error(path, error) from None
    except UnicodeDecodeError:
        raise DataError(str(path), None, None, "not a UTF-8 text file") from None
    # The header is read as a row of its own because pandas would rename a
    # repeated column ('zone.1') instead of letting us reject it.
    # Short rows leave NaN in their missing cells; make them blank like empty cells.
    cells = cells.fillna("")
    table = cells.iloc[1:]
    table.columns = [str(column).strip() for column in cells.iloc[0]]
    table.index = pd.RangeIndex(_FIRST_DATA_ROW, _FIRST_DATA_ROW + len(table))
    blank = (table.apply(lambda column: column.str.strip()) == "").all(axis=1)
    return table[~blank]


def csv_shape_error(path: Path, error: pd.errors.ParserError) -> DataError:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    if found is None:
        return DataError(str(path), None, None, f"not a readable CSV file ({str(error).strip()})")
    expected, line, seen = (int(group) for group in found.groups())
    return DataError(str(path), line, None, f"has {seen} cells but the header has {expected}; check for stray commas")


def first_bad(path: Path, values: pd.Series, bad: np.ndarray, column: str, problem: Callable[[object], str]) -> None:
    """Raise for the first row flagged in ``bad``, if any."""
    if np.any(bad):
        position = int(np.argmax(bad))
        raise DataError(str(path), int(values.index[position]), column, problem(values.iloc[position]))


def is_blank(values: pd.Series) -> np.ndarray:
    return np.asarray(values.isna() | (values.astype(str).str.strip() == ""))


_EXACT_TO_NUMERIC = int(pd.__version__.split(".")[0]) >= 3


def to_floats(values: pd.Series) -> np.ndarray:
    """Cells as floats, NaN where a cell is not a number; each the float nearest to its
    decimal text, as Python's float() reads it. pandas 2.x's to_numeric can be one unit
    in the last place off (pandas 3 is exact), and a meter reading must parse the same
    on every machine that re-runs a clearing."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, copy=True)
    if not _EXACT_TO_NUMERIC and values.dtype == object:  # text: read again, exactly, where it is a number
        ok = ~np.isnan(numbers)
        numbers[ok] = values[ok].astype(float).to_numpy()
    return numbers


def parse_timestamps(path: Path, values: pd.Series) -> pd.DatetimeIndex:
    blank = is_blank(values)
    first_bad(path, values, blank, "timestamp", lambda _: "missing timestamp")
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = pd.DatetimeIndex(values)
    else:
        # ISO 8601 only: '01/06/2026' means a different day in Europe and the US.
        text = values.astype(str).str.strip()
        parsed = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce"))
        first_bad(
            path,
            values,
            np.asarray(parsed.isna()),
            "timestamp",
            lambda value: f"cannot read {value!r} as a time; write ISO 8601 like 2026-06-01T00:15:00+00:00",
        )
    return parsed.tz_localize("UTC") if parsed.tz is None else parsed.tz_convert("UTC")


def parse_participants(path: Path, values: pd.Series) -> np.ndarray:
    first_bad(path, values, is_blank(values), "participant", lambda _: "missing participant name")
    return values.astype(str).str.strip().to_numpy(dtype=object)


def parse_numbers(
    path: Path, values: pd.Series, column: str, limit: float, unit: str, missing_ok: bool = False
) -> np.ndarray:
    """The column as floats; with ``missing_ok`` blank and NaN-like cells are NaN, for the
    repair policy to fill, while text and infinities are still corrupt values."""
    if missing_ok:
        missing = is_blank(values) | np.asarray(values.astype(str).str.strip().str.lower().isin(_MISSING_MARKERS))
    else:
        missing = np.zeros(len(values), dtype=bool)
        first_bad(path, values, is_blank(values), column, lambda _: "missing value")
    numbers = to_floats(values.where(~missing, None))
    numbers[missing] = np.nan
    first_bad(path, values, ~missing & ~np.isfinite(numbers), column, lambda value: f"{value!r} is not a finite number")
    with np.errstate(invalid="ignore"):
        negative, large = numbers < 0, numbers > limit
    if column in ("consumption_kwh", "production_kwh"):
        # Silently clipping or flipping the sign would move money on a guess.
        problem = (
            "is negative; meters do not read negative: a net meter's reading must be split into "
            "consumption_kwh (import) and production_kwh (export), both >= 0, before import"
        )
    else:
        problem = "is negative; expected >= 0"
    first_bad(path, values, negative, column, lambda value: f"{value!r} {problem}")
    first_bad(
        path,
        values,
        large,
        column,
        lambda value: f"{value!r} is implausibly large (> {limit:g} {unit}); check the unit (Wh vs kWh?)",
    )
    return numbers


def parse_energy(path: Path, values: pd.Series, column: str, participants: np.ndarray, missing_ok: bool) -> np.ndarray:
    """An energy column; errors also name the row's participant, whom an operator must chase."""
    try:
        return parse_numbers(path, values, column, MAX_KWH_PER_INTERVAL, "kWh per interval", missing_ok)
    except DataError as error:
        if error.row is None:
            raise
        name = participants[values.index.get_loc(error.row)]
        raise DataError(error.path, error.row, error.column, f"participant '{name}': {error.problem}") from None


def parse_zones(path: Path, values: pd.Series) -> np.ndarray:
    first_bad(path, values, is_blank(values), "zone", lambda _: "missing zone")
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(numbers) | (numbers < 0) | (numbers != np.floor(numbers))
    first_bad(path, values, bad, "zone", lambda value: f"{value!r} is not a zone; expected an integer >= 0")
    return numbers


def parse_flags(path: Path, values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    known = text.isin(_TRUE | _FALSE).to_numpy()
    first_bad(path, values, ~known, "battery", lambda value: f"{value!r} is not true or false")
    return text.isin(_TRUE).to_numpy()
