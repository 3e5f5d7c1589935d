"""Import and export of metered energy as a long table (CSV or parquet).

Format: one row per (interval, participant) with columns

    timestamp        start of the interval, ISO 8601 (``2026-06-01T00:15:00+00:00``);
                     timezone-naive timestamps are taken as UTC
    participant      name of the home, e.g. ``home-01``
    consumption_kwh  energy consumed in the interval, kWh (>= 0, <= 1000)
    production_kwh   energy produced in the interval, kWh (>= 0, <= 1000)

and optionally, constant per participant:

    pv_kwp           installed PV peak power, kWp (>= 0, <= 1000)
    battery          true/false (also 1/0, yes/no, any case)
    zone             grid zone, integer >= 0

When a column is absent: ``zone`` is 0; ``pv_kwp`` is the peak production
power seen in the data (kWh per interval / interval hours, rounded up to
0.1 kWp), a lower bound of the installed power that is 0 exactly for homes that
never produce; ``battery`` follows the config: ``round(battery_share x homes)``
homes, chosen with ``community.seed`` among the homes with ``pv_kwp > 0``
(see `node.community.assign_batteries`).

Every timestamp must lie on the config's interval grid (a whole number of
intervals from ``market.start``, before or after it), and every participant
must have exactly one row for every interval from the first timestamp to the
last. That is the strict policy (the default); under ``policy="repair"`` gaps,
blank and NaN readings are filled and exact duplicate rows dropped, each one
reported as a `node.meter_policy.Repair` (the rules and every other bad-data case
are in `node.meter_policy`).

Row numbers in errors count as a spreadsheet shows them: the header is row 1,
so the first data row is row 2 (for CSV this is also the line number in a text
editor). Parquet files are numbered the same way, so a file converted between
the two formats reports the same rows. Blank CSV lines are skipped but still
counted. Participants keep the order in which they first appear.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from node.community import LONG_COLUMNS, Community, Home, assign_batteries
from node.config import CommunityConfig
from node.errors import DataError, InputError
from node.meter_policy import POLICIES, Repair, check_registry, fill_gaps

__all__ = ["LoadedDataset", "load_dataset", "load_dataset_with_report", "save_dataset", "MAX_KWH_PER_INTERVAL"]

MAX_KWH_PER_INTERVAL = 1000.0
"""Above this a household reading is surely a unit or typing error (Wh for kWh)."""

_MAX_PV_KWP = 1000.0
_OPTIONAL_COLUMNS = ("pv_kwp", "battery", "zone")
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_FIRST_DATA_ROW = 2  # the header is row 1
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}
_EXPECTED_ROWS = "expected a header and one row per timestamp and participant"
# What meter exports write for "no reading"; under the repair policy these are gaps.
_MISSING_MARKERS = {"nan", "na", "n/a", "null", "none"}


@dataclass(frozen=True)
class LoadedDataset:
    """A loaded community and every value the repair policy filled in or dropped.

    Attributes:
        community: the homes and their energy, every cell a number.
        repairs: one `Repair` per filled cell or dropped row, in time order; empty
            under the strict policy.
    """

    community: Community
    repairs: tuple[Repair, ...] = ()


def load_dataset(
    path: str | Path, config: CommunityConfig, policy: str = "strict", registry: Collection[str] | None = None
) -> Community:
    """Read and validate a long table of metered energy into a `Community`.

    ``policy`` is ``"strict"`` (any gap, NaN or duplicate is an error) or ``"repair"``
    (gaps filled by the rules of `node.meter_policy`; use `load_dataset_with_report` to
    see what was filled). ``registry``, when given, is the participant names the market
    knows; any other name is an error.

    Raises `DataError` naming the file, the row (header = row 1) and the
    column of the first problem found.
    """
    return load_dataset_with_report(path, config, policy, registry).community


def load_dataset_with_report(
    path: str | Path, config: CommunityConfig, policy: str = "strict", registry: Collection[str] | None = None
) -> LoadedDataset:
    """`load_dataset`, also returning the repairs (see `node.meter_policy` for the rules)."""
    if policy not in POLICIES:
        raise InputError(f"unknown meter data policy {policy!r}; expected one of: {', '.join(POLICIES)}")
    repair = policy == "repair"
    path = Path(path)
    table = _read_table(path)
    _check_columns(path, table)
    timestamps = _parse_timestamps(path, table["timestamp"])
    participants = _parse_participants(path, table["participant"])
    check_registry(str(path), table.index, participants, registry)
    energy = {
        column: _parse_energy(path, table[column], column, participants, missing_ok=repair)
        for column in ("consumption_kwh", "production_kwh")
    }
    _check_on_grid(path, table.index, timestamps, config)
    repairs: list[Repair] = []
    if repair:
        keep, repairs = _drop_exact_duplicates(table, timestamps, participants, energy)
        table, timestamps, participants = table[keep], timestamps[keep], participants[keep]
        energy = {column: values[keep] for column, values in energy.items()}
    _check_unique(path, table.index, timestamps, participants, repair)
    steps, step_times = _interval_positions(path, timestamps, config, allow_holes=repair)
    codes, names = pd.factorize(participants)
    if not repair:
        _check_complete(path, codes, names, steps, step_times)
    shape = (len(names), len(step_times))
    arrays = {}
    for column, values in energy.items():
        array = np.full(shape, np.nan)
        array[codes, steps] = values
        if repair:
            originals = np.full(shape, None, dtype=object)
            originals[codes, steps] = table[column].to_numpy(dtype=object)
            rows = np.full(shape, -1, dtype=np.int64)
            rows[codes, steps] = np.asarray(table.index)
            array, filled = fill_gaps(
                str(path), column, array, originals, rows, list(names), step_times, config.market.interval
            )
            repairs += filled
        arrays[column] = array
    homes = _homes(path, table, codes, list(names), arrays["production_kwh"], config)
    community = Community(homes, step_times, arrays["consumption_kwh"], arrays["production_kwh"])
    order = {name: row for row, name in enumerate(names)}
    repairs.sort(key=lambda r: (r.timestamp, order[r.participant], r.column))
    return LoadedDataset(community, tuple(repairs))


def save_dataset(community: Community, path: str | Path) -> None:
    """Write a community as a long table (CSV or parquet by extension) that `load_dataset` reads back.

    Besides the four energy columns, each row carries its home's pv_kwp,
    battery and zone so the round trip keeps them.
    """
    path = Path(path)
    kind = _kind(path)
    frame = community.to_long_frame()
    per_row = np.tile(np.arange(len(community.homes)), len(community.timestamps))
    frame["pv_kwp"] = np.array([home.pv_kwp for home in community.homes], dtype=float)[per_row]
    frame["battery"] = np.array([home.battery for home in community.homes], dtype=bool)[per_row]
    frame["zone"] = np.array([home.zone for home in community.homes], dtype=np.int64)[per_row]
    if kind == "parquet":
        frame.to_parquet(path, index=False)
        return
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    frame["battery"] = np.where(frame["battery"], "true", "false")
    # Python's float repr is the shortest text that reads back to the same
    # float, so the CSV round trip is exact.
    frame.to_csv(path, index=False)


def _kind(path: Path) -> str:
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(str(path), None, None, f"unsupported file type '{path.suffix}'; use .csv or .parquet")
    return kind


def _read_table(path: Path) -> pd.DataFrame:
    """The raw table with its index set to the spreadsheet row numbers."""
    kind = _kind(path)
    if not path.is_file():
        raise DataError(str(path), None, None, "file not found")
    if kind == "csv":
        table = _read_csv(path)
    else:
        try:
            table = pd.read_parquet(path)
        except Exception as error:  # pyarrow raises several unrelated types
            raise DataError(str(path), None, None, f"not a readable parquet file ({error})") from None
        table.index = pd.RangeIndex(_FIRST_DATA_ROW, _FIRST_DATA_ROW + len(table))
    if table.empty:
        raise DataError(str(path), None, None, f"no data rows; {_EXPECTED_ROWS}")
    return table


def _read_csv(path: Path) -> pd.DataFrame:
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
        raise DataError(str(path), None, None, f"empty file; {_EXPECTED_ROWS}") from None
    except pd.errors.ParserError as error:
        raise _csv_shape_error(path, error) from None
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


def _csv_shape_error(path: Path, error: pd.errors.ParserError) -> DataError:
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    if found is None:
        return DataError(str(path), None, None, f"not a readable CSV file ({str(error).strip()})")
    expected, line, seen = (int(group) for group in found.groups())
    return DataError(str(path), line, None, f"has {seen} cells but the header has {expected}; check for stray commas")


def _check_columns(path: Path, table: pd.DataFrame) -> None:
    columns = list(table.columns)
    if len(set(columns)) != len(columns):
        repeated = next(column for column in columns if columns.count(column) > 1)
        raise DataError(str(path), 1, repeated, "column appears more than once")
    for column in LONG_COLUMNS:
        if column not in columns:
            hint = ""
            if len(columns) == 1 and ";" in columns[0]:
                hint = "; the file seems to use ';' as separator, save it comma-separated"
            raise DataError(str(path), None, column, f"missing required column{hint}")
    known = set(LONG_COLUMNS) | set(_OPTIONAL_COLUMNS)
    for column in columns:
        if column not in known:
            raise DataError(
                str(path), None, column, f"unknown column; expected {', '.join(LONG_COLUMNS + _OPTIONAL_COLUMNS)}"
            )


def _first_bad(path: Path, values: pd.Series, bad: np.ndarray, column: str, problem: Callable[[object], str]) -> None:
    """Raise for the first row flagged in ``bad``, if any."""
    if np.any(bad):
        position = int(np.argmax(bad))
        raise DataError(str(path), int(values.index[position]), column, problem(values.iloc[position]))


def _is_blank(values: pd.Series) -> np.ndarray:
    return np.asarray(values.isna() | (values.astype(str).str.strip() == ""))


def _parse_timestamps(path: Path, values: pd.Series) -> pd.DatetimeIndex:
    blank = _is_blank(values)
    _first_bad(path, values, blank, "timestamp", lambda _: "missing timestamp")
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = pd.DatetimeIndex(values)
    else:
        # ISO 8601 only: '01/06/2026' means a different day in Europe and the US.
        text = values.astype(str).str.strip()
        parsed = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce"))
        _first_bad(
            path,
            values,
            np.asarray(parsed.isna()),
            "timestamp",
            lambda value: f"cannot read {value!r} as a time; write ISO 8601 like 2026-06-01T00:15:00+00:00",
        )
    return parsed.tz_localize("UTC") if parsed.tz is None else parsed.tz_convert("UTC")


def _parse_participants(path: Path, values: pd.Series) -> np.ndarray:
    _first_bad(path, values, _is_blank(values), "participant", lambda _: "missing participant name")
    return values.astype(str).str.strip().to_numpy(dtype=object)


def _parse_numbers(
    path: Path, values: pd.Series, column: str, limit: float, unit: str, missing_ok: bool = False
) -> np.ndarray:
    """The column as floats; with ``missing_ok`` blank and NaN-like cells are NaN, for the
    repair policy to fill, while text and infinities are still corrupt values."""
    if missing_ok:
        missing = _is_blank(values) | np.asarray(values.astype(str).str.strip().str.lower().isin(_MISSING_MARKERS))
    else:
        missing = np.zeros(len(values), dtype=bool)
        _first_bad(path, values, _is_blank(values), column, lambda _: "missing value")
    numbers = pd.to_numeric(values.where(~missing, None), errors="coerce").to_numpy(dtype=float, copy=True)
    numbers[missing] = np.nan
    _first_bad(path, values, ~missing & ~np.isfinite(numbers), column, lambda value: f"{value!r} is not a finite number")
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
    _first_bad(path, values, negative, column, lambda value: f"{value!r} {problem}")
    _first_bad(
        path,
        values,
        large,
        column,
        lambda value: f"{value!r} is implausibly large (> {limit:g} {unit}); check the unit (Wh vs kWh?)",
    )
    return numbers


def _parse_energy(path: Path, values: pd.Series, column: str, participants: np.ndarray, missing_ok: bool) -> np.ndarray:
    """An energy column; errors also name the row's participant, whom an operator must chase."""
    try:
        return _parse_numbers(path, values, column, MAX_KWH_PER_INTERVAL, "kWh per interval", missing_ok)
    except DataError as error:
        if error.row is None:
            raise
        name = participants[values.index.get_loc(error.row)]
        raise DataError(error.path, error.row, error.column, f"participant '{name}': {error.problem}") from None


