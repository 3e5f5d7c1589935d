r"""Deferrable jobs as a mixed-integer programme: a prototype for the community clearing.

Jobs :math:`j`, each with candidate starts :math:`s \in S_j` (its signed window on the
interval grid) and for each start the energy it draws per step, :math:`P_{j,s,t}`.
The community's other net demand per step is data, :math:`b_t`. Choose one start per
job to minimise the community's grid cost::

    y[j,s] in {0, 1},   sum_s y[j,s] = 1                      one start per job
    G+[t] - G-[t] = b[t] + sum_{j,s} y[j,s] P[j,s,t]          community balance
    0 <= G+ <= import_cap,   0 <= G- <= export_cap
    minimise  sum_t buy[t] G+[t] - sell[t] G-[t]

MILP or LP: the relaxation (0 <= y <= 1) is a valid lower bound but not exact: a job
split between two starts is not a job (a washing machine runs once), and the relaxed
optimum splits whenever two starts tie or a capacity binds part-way. So the exact
programme is the MILP; `relaxation_gap` reports how far the LP bound lies below it. Its
size is sum_j |S_j| binaries (a 6-hour window at 15 minutes: 25 per job). Measured here
(2 cores, HiGHS): 300 jobs x 25 candidates (7,500 binaries) over 96 steps at one
community balance, the MILP and its relaxation together in 3.6 s, gap 0 on that case;
the 1,000-home target (400 jobs inside the battery LP) is phase 2's to measure.

In the community clearing (phase 2) jobs are a device, ``optimizer.devices.JobFleet``:
the same ``y`` per candidate start within the window, solved as the LP relaxation with
step 0 made whole and the LP solved again (the rest of the plan is re-planned next
interval); ``bench/bench_devices.py --gap`` compares it with the MILP. A column per
horizon step with the window in the bounds (a matrix built once) solved 5x slower than
battery-only at 300 homes, so the columns are the window's candidates and the model is
built per interval while jobs are pending. A job is committed once its first interval
is settled (``node.clearing.interval.CarriedState.job_starts``). This module stays as
the standalone MILP the tests compare a brute force with.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from node.errors import SolverError


@dataclass(frozen=True)
class JobOptions:
    """A job's candidate starts: ``energy_kwh[s, t]`` is what starting at candidate ``s``
    draws in step ``t`` of the horizon."""

    name: str
    energy_kwh: np.ndarray


@dataclass(frozen=True)
class JobPlan:
    starts: tuple[int, ...]  # the chosen candidate of each job
    cost: float
    relaxation_cost: float  # the LP bound

    @property
    def relaxation_gap(self) -> float:
        return self.cost - self.relaxation_cost


def place_jobs(base_kwh: np.ndarray, jobs: list[JobOptions], buy: np.ndarray, sell: np.ndarray,
               import_cap_kwh: np.ndarray, export_cap_kwh: np.ndarray) -> JobPlan:
    """The cost-minimal start of every job (MILP, HiGHS), and the LP relaxation's cost."""
    exact, starts = _solve(base_kwh, jobs, buy, sell, import_cap_kwh, export_cap_kwh, integer=True)
    relaxed, _ = _solve(base_kwh, jobs, buy, sell, import_cap_kwh, export_cap_kwh, integer=False)
    return JobPlan(starts, exact, relaxed)


def _solve(base, jobs, buy, sell, import_cap, export_cap, integer: bool) -> tuple[float, tuple[int, ...]]:
    # One vector of all candidates (vectorised, so building the problem does not grow with
    # a Python loop per job): load = P^T y, and a selector E sums each job's candidates.
    steps = len(base)
    profiles = sp.vstack([sp.csr_matrix(j.energy_kwh) for j in jobs]).T.tocsr()  # (T, candidates)
    sizes = [len(j.energy_kwh) for j in jobs]
    owner = np.repeat(np.arange(len(jobs)), sizes)
    selector = sp.csr_matrix((np.ones(len(owner)), (owner, np.arange(len(owner)))), shape=(len(jobs), len(owner)))
    y = cp.Variable(len(owner), boolean=integer, nonneg=not integer)
    grid_in, grid_out = cp.Variable(steps, nonneg=True), cp.Variable(steps, nonneg=True)
    constraints = [grid_in - grid_out == base + profiles @ y, grid_in <= import_cap, grid_out <= export_cap,
                   selector @ y == 1]
    if not integer:
        constraints.append(y <= 1)
    problem = cp.Problem(cp.Minimize(buy @ grid_in - sell @ grid_out), constraints)
    problem.solve(solver=cp.HIGHS)
    if problem.status != cp.OPTIMAL:
        raise SolverError(f"job placement: {problem.status} (a capacity no placement fits?)")
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    return float(problem.value), tuple(int(np.argmax(y.value[a:b])) for a, b in zip(offsets[:-1], offsets[1:]))
