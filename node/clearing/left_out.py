"""What the homes a clearing leaves out still do: their jobs and HVACs run anyway.

A home left out of an interval (no mandate in force, or a wallet that cannot pay) is not
scheduled, but its appliances do not stop:

* a deferrable job that has started runs on, and a pending one whose latest start has
  come starts now, as nobody is left to place it and its window closes;
* an HVAC runs as a plain thermostat does: at full power for the whole interval when the
  indoor temperature is on the needy side of the middle of its comfort band (above it
  for cooling, below it for heating), else not at all.

Their draw is part of what the home's meter reads, so the settlement declares it with
the home's net energy, the next interval's inputs carry the job as started and the
indoor temperature the thermostat left, and the clearing of the others takes the draw
off the feeder like the rest of the home's load. (Before, such a job was dropped at its
deadline, and such an HVAC neither ran nor warmed up: their energy vanished from the run.)
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from node.clearing.inputs import HvacInputs, IntervalInputs, JobInputs
from optimizer.types import Jobs, Thermal

# Below this a home is at the middle of its band, where the thermostat stays off (the
# integer and float forms of the rule must agree at a tie: a home starts at its setpoint).
_TIE_C = 1e-9


def forced_starts(inputs: IntervalInputs, left_out: Iterable[int]) -> list[JobInputs]:
    """The pending jobs of `left_out` participants whose latest start is this interval."""
    out = {int(p) for p in left_out}
    return [j for j in inputs.jobs
            if j.participant in out and j.started_interval is None and j.latest_interval <= inputs.interval]


def thermostat_on(hvac: HvacInputs) -> bool:
    """Whether a left-out home's HVAC runs this interval (integers, as committed)."""
    need = 2 * hvac.indoor_mc - hvac.comfort_low_mc - hvac.comfort_high_mc
    return (need if hvac.mode == "cool" else -need) > 0


def left_out_draw_wh(inputs: IntervalInputs, left_out: Iterable[int]) -> dict[int, int]:
    """Step 0's draw, Wh, of each `left_out` participant's jobs (started ones and forced
    starts, :func:`forced_starts`) and HVAC (:func:`thermostat_on`)."""
    out = {int(p) for p in left_out}
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
    for hvac in inputs.hvacs:
        if hvac.participant in out and thermostat_on(hvac):
            draw[hvac.participant] = draw.get(hvac.participant, 0) + hvac.max_wh
    return draw


def left_out_indoor_mc(inputs: IntervalInputs, left_out: Iterable[int]) -> dict[int, int]:
    """The indoor temperature, milli-degrees C, that each left-out home's thermostat
    leaves at the end of the interval (the optimiser's model, optimizer.types.Thermal)."""
    out = {int(p) for p in left_out}
    hvacs = [h for h in inputs.hvacs if h.participant in out]
    if not hvacs:
        return {}
    th = inputs.clearing_thermal({h.participant: i for i, h in enumerate(inputs.hvacs)})
    rows = np.array([i for i, h in enumerate(inputs.hvacs) if h.participant in out], dtype=int)
    power = np.array([h.max_wh / 1000 if thermostat_on(h) else 0.0 for h in hvacs])
    after = th.decay[rows] * th.indoor_c[rows] + (1 - th.decay[rows]) * th.outdoor_c[rows, 0] + th.gain_k_per_kwh[rows] * power
    return {h.participant: int(round(t * 1000)) for h, t in zip(hvacs, after)}


def left_out_draw_kwh(jobs: Jobs, thermal: Thermal, left_out: np.ndarray, homes: int, horizon: int) -> np.ndarray:
    """(horizon,) the draw of homes `left_out` (row indices) over the horizon, kWh: the
    same rules on the clearing's relative steps, the thermostat run forward in time."""
    out = np.zeros(horizon)
    if left_out.size == 0:
        return out
    if jobs.count:
        out += jobs.running_kwh(homes, horizon)[left_out].sum(axis=0)
        n = min(jobs.energy_kwh.shape[1], horizon)
        for j in np.flatnonzero(np.isin(jobs.home, left_out) & ~jobs.started & (jobs.latest <= 0)):
            out[:n] += jobs.energy_kwh[j, :n]
    rows = np.flatnonzero(np.isin(thermal.home, left_out))
    if rows.size:
        a, gain, sign = thermal.decay[rows], thermal.gain_k_per_kwh[rows], thermal.sign[rows]
        middle = (thermal.comfort_low_c[rows] + thermal.comfort_high_c[rows]) / 2
        indoor = thermal.indoor_c[rows].copy()
        for t in range(horizon):
            power = np.where(-sign * (indoor - middle) > _TIE_C, thermal.max_kwh[rows], 0.0)
            out[t] += power.sum()
            indoor = a * indoor + (1 - a) * thermal.outdoor_c[rows, t] + gain * power
    return out