def _check_on_grid(path: Path, rows: pd.Index, timestamps: pd.DatetimeIndex, config: CommunityConfig) -> None:
    market = config.market
    offsets = timestamps.as_unit("ns").asi8 - market.start.as_unit("ns").value
    off_grid = offsets % market.interval.value != 0
    if np.any(off_grid):
        position = int(np.argmax(off_grid))
        raise DataError(
            str(path),
            int(rows[position]),
            "timestamp",
            f"{timestamps[position].isoformat()} is not the start of a {market.interval_minutes}-minute "
            f"interval (intervals start every {market.interval_minutes} minutes from {market.start.isoformat()})",
        )


def _drop_exact_duplicates(
    table: pd.DataFrame, timestamps: pd.DatetimeIndex, participants: np.ndarray, energy: dict[str, np.ndarray]
) -> tuple[np.ndarray, list[Repair]]:
    """Rows to keep, and a `Repair` for each row that repeats an earlier one exactly
    (a feed that resent a reading); rows that differ are left for `_check_unique`."""
    frame = pd.DataFrame({"timestamp": timestamps.asi8, "participant": participants, **energy}, index=table.index)
    for column in _OPTIONAL_COLUMNS:
        if column in table:
            frame[column] = table[column].astype(str).str.strip()
    copies = np.asarray(frame.duplicated(keep="first"))
    if not copies.any():
        return ~copies, []
    groups = frame.groupby(list(frame.columns), dropna=False, sort=False).ngroup().to_numpy()
    first_row = pd.Series(np.asarray(table.index)).groupby(groups).transform("first").to_numpy()
    repairs = [
        Repair(
            participant=str(participants[position]),
            timestamp=timestamps[position],
            column="row",
            rule="duplicate_dropped",
            original=f"repeats row {int(first_row[position])}",
            value_kwh=None,
            row=int(table.index[position]),
        )
        for position in np.flatnonzero(copies)
    ]
    return ~copies, repairs


