"""The deferrable jobs of homes a clearing leaves out: they run anyway.

A home left out of an interval (no mandate in force, or a wallet that cannot pay) is not
scheduled, but its appliances do not stop: a job that has started runs on, and a pending
job whose latest start has come starts now, as nobody is left to place it and its
window closes. Its draw is part of what the home's meter reads, so the settlement
declares it with the home's net energy, the next interval's inputs carry the job as
started, and the clearing takes its draw off the feeder like the rest of the home's
load. (Before, such a job was never placed and silently dropped at its deadline: the
washing never ran and its energy vanished from the run.)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from node.clearing.inputs import IntervalInputs, JobInputs
from optimizer.types import Jobs


def forced_starts(inputs: IntervalInputs, left_out: Iterable[int]) -> list[JobInputs]:
    """The pending jobs of `left_out` participants whose latest start is this interval."""
    out = set(int(p) for p in left_out)
    return [j for j in inputs.jobs
            if j.participant in out and j.started_interval is None and j.latest_interval <= inputs.interval]


def left_out_draw_wh(inputs: IntervalInputs, left_out: Iterable[int]) -> dict[int, int]:
    """Step 0's job draw, Wh, of each `left_out` participant: its started jobs' and its
    forced starts' (:func:`forced_starts`)."""
    out = set(int(p) for p in left_out)
    k = inputs.interval
    draw: dict[int, int] = {}
    for job in inputs.jobs:
        if job.participant not in out:
            continue
        start = job.started_interval
        if start is None and job.latest_interval <= k:
            start = k
        if start is not None and 0 <= k - start < len(job.energy_wh):
            draw[job.participant] = draw.get(job.participant, 0) + int(job.energy_wh[k - start])
    return draw


def left_out_draw_kwh(jobs: Jobs, left_out: np.ndarray, homes: int, horizon: int) -> np.ndarray:
    """(horizon,) the job draw of homes `left_out` (row indices) over the horizon, kWh:
    the optimiser's view of the same rule, on the clearing's relative steps."""
    out = np.zeros(horizon)
    if jobs.count == 0 or left_out.size == 0:
        return out
    rows = np.isin(jobs.home, left_out)
    out += jobs.running_kwh(homes, horizon)[left_out].sum(axis=0)
    length = jobs.energy_kwh.shape[1]
    for j in np.flatnonzero(rows & ~jobs.started & (jobs.latest <= 0)):
        n = min(length, horizon)
        out[:n] += jobs.energy_kwh[j, :n]
    return out
