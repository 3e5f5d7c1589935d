"""Grid tariffs: a time-of-use pair (off-peak and peak import, flat feed-in), or dynamic
prices per interval from a file (a day-ahead price series plus fixed fees).

The prices file is a table (CSV or parquet, checked cell by cell like a dataset, errors
naming the row) with a ``timestamp`` column (ISO 8601) and either

    day_ahead_per_kwh            the day-ahead (spot) price, currency per kWh, may be
                                 negative; import = day-ahead + tariffs.grid_fee_per_kwh,
                                 feed-in = day-ahead - tariffs.sell_fee_per_kwh
or
    buy_per_kwh[, sell_per_kwh]  the import and feed-in prices themselves (feed-in
                                 defaults to tariffs.sell_per_kwh)

Each row's price holds from its timestamp until the next row's (hourly day-ahead prices
price four 15-minute intervals); the last row holds for as long as the step before it.
Beyond the file's end the last day repeats (the persistence forecast the optimiser's
horizon also uses for the data), so a file covering the data covers every horizon.
The chain's prices are unsigned, so an import price below zero is taken as zero, and
the feed-in price is capped at the import price (else importing to re-export would earn
money).
"""

from __future__ import annotations

import functools
import os
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from node.data.section import Section, as_utc_index
from node.data.table import first_bad, is_blank, parse_timestamps, read_table, to_floats
from node.errors import ConfigError, DataError, InputError

MAX_PRICE_PER_KWH = 100.0  # beyond this a price is surely in the wrong unit (per MWh?)
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class TariffConfig(Section):
    """Grid tariffs paid to and by the grid.

    Attributes:
        buy_per_kwh: import price outside peak hours, currency per kWh.
        sell_per_kwh: export (feed-in) price, currency per kWh.
        peak_buy_per_kwh: import price during peak hours, currency per kWh.
        peak_hours: local hours [start, end) where the peak price applies;
            start > end wraps past midnight; start == end means no peak.
        timezone: IANA zone of the local clock for peak hours and daily routines.
        prices_file: a prices file (see the module docstring) for dynamic tariffs,
            relative to the config file; "" for the time-of-use form above.
        grid_fee_per_kwh: with a day-ahead prices file, added to the day-ahead price
            for the import tariff (network charges, levies), currency per kWh.
        sell_fee_per_kwh: with a day-ahead prices file, taken off the day-ahead price
            for the feed-in tariff, currency per kWh.
    """

    section: ClassVar[str] = "tariffs"
    buy_per_kwh: float = 0.30
    sell_per_kwh: float = 0.06
    peak_buy_per_kwh: float = 0.40
    peak_hours: tuple[int, int] = (17, 21)
    timezone: str = "Europe/Berlin"
    prices_file: str = ""
    grid_fee_per_kwh: float = 0.0
    sell_fee_per_kwh: float = 0.0

    def __post_init__(self) -> None:
        self._require(self.buy_per_kwh >= 0, "buy_per_kwh", "a price >= 0")
        self._require(
            self.peak_buy_per_kwh >= self.buy_per_kwh,
            "peak_buy_per_kwh",
            f"a price >= buy_per_kwh ({self.buy_per_kwh})",
        )
        # Selling above the import price would let anyone earn money by
        # buying from the grid and selling straight back.
        self._require(
            0 <= self.sell_per_kwh <= self.buy_per_kwh,
            "sell_per_kwh",
            f"a price >= 0 and <= buy_per_kwh ({self.buy_per_kwh}) and peak_buy_per_kwh ({self.peak_buy_per_kwh})",
        )
        self._require(
            all(0 <= hour <= 24 for hour in self.peak_hours),
            "peak_hours",
            "[start, end] local hours between 0 and 24",
        )
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self._require(False, "timezone", "an IANA time zone name like Europe/Berlin")
        self._require(self.grid_fee_per_kwh >= 0, "grid_fee_per_kwh", "a fee >= 0")
        self._require(self.sell_fee_per_kwh >= 0, "sell_fee_per_kwh", "a fee >= 0")

    @property
    def dynamic(self) -> bool:
        """Whether prices come from a file rather than the time-of-use fields."""
        return bool(self.prices_file)

    def is_peak(self, timestamps: Iterable[Any]) -> np.ndarray:
        """Whether each interval starts inside the local peak hours (bool array).

        Timezone-naive timestamps are taken as UTC.
        """
        hours = as_utc_index(timestamps).tz_convert(self.timezone).hour.to_numpy()
        start, end = self.peak_hours
        if start <= end:
            return (hours >= start) & (hours < end)
        return (hours >= start) | (hours < end)

    def buy_price(self, timestamps: Iterable[Any]) -> np.ndarray:
        """Grid import price per kWh for intervals starting at `timestamps`."""
        if self.dynamic:
            return self._prices(timestamps)[0]
        return np.where(self.is_peak(timestamps), self.peak_buy_per_kwh, self.buy_per_kwh)

    def sell_price(self, timestamps: Iterable[Any]) -> np.ndarray:
        """Grid export price per kWh for intervals starting at `timestamps`."""
        if self.dynamic:
            return self._prices(timestamps)[1]
        return np.full(len(as_utc_index(timestamps)), self.sell_per_kwh)

    def highest_buy_price(self) -> float:
        """The highest import price these tariffs can ask (what a standing mandate that
        accepts the tariffs must allow)."""
        if self.dynamic:
            return float(self._series().buy(self.grid_fee_per_kwh).max())
        return max(self.buy_per_kwh, self.peak_buy_per_kwh)

    def lowest_sell_price(self) -> float:
        """The lowest feed-in price these tariffs can pay."""
        if self.dynamic:
            series = self._series()
            buy = series.buy(self.grid_fee_per_kwh)
            return float(series.sell(buy, self.sell_fee_per_kwh, self.sell_per_kwh).min())
        return self.sell_per_kwh

    def check_prices(self) -> None:
        """Reads the prices file now (if any), so a bad one fails before anything runs."""
        if self.dynamic:
            self._series()

    def _series(self) -> "PriceSeries":
        path = Path(self.prices_file)
        try:
            stat = path.stat()
        except OSError:
            raise DataError(str(path), None, None, "prices file not found (tariffs.prices_file)") from None
        return _read_prices(str(path), stat.st_mtime_ns, stat.st_size)

    def prices_end(self) -> pd.Timestamp:
        """When the prices file's last row stops holding (its prices repeat after that)."""
        series = self._series()
        return pd.Timestamp(int(series.times_ns[-1]) + series.step_ns, tz="UTC")

    def _prices(self, timestamps: Iterable[Any]) -> tuple[np.ndarray, np.ndarray]:
        series = self._series()
        rows = series.rows_at(as_utc_index(timestamps))
        buy = series.buy(self.grid_fee_per_kwh)
        return buy[rows], series.sell(buy, self.sell_fee_per_kwh, self.sell_per_kwh)[rows]


