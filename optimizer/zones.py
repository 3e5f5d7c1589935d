r"""Zones in the community LP: one balance row per zone, DC line flows, zonal P2P split.

With a :class:`~optimizer.types.ZoneNetwork`, the pool's aggregates and the grid
connection of the community model are per zone ``z``, and each zone's injection
``inj_z = LHS_z - E_z`` flows over the lines under DC power flow::

    LHS_z        G⁺_z - G⁻_z - Σ_{b∈z} (c - d) - Σ_{m∈z} (k - z) - (ks + kd - zd - zs)_z
    balance      Σ_z LHS_z == Σ_z E_z                           (one row per step, as before)
    line         -back_l ≤ Σ_z P[l,z] inj_z ≤ forward_l          (P: the PTDF, lines x zones)
    totals       Σ_z G⁺_z ≤ import_cap,  Σ_z G⁻_z ≤ export_cap
    grid         0 ≤ G⁺_z ≤ grid_import_z,  0 ≤ G⁻_z ≤ grid_export_z

``P[l,z]`` is the flow on line ``l`` when a kWh is injected in ``z`` and taken out at
the reference zone (DC power flow: it depends on the susceptances' ratios only); for
injections summing to 0, which the balance row makes them, the flows do not depend
on the reference. This is the LP with one balance row per zone and line flows, with
the flows substituted (:class:`NetworkBlock` says why). The P2P volume term is
community-wide and unchanged: the pool per zone is exact for the same reason the pool
is on a copper plate.

**Price sign.** ``π_z`` is the row price of zone ``z``'s balance at step 0:
``d(optimal cost) / d(fixed demand of z)``, the cost of one more kWh consumed in
``z``. Where no line limit binds, all ``π_z`` are equal (a flow's reduced cost
is ``π_to - π_from`` plus the loop rows' prices, which vanish without a binding
limit); a binding line separates them, higher on the side
it cannot feed. The settled price is ``π_z`` clipped to ``[sell, buy]``, as on a
copper plate.

**Who trades with whom.** The LP fixes each home's position, the zones' grid
exchange and the community's P2P volume ``V = min(max(D - G⁺, 0), D, S)``
(as :func:`optimizer.allocation.allocate_step0`); the split into buyers and sellers
is a convention that does not change the cost: P2P matches inside a zone first
(``min(D_z, S_z)``), the rest of ``V`` across zones, shared by the zones' excess
demand and excess supply pro rata. Every home pays or receives its own zone's
price, so the congestion rent is ``Σ_z π_z (bought_z - sold_z)``: the inter-zone
volume times the difference of the importing and exporting zones' average prices.
"""

from __future__ import annotations

import numpy as np

from node.errors import InputError
from optimizer.lp import LinearProgram, LPData, LPSolution
from optimizer.types import ZoneNetwork


def check_network(net: ZoneNetwork, homes: int, horizon: int) -> None:
    """Shapes, indices and signs of a network; InputError naming the field otherwise."""
    Z, L, T = net.zones, net.lines, horizon
    shapes = {
        "home_zone": (net.home_zone, (homes,)),
        "line_from": (net.line_from, (L,)),
        "line_to": (net.line_to, (L,)),
        "susceptance": (net.susceptance, (L,)),
        "line_forward_kwh": (net.line_forward_kwh, (L, T)),
        "line_back_kwh": (net.line_back_kwh, (L, T)),
        "grid_import_kwh": (net.grid_import_kwh, (Z, T)),
        "grid_export_kwh": (net.grid_export_kwh, (Z, T)),
    }
    for name, (array, shape) in shapes.items():
        if np.shape(array) != shape:
            raise InputError(f"network {name} has shape {np.shape(array)}, expected {shape}")
    if Z < 1:
        raise InputError("a network needs at least one zone")
    for name in ("home_zone", "line_from", "line_to"):
        index = np.asarray(getattr(net, name))
        if index.size and (index.min() < 0 or index.max() >= Z):
            raise InputError(f"network {name} must hold zone indices 0..{Z - 1}, got {index.tolist()}")
    if not 0 <= net.reference_zone < Z:
        raise InputError(f"network reference_zone {net.reference_zone} is not a zone index 0..{Z - 1}")
    if np.any(net.line_from == net.line_to):
        raise InputError("a network line joins a zone to itself; a line joins two different zones")
    if not (np.all(np.isfinite(net.susceptance)) and np.all(net.susceptance > 0)):
        raise InputError(f"network susceptances must be finite and > 0, got {net.susceptance.tolist()}")
    for name in ("line_forward_kwh", "line_back_kwh", "grid_import_kwh", "grid_export_kwh"):
        values = getattr(net, name)
        if np.any(np.isnan(values)) or np.any(values < 0):
            raise InputError(f"network {name} must be >= 0 (inf for no limit)")
    if _unreachable(net):
        raise InputError(f"network zones {_unreachable(net)} have no line path to the reference zone; connect them")


