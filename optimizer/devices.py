"""Flexible devices of the community LP: their own columns and rows, and their net consumption.

A device in the spirit of cvxpower: it owns its variables and internal constraints,
and exposes one thing to the network, its net consumption per step (its *terminal*),
which the community model adds to its home's buy-side epigraph and to the balance row
of the home's bus. The model never looks inside. Deferrable jobs (:class:`JobFleet`)
and air conditioners or heat pumps (:class:`ThermalFleet`) are devices of the same
shape: columns, rows, ``add_net_consumption``, per-interval ``fill`` and step-0 results;
a home with any device gets its own rows in the community LP. (A community battery
would be a battery whose terminal is a bus without a home: not built yet.)
"""

from __future__ import annotations

import numpy as np

from optimizer.allocation import snap
from optimizer.lp import LinearProgram, LPData, LPSolution
from optimizer.types import Batteries, Jobs, Thermal


class BatteryFleet:
    r"""Batteries with charge ``c``, state of charge ``s`` and implicit discharge.

    Per battery ``b`` and step ``t``::

        c[b,t] ∈ [0, c̄_b],  s[b,t] ∈ [s_min_b, cap_b]     (state after step t; s[b,-1] = soc0)
        d[b,t] = η_d (s[b,t-1] - s[b,t] + η_c c[b,t]) ∈ [0, d̄_b]
        net consumption  c - d

    Discharge is not a variable: the dynamics define it, which removes ``B T``
    columns and equalities without changing the feasible set. The data part of
    ``d`` at ``t = 0``, ``η_d soc0``, moves into row bounds (:meth:`fill`).
    """

    def __init__(self, specs: Batteries, horizon: int) -> None:
        self.specs = specs
        self.horizon = horizon

    def build(self, lp: LinearProgram) -> None:
        B, T = self.specs.count, self.horizon
        eta_c, eta_d = self._eta()
        self.charge = lp.columns("charge", (B, T))
        self.soc = lp.columns("soc", (B, T))
        discharge = lp.rows("discharge", (B, T))
        lp.add(discharge, self.charge, eta_d * eta_c)
        lp.add(discharge, self.soc, -eta_d)
        lp.add(discharge[:, 1:], self.soc[:, :-1], eta_d)

    def add_net_consumption(self, lp: LinearProgram, rows: np.ndarray, sign: float) -> None:
        """Add ``sign * (c - d)`` of battery ``b`` at step ``t`` into ``rows[b, t]``."""
        eta_c, eta_d = self._eta()
        lp.add(rows, self.charge, sign * (1.0 - eta_d * eta_c))
        lp.add(rows, self.soc, sign * eta_d)
        lp.add(rows[:, 1:], self.soc[:, :-1], -sign * eta_d)

    def initial_discharge(self, soc0: np.ndarray) -> np.ndarray:
        """The data part of ``d`` (B, T): ``η_d soc0`` at t = 0; subtract it where ``c - d`` is used."""
        d0 = np.zeros((self.specs.count, self.horizon))
        d0[:, 0] = self.specs.discharge_efficiency * soc0
        return d0

    def fill(self, data: LPData, soc0: np.ndarray, stored_value_per_kwh: float) -> None:
        """Bounds of one interval; energy left at the end is worth ``stored_value_per_kwh`` x η_d."""
        spec = self.specs
        terminal = np.zeros((spec.count, self.horizon))
        terminal[:, -1] = -stored_value_per_kwh * spec.discharge_efficiency
        d0 = self.initial_discharge(soc0)
        cost = 0.0 if spec.charge_cost_per_kwh is None else spec.charge_cost_per_kwh[:, None]
        data.set_columns("charge", lo=0.0, hi=spec.max_charge_kwh[:, None], cost=cost)
        data.set_columns("soc", lo=spec.min_soc_kwh[:, None], hi=spec.capacity_kwh[:, None], cost=terminal)
        data.set_rows("discharge", lo=-d0, hi=spec.max_discharge_kwh[:, None] - d0)

    def flows(self, solution: LPSolution, soc0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Charge and discharge (B, T) of a solution, interior-point residue snapped to zero."""
        eta_c, eta_d = self._eta()
        charge = solution.value("charge")
        soc = solution.value("soc")
        previous = np.concatenate([soc0[:, None], soc[:, :-1]], axis=1)
        return snap(charge), snap(eta_d * (previous - soc + eta_c * charge))

    def _eta(self) -> tuple[np.ndarray, np.ndarray]:
        return self.specs.charge_efficiency[:, None], self.specs.discharge_efficiency[:, None]


class JobFleet:
    r"""Deferrable jobs: which step each pending job starts at.

    Per pending job ``j`` and candidate start ``k`` (a step of the horizon within the
    job's signed window), ``y[j,k] ∈ [0, 1]``::

        Σ_k y[j,k] + r[j] = 1                 one start, or the job is dropped
        net consumption at step t   Σ_k y[j,k] P[j, t-k]     (P: the job's draw per step since its start)
        r[j] ≥ 0  at cost VoLL x the job's energy             dropping it is a last resort

    ``r`` keeps the clearing always feasible: a feeder that cannot carry a job by its
    deadline drops the job (priced like shed load) rather than make the clearing fail.
    Only jobs whose latest start lies within the horizon are placed: one with a later
    deadline waits until its deadline comes into the horizon (with a 96-step horizon,
    a day ahead). A started job's draw is data (:meth:`optimizer.types.Jobs.running_kwh`);
    a pending job whose window has passed was dropped.

    Columns exist only for candidates in a window, so the matrix depends on the
    interval's windows: the model is built per interval while jobs are pending (the
    alternative, a column for every step of the horizon with the window in the bounds,
    built once, made the 300-home LP 5x slower to solve than battery-only, against 2x
    now; assembly and set-up cost far less than that. A draw column per job and step,
    defined by its own row, did not solve faster than the draw entered directly).

    This is the LP relaxation; a job split between starts is not a job, so the clearing
    makes step 0 integral (:meth:`round_step0`): a job starts now or it does not, and only
    the plan beyond step 0 may stay fractional. It is re-planned next interval anyway.
    """

    def __init__(self, jobs: Jobs, horizon: int) -> None:
        self.specs = jobs
        self.horizon = horizon
        self.job, self.step = np.nonzero(self.allowed(jobs))  # the candidates
        self._now = np.flatnonzero(self.step == 0)  # candidates that start in step 0

    def build(self, lp: LinearProgram) -> None:
        self.start = lp.columns("job_start", self.job.size)
        skip = lp.columns("job_skip", self.specs.count)
        choice = lp.rows("job_choice", self.specs.count, equality=True)
        lp.add(choice[self.job], self.start, 1.0)
        lp.add(choice, skip, 1.0)

    def _draw_entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(job, step, candidate, kWh) of every nonzero draw of a candidate start."""
        energy = self.specs.energy_kwh
        c, lag = np.meshgrid(np.arange(self.job.size), np.arange(energy.shape[1]), indexing="ij")
        t = self.step[c] + lag
        keep = (t < self.horizon) & (energy[self.job[c], lag] != 0)
        c, lag, t = c[keep], lag[keep], t[keep]
        return self.job[c], t, c, energy[self.job[c], lag]

    def add_net_consumption(self, lp: LinearProgram, rows: np.ndarray, sign: float) -> None:
        """Add ``sign`` x job ``j``'s draw at step ``t`` into ``rows[j, t]`` (``sign``: a
        number, or one per job as (J, 1), as the network's line rows need)."""
        j, t, c, coef = self._draw_entries()
        per_job = np.broadcast_to(np.asarray(sign, dtype=float), (self.specs.count, 1))[:, 0]
        lp.add(rows[j, t], self.start[c], per_job[j] * coef)

    def allowed(self, jobs: Jobs) -> np.ndarray:
        """(J, T) the candidate starts: steps within the window of a job that must start."""
        steps = np.arange(self.horizon)[None, :]
        pending = self.must_start(jobs)[:, None]
        return pending & (steps >= jobs.earliest[:, None]) & (steps <= jobs.latest[:, None])

    def must_start(self, jobs: Jobs) -> np.ndarray:
        """(J,) pending jobs whose latest start is within the horizon (and not passed)."""
        return ~jobs.started & (jobs.latest <= self.horizon - 1) & (jobs.latest >= 0)

    def fill(self, data: LPData, voll: float, step0: np.ndarray | None = None) -> None:
        """Bounds of the interval; ``step0`` (J,) fixes each job's start-now to 0 or 1."""
        lo, hi = np.zeros(self.job.size), np.ones(self.job.size)
        if step0 is not None:
            lo[self._now] = hi[self._now] = step0[self.job[self._now]]
        data.set_columns("job_start", lo=lo, hi=hi)
        must = self.must_start(self.specs).astype(float)
        data.set_columns("job_skip", lo=0.0, hi=must, cost=voll * self.specs.energy_kwh.sum(axis=1))
        data.set_rows("job_choice", lo=must, hi=must)

    def round_step0(self, now: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
        """Whole starts-now (J,) 0/1 from the relaxation's ``now``, and which were split.

        Jobs within ``tol`` of 0 or 1 keep their side. The split ones start in order of
        their ``now`` (ties: lower index) while the energy they draw in step 0 stays
        nearest to the relaxation's: two jobs sharing one kWh of sun half and half become
        one whole job, not none and not both.
        """
        starts = np.where(now > 1 - tol, 1.0, 0.0)
        split = (now > tol) & (now < 1 - tol)
        first = self.specs.energy_kwh[:, 0]
        target = float(np.dot(now[split], first[split]))
        drawn = 0.0
        for j in sorted(np.flatnonzero(split), key=lambda j: (-now[j], j)):
            if drawn + first[j] / 2 <= target + tol:
                starts[j] = 1.0
                drawn += first[j]
        return starts, split

    def starts_now(self, solution: LPSolution) -> np.ndarray:
        """(J,) how much of each job the solution starts in step 0 (0 or 1 once fixed)."""
        now = np.zeros(self.specs.count)
        now[self.job[self._now]] = solution.value("job_start")[self._now]
        return now

    def step0_kwh(self, starts_now: np.ndarray, homes: int) -> np.ndarray:
        """(N,) the draw in step 0 of the jobs started now and of the running ones."""
        jobs = self.specs
        running = jobs.running_kwh(homes, 1)[:, 0]
        return running + np.bincount(jobs.home, starts_now * jobs.energy_kwh[:, 0], homes)


class ThermalFleet:
    r"""Air conditioners and heat pumps: electric energy ``p`` and indoor temperature ``θ``.

    Per HVAC ``h`` and step ``t`` (:class:`optimizer.types.Thermal`)::

        p[h,t] ∈ [0, p̄_h]                                     electric energy, kWh
        θ[h,t] - a_h θ[h,t-1] - g_h p[h,t] = (1 - a_h) T_out[h,t]   (θ[h,-1] = indoor now, data)
        low_h ≤ θ[h,t] + cold[h,t] - warm[h,t] ≤ high_h              comfort, softened
        cold, warm ≥ 0 at VoLL x p̄_h per kelvin and step              (last resort)
        net consumption  p

    The soft band keeps the clearing feasible when a home starts outside its band or the
    unit is too small for the weather; leaving the band by one kelvin for a step costs
    what shedding the unit's full step would. One range row per step, not a row per side:
    both slacks are never positive at an optimum, so the costs are the same, and the LP
    with 100 HVACs among 1,000 homes re-solves 4 % faster (bench_devices.py).
    Temperatures are in the dynamics' row bounds, so the matrix (a, g: the unit's R, C,
    COP, mode) is built once per fleet.
    """

    def __init__(self, thermal: Thermal, horizon: int) -> None:
        self.specs = thermal
        self.horizon = horizon

    def build(self, lp: LinearProgram) -> None:
        H, T = self.specs.count, self.horizon
        self.power = lp.columns("hvac_power", (H, T))
        self.indoor = lp.columns("hvac_indoor", (H, T))
        cold, warm = lp.columns("hvac_too_cold", (H, T)), lp.columns("hvac_too_warm", (H, T))
        dynamics = lp.rows("hvac_dynamics", (H, T), equality=True)
        lp.add(dynamics, self.indoor, 1.0)
        lp.add(dynamics[:, 1:], self.indoor[:, :-1], -self.specs.decay[:, None])
        lp.add(dynamics, self.power, -self.specs.gain_k_per_kwh[:, None])
        band = lp.rows("hvac_comfort", (H, T))
        lp.add(band, self.indoor, 1.0)
        lp.add(band, cold, 1.0)
        lp.add(band, warm, -1.0)

    def add_net_consumption(self, lp: LinearProgram, rows: np.ndarray, sign: float) -> None:
        """Add ``sign * p`` of HVAC ``h`` at step ``t`` into ``rows[h, t]``."""
        lp.add(rows, self.power, sign)

    def fill(self, data: LPData, thermal: Thermal, voll: float) -> None:
        """Bounds of one interval: indoor temperature now, outdoor one, comfort band."""
        a = thermal.decay[:, None]
        rhs = (1 - a) * thermal.outdoor_c
        rhs[:, 0] += a[:, 0] * thermal.indoor_c
        data.set_columns("hvac_power", lo=0.0, hi=thermal.max_kwh[:, None])
        data.set_columns("hvac_indoor", lo=-np.inf, hi=np.inf)
        penalty = voll * np.maximum(thermal.max_kwh, 1e-3)[:, None]
        data.set_columns("hvac_too_cold", lo=0.0, hi=np.inf, cost=penalty)
        data.set_columns("hvac_too_warm", lo=0.0, hi=np.inf, cost=penalty)
        data.set_rows("hvac_dynamics", lo=rhs, hi=rhs)
        data.set_rows("hvac_comfort", lo=thermal.comfort_low_c[:, None], hi=thermal.comfort_high_c[:, None])

    def step0(self, solution: LPSolution, t: Thermal, homes: int) -> tuple[np.ndarray, np.ndarray]:
        """(N,) the HVACs' electric energy in step 0, and (H,) the indoor temperature after it
        (from the reported energy, so the two agree)."""
        power = snap(solution.value("hvac_power")[:, 0])
        indoor = t.decay * t.indoor_c + (1 - t.decay) * t.outdoor_c[:, 0] + t.gain_k_per_kwh * power
        return np.bincount(t.home, power, homes), indoor
