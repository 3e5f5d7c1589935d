r"""Double auction of signed orders located in zones, with lines between the zones:
one price per zone (pay-as-clear within the zone), energy in whole Wh, money exact.

How it clears
-------------
The orders of `optimizer.auction` (energy in Wh, limits in token units per kWh) go into
`optimizer.zonal.clear_zonal`: a sell order is an offer at its limit, a buy order a bid at
its limit, each in its participant's zone; where the network meets the upstream grid
(``grid``: zone -> (import Wh, export Wh)) the grid offers imports at the buy tariff ``B``
and bids for exports at the sell tariff ``S``. Quantities are Wh and prices units per kWh
throughout, so the duals are zone prices in units per kWh. The LP maximises the gains
from trade ``sum b x - sum a y - B import + S export`` within every line's limit (Wh per
interval).

The grid is the outside option only where the network can reach it. Without congestion
a zone's price lies between ``S`` and ``B`` and the result is the copper-plate auction's
(`optimizer.auction.clear_auction`: a buyer at or above ``B`` is served, by peers or the
grid; the same surplus, which tests/test_zonal_auction.py checks). Behind a binding line
or grid connection a zone's price can leave ``[S, B]``: a buyer who signed a limit above
``B`` may pay up to that limit for scarce imports, a seller who accepts less than ``S`` may
be paid that little for an export the line cannot carry. That is the congestion price,
and every order still trades within its own signed limit.

Prices and money
----------------
A zone's price is its LMP rounded to a whole unit per kWh. Every filled order is settled
at its own zone's price, so a buyer pays at most its limit and a seller gets at least its
limit (a zone's LMP lies between the limits of its marginal orders, which are integers,
so rounding keeps it there). The grid's legs are at the tariffs. In milli-units (Wh x
units per kWh) every amount is an integer; the congestion rent is what is left, so that
the participants' wallets, the grid's and the rent sum to exactly zero:
``congestion_rent_milli = -(sum of participants' changes + grid_milli)``; it goes to the
grid operator's wallet with the grid's legs. (Rounding the prices can leave a rent of a
few milli-units below zero where congestion is slight; without congestion it is 0.)

Whole Wh
--------
The LP's fills are fractions of a Wh. Each zone's net injection is rounded first (with
the zones together still summing to zero), then the fills within each zone to that total,
each by less than 1 Wh (``optimizer.rounding``), so energy is conserved to the Wh. So that
rounding cannot push a line past its limit, the LP sees every line's limit lowered by as
many Wh as there are zones (a zone's injection moves by less than one Wh, and a line
carries at most all of each zone's change). A limit below that margin (0 Wh on a line of
a loop, say) can still be crossed by a fraction of a Wh; then the inter-zone trade is
shrunk in sixteenths, down to none, until the whole-Wh flows fit. Own orders are not
netted first (unlike the copper-plate auction): within a zone a participant's purchase
and sale both settle at the zone's price, so netting changes no money.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from node.errors import InputError
from optimizer.auction import AuctionOrder, Side, _check_market
from optimizer.rounding import largest_remainder, round_conserving
from optimizer.zonal import clear_zonal

GRID = "grid"


@dataclass(frozen=True, slots=True)
class ZonalFill:
    order_id: str
    participant: int
    zone: str
    side: Side
    energy_wh: int
    filled_wh: int
    price: int  # the zone's price, units per kWh
    milli: int  # wallet change: -filled x price for a buy, + for a sell


@dataclass(frozen=True)
class ZonalAuctionResult:
    zone_price: dict[str, int]  # units per kWh
    lmp: dict[str, float]  # before rounding
    fills: tuple[ZonalFill, ...]  # by order id
    grid_import_wh: dict[str, int]  # per grid-connected zone
    grid_export_wh: dict[str, int]
    flow_wh: dict[str, float]  # per line, from the whole-Wh injections; + from zone_from to zone_to
    grid_milli: int  # the grid's wallet change for its legs at the tariffs
    congestion_rent_milli: int  # the rest, to the grid operator: everything sums to zero

    def fill(self, order_id: str) -> ZonalFill:
        for f in self.fills:
            if f.order_id == order_id:
                return f
        raise KeyError(order_id)

    @property
    def participants_milli(self) -> dict[int, int]:
        totals: dict[int, int] = defaultdict(int)
        for f in self.fills:
            totals[f.participant] += f.milli
        return dict(sorted(totals.items()))


def clear_zonal_auction(
    orders: Sequence[AuctionOrder],
    zone_of: Mapping[int, str],
    zones: Sequence[str],
    lines: Sequence[Mapping],
    grid: Mapping[str, tuple[int, int]],
    buy_tariff: int,
    sell_tariff: int,
    reference_zone: str | None = None,
) -> ZonalAuctionResult:
    """Clear one interval's orders over a network of `zones`.

    ``zone_of`` maps each participant to its zone; ``lines`` are clear_zonal's lines with
    ``capacity_wh`` (and optional ``capacity_back_wh``) per interval instead of MW;
    ``grid`` gives each grid-connected zone's import and export limits in Wh.
    """
    B, S = _check_market(orders, buy_tariff, sell_tariff, "uniform")  # the copper-plate auction's checks
    _check(orders, zone_of, zones, grid)
    margin = len(zones)
    network_lines = [_line_in_wh(line, margin) for line in lines]
    offers, bids = [], []
    for o in orders:
        row = {"zone": zone_of[o.participant], "tranche": o.order_id, "quantity_mw": float(o.energy_wh),
               "price_per_mwh": float(o.limit_price)}
        (bids if o.side is Side.BUY else offers).append(row | ({"bidder": o.order_id} if o.side is Side.BUY else {"generator": o.order_id}))
    for zone, (import_wh, export_wh) in grid.items():
        offers.append({"generator": GRID, "zone": zone, "tranche": zone, "quantity_mw": float(import_wh), "price_per_mwh": float(B)})
        bids.append({"bidder": GRID, "zone": zone, "tranche": zone, "quantity_mw": float(export_wh), "price_per_mwh": float(S)})
    result = clear_zonal([{"name": z, "load_mw": 0.0} for z in zones], network_lines, offers, reference_zone=reference_zone,
                         bids=bids)

    # Signed injections: a sale or an import puts energy in, a purchase or an export takes it out.
    values = [result.dispatch_mw[(o.order_id, o.order_id)] if o.side is Side.SELL else -result.served_mw[(o.order_id, o.order_id)]
              for o in orders]
    values += [result.dispatch_mw[(GRID, z)] for z in grid] + [-result.served_mw[(GRID, z)] for z in grid]
    where = [zone_of[o.participant] for o in orders] + list(grid) + list(grid)
    whole = _whole_wh(np.array(values, dtype=float), where, list(zones), lines, reference_zone)

    price = {z: _whole_price(p) for z, p in result.lmp.items()}
    fills, k = [], 0
    for o in orders:
        filled = abs(int(whole[k]))
        k += 1
        p = price[zone_of[o.participant]]
        fills.append(ZonalFill(o.order_id, o.participant, zone_of[o.participant], o.side, o.energy_wh, filled, p,
                               (-1 if o.side is Side.BUY else 1) * filled * p))
    imports = {z: int(whole[k + i]) for i, z in enumerate(grid)}
    exports = {z: -int(whole[k + len(grid) + i]) for i, z in enumerate(grid)}
    grid_milli = sum(imports.values()) * B - sum(exports.values()) * S
    rent = -(sum(f.milli for f in fills) + grid_milli)
    injection: dict[str, int] = defaultdict(int)
    for zone, wh in zip(where, whole):
        injection[zone] += int(wh)
    flows = _flows(network_lines, list(zones), [injection[z] for z in zones], reference_zone)
    return ZonalAuctionResult(price, result.lmp, tuple(sorted(fills, key=lambda f: f.order_id)), imports, exports,
                              flows, grid_milli, rent)


def _line_in_wh(line: Mapping, margin: int) -> dict:
    """clear_zonal's line with integer Wh limits, lowered by `margin` Wh (see "Whole Wh")."""
    converted = {k: v for k, v in line.items() if k not in ("capacity_wh", "capacity_back_wh")}
    forward = line.get("capacity_wh")
    if forward is None:
        raise InputError(f"line {line.get('name')!r}: give its limit per interval as capacity_wh")
    back = line.get("capacity_back_wh", forward)
    converted["capacity_mw"] = _lowered(forward, margin)
    converted["capacity_back_mw"] = _lowered(back, margin)
    return converted


