"""A grid CO2 intensity series: what each kWh imported from the grid emitted.

A CSV file with columns ``timestamp`` (ISO 8601 with a UTC offset) and ``g_per_kwh``
(grams of CO2 per kWh, >= 0), one row per interval or coarser: each interval takes
the value of the latest row at or before its start (an hourly series serves 15-minute
intervals). The CO2 KPI (node.metrics.kpis) is computed only when one is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from node.errors import DataError, InputError


@dataclass(frozen=True)
class IntensitySeries:
    g_per_kwh: pd.Series  # indexed by UTC timestamps, ascending
    source: str

    def at(self, timestamps: pd.DatetimeIndex) -> list[float]:
        """The intensity at each of `timestamps` (the latest value at or before it)."""
        stamps = pd.DatetimeIndex(timestamps).tz_convert("UTC")
        positions = self.g_per_kwh.index.searchsorted(stamps, side="right") - 1
        if len(stamps) and positions.min() < 0:
            first = stamps[int(np.argmin(positions))]
            raise InputError(f"{self.source}: no CO2 intensity at or before {first.isoformat()}: the series starts at "
                             f"{self.g_per_kwh.index[0].isoformat()}")
        return self.g_per_kwh.to_numpy(dtype=float)[positions].tolist()


def load_intensity(path: Path) -> IntensitySeries:
    """Reads and checks an intensity CSV; errors name the file, row and column."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: CO2 intensity file not found") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV file: {exc}") from None
    for column in ("timestamp", "g_per_kwh"):
        if column not in frame.columns:
            raise DataError(str(path), None, column, f"missing; the columns are {', '.join(map(str, frame.columns))}")
    if frame.empty:
        raise DataError(str(path), None, None, "no rows")
    stamps = pd.to_datetime(frame["timestamp"], errors="coerce", utc=True)
    values = pd.to_numeric(frame["g_per_kwh"], errors="coerce")
    for label, bad in (("timestamp", stamps.isna()), ("g_per_kwh", values.isna() | (values < 0))):
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            expected = "an ISO 8601 time with a UTC offset" if label == "timestamp" else "a number of grams per kWh >= 0"
            raise DataError(str(path), row + 2, label, f"{frame[label].iloc[row]!r} is not {expected}")
    series = pd.Series(values.to_numpy(dtype=float), index=pd.DatetimeIndex(stamps)).sort_index()
    if series.index.has_duplicates:
        raise DataError(str(path), None, "timestamp", f"{series.index[series.index.duplicated()][0]} appears twice")
    return IntensitySeries(series, str(path))
