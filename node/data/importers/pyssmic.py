"""PySSMic (CoSSMic) neighbourhoods: houses, devices, load profiles, PV predictions, jobs.

A neighbourhood is a folder::

    consumer_event.csv   jobs, ';'-separated: registered; earliest start; latest start;
                         [house]:[device]:[id]; load-profile file (node.data.jobs)
    producer_event.csv   PV predictions as they arrive, ';'-separated: unix time;
                         pv_producer[house]:[panel]; prediction file
    loads/               load profiles: seconds since start, cumulative Wh
    predictions/         PV predictions: unix time, cumulative Wh produced that day

House N becomes participant ``house-N``. A job whose latest start is less than one
market interval after its earliest (PySSMic's background loads, which start when they
are registered) is inflexible: its profile, placed at its earliest start, is the house's
consumption. Every other job is deferrable and goes to ``jobs.csv`` (same layout,
``house-N`` for the house) with its profile in ``loads/``. A panel produces, over each
stretch of time, what the latest prediction issued before that stretch says (linear
between a prediction's samples); a house's production is the sum of its panels. The
data covers the whole UTC days from the first event to the last; ``pv_kwp`` is the peak
production seen, as for a dataset without that column.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from node.data.community import Community, Home, peak_kwp
from node.data.importers.common import Imported
from node.data.jobs import Job, find_profile, load_jobs, load_profile
from node.errors import DataError

_PRODUCER = re.compile(r"^(?:pv_producer)?\[?([^\]\[:]+)\]?:\[?([^\]\[:]+)\]?$")
_DAY = 86_400


def import_pyssmic(folder: str | Path, interval_minutes: int, timezone: str = "Europe/Oslo") -> Imported:
    folder = Path(folder)
    consumers, producers = folder / "consumer_event.csv", folder / "producer_event.csv"
    if not consumers.is_file():
        raise DataError(str(consumers), None, None, "not found: a PySSMic neighbourhood has consumer_event.csv")
    houses = sorted({_house(line) for line in _lines(consumers)} | {h for _, h, _, _ in _producer_events(producers)},
                    key=lambda h: (len(h), h))
    names = [f"house-{h}" for h in houses]
    jobs = load_jobs(consumers, names)
    predictions = _predictions(folder, producers)
    times = [j.earliest for j in jobs] + [j.latest_start + int(j.profile.duration_s) for j in jobs]
    times += [int(t[0]) for events in predictions.values() for t, _, _ in events]
    times += [int(t[-1]) for events in predictions.values() for t, _, _ in events]
    first, last = min(times) // _DAY * _DAY, -(-max(times) // _DAY) * _DAY
    length = interval_minutes * 60
    starts = np.arange(first, last, length, dtype=np.int64)
    consumption = np.zeros((len(names), len(starts)))
    production = np.zeros_like(consumption)
    row = {name: i for i, name in enumerate(names)}
    deferrable: list[Job] = []
    for job in jobs:
        if job.latest_start - job.earliest < length:
            consumption[row[job.participant]] += job.profile.per_interval(job.earliest, starts, length) / 1000
        else:
            deferrable.append(job)
    for (house, _panel), events in predictions.items():
        production[row[f"house-{house}"]] += _produced(events, starts, length) / 1000
    kwp = peak_kwp(production, interval_minutes / 60)
    homes = tuple(Home(name, 0, float(k), False) for name, k in zip(names, kwp))
    timestamps = pd.DatetimeIndex(pd.to_datetime(starts, unit="s", utc=True))
    community = Community(homes, timestamps, consumption, production)
    lines = tuple(f"{j.registered};{j.earliest};{j.latest_start};{j.participant}:{j.device};{j.profile.name}"
                  for j in deferrable)
    profiles = {j.profile.name: find_profile(consumers, j.profile.name) for j in deferrable}
    notes = (f"{len(names)} houses, {len(starts) * interval_minutes // 1440} day(s) from "
             f"{timestamps[0]:%Y-%m-%d}; {len(jobs) - len(deferrable)} background loads in the consumption, "
             f"{len(deferrable)} deferrable jobs in jobs.csv; {len(predictions)} PV panels",)
    return Imported(community, timezone, notes, lines, profiles)


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]


def _house(line: str) -> str:
    cells = line.split(";")
    return cells[3].split(":")[0].strip().strip("[]") if len(cells) > 3 else ""


def _producer_events(path: Path) -> list[tuple[int, str, str, str]]:
    """(time, house, panel, prediction file) per line of producer_event.csv, if it exists."""
    if not path.is_file():
        return []
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(";")]
        match = _PRODUCER.match(cells[1]) if len(cells) == 3 else None
        if match is None or not cells[0].isdigit():
            raise DataError(str(path), number, None, f"{line!r} is not 'unix time;pv_producer[house]:[panel];file'")
        events.append((int(cells[0]), match.group(1), match.group(2), cells[2]))
    return events


def _predictions(folder: Path, producers: Path) -> dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray, int]]]:
    """Per panel, its predictions in issue order: (sample times, cumulative Wh, issued at)."""
    panels: dict[tuple[str, str], list] = {}
    for issued, house, panel, name in sorted(_producer_events(producers)):
        path = folder / "predictions" / name
        if not path.is_file():
            raise DataError(str(producers), None, None, f"prediction file {name!r} not found in predictions/")
        profile = load_profile(path, from_zero=False)  # two columns: a unix time and a cumulative Wh
        panels.setdefault((house, panel), []).append((profile.seconds, profile.cumulative_wh, issued))
    return {key: [(np.asarray(t), np.asarray(wh), at) for t, wh, at in value] for key, value in panels.items()}


def _produced(events: list, starts: np.ndarray, length: int) -> np.ndarray:
    """Wh a panel produces in each interval, from the latest prediction issued by its start."""
    issued = np.array([at for _, _, at in events])
    which = np.clip(np.searchsorted(issued, starts, side="right") - 1, 0, len(events) - 1)
    energy = np.zeros(len(starts))
    for k, (times, wh, _) in enumerate(events):
        mine = which == k
        cumulative = lambda t: np.interp(t, times, wh, left=wh[0], right=wh[-1])  # noqa: E731
        energy[mine] = cumulative(starts[mine] + length) - cumulative(starts[mine])
    return np.clip(energy, 0, None)
