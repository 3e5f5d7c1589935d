"""Typed inputs and outputs of a market clearing.

Everything here is in physical floating-point units (kWh, currency per kWh) and
indexed the same way: ``N`` homes (rows, in participant order), ``T`` steps of the
rolling horizon (columns, step 0 is the interval being cleared) and ``B`` batteries
(each attached to one home). Conversion to chain integers happens once, later, in
:mod:`optimizer.rounding` and ``node.clearing.pricing``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Batteries:
    """Batteries under the optimiser's control; all arrays have shape ``(B,)``."""

    home: np.ndarray  # int index into the homes (rows of the load/pv matrices)
    capacity_kwh: np.ndarray
    max_charge_kwh: np.ndarray  # per step (power limit times step length)
    max_discharge_kwh: np.ndarray  # per step, measured at the battery terminals
    charge_efficiency: np.ndarray  # in (0, 1]
    discharge_efficiency: np.ndarray  # in (0, 1]
    soc_kwh: np.ndarray  # state of charge at the start of step 0
    min_soc_kwh: np.ndarray  # lower bound on the state of charge

    @property
    def count(self) -> int:
        return int(self.home.shape[0])

    @staticmethod
    def none() -> "Batteries":
        empty = np.zeros(0)
        return Batteries(
            home=np.zeros(0, dtype=int),
            capacity_kwh=empty,
            max_charge_kwh=empty,
            max_discharge_kwh=empty,
            charge_efficiency=empty,
            discharge_efficiency=empty,
            soc_kwh=empty,
            min_soc_kwh=empty,
        )


@dataclass(frozen=True)
class ZoneNetwork:
    """The network a community clears on: homes in zones, zones joined by lines.

    ``Z`` zones, ``L`` lines. Under DC power flow a line carries
    ``f = w (theta_from - theta_to)`` with ``w`` proportional to its susceptance (only
    the ratios matter: the base power rescales every angle alike); a radial grid is the
    tree case, where flows follow from the injections alone. Energy enters or leaves the
    community only at zones with a grid connection (limits 0 elsewhere), and the
    community-wide ``import_capacity_kwh``/``export_capacity_kwh`` of the inputs still
    bound the total.
    """

    home_zone: np.ndarray  # (N,) int: the zone of each home
    line_from: np.ndarray  # (L,) int zone index
    line_to: np.ndarray  # (L,) int zone index
    susceptance: np.ndarray  # (L,) > 0, per unit
    line_forward_kwh: np.ndarray  # (L, T) most energy per step from line_from to line_to (inf: none)
    line_back_kwh: np.ndarray  # (L, T) most energy per step the other way
    grid_import_kwh: np.ndarray  # (Z, T) from the upstream grid into each zone; 0: no connection
    grid_export_kwh: np.ndarray  # (Z, T)
    reference_zone: int = 0  # its angle is 0

    @property
    def zones(self) -> int:
        return int(self.grid_import_kwh.shape[0])

    @property
    def lines(self) -> int:
        return int(self.line_from.shape[0])


@dataclass(frozen=True)
class ClearingInputs:
    """Everything one clearing depends on; a clearing is a pure function of this."""

    load_kwh: np.ndarray  # (N, T) consumption forecast per home and step
    pv_kwh: np.ndarray  # (N, T) production forecast per home and step
    buy_price_per_kwh: np.ndarray  # (T,) grid import tariff
    sell_price_per_kwh: np.ndarray  # (T,) grid export tariff (feed-in)
    import_capacity_kwh: np.ndarray  # (T,) community import limit per step
    export_capacity_kwh: np.ndarray  # (T,) community export limit per step
    p2p_cost_per_kwh: float  # friction per kWh traded between homes
    batteries: Batteries = field(default_factory=Batteries.none)
    network: "ZoneNetwork | None" = None  # None: a copper plate, one price for everyone

    @property
    def homes(self) -> int:
        return int(self.load_kwh.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.load_kwh.shape[1])


@dataclass(frozen=True)
class Clearing:
    """The optimiser's result for step 0 (the interval being settled), plus the plan.

    Per-home arrays have shape ``(N,)`` and are non-negative. For every home ``i``::

        load - pv + curtailed - shed + charge - discharge
            == grid_import - grid_export + p2p_buy - p2p_sell

    where charge/discharge are the home's battery flows (zero without a battery).
    """

    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    p2p_buy_kwh: np.ndarray
    p2p_sell_kwh: np.ndarray
    curtailed_kwh: np.ndarray  # PV not used because export capacity binds
    shed_kwh: np.ndarray  # load not served because import capacity binds
    battery_charge_kwh: np.ndarray  # (B,)
    battery_discharge_kwh: np.ndarray  # (B,)
    soc_path_kwh: np.ndarray  # (B, T + 1); column 1 is the state after this interval
    p2p_price_per_kwh: float  # dual of the community balance, clipped to [sell, buy]
    objective: float  # planned cost over the horizon, currency units
    status: str  # solver status, "optimal" when all is well
    # With a network (ClearingInputs.network): each zone's P2P price, the dual of its
    # balance row clipped to [sell, buy] (p2p_price_per_kwh is the reference zone's);
    # each line's step-0 flow, + from line_from to line_to; and the congestion rent,
    # Σ_i zone_price[zone(i)] (p2p_buy_i - p2p_sell_i): what buyers pay beyond what
    # sellers receive, in currency units. None / 0 on a copper plate.
    zone_price_per_kwh: np.ndarray | None = None
    line_flow_kwh: np.ndarray | None = None
    congestion_rent: float = 0.0
