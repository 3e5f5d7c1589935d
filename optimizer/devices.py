"""Flexible devices of the community LP: their own columns and rows, and their net consumption.

A device in the spirit of cvxpower: it owns its variables and internal constraints,
and exposes one thing to the network, its net consumption per step (its *terminal*),
which the community model adds to its home's buy-side epigraph and to the balance row
of the home's bus. The model never looks inside. Deferrable jobs or thermal loads
(issue 12) would be devices of the same shape: columns, rows, ``add_net_consumption``,
per-interval ``fill`` and step-0 ``flows``; a community battery is a battery whose
terminal is a bus without a home.
"""

from __future__ import annotations

import numpy as np

from optimizer.allocation import snap
from optimizer.lp import LinearProgram, LPData, LPSolution
from optimizer.types import Batteries


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
        data.set_columns("charge", lo=0.0, hi=spec.max_charge_kwh[:, None])
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
