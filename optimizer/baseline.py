"""The no-trading baseline: what households pay today.

Every home trades only with the grid at the tariffs. A battery stores only its
own home's PV surplus and discharges only into its own home's deficit, greedily
(as a typical self-consumption inverter does), so it is never charged from the
grid and never exports.

The baseline obeys the same grid limits as the market, so the two runs are
compared under the same physics. When the homes' exports in a step exceed the
community's export capacity, the excess PV is curtailed, pro rata to each home's
export; when their imports exceed the import capacity, the excess load is not
served (shed), pro rata to each home's import. Neither is paid for; both are
reported (``curtailed_kwh``, ``shed_kwh``) so no comparison hides them. The
batteries' greedy schedule does not change: an inverter cannot see the feeder.
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
    curtailed_kwh: np.ndarray  # (N, S) PV surplus neither stored nor exported (export capacity)
    shed_kwh: np.ndarray  # (N, S) load not served (import capacity)

    @property
    def total_cost(self) -> float:
        return float(self.cost.sum())


def run_baseline(
    load_kwh: np.ndarray,
    pv_kwh: np.ndarray,
    batteries: Batteries,
    buy: np.ndarray,
    sell: np.ndarray,
    import_capacity_kwh: np.ndarray | float = np.inf,
    export_capacity_kwh: np.ndarray | float = np.inf,
) -> BaselineResult:
    """Simulate greedy self-consumption for ``N`` homes over ``S`` steps, within the
    community's import and export capacity per step (scalars or ``(S,)`` arrays).

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
    wanted_import = np.maximum(deficit - _per_home(batteries.home, discharge, N), 0.0)
    wanted_export = np.maximum(surplus - _per_home(batteries.home, charge, N), 0.0)
    grid_import = _within(wanted_import, np.broadcast_to(np.asarray(import_capacity_kwh, float), (S,)))
    grid_export = _within(wanted_export, np.broadcast_to(np.asarray(export_capacity_kwh, float), (S,)))
    cost = grid_import * np.asarray(buy)[None, :] - grid_export * np.asarray(sell)[None, :]
    return BaselineResult(grid_import, grid_export, charge, discharge, soc, cost,
                          curtailed_kwh=wanted_export - grid_export, shed_kwh=wanted_import - grid_import)


def _within(wanted: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """Each home's flow (N, S), scaled down pro rata in the steps where the community's
    total exceeds `capacity` (S,)."""
    total = wanted.sum(axis=0)
    scale = np.ones_like(total)
    over = total > capacity
    scale[over] = np.maximum(capacity[over], 0.0) / total[over]
    return wanted * scale[None, :]


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
