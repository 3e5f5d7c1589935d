"""energy_trading_system's household table (its ``household_dbs/*.parquet``).

A long table, CSV or parquet, one row per household and time step::

    id           the household
    timestamp    start of the step (ISO 8601; without an offset it is taken in --timezone)
    production   energy produced in the step, kWh
    consumption  energy consumed in the step, kWh

at 15-minute steps (any step that divides or is divided by the market interval works).
Other columns (its category, season, period) are ignored. Household ``id`` becomes
participant ``household-<id>``; ``pv_kwp`` is the peak production seen.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from node.data.community import Community, Home, peak_kwp
from node.data.importers.common import Imported, resample
from node.data.table import MAX_KWH_PER_INTERVAL, first_bad, is_blank, parse_numbers, read_table
from node.errors import DataError, InputError

REQUIRED = ("id", "timestamp", "production", "consumption")


def import_ets(path: str | Path, interval_minutes: int, timezone: str = "UTC",
               households: Collection[str] | None = None) -> Imported:
    path = Path(path)
    table = read_table(path)
    for column in REQUIRED:
        if column not in table.columns:
            raise DataError(str(path), None, column, f"missing required column; expected {', '.join(REQUIRED)}")
    first_bad(path, table["id"], is_blank(table["id"]), "id", lambda _: "missing household id")
    ids = table["id"].astype(str).str.strip()
    if households:
        missing = sorted(set(households) - set(ids))
        if missing:
            raise InputError(f"{path}: no household {missing[0]!r} in the file (--households)")
        keep = np.asarray(ids.isin(list(households)))
        table, ids = table[keep], ids[keep]
    times = _times(path, table["timestamp"], timezone)
    energy = {c: parse_numbers(path, table[c], c, MAX_KWH_PER_INTERVAL, "kWh per step") for c in ("production", "consumption")}
    keys = pd.DataFrame({"id": ids.to_numpy(), "t": times.asi8})
    first_bad(path, table["timestamp"], np.asarray(keys.duplicated()), "timestamp",
              lambda v: f"a second row for this household at {v}")
    steps = np.unique(times.asi8)
    gaps = np.diff(steps)
    step_ns = int(gaps.min()) if gaps.size else interval_minutes * 60 * 10**9
    if step_ns % (60 * 10**9) or np.any(gaps % step_ns):
        raise InputError(f"{path}: the timestamps are not evenly spaced in whole minutes")
    grid = pd.date_range(times.min(), times.max(), freq=pd.Timedelta(step_ns, unit="ns"))
    names = sorted(set(ids), key=lambda v: (len(v), v))
    row = {name: i for i, name in enumerate(names)}
    column = ((times.asi8 - grid[0].value) // step_ns).astype(int)
    arrays = {c: np.full((len(names), len(grid)), np.nan) for c in energy}
    rows = np.array([row[i] for i in ids])
    for c, values in energy.items():
        arrays[c][rows, column] = values
    if np.isnan(arrays["consumption"]).any():
        h, k = np.argwhere(np.isnan(arrays["consumption"]))[0]
        raise InputError(f"{path}: household {names[h]!r} has no row for {grid[k].isoformat()}; every household needs "
                         "a row for every step")
    source = step_ns // (60 * 10**9)
    consumption = resample(arrays["consumption"], source, interval_minutes, str(path))
    production = resample(arrays["production"], source, interval_minutes, str(path))
    kwp = peak_kwp(production, interval_minutes / 60)
    homes = tuple(Home(f"household-{n}", 0, float(k), False) for n, k in zip(names, kwp))
    timestamps = pd.date_range(grid[0], periods=consumption.shape[1], freq=pd.Timedelta(minutes=interval_minutes))
    notes = (f"{len(names)} households, {len(grid)} steps of {source} minutes from {grid[0].isoformat()}",)
    return Imported(Community(homes, timestamps, consumption, production), timezone, notes)


def _times(path: Path, values: pd.Series, timezone: str) -> pd.DatetimeIndex:
    first_bad(path, values, is_blank(values), "timestamp", lambda _: "missing timestamp")
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        parsed = pd.DatetimeIndex(values)
    else:
        text = values.astype(str).str.strip()
        try:
            parsed = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", errors="coerce"))
        except ValueError:  # offsets that differ from row to row
            parsed = pd.DatetimeIndex(pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True))
        first_bad(path, values, np.asarray(parsed.isna()), "timestamp",
                  lambda v: f"cannot read {v!r} as a time; write ISO 8601 like 2024-01-01T00:15:00")
    if parsed.tz is None:
        try:
            parsed = parsed.tz_localize(timezone, ambiguous="raise", nonexistent="raise")
        except Exception as error:
            raise InputError(f"{path}: local times in --timezone {timezone}: {error}; give times with an offset") from None
    return parsed.tz_convert("UTC").as_unit("ns")