def _check_unique(
    path: Path, rows: pd.Index, timestamps: pd.DatetimeIndex, participants: np.ndarray, copies_dropped: bool = False
) -> None:
    keys = pd.DataFrame({"timestamp": timestamps, "participant": participants})
    repeated = np.asarray(keys.duplicated(keep="first"))
    if np.any(repeated):
        position = int(np.argmax(repeated))
        same = np.flatnonzero(
            np.asarray(keys["timestamp"] == keys["timestamp"].iloc[position])
            & (participants == participants[position])
        )
        raise DataError(
            str(path),
            int(rows[position]),
            "timestamp",
            f"second row for participant '{participants[position]}' at {timestamps[position].isoformat()} "
            f"(first at row {int(rows[same[0]])})"
            + ("; the two rows differ, so neither can be trusted: keep the right one" if copies_dropped else ""),
        )


def _interval_positions(
    path: Path, timestamps: pd.DatetimeIndex, config: CommunityConfig, allow_holes: bool = False
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Each row's interval position from the first timestamp, and the full interval range."""
    step_ns = config.market.interval.value
    first = timestamps.min()
    steps = (timestamps.as_unit("ns").asi8 - first.as_unit("ns").value) // step_ns
    present = np.unique(steps)
    holes = np.flatnonzero(np.diff(present) > 1)
    if holes.size and not allow_holes:
        missing = first + pd.Timedelta(int(present[holes[0]] + 1) * step_ns, unit="ns")
        raise DataError(
            str(path),
            None,
            "timestamp",
            f"no rows at all for {missing.isoformat()}; every interval from the first timestamp to the last needs data",
        )
    return steps, pd.date_range(first, periods=int(present[-1]) + 1, freq=config.market.interval, unit="ns")


def _check_complete(
    path: Path, codes: np.ndarray, names: pd.Index, steps: np.ndarray, step_times: pd.DatetimeIndex
) -> None:
    rows_per_participant = np.bincount(codes, minlength=len(names))
    short = np.flatnonzero(rows_per_participant < len(step_times))
    if short.size:
        code = int(short[0])
        has = np.zeros(len(step_times), dtype=bool)
        has[steps[codes == code]] = True
        gap = int(np.argmin(has))
        raise DataError(
            str(path),
            None,
            "timestamp",
            f"participant '{names[code]}' has no row for {step_times[gap].isoformat()} "
            f"({len(step_times) - int(has.sum())} of {len(step_times)} intervals missing); "
            "every participant needs a row for every interval",
        )


def _homes(
    path: Path,
    table: pd.DataFrame,
    codes: np.ndarray,
    names: list[str],
    production_kwh: np.ndarray,
    config: CommunityConfig,
) -> tuple[Home, ...]:
    """Per-participant attributes: from the optional columns, else inferred as the module doc says."""
    if "pv_kwp" in table:
        pv_kwp = _per_participant(
            path, table["pv_kwp"], codes, names, _parse_numbers(path, table["pv_kwp"], "pv_kwp", _MAX_PV_KWP, "kWp")
        )
    else:
        peak_kw = production_kwh.max(axis=1) / config.market.interval_hours
        # Round up so that a producing home never gets 0 kWp.
        pv_kwp = np.ceil(np.round(peak_kw * 10, 9)) / 10
    if "zone" in table:
        zone = _per_participant(path, table["zone"], codes, names, _parse_zones(path, table["zone"])).astype(int)
    else:
        zone = np.zeros(len(names), dtype=int)
    if "battery" in table:
        battery = _per_participant(path, table["battery"], codes, names, _parse_flags(path, table["battery"]))
    else:
        battery = np.array(assign_batteries(pv_kwp, config.community.battery_share, config.community.seed))
    return tuple(
        Home(name=str(name), zone=int(z), pv_kwp=float(kwp), battery=bool(has))
        for name, z, kwp, has in zip(names, zone, pv_kwp, battery)
    )


def _parse_zones(path: Path, values: pd.Series) -> np.ndarray:
    _first_bad(path, values, _is_blank(values), "zone", lambda _: "missing zone")
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(numbers) | (numbers < 0) | (numbers != np.floor(numbers))
    _first_bad(path, values, bad, "zone", lambda value: f"{value!r} is not a zone; expected an integer >= 0")
    return numbers


def _parse_flags(path: Path, values: pd.Series) -> np.ndarray:
    text = values.astype(str).str.strip().str.lower()
    known = text.isin(_TRUE | _FALSE).to_numpy()
    _first_bad(path, values, ~known, "battery", lambda value: f"{value!r} is not true or false")
    return text.isin(_TRUE).to_numpy()


def _per_participant(
    path: Path, values: pd.Series, codes: np.ndarray, names: list[str], parsed: np.ndarray
) -> np.ndarray:
    """The one value each participant has in a column; raises where a participant's rows disagree."""
    first_position = np.full(len(names), -1)
    # Reverse order so the earliest row of each participant wins.
    first_position[codes[::-1]] = np.arange(len(codes))[::-1]
    reference = parsed[first_position]
    differs = parsed != reference[codes]
    if np.any(differs):
        position = int(np.argmax(differs))
        code = int(codes[position])
        raise DataError(
            str(path),
            int(values.index[position]),
            str(values.name),
            f"participant '{names[code]}' has {values.iloc[position]!r} here but "
            f"{values.iloc[first_position[code]]!r} at row {int(values.index[first_position[code]])}; "
            "this column must be the same on every row of a participant",
        )
    return reference
