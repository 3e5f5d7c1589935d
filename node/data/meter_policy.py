"""What GridLedger does with bad and missing meter data: reject it, or repair it and say so.

Real meter feeds have holes and glitches. Settlement moves money, so every kind of bad
reading has exactly one defined outcome: either the whole file is rejected with a
message naming the file, row, column and participant (nothing reaches the chain or the
index, because data is loaded before any chain work), or a stated fallback fills in a
value and a `Repair` records it. Repairs go into the committed inputs of the interval
they belong to, so an auditor who re-runs a clearing also sees which numbers were
estimated, by which rule, and what the meter actually said.

``load_dataset(path, config, policy=...)`` picks one of two policies:

==========================  ===============================  ======================================
case                        policy="strict" (default)        policy="repair"
==========================  ===============================  ======================================
blank cell, NaN/NA/null     reject (row, column)             fill by the gap rules below
participant lacks a row     reject (participant, time)       fill by the gap rules below
no row at all for a time    reject (time)                    fill by the gap rules below
gap longer than 1 day       reject                           reject (participant, column, span):
                                                             estimating days of energy is invention
participant never read      reject                           reject: no mean to fall back on
non-numeric text, inf       reject (row, column)             reject: a corrupt value, not a gap
negative value              reject (row, column)             reject: meters do not read negative;
                                                             split a net meter first (below)
> 1000 kWh per interval     reject (row, column)             reject: a unit error (Wh for kWh?)
exact duplicate row         reject (both rows)               drop the copy, note it
conflicting duplicates      reject (both rows)               reject (both rows)
unknown participant         reject (names all, first rows)   reject (names all, first rows)
late reading                never applied (`split_late`)     never applied (`split_late`)
clock skew, live oracle     refuse to settle (`check_clock`) refuse to settle (`check_clock`)
==========================  ===============================  ======================================

Gap rules, per participant and column, first that applies (the utility practice of
"validation, estimation and editing": short gaps from the neighbours, longer ones from
a like day, the rest from a conservative constant):

1. ``linear_interpolation``: a run of at most `MAX_INTERPOLATED_GAP` (1 hour) with a
   real reading on both sides is the straight line between those two readings. The
   neighbours are minutes away; yesterday is a day away.
2. ``previous_day``: the same interval one day earlier, if that is a real reading
   (never an estimate, so estimates do not feed on estimates).
3. ``zero_production``: production 0. Paying a home for energy it may not have
   produced is worse than under-crediting it; a later correction can pay it back.
   ``mean_consumption``: consumption is the participant's mean real reading, so the
   community's balance stays plausible and the home is neither billed for nothing
   nor for a peak.

Negative readings: a meter does not read negative. A net (bidirectional) meter that
reports import minus export must be split into ``consumption_kwh`` (import, >= 0) and
``production_kwh`` (export, >= 0) before import; GridLedger will not guess the split.

Late readings (readings for an interval that is already settled on chain) are never
applied: the chain is final and an interval is never settled twice. `split_late`
separates them so the oracle can report them; correcting a settled interval is a
separate adjustment transaction, which is out of scope here.

Clock skew: the live oracle settles an interval only once it has ended. `check_clock`
refuses (InputError naming both clocks) if the interval's end is still in the future
by the chain's clock beyond a tolerance, i.e. the oracle's clock runs ahead and the
meter data for the interval may be incomplete. The embedded chain shares the oracle's
clock, so the check matters for nodes reached over JSON-RPC; replays of historical data
(``simulate`` without ``--live``) do not check clocks at all.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from node.data.community import Community
from node.data.config import MarketConfig
from node.errors import DataError, InputError

__all__ = [
    "POLICIES",
    "MAX_INTERPOLATED_GAP",
    "MAX_REPAIRED_GAP",
    "Repair",
    "check_registry",
    "fill_gaps",
    "split_late",
    "LateSplit",
    "check_clock",
    "committed_repairs",
]

POLICIES = ("strict", "repair")
MAX_INTERPOLATED_GAP = pd.Timedelta(hours=1)
MAX_REPAIRED_GAP = pd.Timedelta(days=1)

# Column names in the file -> names in the committed inputs.
_INPUT_COLUMNS = {"consumption_kwh": "load_wh", "production_kwh": "pv_wh"}


@dataclass(frozen=True)
class Repair:
    """One value GridLedger filled in or one row it dropped, for the audit trail.

    Attributes:
        participant: the participant's name in the file.
        timestamp: start of the interval, UTC.
        column: ``consumption_kwh`` or ``production_kwh``; ``row`` for a dropped row.
        rule: which rule of the module doc applied.
        original: what the file had: the cell text, ``"no row"``, or for a dropped
            duplicate ``"repeats row F"``.
        value_kwh: the value used for settlement; None for a dropped row.
        row: the file's row (header = row 1), when the cell existed.
    """

    participant: str
    timestamp: pd.Timestamp
    column: str
    rule: str
    original: str
    value_kwh: float | None
    row: int | None = None

    def describe(self) -> str:
        where = f"row {self.row}" if self.row is not None else "no row"
        value = "dropped" if self.value_kwh is None else f"{self.value_kwh:g} kWh"
        return f"{self.participant} {self.timestamp.isoformat()} {self.column}: {self.rule} -> {value} (file: {self.original!r}, {where})"


def check_registry(path: str, rows: pd.Index, names: np.ndarray, registry: Collection[str] | None) -> None:
    """Rejects participants the market does not know, naming every one and its first row."""
    if registry is None:
        return
    known = set(registry)
    unknown: dict[str, int] = {}
    for row, name in zip(rows, names):
        if name not in known and name not in unknown:
            unknown[name] = int(row)
    if unknown:
        listed = ", ".join(f"'{name}' (first at row {row})" for name, row in unknown.items())
        raise DataError(
            path,
            next(iter(unknown.values())),
            "participant",
            f"{len(unknown)} participant(s) not in the market's registry: {listed}; register them or remove their rows",
        )


def fill_gaps(
    path: str,
    column: str,
    values_kwh: np.ndarray,
    originals: np.ndarray,
    rows: np.ndarray,
    names: Sequence[str],
    timestamps: pd.DatetimeIndex,
    interval: pd.Timedelta,
) -> tuple[np.ndarray, list[Repair]]:
    """``values_kwh`` (participants x intervals, NaN where missing) with every gap filled
    by the module doc's rules, and one `Repair` per filled cell.

    ``originals`` holds each cell's text in the file (``None`` where there was no row)
    and ``rows`` its row number (-1 where there was no row).
    """
    filled = np.array(values_kwh, dtype=float)
    repairs: list[Repair] = []
    real = ~np.isnan(filled)
    steps_per_day = int(pd.Timedelta(days=1) / interval)
    max_interpolated = int(MAX_INTERPOLATED_GAP / interval)
    max_repaired = int(MAX_REPAIRED_GAP / interval)
    for i in np.flatnonzero(~real.all(axis=1)):
        line, known = filled[i], real[i]
        rule = np.full(len(line), "", dtype=object)
        for start, stop in _runs(~known):
            if stop - start > max_repaired:
                raise DataError(
                    path,
                    None,
                    column,
                    f"participant '{names[i]}' has no reading from {timestamps[start].isoformat()} to "
                    f"{timestamps[stop - 1].isoformat()} ({stop - start} intervals), more than "
                    f"{_describe(MAX_REPAIRED_GAP)} is too long to estimate; fix the meter feed",
                )
            if start > 0 and stop < len(line) and stop - start <= max_interpolated:
                left, right = line[start - 1], line[stop]
                fraction = np.arange(1, stop - start + 1) / (stop - start + 1)
                line[start:stop] = left + (right - left) * fraction
                rule[start:stop] = "linear_interpolation"
        for j in np.flatnonzero(rule == ""):
            if known[j]:
                continue
            if j >= steps_per_day and known[j - steps_per_day]:
                line[j], rule[j] = line[j - steps_per_day], "previous_day"
            elif column == "production_kwh":
                line[j], rule[j] = 0.0, "zero_production"
            else:
                if not known.any():
                    raise DataError(
                        path,
                        None,
                        column,
                        f"participant '{names[i]}' has no {column} reading at all, so there is no mean to "
                        "estimate its gaps from; fix the meter feed or remove the participant",
                    )
                line[j], rule[j] = float(np.mean(line[known])), "mean_consumption"
        for j in np.flatnonzero(~known):
            original = originals[i, j]
            repairs.append(
                Repair(
                    participant=str(names[i]),
                    timestamp=timestamps[j],
                    column=column,
                    rule=str(rule[j]),
                    original="no row" if original is None else str(original),
                    value_kwh=float(line[j]),
                    row=int(rows[i, j]) if rows[i, j] >= 0 else None,
                )
            )
    return filled, repairs


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def _describe(span: pd.Timedelta) -> str:
    hours = span / pd.Timedelta(hours=1)
    return f"{hours / 24:g} day(s)" if hours >= 24 else f"{hours:g} hour(s)"


@dataclass(frozen=True)
class LateSplit:
    """A community cut at the chain's next interval.

    Attributes:
        pending: the intervals from ``next_interval`` on, which the oracle may settle.
        late: the intervals already settled on chain; readings here are reported, never
            applied, because settled intervals are final.
    """

    pending: Community
    late: Community

    def describe(self) -> str:
        if not len(self.late.timestamps):
            return "no readings for settled intervals"
        return (
            f"{len(self.late.timestamps)} interval(s) of readings from {self.late.timestamps[0].isoformat()} to "
            f"{self.late.timestamps[-1].isoformat()} are for intervals already settled on chain and are not "
            "applied (settled intervals are final; a correction needs a separate adjustment)"
        )


def split_late(community: Community, next_interval: int, market: MarketConfig) -> LateSplit:
    """Splits `community` into what may still be settled and what is late. Neither part is
    ever written to a settled interval; the caller reports the late part."""
    numbers = market.interval_index(community.timestamps)
    cut = int(np.searchsorted(numbers, next_interval))

    def part(columns: slice) -> Community:
        return Community(
            community.homes,
            community.timestamps[columns],
            community.consumption_kwh[:, columns],
            community.production_kwh[:, columns],
        )

    return LateSplit(pending=part(slice(cut, None)), late=part(slice(0, cut)))


def check_clock(
    interval_end: pd.Timestamp,
    chain_timestamp: pd.Timestamp,
    local_now: pd.Timestamp,
    tolerance_s: float,
) -> float:
    """Refuses to settle an interval that has not ended by both clocks; returns the skew
    (chain minus oracle, seconds) for the caller to log.

    Raises `InputError` naming the interval end and both clocks when the interval ends
    in the future by the oracle's clock, or more than `tolerance_s` in the future by the
    chain's clock (the oracle's clock runs ahead: its readings for the interval may not
    be complete, and the settlement would carry a time the chain has not reached).
    """
    end, chain, local = (_utc(t) for t in (interval_end, chain_timestamp, local_now))
    skew = (chain - local).total_seconds()
    clocks = f"interval end {end.isoformat()}, oracle clock {local.isoformat()}, chain clock {chain.isoformat()}"
    if end > local:
        raise InputError(f"refusing to settle an interval that has not ended: {clocks}")
    ahead = (end - chain).total_seconds()
    if ahead > tolerance_s:
        raise InputError(
            f"refusing to settle: the interval ends {ahead:.0f} s in the future by the chain's clock "
            f"(tolerance {tolerance_s:g} s); {clocks}. The oracle's clock is probably ahead: sync it (NTP) "
            "and run again; nothing was settled"
        )
    return skew


def _utc(moment: pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def committed_repairs(repairs: Sequence[Repair], community: Community, participant_ids: Sequence[int]) -> dict[int, list[dict]]:
    """The repairs as they go into each interval's committed inputs, keyed by the
    interval's column in `community`: integers and strings only (canonical JSON), sorted,
    with the value in Wh exactly as the inputs carry it."""
    row_of = {name: row for row, name in enumerate(community.names)}
    column_of = {stamp: j for j, stamp in enumerate(community.timestamps)}
    by_step: dict[int, list[dict]] = {}
    for repair in repairs:
        step = column_of[repair.timestamp]
        entry = {
            "participant": int(participant_ids[row_of[repair.participant]]),
            "column": _INPUT_COLUMNS.get(repair.column, repair.column),
            "rule": repair.rule,
            "original": repair.original,
        }
        if repair.value_kwh is not None:
            entry["value_wh"] = int(np.rint(repair.value_kwh * 1000))
        by_step.setdefault(step, []).append(entry)
    for entries in by_step.values():
        entries.sort(key=lambda r: (r["participant"], r["column"], r["rule"]))
    return by_step
