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

and any column of the community file (`node.data.assets`: battery_kwh, battery_kw,
connection_kw, hvac_kw, ...), where a blank cell means "not given".

When a column is absent: ``zone`` is 0; ``pv_kwp`` is the peak production
power seen in the data (kWh per interval / interval hours, rounded up to
0.1 kWp), a lower bound of the installed power that is 0 exactly for homes that
never produce; ``battery`` follows the config: ``round(battery_share x homes)``
homes, chosen with ``community.seed`` among the homes with ``pv_kwp > 0``
(see `node.data.community.assign_batteries`).

Every timestamp must lie on the config's interval grid (a whole number of
intervals from ``market.start``, before or after it), and every participant
must have exactly one row for every interval from the first timestamp to the
last. That is the strict policy (the default); under ``policy="repair"`` gaps,
blank and NaN readings are filled and exact duplicate rows dropped, each one
reported as a `node.data.meter_policy.Repair` (the rules and every other bad-data case
are in `node.data.meter_policy`).

Row numbers in errors count as a spreadsheet shows them: the header is row 1,
so the first data row is row 2 (for CSV this is also the line number in a text
editor). Parquet files are numbered the same way, so a file converted between
the two formats reports the same rows. Blank CSV lines are skipped but still
counted. Participants keep the order in which they first appear.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from node.data.assets import ASSET_COLUMNS, asset_table, overlay, parse_asset_column
from node.data.community import LONG_COLUMNS, Community, Home, assign_batteries, peak_kwp
from node.data.config import CommunityConfig
from node.errors import DataError, InputError
from node.data.meter_policy import POLICIES, Repair, check_registry, fill_gaps
from node.data.table import (
    MAX_KWH_PER_INTERVAL,
    file_kind,
    parse_energy,
    parse_flags,
    parse_numbers,
    parse_participants,
    parse_timestamps,
    parse_zones,
    read_table,
)

__all__ = ["LoadedDataset", "load_dataset", "load_dataset_with_report", "save_dataset", "MAX_KWH_PER_INTERVAL"]


_MAX_PV_KWP = 1000.0
_CLASSIC_COLUMNS = ("pv_kwp", "battery", "zone")
_ASSET_COLUMNS = tuple(c for c in ASSET_COLUMNS if c not in ("participant", *_CLASSIC_COLUMNS))
_OPTIONAL_COLUMNS = _CLASSIC_COLUMNS + _ASSET_COLUMNS


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
    (gaps filled by the rules of `node.data.meter_policy`; use `load_dataset_with_report` to
    see what was filled). ``registry``, when given, is the participant names the market
    knows; any other name is an error.

    Raises `DataError` naming the file, the row (header = row 1) and the
    column of the first problem found.
    """
    return load_dataset_with_report(path, config, policy, registry).community


def load_dataset_with_report(
    path: str | Path, config: CommunityConfig, policy: str = "strict", registry: Collection[str] | None = None
) -> LoadedDataset:
    """`load_dataset`, also returning the repairs (see `node.data.meter_policy` for the rules)."""
    if policy not in POLICIES:
        raise InputError(f"unknown meter data policy {policy!r}; expected one of: {', '.join(POLICIES)}")
    repair = policy == "repair"
    path = Path(path)
    table = read_table(path)
    _check_columns(path, table)
    timestamps = parse_timestamps(path, table["timestamp"])
    participants = parse_participants(path, table["participant"])
    check_registry(str(path), table.index, participants, registry)
    energy = {
        column: parse_energy(path, table[column], column, participants, missing_ok=repair)
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
    kind = file_kind(path)
    frame = community.to_long_frame()
    per_row = np.tile(np.arange(len(community.homes)), len(community.timestamps))
    frame["pv_kwp"] = np.array([home.pv_kwp for home in community.homes], dtype=float)[per_row]
    frame["battery"] = np.array([home.battery for home in community.homes], dtype=bool)[per_row]
    frame["zone"] = np.array([home.zone for home in community.homes], dtype=np.int64)[per_row]
    assets = asset_table(community.homes)
    for column in [c for c in assets.columns if c in _ASSET_COLUMNS]:
        frame[column] = assets[column].to_numpy()[per_row]
    if kind == "parquet":
        frame.to_parquet(path, index=False)
        return
    frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    frame["battery"] = np.where(frame["battery"], "true", "false")
    # Python's float repr is the shortest text that reads back to the same
    # float, so the CSV round trip is exact.
    frame.to_csv(path, index=False)


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
            path, table["pv_kwp"], codes, names, parse_numbers(path, table["pv_kwp"], "pv_kwp", _MAX_PV_KWP, "kWp")
        )
    else:
        pv_kwp = peak_kwp(production_kwh, config.market.interval_hours)
    if "zone" in table:
        zone = _per_participant(path, table["zone"], codes, names, parse_zones(path, table["zone"])).astype(int)
    else:
        zone = np.zeros(len(names), dtype=int)
    if "battery" in table:
        battery = _per_participant(path, table["battery"], codes, names, parse_flags(path, table["battery"]))
    else:
        battery = np.array(assign_batteries(pv_kwp, config.community.battery_share, config.community.seed))
    homes = [
        Home(name=str(name), zone=int(z), pv_kwp=float(kwp), battery=bool(has))
        for name, z, kwp, has in zip(names, zone, pv_kwp, battery)
    ]
    present = [column for column in _ASSET_COLUMNS if column in table]
    if not present:
        return tuple(homes)
    values = {
        column: _per_participant(path, table[column], codes, names, parse_asset_column(path, table[column], column))
        for column in present
    }
    first_row = _first_rows(table.index, codes, len(names))
    for i, home in enumerate(homes):
        given = {c: v[i] for c, v in values.items() if not pd.isna(v[i])}
        homes[i] = overlay(home, given, config, str(path), first_row[i])
    return tuple(homes)


def _first_rows(rows: pd.Index, codes: np.ndarray, count: int) -> list[int]:
    first = np.full(count, -1)
    first[codes[::-1]] = np.arange(len(codes))[::-1]
    return [int(rows[p]) for p in first]


def _per_participant(
    path: Path, values: pd.Series, codes: np.ndarray, names: list[str], parsed: np.ndarray
) -> np.ndarray:
    """The one value each participant has in a column; raises where a participant's rows disagree."""
    first_position = np.full(len(names), -1)
    # Reverse order so the earliest row of each participant wins.
    first_position[codes[::-1]] = np.arange(len(codes))[::-1]
    reference = parsed[first_position]
    differs = (parsed != reference[codes]) & ~(pd.isna(parsed) & pd.isna(reference[codes]))
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