def grid_zones(net: ZoneNetwork) -> np.ndarray:
    """Zones with a grid connection, i.e. an import or export limit above 0 at some step: (Z,) bool."""
    return np.any(net.grid_import_kwh > 0, axis=1) | np.any(net.grid_export_kwh > 0, axis=1)


def network_key(net: ZoneNetwork | None) -> tuple[bytes, ...]:
    """Identity of a network's structure: its limits change per interval and are excluded,
    but which zones have a grid connection at all (:func:`grid_zones`) is part of it."""
    if net is None:
        return ()
    arrays = (net.home_zone, net.line_from, net.line_to, grid_zones(net))
    return tuple(np.ascontiguousarray(a, dtype=np.int64).tobytes() for a in arrays) + (
        np.ascontiguousarray(net.susceptance, dtype=np.float64).tobytes(),
        bytes(str((net.zones, net.reference_zone)), "ascii"),
    )


def zone_sum(values: np.ndarray, zone: np.ndarray, zones: int) -> np.ndarray:
    """Sum the rows of ``values`` (n, ...) by ``zone`` (n,): shape (zones, ...)."""
    out = np.zeros((zones,) + values.shape[1:])
    np.add.at(out, zone, values)
    return out


def zone_pro_rata(total: np.ndarray, weights: np.ndarray, home_zone: np.ndarray, zones: int) -> np.ndarray:
    """:func:`optimizer.allocation.pro_rata` in each zone: ``total[z]`` over its homes' weights."""
    weight = zone_sum(weights, home_zone, zones)
    ratio = np.divide(np.minimum(total, weight), weight, out=np.zeros(zones), where=(weight > 0) & (total > 0))
    return weights * ratio[home_zone]


class NetworkBlock:
    """The line rows and grid totals of a network, added to a community LP.

    A line's flow is ``Σ_z P[l,z] (injection_z)`` with ``P`` the PTDF (lines x zones,
    0 in the reference zone's column) and ``injection_z = LHS_z - E_z`` the left-hand
    side of zone ``z``'s share of the balance minus its fixed demand; the balance row
    itself stays one per step, as on a copper plate, and makes the injections sum to 0.
    So every column that enters the balance for zone ``z`` with coefficient ``a`` enters
    line ``l``'s row with ``a P[l,z]``, and the fixed demands move into the row's bounds.

    On a radial grid referenced at its root, ``P[l,z]`` is -1 for the zones below line
    ``l`` and 0 elsewhere: each feeder's row holds its own homes' columns only. (One
    balance row per zone, with the flows or angles as columns, is the same LP but sent
    the solvers' minimum-degree ordering astray: the hub zone's few-column rows were
    eliminated first and coupled every zone at every step, fifteen times slower at
    1,000 homes on 20 feeders.)
    """

    def __init__(self, net: ZoneNetwork, horizon: int) -> None:
        self.net = net
        self.horizon = horizon
        ptdf = _ptdf(net)
        ptdf[np.abs(ptdf) < 1e-10] = 0.0
        self.ptdf = ptdf  # (L, Z)
        self.line: np.ndarray | None = None

    def build(self, lp: LinearProgram, grid_import: np.ndarray, grid_export: np.ndarray) -> None:
        """Declare the line rows (L, T) and the total import/export rows (T,)."""
        T = self.horizon
        self.line = lp.rows("line_flow", (self.net.lines, T))
        for name, cols in (("import_total", grid_import), ("export_total", grid_export)):
            rows = lp.rows(name, T)
            lp.add(np.broadcast_to(rows, cols.shape), cols, 1.0)

    def add_zonal(self, lp: LinearProgram, cols: np.ndarray, coef: float | np.ndarray) -> None:
        """Columns (Z, T), one per zone, that enter the balance with ``coef`` (a number, or
        (Z, 1) per zone: a zone whose coefficient is 0 adds no entries)."""
        with lp.skipping_zeros():
            lp.add(self.line[:, None, :], cols[None, :, :], coef * self.ptdf[:, :, None])

    def add_homes(self, lp: LinearProgram, cols: np.ndarray, coef: float, homes: np.ndarray) -> None:
        """Columns (n, T) of ``homes`` that enter the balance with ``coef``."""
        with lp.skipping_zeros():
            lp.add(self.line[:, None, :], cols[None, :, :], coef * self.ptdf[:, self.net.home_zone[homes], None])

    def add_device(self, lp: LinearProgram, device, homes: np.ndarray, sign: float) -> None:
        """A device whose net consumption enters the balance with ``sign``; ``homes`` (n,)
        are its units' homes (a device of the shape of :class:`optimizer.devices.BatteryFleet`)."""
        n = homes.size
        with lp.skipping_zeros():
            for l in np.flatnonzero(np.any(self.ptdf[:, self.net.home_zone[homes]] != 0.0, axis=1)):
                share = self.ptdf[l, self.net.home_zone[homes]][:, None]
                device.add_net_consumption(lp, np.broadcast_to(self.line[l], (n, self.horizon)), sign * share)

    def fill(self, data: LPData, limits: ZoneNetwork, zone_demand: np.ndarray,
             import_total_kwh: np.ndarray, export_total_kwh: np.ndarray) -> None:
        """Bounds of one interval: ``limits`` is the interval's network (same structure),
        ``zone_demand`` (Z, T) each zone's fixed demand ``E_z``."""
        shift = self.ptdf @ zone_demand
        data.set_rows("line_flow", lo=-limits.line_back_kwh + shift, hi=limits.line_forward_kwh + shift)
        data.set_rows("import_total", hi=import_total_kwh)
        data.set_rows("export_total", hi=export_total_kwh)

    def zone_prices(self, solution: LPSolution) -> np.ndarray:
        """π (Z, T): d(optimal cost)/d(E_z) = balance price + Σ_l P[l,z] line price."""
        return solution.price("balance")[None, :] + self.ptdf.T @ solution.price("line_flow")

    def flows(self, solution: LPSolution, zone_demand: np.ndarray) -> np.ndarray:
        """Line flows (L, T), + from line_from to line_to."""
        block = solution.lp.row_blocks["line_flow"]
        activity = solution.lp.matrix[block.slice] @ solution.x
        return activity.reshape(block.shape) - self.ptdf @ zone_demand


