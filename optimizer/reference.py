r"""The naive per-home community LP: the reference the clearing must match exactly.

Every home gets its own grid, P2P, curtailment and shedding variables; every
battery its own charge, discharge and state of charge. Small and readable, and
slow: it exists to check :mod:`optimizer.community` (tests, ``bench_clearing``),
never to clear a market. Same data, same costs::

    minimise  Σ_t Σ_i  buy g⁺ - sell g⁻ + p2p_cost b + VoLL z + ε k   -  Σ_b v_b soc[b,T]
    s.t.      load - pv + k - z + Σ_{h(b)=i} (c - d) == g⁺ - g⁻ + b - q   per home and step
              Σ_i b == Σ_i q                                            P2P bought == sold
              Σ_i g⁺ ≤ import_cap - margin,  Σ_i g⁻ ≤ export_cap - margin
              0 ≤ k ≤ pv,  0 ≤ z ≤ load,  g⁺, g⁻, b, q ≥ 0
              soc[b,t+1] == soc[b,t] + η_c c - d / η_d,  soc[b,0] = soc0
              min_soc ≤ soc ≤ capacity,  0 ≤ c ≤ c̄,  0 ≤ d ≤ d̄

Deferrable jobs (``inputs.jobs``) add their draw to their home's load: a started job's
as data, a pending one's as ``Σ_k y[j,k] P[j,t-k]`` with one start ``y`` per job in its
window (``optimizer.devices.JobFleet``); ``integer_jobs`` makes ``y`` binary (the MILP),
otherwise it is the LP relaxation the clearing solves. HVACs (``inputs.thermal``) add
their electric energy, with their first-order thermal dynamics and soft comfort band
(``optimizer.devices.ThermalFleet``).

With a network (``inputs.network``) the grid meets the community at zones: per zone
``G⁺_z ∈ [0, grid_import_z]``, ``G⁻_z ∈ [0, grid_export_z]`` with ``Σ_i g⁺ == Σ_z G⁺``
and ``Σ_i g⁻ == Σ_z G⁻``; each zone's injection ``G⁺_z - G⁻_z - Σ_{i∈z} position_i``
flows over the lines as ``PTDF @ injection`` (computed here from the susceptances
directly, not through the community model's angles), within each line's two limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from optimizer.community import CURTAIL_COST_PER_KWH, VOLL_FACTOR, VOLL_FLOOR_PER_KWH
from optimizer.devices import JobFleet
from optimizer.types import ClearingInputs


@dataclass(frozen=True)
class ReferenceSolution:
    """Optimal value and per-home, per-step flows (N, T) and battery flows (B, T)."""

    objective: float
    grid_import: np.ndarray
    grid_export: np.ndarray
    p2p_buy: np.ndarray
    p2p_sell: np.ndarray
    curtailed: np.ndarray
    shed: np.ndarray
    charge: np.ndarray
    discharge: np.ndarray
    soc: np.ndarray  # (B, T + 1)
    job_start: np.ndarray | None = None  # (J, T) y of the jobs, when there are any


class ReferenceLP:
    """The naive LP of ``inputs``, optionally with some step-0 flows fixed."""

    def __init__(self, inputs: ClearingInputs, capacity_margin_kwh: float = 0.0, integer_jobs: bool = False) -> None:
        N, T = inputs.load_kwh.shape
        b = inputs.batteries
        B = b.count
        jobs = JobFleet(inputs.jobs, T)
        load, pv = inputs.load_kwh + inputs.jobs.running_kwh(N, T), inputs.pv_kwh
        buy, sell = inputs.buy_price_per_kwh, inputs.sell_price_per_kwh
        p2p = float(inputs.p2p_cost_per_kwh)
        voll = VOLL_FACTOR * max(np.abs(buy).max(), np.abs(sell).max(), p2p, VOLL_FLOOR_PER_KWH)

        self.g_imp = cp.Variable((N, T), nonneg=True)
        self.g_exp = cp.Variable((N, T), nonneg=True)
        self.p2p_buy = cp.Variable((N, T), nonneg=True)
        self.p2p_sell = cp.Variable((N, T), nonneg=True)
        self.curtail = cp.Variable((N, T), nonneg=True)
        self.shed = cp.Variable((N, T), nonneg=True)
        self.charge = cp.Variable((B, T), nonneg=True)
        self.discharge = cp.Variable((B, T), nonneg=True)
        self.soc = cp.Variable((B, T + 1))

        at_home = np.zeros((N, B))
        at_home[b.home, np.arange(B)] = 1.0
        soc0 = np.clip(b.soc_kwh, b.min_soc_kwh, b.capacity_kwh)
        terminal_value = max(sell.mean(), 0.0) * b.discharge_efficiency
        cost = (
            cp.sum(self.g_imp @ buy)
            - cp.sum(self.g_exp @ sell)
            + p2p * cp.sum(self.p2p_buy)
            + voll * cp.sum(self.shed)
            + CURTAIL_COST_PER_KWH * cp.sum(self.curtail)
        )
        if B:
            cost = cost - terminal_value @ self.soc[:, T]
        position = load - pv + self.curtail - self.shed
        if B:
            position = position + at_home @ (self.charge - self.discharge)
        J = self.jobs_count = inputs.jobs.count
        self.job_start = cp.Variable((max(J, 1), T), boolean=integer_jobs, nonneg=not integer_jobs)
        job_constraints = []
        if J:
            allowed = jobs.allowed(inputs.jobs)
            skip = cp.Variable(J, nonneg=True)  # the job is not run, at VoLL per kWh
            cost_of_skipping = voll * inputs.jobs.energy_kwh.sum(axis=1) @ skip
            job_constraints = [
                self.job_start <= allowed.astype(float),
                skip <= jobs.must_start(inputs.jobs).astype(float),
                cp.sum(self.job_start, axis=1) + skip == jobs.must_start(inputs.jobs).astype(float),
            ]
            draw = []
            for j in range(J):  # the draw of job j per step: a Toeplitz matrix of its profile times y[j]
                profile = inputs.jobs.energy_kwh[j]
                lag = np.arange(T)[:, None] - np.arange(T)[None, :]
                shift = np.where((lag >= 0) & (lag < profile.size), profile[np.clip(lag, 0, profile.size - 1)], 0.0)
                draw.append(shift @ self.job_start[j])
            at_home_job = np.zeros((N, J))
            at_home_job[inputs.jobs.home, np.arange(J)] = 1.0
            position = position + at_home_job @ cp.vstack(draw)
        th = inputs.thermal
        H = th.count
        thermal_cost = 0
        if H:
            self.hvac = cp.Variable((H, T), nonneg=True)
            indoor = cp.Variable((H, T + 1))
            cold, warm = cp.Variable((H, T), nonneg=True), cp.Variable((H, T), nonneg=True)
            a, g = th.decay[:, None], th.gain_k_per_kwh[:, None]
            job_constraints += [
                self.hvac <= th.max_kwh[:, None],
                indoor[:, 0] == th.indoor_c,
                indoor[:, 1:] == cp.multiply(a, indoor[:, :-1]) + (1 - a) * th.outdoor_c + cp.multiply(g, self.hvac),
                indoor[:, 1:] + cold >= th.comfort_low_c[:, None],
                indoor[:, 1:] - warm <= th.comfort_high_c[:, None],
            ]
            thermal_cost = cp.sum(voll * np.maximum(th.max_kwh, 1e-3) @ (cold + warm))
            at_home_hvac = np.zeros((N, H))
            at_home_hvac[th.home, np.arange(H)] = 1.0
            position = position + at_home_hvac @ self.hvac
        self.constraints = [
            position == self.g_imp - self.g_exp + self.p2p_buy - self.p2p_sell,
            cp.sum(self.p2p_buy, axis=0) == cp.sum(self.p2p_sell, axis=0),
            cp.sum(self.g_imp, axis=0) <= np.maximum(inputs.import_capacity_kwh - capacity_margin_kwh, 0),
            cp.sum(self.g_exp, axis=0) <= np.maximum(inputs.export_capacity_kwh - capacity_margin_kwh, 0),
            self.curtail <= pv,
            self.shed <= load,
        ] + job_constraints
        net = inputs.network
        if net is not None:
            Z = net.zones
            self.zone_import = cp.Variable((Z, T), nonneg=True)
            self.zone_export = cp.Variable((Z, T), nonneg=True)
            in_zone = np.zeros((Z, N))
            in_zone[net.home_zone, np.arange(N)] = 1.0
            injection = self.zone_import - self.zone_export - in_zone @ position
            self.constraints += [
                cp.sum(self.g_imp, axis=0) == cp.sum(self.zone_import, axis=0),
                cp.sum(self.g_exp, axis=0) == cp.sum(self.zone_export, axis=0),
                self.zone_import <= np.maximum(net.grid_import_kwh - capacity_margin_kwh, 0),
                self.zone_export <= np.maximum(net.grid_export_kwh - capacity_margin_kwh, 0),
            ]
            if net.lines:
                self.flow = _ptdf(net) @ injection
                forward, back = net.line_forward_kwh, net.line_back_kwh
                self.constraints += [self.flow[forward < np.inf] <= forward[forward < np.inf]] if np.isfinite(forward).any() else []
                self.constraints += [-self.flow[back < np.inf] <= back[back < np.inf]] if np.isfinite(back).any() else []
        if B:
            eta_c, eta_d = b.charge_efficiency[:, None], b.discharge_efficiency[:, None]
            self.constraints += [
                self.soc[:, 0] == soc0,
                self.soc[:, 1:] == self.soc[:, :-1] + cp.multiply(eta_c, self.charge) - cp.multiply(1 / eta_d, self.discharge),
                self.soc[:, 1:] >= b.min_soc_kwh[:, None],
                self.soc[:, 1:] <= b.capacity_kwh[:, None],
                self.charge <= b.max_charge_kwh[:, None],
                self.discharge <= b.max_discharge_kwh[:, None],
            ]
        self.cost = cost + (cost_of_skipping if J else 0) + thermal_cost

    def solve(self, extra: list[cp.Constraint] | None = None, solver: str = cp.CLARABEL) -> ReferenceSolution:
        problem = cp.Problem(cp.Minimize(self.cost), self.constraints + (extra or []))
        integer = self.job_start.attributes["boolean"]
        problem.solve(solver=cp.HIGHS if integer else solver)
        if problem.status != cp.OPTIMAL:
            raise RuntimeError(f"reference LP: {problem.status}")
        B = self.charge.shape[0]
        batteries = (self.charge.value, self.discharge.value, self.soc.value) if B else (
            np.zeros(self.charge.shape), np.zeros(self.discharge.shape), np.zeros(self.soc.shape))
        return ReferenceSolution(
            float(problem.value), self.g_imp.value, self.g_exp.value, self.p2p_buy.value,
            self.p2p_sell.value, self.curtail.value, self.shed.value, *batteries,
            job_start=self.job_start.value if self.jobs_count else None,
        )


def solve_reference(inputs: ClearingInputs, capacity_margin_kwh: float = 0.0) -> ReferenceSolution:
    """The naive LP's optimum for ``inputs``."""
    return ReferenceLP(inputs, capacity_margin_kwh).solve()


def _ptdf(net) -> np.ndarray:
    """Lines x zones: flow per unit injected in a zone and taken out at the reference."""
    Z, L = net.zones, net.lines
    A = np.zeros((L, Z))
    A[np.arange(L), net.line_from] = 1.0
    A[np.arange(L), net.line_to] = -1.0
    others = [z for z in range(Z) if z != net.reference_zone]
    ptdf = np.zeros((L, Z))
    if others:
        laplacian = (A[:, others].T * net.susceptance) @ A[:, others]
        ptdf[:, others] = np.linalg.solve(laplacian, (A[:, others].T * net.susceptance)).T
    return ptdf
