"""Deferrable jobs placed in time: greedily by each home's agent, or at their earliest
start; and PySSMic's KPI, the share of job energy served by local PV.

A job may move only within the window its participant signed (node.intent.jobs),
intersected with the window the jobs file asks for; a job without a valid signed
window (none, another energy, or no overlap) runs at its earliest start.

Greedy placement (agent side, for the auction path; the optimiser's exact placement is
phase 2): jobs in registration order, each at the candidate start with the lowest cost
to its home, where energy covered by the home's own remaining PV surplus costs the
feed-in tariff (the export it displaces) and the rest the import tariff. Candidates are
the window's earliest start and every interval start after it up to the latest start,
keeping the whole run inside the data; ties go to the earliest. Each placed job uses up
the surplus it covers, so the next job sees what is left.

KPI: each interval's job energy counts as local in the proportion the neighbourhood's
PV covered its consumption that interval (jobs included; batteries not counted), which
is PySSMic's local-versus-remote split of the neighbourhood's contracts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from node.data.community import Community
from node.data.config import CommunityConfig
from node.data.jobs import Job
from node.intent.jobs import SignedJobWindow
from node.metrics.kpis import job_local_pv_share


@dataclass(frozen=True)
class Placement:
    job: Job
    start: int  # unix seconds
    window: tuple[int, int]  # where it could start: the signed window within the file's
    flexible_because: str  # why it may move, or why it may not


@dataclass(frozen=True)
class Schedule:
    placements: tuple[Placement, ...]
    energy_kwh: np.ndarray  # (homes, intervals) job energy inside the data
    outside_data_kwh: float  # job energy that falls before or after the data

    def added_to(self, community: Community) -> Community:
        """The community with the jobs' energy in its consumption."""
        return Community(community.homes, community.timestamps, community.consumption_kwh + self.energy_kwh,
                         community.production_kwh)


def windows(jobs: Sequence[Job], signed: Mapping[tuple[int, int], SignedJobWindow], ids: Mapping[str, int]) -> dict[str, tuple[tuple[int, int], str]]:
    """Each job's start window (by job key) and the reason it has that window."""
    found = {}
    for job in jobs:
        fixed = (job.earliest, job.earliest)
        window = signed.get((ids[job.participant], job.job_id))
        if window is None:
            found[job.key] = (fixed, "no signed window: runs at its earliest start")
            continue
        w = window.job_window
        low, high = max(job.earliest, w.earliest), min(job.latest_start, w.latest_start)
        if w.energy_wh != job.energy_wh:
            found[job.key] = (fixed, f"its signed window is for {w.energy_wh} Wh, the job uses {job.energy_wh} Wh")
        elif low > high:
            found[job.key] = (fixed, "its signed window does not meet the file's window")
        else:
            found[job.key] = ((low, high), "signed window")
    return found


def schedule_jobs(community: Community, jobs: Sequence[Job], allowed: Mapping[str, tuple[tuple[int, int], str]],
                  config: CommunityConfig, greedy: bool) -> Schedule:
    """Places every job (greedily, or at the start of its window when not `greedy`)."""
    starts = community.timestamps.as_unit("s").asi8.astype(np.int64)
    length = int(config.market.interval.total_seconds())
    end = int(starts[-1]) + length
    row = {name: i for i, name in enumerate(community.names)}
    surplus = np.clip(community.production_kwh - community.consumption_kwh, 0, None)
    buy, sell = config.tariffs.buy_price(community.timestamps), config.tariffs.sell_price(community.timestamps)
    energy = np.zeros(community.consumption_kwh.shape)
    placements, lost = [], 0.0
    for job in sorted(jobs, key=lambda j: (j.registered, j.earliest, j.line)):
        (low, high), reason = allowed[job.key]
        i = row[job.participant]
        candidates = [low] + [int(s) for s in starts if low < s <= high]
        fitting = [s for s in candidates if s >= starts[0] and s + job.profile.duration_s <= end]
        if greedy and fitting:
            start = min(fitting, key=lambda s: (_cost(job, s, starts, length, surplus[i], buy, sell), s))
        else:
            start = low
        steps, used = _used(job, start, starts, length)
        lost += job.profile.energy_wh / 1000 - float(used.sum())
        energy[i, steps] += used
        surplus[i, steps] = np.clip(surplus[i, steps] - used, 0, None)
        placements.append(Placement(job, int(start), (low, high), reason))
    return Schedule(tuple(placements), energy, lost)


def _used(job: Job, start: int, starts: np.ndarray, length: int) -> tuple[slice, np.ndarray]:
    """The intervals a run starting at `start` touches, and its kWh in each."""
    first = max(int(np.searchsorted(starts, start, side="right")) - 1, 0)
    last = int(np.searchsorted(starts, start + job.profile.duration_s, side="left"))
    steps = slice(first, max(last, first + 1))
    return steps, job.profile.per_interval(start, starts[steps], length) / 1000


def _cost(job: Job, start: int, starts: np.ndarray, length: int, surplus: np.ndarray, buy: np.ndarray, sell: np.ndarray) -> float:
    steps, used = _used(job, start, starts, length)
    own = np.minimum(used, surplus[steps])
    return float((own * sell[steps] + (used - own) * buy[steps]).sum())


def local_pv_share(community: Community, schedule: Schedule) -> float:
    """PySSMic's KPI for `schedule` on `community` (whose consumption has no jobs yet);
    0 without job energy."""
    share = job_local_pv_share(schedule.energy_kwh, community.consumption_kwh, community.production_kwh)
    return 0.0 if np.isnan(share) else share
