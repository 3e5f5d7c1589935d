"""AusGrid's Solar Home Electricity data (the dataset P2P-Simulator replays).

The published CSV: a title row, then a header row, then one row per customer, channel
and day::

    Customer, Generator Capacity, Postcode, Consumption Category, date,
    0:30, 1:00, ..., 23:30, 0:00, Row Quality

``Consumption Category`` is the channel: GC (general consumption), CL (controlled load,
e.g. an off-peak water heater; only some customers) or GG (gross generation, the PV).
``date`` is dd/mm/yyyy; the 48 columns are the kWh of each half hour, named by the time
the half hour *ends* (``0:30`` is 00:00-00:30, ``0:00`` is 23:30-24:00). The readings are
in standard time (no daylight saving), so the default clock is Australia/Brisbane
(UTC+10 all year). ``Row Quality`` (absent in some years) is AusGrid's note on the row;
flagged rows are kept and counted.

A customer becomes participant ``customer-<id>`` with consumption GC + CL, production GG
and ``pv_kwp`` its Generator Capacity, resampled to the market interval (a half hour's
energy split evenly into 15-minute intervals, summed into hours). Every selected
customer needs GC and GG rows for every selected day.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import numpy as np
import pandas as pd

from node.data.community import Community, Home
from node.data.importers.common import Imported, resample
from node.data.table import first_bad, is_blank, parse_numbers, to_floats
from node.errors import DataError, InputError

ID_COLUMNS = ("Customer", "Generator Capacity", "Postcode", "Consumption Category", "date")
HALF_HOURS = tuple(f"{(30 * j // 60) % 24}:{30 * j % 60:02d}" for j in range(1, 49))
CHANNELS = ("GC", "CL", "GG")
MAX_HALF_HOUR_KWH = 100.0  # a home drawing 200 kW is a unit error
_FIRST_ROW = 3  # the title is row 1, the header row 2


def import_ausgrid(path: str | Path, interval_minutes: int, customers: Collection[int] | None = None,
                   start: str | None = None, days: int | None = None, timezone: str = "Australia/Brisbane",
                   zone_by_postcode: bool = False) -> Imported:
    """The customers (all, or `customers`) over the days from `start` (dd/mm/yyyy or ISO)
    for `days` (default: all), on `interval_minutes` intervals."""
    path = Path(path)
    table = _read(path)
    ids = _integers(path, table["Customer"], "Customer")
    if customers:
        missing = sorted(set(customers) - set(ids.tolist()))
        if missing:
            raise InputError(f"{path}: no customer {missing[0]} in the file (--customers)")
        keep = np.isin(ids, list(customers))
        table, ids = table[keep], ids[keep]
    dates = pd.DatetimeIndex(pd.to_datetime(table["date"].str.strip(), format="%d/%m/%Y", errors="coerce"))
    first_bad(path, table["date"], np.asarray(dates.isna()), "date", lambda v: f"{v!r} is not a date dd/mm/yyyy")
    if start is not None or days is not None:
        low = pd.Timestamp(pd.to_datetime(start, dayfirst="/" in start)) if start else dates.min()
        high = low + pd.Timedelta(days=days) if days else dates.max() + pd.Timedelta(days=1)
        keep = np.asarray((dates >= low) & (dates < high))
        if not keep.any():
            raise InputError(f"{path}: no rows between {low.date()} and {high.date()} (--start, --days)")
        table, ids, dates = table[keep], ids[keep], dates[keep]
    channel = table["Consumption Category"].str.strip().str.upper()
    first_bad(path, table["Consumption Category"], ~np.asarray(channel.isin(CHANNELS)), "Consumption Category",
              lambda v: f"{v!r} is not a channel; expected GC, CL or GG")
    capacity = parse_numbers(path, table["Generator Capacity"], "Generator Capacity", 1000.0, "kWp")
    kwh = np.column_stack([parse_numbers(path, table[c], c, MAX_HALF_HOUR_KWH, "kWh per half hour") for c in HALF_HOURS])
    return _community(path, table, ids, dates, channel.to_numpy(), capacity, kwh, interval_minutes, timezone,
                      zone_by_postcode)


def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(str(path), None, None, "file not found")
    try:
        cells = pd.read_csv(path, header=None, skiprows=1, dtype=str, keep_default_na=False, na_filter=False,
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise DataError(str(path), None, None, f"not AusGrid's Solar Home CSV ({str(error).strip()})") from None
    header = [str(c).strip() for c in cells.iloc[0]]
    missing = [c for c in ID_COLUMNS + HALF_HOURS if c not in header]
    if missing:
        raise DataError(str(path), 2, missing[0], "missing column; AusGrid's layout is a title row, then Customer, "
                        "Generator Capacity, Postcode, Consumption Category, date, 0:30 ... 0:00, Row Quality")
    table = cells.iloc[1:]
    table.columns = header
    table.index = pd.RangeIndex(_FIRST_ROW, _FIRST_ROW + len(table))
    if table.empty:
        raise DataError(str(path), None, None, "no data rows")
    return table


def _integers(path: Path, values: pd.Series, column: str) -> np.ndarray:
    numbers = to_floats(values.str.strip())
    with np.errstate(invalid="ignore"):
        bad = is_blank(values) | ~np.isfinite(numbers) | (numbers < 0) | (numbers != np.floor(numbers))
    first_bad(path, values, bad, column, lambda v: f"{v!r} is not a whole number >= 0")
    return numbers.astype(np.int64)


def _community(path, table, ids, dates, channel, capacity, kwh, minutes, timezone, zone_by_postcode) -> Imported:
    keys = pd.DataFrame({"c": ids, "ch": channel, "d": dates})
    repeated = np.asarray(keys.duplicated())
    first_bad(path, table["date"], repeated, "date", lambda v: f"a second {'/'.join(CHANNELS)} row for this customer, "
              f"channel and day ({v})")
    customers = np.unique(ids)
    days = pd.date_range(dates.min(), dates.max(), freq="D")
    position = {c: i for i, c in enumerate(customers)}
    series = {ch: np.full((len(customers), len(days), 48), np.nan) for ch in CHANNELS}
    day_of = ((dates - days[0]) // pd.Timedelta(days=1)).to_numpy()
    rows = np.array([position[c] for c in ids])
    for ch in CHANNELS:
        mine = channel == ch
        series[ch][rows[mine], day_of[mine]] = kwh[mine]
    for ch in ("GC", "GG"):
        gap = np.isnan(series[ch][:, :, 0])
        if gap.any():
            c, d = np.argwhere(gap)[0]
            raise InputError(f"{path}: customer {customers[c]} has no {ch} row for {days[d]:%d/%m/%Y}; choose "
                             "customers and days with complete data (--customers, --start, --days)")
    consumption = series["GC"] + np.nan_to_num(series["CL"])
    shape = (len(customers), len(days) * 48)
    kwp = _per_customer(path, table, ids, capacity, "Generator Capacity")
    postcode = _per_customer(path, table, ids, _integers(path, table["Postcode"], "Postcode"), "Postcode")
    zones = {p: z for z, p in enumerate(sorted(set(postcode.tolist())))}
    homes = tuple(Home(f"customer-{c}", zones[postcode[i]] if zone_by_postcode else 0, float(kwp[i]), False)
                  for i, c in enumerate(customers))
    naive = pd.date_range(days[0], periods=shape[1], freq="30min")
    try:
        times = naive.tz_localize(timezone, ambiguous="raise", nonexistent="raise").tz_convert("UTC")
    except Exception as error:  # an unknown zone, or a clock change within the data
        raise InputError(f"--timezone {timezone}: {error}; AusGrid's readings are in standard time (no daylight "
                         "saving): use a zone like Australia/Brisbane") from None
    consumption_kwh = resample(consumption.reshape(shape), 30, minutes, str(path))
    production_kwh = resample(series["GG"].reshape(shape), 30, minutes, str(path))
    grid = pd.date_range(times[0], periods=consumption_kwh.shape[1], freq=pd.Timedelta(minutes=minutes))
    community = Community(homes, grid, consumption_kwh, production_kwh)
    flagged = int((~is_blank(table["Row Quality"])).sum()) if "Row Quality" in table else 0
    notes = [f"{len(customers)} customers, {len(days)} day(s) from {days[0]:%d/%m/%Y}, "
             f"{int((~np.isnan(series['CL'][:, :, 0])).any(axis=1).sum())} with a controlled load (CL)"]
    if flagged:
        notes.append(f"{flagged} rows carry a Row Quality note; kept as they are")
    return Imported(community, timezone, tuple(notes))


def _per_customer(path: Path, table: pd.DataFrame, ids: np.ndarray, values: np.ndarray, column: str) -> np.ndarray:
    frame = pd.DataFrame({"c": ids, "v": values}, index=table.index)
    first = frame.groupby("c")["v"].transform("first").to_numpy()
    first_bad(path, table[column], values != first, column,
              lambda v: f"{v!r} differs from this customer's earlier rows; it must be the same on every row")
    return frame.groupby("c")["v"].first().to_numpy()