def _lowered(limit_wh: float, margin: int) -> float:
    if math.isinf(limit_wh):
        return limit_wh
    return float(max(0, math.floor(limit_wh) - margin))


def _whole_price(lmp: float) -> int:
    return int(math.floor(lmp + 0.5))


def _whole_wh(values: np.ndarray, where: list[str], zones: list[str], lines: Sequence[Mapping],
              reference_zone: str | None) -> np.ndarray:
    """Whole Wh within every line's own limit: the LP's values rounded by zone; where that
    pushes a line past its limit (a limit below the margin), the inter-zone trade shrunk
    by sixteenths until it fits. No inter-zone trade at all puts no flow on any line."""
    for share in np.linspace(1.0, 0.0, 17):
        whole = _round_by_zone(_shrink_interzone(values, where, zones, share), where, zones)
        injection = [int(whole[[z == zone for z in where]].sum()) for zone in zones]
        flows = _flows(lines, zones, injection, reference_zone)
        if all(-_limit(line, "capacity_back_wh") - 1e-6 <= flows[line["name"]] <= _limit(line, "capacity_wh") + 1e-6
               for line in lines):
            return whole
    raise AssertionError("no inter-zone trade must fit every line")  # unreachable: zero injections, zero flows


def _limit(line: Mapping, key: str) -> float:
    return float(line.get(key, line["capacity_wh"]))


