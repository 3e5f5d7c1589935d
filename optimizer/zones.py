r"""Zones in the community LP: one balance row per zone, DC line flows, zonal P2P split.

With a :class:`~optimizer.types.ZoneNetwork`, the community model's balance row
becomes one row per zone ``z`` and step (the pool's aggregates and the grid
connection are per zone too), and the zones exchange energy over lines::

    balance[z]   G⁺_z - G⁻_z - Σ_{b∈z} (c - d) - Σ_{m∈z} (k - z) - (ks + kd - zd - zs)_z
                 - Σ_l A[l,z] f_l  ==  E_z                                   (dual → π_z)
    flow         f_l = w_l (θ_from(l) - θ_to(l)) ∈ [-back_l, forward_l],  θ_ref = 0
    totals       Σ_z G⁺_z ≤ import_cap,  Σ_z G⁻_z ≤ export_cap
    grid         0 ≤ G⁺_z ≤ grid_import_z,  0 ≤ G⁻_z ≤ grid_export_z

``A`` is the line-zone incidence (+1 at ``from``, -1 at ``to``) and ``w`` the
susceptances scaled to at most 1 (only their ratios set the flows). The flow is
not a column: the angles are, and a line's limit is a range row on them, so the
balance of ``z`` holds ``-(Aᵀ W A) θ`` (the network's Laplacian). The P2P volume
term is community-wide and unchanged: the pool per zone is exact for the same
reason the pool is on a copper plate.

**Price sign.** ``π_z`` is the row price of zone ``z``'s balance at step 0:
``d(optimal cost) / d(fixed demand of z)``, the cost of one more kWh consumed in
``z``. Where no line limit binds, all ``π_z`` are equal (the Laplacian's null
space is the constant vector); a binding line separates them, higher on the side
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


def network_key(net: ZoneNetwork | None) -> tuple[bytes, ...]:
    """Identity of a network's structure (its limits change per interval and are excluded)."""
    if net is None:
        return ()
    arrays = (net.home_zone, net.line_from, net.line_to)
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
    """The angles, line rows and grid totals of a network, added to a community LP."""

    def __init__(self, net: ZoneNetwork, horizon: int) -> None:
        self.net = net
        self.horizon = horizon
        self.weight = net.susceptance / net.susceptance.max() if net.lines else net.susceptance

    def build(self, lp: LinearProgram, balance: np.ndarray, grid_import: np.ndarray, grid_export: np.ndarray) -> None:
        """Add θ (Z, T), the line rows (L, T) and the total import/export rows (T,)."""
        net, T = self.net, self.horizon
        angle = lp.columns("angle", (net.zones, T))
        line = lp.rows("line_flow", (net.lines, T))
        w = self.weight[:, None]
        a_from, a_to = angle[net.line_from], angle[net.line_to]
        lp.add(line, a_from, w)
        lp.add(line, a_to, -w)
        # balance[z] -= net outflow of z = Σ_l A[l,z] w_l (θ_from - θ_to)
        for rows, sign in ((balance[net.line_from], -1.0), (balance[net.line_to], 1.0)):
            lp.add(rows, a_from, sign * w)
            lp.add(rows, a_to, -sign * w)
        for name, cols in (("import_total", grid_import), ("export_total", grid_export)):
            rows = lp.rows(name, T)
            lp.add(np.broadcast_to(rows, cols.shape), cols, 1.0)

    def fill(self, data: LPData, limits: ZoneNetwork, import_total_kwh: np.ndarray, export_total_kwh: np.ndarray) -> None:
        """Bounds of one interval; ``limits`` is the interval's network (same structure, its limits)."""
        net = limits
        free = np.full((net.zones, 1), -np.inf)
        free[net.reference_zone] = 0.0
        data.set_columns("angle", lo=free, hi=-free)
        data.set_rows("line_flow", lo=-net.line_back_kwh, hi=net.line_forward_kwh)
        data.set_rows("import_total", hi=import_total_kwh)
        data.set_rows("export_total", hi=export_total_kwh)

    def flows(self, solution: LPSolution) -> np.ndarray:
        """Line flows (L, T), + from line_from to line_to."""
        angle = solution.value("angle")
        return self.weight[:, None] * (angle[self.net.line_from] - angle[self.net.line_to])


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
