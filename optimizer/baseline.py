"""The no-trading baseline: what households pay today.

Every home trades only with the grid at the tariffs. A battery stores only its
own home's PV surplus and discharges only into its own home's deficit, greedily
(as a typical self-consumption inverter does), so it is never charged from the
grid and never exports. No capacity limits apply: the baseline is today's bill,
the reference against which the community clearing's savings are measured.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimizer.types import Batteries


@dataclass(frozen=True)
class BaselineResult:
    """Per-home and per-battery flows of the baseline over ``S`` steps."""

    grid_import_kwh: np.ndarray  # (N, S)
    grid_export_kwh: np.ndarray  # (N, S)
    battery_charge_kwh: np.ndarray  # (B, S), at the terminals
    battery_discharge_kwh: np.ndarray  # (B, S), at the terminals
    soc_kwh: np.ndarray  # (B, S + 1); column 0 is the initial state
    cost: np.ndarray  # (N, S) currency, positive = paid to the grid

    @property
    def total_cost(self) -> float:
        return float(self.cost.sum())


def run_baseline(
    load_kwh: np.ndarray,
    pv_kwh: np.ndarray,
    batteries: Batteries,
    buy: np.ndarray,
    sell: np.ndarray,
) -> BaselineResult:
    """Simulate greedy self-consumption for ``N`` homes over ``S`` steps.

    Vectorised over homes; steps run in order because each depends on the
    previous state of charge.
    """
    load_kwh, pv_kwh = np.asarray(load_kwh, float), np.asarray(pv_kwh, float)
    N, S = load_kwh.shape
    B = batteries.count
    ranks = _rank_within_home(batteries.home)
    surplus = np.maximum(pv_kwh - load_kwh, 0.0)
    deficit = np.maximum(load_kwh - pv_kwh, 0.0)
    charge, discharge = np.zeros((B, S)), np.zeros((B, S))
    soc = np.zeros((B, S + 1))
    soc[:, 0] = batteries.soc_kwh
    for t in range(S):
        left_surplus, left_deficit = surplus[:, t].copy(), deficit[:, t].copy()
        soc[:, t + 1] = soc[:, t]
        # Several batteries at one home take turns (rank 0 first), each turn
        # vectorised over the homes that have a battery of that rank.
        for rank in range(int(ranks.max(initial=-1)) + 1):
            b = np.flatnonzero(ranks == rank)
            h = batteries.home[b]
            c, d = _greedy_step(batteries, b, soc[b, t + 1], left_surplus[h], left_deficit[h])
            charge[b, t], discharge[b, t] = c, d
            soc[b, t + 1] += batteries.charge_efficiency[b] * c - d / batteries.discharge_efficiency[b]
            left_surplus[h] -= c
            left_deficit[h] -= d
    grid_import = deficit - _per_home(batteries.home, discharge, N)
    grid_export = surplus - _per_home(batteries.home, charge, N)
    cost = grid_import * np.asarray(buy)[None, :] - grid_export * np.asarray(sell)[None, :]
    return BaselineResult(grid_import, grid_export, charge, discharge, soc, cost)


def _greedy_step(
    batteries: Batteries, b: np.ndarray, soc: np.ndarray, surplus: np.ndarray, deficit: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Charge from surplus, discharge into deficit, within power and energy limits."""
    eta_c, eta_d = batteries.charge_efficiency[b], batteries.discharge_efficiency[b]
    room = np.maximum(batteries.capacity_kwh[b] - soc, 0.0) / eta_c
    stored = np.maximum(soc - batteries.min_soc_kwh[b], 0.0) * eta_d
    charge = np.minimum.reduce([surplus, batteries.max_charge_kwh[b], room])
    discharge = np.minimum.reduce([deficit, batteries.max_discharge_kwh[b], stored])
    return charge, discharge


def _rank_within_home(home: np.ndarray) -> np.ndarray:
    """0 for a home's first battery, 1 for its second, ... (in battery order)."""
    ranks = np.zeros(home.shape[0], dtype=np.int64)
    order = np.argsort(home, kind="stable")
    sorted_home = home[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_home)) + 1] if home.size else np.zeros(0, int)
    first = np.repeat(starts, np.diff(np.r_[starts, home.size]))
    ranks[order] = np.arange(home.size) - first
    return ranks


def _per_home(home: np.ndarray, flows: np.ndarray, homes: int) -> np.ndarray:
    """Sum battery rows (B, S) into home rows (N, S)."""
    out = np.zeros((homes, flows.shape[1]))
    np.add.at(out, home, flows)
    return out