def _shrink_interzone(values: np.ndarray, where: list[str], zones: list[str], share: float) -> np.ndarray:
    """`values` with each zone's net injection scaled by `share`: the zone's larger side
    (its sales and imports if it injects, else its purchases and exports) is scaled down
    so that the zone nets `share` of what it did. Every value stays between 0 and itself,
    so every order stays within its energy, and the zones still sum to zero."""
    if share == 1.0:
        return values
    out = values.copy()
    for zone in zones:
        members = np.array([z == zone for z in where])
        v = values[members]
        net = v.sum()
        same = v > 0 if net > 0 else v < 0
        if net == 0 or not same.any():
            continue
        scale = (share * net - v[~same].sum()) / v[same].sum()
        v = np.where(same, v * scale, v)
        out[members] = v
    return out


def _round_by_zone(values: np.ndarray, zone_of_value: list[str], zones: list[str]) -> np.ndarray:
    """Whole Wh: zone totals first (summing to zero), then each zone's values to its total."""
    totals = np.array([values[[z == zone for z in zone_of_value]].sum() for zone in zones])
    whole_totals = round_conserving(totals)
    result = np.zeros(len(values), dtype=np.int64)
    for zone, total in zip(zones, whole_totals):
        members = [i for i, z in enumerate(zone_of_value) if z == zone]
        if members:
            result[members] = largest_remainder(values[members], int(total))
    return result


def _flows(lines: Sequence[Mapping], zones: list[str], injection: list[int], reference_zone: str | None) -> dict[str, float]:
    index = {z: i for i, z in enumerate(zones)}
    if not lines:
        return {}
    A = np.zeros((len(lines), len(zones)))
    for i, line in enumerate(lines):
        A[i, index[line["zone_from"]]], A[i, index[line["zone_to"]]] = 1.0, -1.0
    ref = index[reference_zone] if reference_zone is not None else 0
    others = [i for i in range(len(zones)) if i != ref]
    weights = np.array([float(line["susceptance"]) for line in lines])
    theta = np.zeros(len(zones))
    theta[others] = np.linalg.solve((A[:, others].T * weights) @ A[:, others], np.asarray(injection, dtype=float)[others])
    return {line["name"]: float(f) for line, f in zip(lines, weights * (A @ theta))}


def _check(orders: Sequence[AuctionOrder], zone_of: Mapping[int, str], zones: Sequence[str],
           grid: Mapping[str, tuple[int, int]]) -> None:
    known = set(zones)
    for o in orders:
        if o.order_id == GRID:
            raise InputError(f"order id {o.order_id!r} is reserved for the grid's legs")
        zone = zone_of.get(o.participant)
        if zone not in known:
            raise InputError(f"order {o.order_id}: participant {o.participant} is in no zone of the network "
                             f"(zone {zone!r}); give every participant a zone")
    for zone, (import_wh, export_wh) in grid.items():
        if zone not in known:
            raise InputError(f"grid connection at {zone!r}, which is not a zone of the network")
        for what, value in (("import", import_wh), ("export", export_wh)):
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0):
                raise InputError(f"grid connection at {zone}: {what} must be Wh >= 0, got {value!r}")
            if math.isinf(value):
                raise InputError(f"grid connection at {zone}: {what} must be a finite number of Wh per interval")