@dataclass(frozen=True, eq=False)
class PriceSeries:
    """A prices file, parsed: row start times (ns, UTC, increasing) and its prices."""

    path: str
    times_ns: np.ndarray
    step_ns: int
    day_ahead: np.ndarray | None  # the day-ahead form
    buy_raw: np.ndarray | None  # the explicit form
    sell_raw: np.ndarray | None  # explicit feed-in, if the file has it

    def buy(self, grid_fee: float) -> np.ndarray:
        raw = self.day_ahead + grid_fee if self.day_ahead is not None else self.buy_raw
        return np.maximum(raw, 0.0)

    def sell(self, buy: np.ndarray, sell_fee: float, default_sell: float) -> np.ndarray:
        if self.day_ahead is not None:
            raw = self.day_ahead - sell_fee
        elif self.sell_raw is not None:
            raw = self.sell_raw
        else:
            raw = np.full(len(buy), default_sell)
        return np.clip(raw, 0.0, buy)

    def rows_at(self, times: pd.DatetimeIndex) -> np.ndarray:
        """The row in force at each time; beyond the end, the same time on the last day."""
        t = times.as_unit("ns").asi8.copy()
        first, end = int(self.times_ns[0]), int(self.times_ns[-1]) + self.step_ns
        beyond = t >= end
        t[beyond] -= ((t[beyond] - end) // _DAY_NS + 1) * _DAY_NS
        early = t < first
        if np.any(early):
            at = times[int(np.argmax(early))]
            if at.value >= first:
                raise InputError(f"{self.path}: the prices cover less than a day, so they cannot be repeated past "
                                 f"their end to price {at.isoformat()}; give at least one whole day")
            raise InputError(f"{self.path}: no price for the interval starting {at.isoformat()}; the file starts at "
                             f"{pd.Timestamp(first, tz='UTC').isoformat()}: it must cover the data from its first interval")
        return np.searchsorted(self.times_ns, t, side="right") - 1


@functools.lru_cache(maxsize=8)
def _read_prices(path_text: str, mtime_ns: int, size: int) -> PriceSeries:
    """The parsed prices file; cached by path, modification time and size, so a clearing
    that prices 96 steps per interval reads the file once."""
    path = Path(path_text)
    table = read_table(path)
    columns = set(table.columns)
    if "timestamp" not in columns:
        raise DataError(path_text, None, "timestamp", "missing required column")
    forms = ({"timestamp", "day_ahead_per_kwh"}, {"timestamp", "buy_per_kwh"}, {"timestamp", "buy_per_kwh", "sell_per_kwh"})
    if columns not in forms:
        raise DataError(path_text, None, None, f"columns {sorted(columns)}: expected timestamp with day_ahead_per_kwh, "
                        "or timestamp with buy_per_kwh (and optionally sell_per_kwh)")
    times = parse_timestamps(path, table["timestamp"])
    order = np.diff(times.as_unit("ns").asi8)
    first_bad(path, table["timestamp"].iloc[1:], order <= 0, "timestamp",
              lambda value: f"{value!r} is not after the row before it; rows must be in time order, each time once")
    prices = {name: _signed_prices(path, table[name], name) for name in columns - {"timestamp"}}
    for name in ("buy_per_kwh", "sell_per_kwh"):
        if name in prices:
            first_bad(path, table[name], prices[name] < 0, name, lambda value: f"{value!r} is negative; expected >= 0")
    ns = times.as_unit("ns").asi8
    step = int(order[-1]) if len(order) else _DAY_NS
    return PriceSeries(path_text, ns, step, prices.get("day_ahead_per_kwh"), prices.get("buy_per_kwh"),
                       prices.get("sell_per_kwh"))


def _signed_prices(path: Path, values: pd.Series, column: str) -> np.ndarray:
    first_bad(path, values, is_blank(values), column, lambda _: "missing price")
    numbers = to_floats(values.astype(str).str.strip())
    first_bad(path, values, ~np.isfinite(numbers), column, lambda value: f"{value!r} is not a finite number")
    first_bad(path, values, np.abs(numbers) > MAX_PRICE_PER_KWH, column,
              lambda value: f"{value!r} is implausibly large (> {MAX_PRICE_PER_KWH:g} per kWh); check the unit "
                            "(per MWh?)")
    return numbers


def resolve(path_text: str, base: Path | None) -> str:
    """A config's file path, relative to the config file's directory, made absolute."""
    if not path_text:
        return ""
    path = Path(os.path.expanduser(path_text))
    if not path.is_absolute() and base is not None:
        path = base / path
    return str(path.resolve())