def _ptdf(net: ZoneNetwork) -> np.ndarray:
    """Lines x zones: the flow on each line per unit injected in a zone and taken out at
    the reference zone (whose column is 0)."""
    Z, L = net.zones, net.lines
    incidence = np.zeros((L, Z))
    incidence[np.arange(L), net.line_from] = 1.0
    incidence[np.arange(L), net.line_to] = -1.0
    others = [z for z in range(Z) if z != net.reference_zone]
    ptdf = np.zeros((L, Z))
    if others and L:
        weighted = incidence[:, others].T * net.susceptance
        ptdf[:, others] = np.linalg.solve(weighted @ incidence[:, others], weighted).T
    return ptdf


def split_zonal(position: np.ndarray, home_zone: np.ndarray, zones: int, grid_import: float) -> tuple[np.ndarray, np.ndarray]:
    """P2P bought and sold per home (see the module docstring): the community's volume
    ``V`` matched inside each zone first, the rest across zones pro rata to the zones'
    excess demand and supply; within a zone pro rata to each home's position."""
    demand, supply = np.maximum(position, 0.0), np.maximum(-position, 0.0)
    D_z, S_z = zone_sum(demand, home_zone, zones), zone_sum(supply, home_zone, zones)
    D, S = D_z.sum(), S_z.sum()
    volume = min(max(D - grid_import, 0.0), D, S)
    inside = np.minimum(D_z, S_z)
    if volume <= inside.sum():
        share = volume / inside.sum() if inside.sum() > 0 else 0.0
        bought = sold = inside * share
    else:
        across = volume - inside.sum()  # <= min(Σ excess demand, Σ excess supply), see docstring
        excess_demand, excess_supply = D_z - inside, S_z - inside
        bought = inside + across * excess_demand / excess_demand.sum()
        sold = inside + across * excess_supply / excess_supply.sum()
    # at most 1: rounding must not leave a home a hair of negative grid import
    buy_ratio = np.minimum(np.divide(bought, D_z, out=np.zeros(zones), where=D_z > 0), 1.0)
    sell_ratio = np.minimum(np.divide(sold, S_z, out=np.zeros(zones), where=S_z > 0), 1.0)
    return demand * buy_ratio[home_zone], supply * sell_ratio[home_zone]


def _unreachable(net: ZoneNetwork) -> list[int]:
    neighbours: list[set[int]] = [set() for _ in range(net.zones)]
    for a, b in zip(net.line_from.tolist(), net.line_to.tolist()):
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen, stack = {net.reference_zone}, [net.reference_zone]
    while stack:
        for other in neighbours[stack.pop()] - seen:
            seen.add(other)
            stack.append(other)
    return [z for z in range(net.zones) if z not in seen]
