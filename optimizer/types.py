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
    # What charging costs per kWh at the terminals beyond the energy's price: a shared
    # battery account's storage fee (node.data.shared_batteries). None: nothing.
    charge_cost_per_kwh: np.ndarray | None = None

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
class Jobs:
    """Deferrable appliance jobs (PySSMic's): each runs once, drawing ``energy_kwh[j, l]``
    in the ``l``-th step after its start. All arrays have ``J`` rows; steps are relative
    to step 0 of the horizon (the interval being cleared).

    A job not yet started may start at any step of ``[earliest, latest]`` (its signed
    window on the interval grid); a started one (``started``) began at step ``start``
    (<= 0) and its remaining draw is data.
    """

    home: np.ndarray  # (J,) int index into the homes
    energy_kwh: np.ndarray  # (J, L) draw per step since the start
    earliest: np.ndarray  # (J,) int first allowed start step (may be < 0: the window opened earlier)
    latest: np.ndarray  # (J,) int last allowed start step
    started: np.ndarray  # (J,) bool: committed, it began at `start`
    start: np.ndarray  # (J,) int start step of a started job (<= 0); ignored otherwise

    @property
    def count(self) -> int:
        return int(self.home.shape[0])

    @staticmethod
    def none() -> "Jobs":
        return Jobs(np.zeros(0, dtype=int), np.zeros((0, 1)), np.zeros(0, dtype=int), np.zeros(0, dtype=int),
                    np.zeros(0, dtype=bool), np.zeros(0, dtype=int))

    def running_kwh(self, homes: int, horizon: int) -> np.ndarray:
        """(N, T) the remaining draw of the started jobs: data, like a home's load."""
        out = np.zeros((homes, horizon))
        length = self.energy_kwh.shape[1]
        for j in np.flatnonzero(self.started):
            lag = np.arange(horizon) - int(self.start[j])  # steps since the job's start
            inside = (lag >= 0) & (lag < length)
            out[self.home[j], inside] += self.energy_kwh[j, lag[inside]]
        return out


@dataclass(frozen=True)
class Thermal:
    """Air conditioners and heat pumps (TESP's first-order thermal model, one R and one C
    per home; node.agents.thermal). Arrays have ``H`` rows; per step ``t`` of ``h`` hours
    with electric energy ``p`` (kWh, at most ``max_kwh``)::

        T[t] = a T[t-1] + (1 - a) (T_out[t] + sign COP R p[t] / h),   a = exp(-h / (R C))

    ``sign`` is -1 for cooling, +1 for heating. The comfort band is
    ``[comfort_low_c, comfort_high_c]``; ``indoor_c`` is the temperature at the start of
    step 0 and ``outdoor_c`` the outdoor one per step.
    """

    home: np.ndarray  # (H,) int index into the homes
    max_kwh: np.ndarray  # (H,) electric power x step length
    cop: np.ndarray  # (H,)
    sign: np.ndarray  # (H,) -1 cooling, +1 heating
    resistance_k_per_kw: np.ndarray  # (H,)
    capacitance_kwh_per_k: np.ndarray  # (H,)
    step_hours: float
    indoor_c: np.ndarray  # (H,) at the start of step 0
    outdoor_c: np.ndarray  # (H, T)
    comfort_low_c: np.ndarray  # (H,)
    comfort_high_c: np.ndarray  # (H,)

    @property
    def count(self) -> int:
        return int(self.home.shape[0])

    @property
    def decay(self) -> np.ndarray:
        """(H,) ``a``: how much of the indoor temperature's distance to equilibrium one step keeps."""
        return np.exp(-self.step_hours / (self.resistance_k_per_kw * self.capacitance_kwh_per_k))

    @property
    def gain_k_per_kwh(self) -> np.ndarray:
        """(H,) ``(1 - a) sign COP R / h``: kelvin per kWh of electric energy in a step."""
        return (1 - self.decay) * self.sign * self.cop * self.resistance_k_per_kw / self.step_hours

    @staticmethod
    def none() -> "Thermal":
        empty = np.zeros(0)
        return Thermal(np.zeros(0, dtype=int), empty, empty, empty, empty, empty, 1.0, empty, np.zeros((0, 1)),
                       empty, empty)


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
    jobs: Jobs = field(default_factory=Jobs.none)
    thermal: Thermal = field(default_factory=Thermal.none)

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

        load + job - pv + curtailed - shed + charge - discharge
            == grid_import - grid_export + p2p_buy - p2p_sell

    where charge/discharge are the home's battery flows (zero without a battery) and
    job is the draw of its deferrable jobs in step 0 (running ones and those started now)
    and of its HVAC.
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
    job_kwh: np.ndarray | None = None  # (N,) jobs' draw in step 0; None: no jobs
    job_starts_now: np.ndarray | None = None  # (J,) bool: a pending job starts in step 0
    hvac_kwh: np.ndarray | None = None  # (N,) the HVACs' electric energy in step 0; None: no HVAC
    indoor_after_c: np.ndarray | None = None  # (H,) indoor temperature after step 0
    # With a network (ClearingInputs.network): each zone's P2P price, the dual of its
    # balance row clipped to [sell, buy] (p2p_price_per_kwh is the reference zone's);
    # each line's step-0 flow, + from line_from to line_to; and the congestion rent,
    # Σ_i zone_price[zone(i)] (p2p_buy_i - p2p_sell_i): what buyers pay beyond what
    # sellers receive, in currency units. None / 0 on a copper plate.
    zone_price_per_kwh: np.ndarray | None = None
    line_flow_kwh: np.ndarray | None = None
    congestion_rent: float = 0.0
