"""From the community LP's aggregates to per-home flows of step 0.

The LP keeps homes without a battery as data: it decides how much of their
pooled demand to shed and of their pooled surplus to curtail, not where. This
module places those amounts so that the per-home result is a solution of the
naive per-home LP with the same cost (``optimizer.reference``):

* shedding that reduces demand goes to homes in deficit, pro rata to their
  deficit ``pos(load - pv)``; shedding beyond that (a home's self-supplied
  load, which only happens when nothing else can) pro rata to ``min(load, pv)``;
* curtailment that reduces surplus goes to homes in surplus, pro rata to their
  surplus; curtailment beyond that pro rata to ``min(load, pv)``;
* a battery home's shedding and curtailment are the LP's own variables.

Each home's market position ``x = load - pv + curtailed - shed + battery``
then splits into grid and P2P: the community's P2P volume is the smallest one
compatible with its grid import, ``M = max(0, D - G⁺)`` with ``D`` the sum of
the positive positions; buyers share ``M`` pro rata to their demand, sellers
pro rata to their surplus, the rest goes to and from the grid. How a volume is
split between homes is a convention: every split has the same cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from optimizer.types import Batteries
from optimizer.zones import split_zonal, zone_pro_rata

SNAP_KWH = 1e-9  # a millionth of a Wh: far below the chain's integer Wh


@dataclass(frozen=True)
class Step0:
    """The LP's decisions for step 0 that the allocation needs, all in kWh."""

    grid_import: float  # each of these five is an array per zone with a network
    shed_deficit: float  # pooled homes: shedding that reduces demand
    shed_self: float  # pooled homes: shedding of self-supplied load
    curtail_surplus: float  # pooled homes: curtailment that reduces surplus
    curtail_self: float  # pooled homes: curtailment of self-consumed PV
    battery_home_shed: np.ndarray  # (M,) per battery home
    battery_home_curtail: np.ndarray  # (M,)


def snap(x: np.ndarray | float) -> np.ndarray:
    """Zero out interior-point residue below ``SNAP_KWH`` (and any negative sign).

    An interior-point solution sits a hair inside its bounds (1e-11 kWh of
    curtailment, say); reporting that as a flow would only confuse audits.
    """
    x = np.asarray(x, dtype=np.float64)
    return np.where(x < SNAP_KWH, 0.0, x)


def soc_path(spec: Batteries, soc0: np.ndarray, charge: np.ndarray, discharge: np.ndarray) -> np.ndarray:
    """State of charge implied by the reported flows, so the two always agree."""
    delta = spec.charge_efficiency[:, None] * charge - discharge / spec.discharge_efficiency[:, None]
    return np.concatenate([soc0[:, None], soc0[:, None] + np.cumsum(delta, axis=1)], axis=1)


def pro_rata(total: float, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` over ``weights``; zero everywhere when there is no weight."""
    weight = weights.sum()
    if weight <= 0.0 or total <= 0.0:
        return np.zeros_like(weights)
    return weights * (min(total, weight) / weight)


def allocate_step0(
    load0: np.ndarray,
    pv0: np.ndarray,
    battery_homes: np.ndarray,
    battery_home: np.ndarray,
    charge0: np.ndarray,
    discharge0: np.ndarray,
    step: Step0,
    home_zone: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-home flows of step 0 that satisfy the Clearing identity exactly.

    With ``home_zone`` (a network, :mod:`optimizer.zones`) the pool's fields of
    ``step`` are arrays per zone, placed on the zone's own homes, and the P2P volume
    is split by :func:`optimizer.zones.split_zonal`.
    """
    zones = int(np.size(step.grid_import))
    share = pro_rata if home_zone is None else partial(zone_pro_rata, home_zone=home_zone, zones=zones)
    N = load0.size
    pooled = np.ones(N, dtype=bool)
    pooled[battery_homes] = False
    net = load0 - pv0
    deficit = np.where(pooled, np.maximum(net, 0.0), 0.0)
    surplus = np.where(pooled, np.maximum(-net, 0.0), 0.0)
    self_supplied = np.where(pooled, np.minimum(load0, pv0), 0.0)

    shed = share(step.shed_deficit, deficit) + share(step.shed_self, self_supplied)
    curtailed = share(step.curtail_surplus, surplus) + share(step.curtail_self, self_supplied)
    shed[battery_homes] = np.minimum(step.battery_home_shed, load0[battery_homes])
    curtailed[battery_homes] = np.minimum(step.battery_home_curtail, pv0[battery_homes])
    battery = np.bincount(battery_home, weights=charge0 - discharge0, minlength=N)
    position = net + curtailed - shed + battery

    demand, supply = np.maximum(position, 0.0), np.maximum(-position, 0.0)
    if home_zone is not None:
        p2p_buy, p2p_sell = split_zonal(position, home_zone, zones, float(np.sum(step.grid_import)))
    else:
        D, S = demand.sum(), supply.sum()
        volume = min(max(D - step.grid_import, 0.0), D, S)
        p2p_buy = demand * (volume / D) if D > 0 else np.zeros(N)
        p2p_sell = supply * (volume / S) if S > 0 else np.zeros(N)
    return {
        "grid_import_kwh": demand - p2p_buy,
        "grid_export_kwh": supply - p2p_sell,
        "p2p_buy_kwh": p2p_buy,
        "p2p_sell_kwh": p2p_sell,
        "curtailed_kwh": curtailed,
        "shed_kwh": shed,
    }
