"""A community interval cleared on a network (issue 11), in chain units.

The community optimiser (`optimizer.zones`) gives each zone a price, the dual of its
balance; the settlement prices each home's P2P energy at its own zone's price, and the
market contract (ZonalSettlementModule) checks exactly that against the zone each
participant is registered in on chain, which is its zone's index in the network. What
buyers pay beyond what sellers get, the congestion rent, falls to the grid's wallet.

The contract cannot check a meshed network's line flows (PTDF arithmetic over every
zone); `network_reasons` is how an auditor checks them from the settled energies: a
zone's injection into the lines is its grid exchange less its homes' net energy, and
the flows are the PTDF times the injections.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from node.clearing.left_out import left_out_draw_kwh
from node.clearing.network_inputs import NO_LIMIT, NetworkInputs
from node.clearing.pricing import zonal_step0_integers, zone_prices_units
from node.errors import InputError
from node.intent.signing import Mandate
from optimizer.types import Clearing, ClearingInputs, ZoneNetwork
from optimizer.zones import NetworkBlock, zone_sum

MAX_ZONES = 64  # MarketStorage.MAX_ZONES: most zone prices one settlement carries


@dataclass(frozen=True)
class ZonalStep:
    """Step 0 of a zonal clearing in chain units, rows as the clearing's homes."""

    net_wh: np.ndarray  # + into the home
    p2p_wh: np.ndarray  # + bought from peers, - sold; sums to 0
    prices: np.ndarray  # each home's P2P price: its zone's, units per kWh
    zone_prices: tuple[int, ...]  # per zone, units per kWh
    refused: dict[int, str]  # participants whose mandate these prices break, and why


def check_zone_count(network: NetworkInputs, interval: int) -> None:
    if len(network.zones) > MAX_ZONES:
        raise InputError(
            f"interval {interval}'s network has {len(network.zones)} zones; a settlement prices at most {MAX_ZONES} "
            "(MarketStorage.MAX_ZONES): merge zones into fewer pricing zones"
        )


def subset_network(full: ClearingInputs, rows: np.ndarray) -> ZoneNetwork:
    """The network of homes `rows` of `full` only. Homes left out are settled by their
    supplier through their zone's grid connection: their forecast net flow (their jobs'
    and HVACs' draw included, node.clearing.left_out) comes off that zone's grid limit in the
    direction it loads it, as the community-wide capacity loses it on a copper plate."""
    net, T = full.network, full.horizon
    left_out = np.setdiff1d(np.arange(full.homes), rows)
    flow = full.load_kwh[left_out] - full.pv_kwh[left_out]
    for i, h in enumerate(left_out):
        flow[i] += left_out_draw_kwh(full.jobs, full.thermal, np.array([h]), full.homes, T)
    background = zone_sum(flow, net.home_zone[left_out], net.zones)
    return dataclasses.replace(
        net,
        home_zone=net.home_zone[rows],
        grid_import_kwh=np.maximum(net.grid_import_kwh - np.maximum(background, 0), 0),
        grid_export_kwh=np.maximum(net.grid_export_kwh - np.maximum(-background, 0), 0),
    )


def zonal_step(optimiser: Clearing, network: ZoneNetwork, ids: np.ndarray, buy: int, sell: int, p2p_fee: int,
               terms: list[Mandate | None]) -> ZonalStep:
    """Whole-Wh energies at the zone prices (`buy`: the import tariff; P2P prices stay
    within [sell, buy - fee] as the contract requires), each zone's grid energy within
    its step-0 connection limit in whole Wh (`fit_zone_grid`), and the participants whose
    mandate's price limits those prices break (the caller clears again without them)."""
    home_zone = network.home_zone
    net_wh, p2p_wh, prices = zonal_step0_integers(optimiser, home_zone, buy - p2p_fee, sell)
    # A zone with neither import nor export is one without a connection: its homes' grid
    # energy came over the lines, and the chain holds no limit for it (CommunityNetwork).
    import_wh, export_wh = _floor_wh(network.grid_import_kwh[:, 0]), _floor_wh(network.grid_export_kwh[:, 0])
    unconnected = (import_wh == 0) & (export_wh == 0)
    p2p_wh = fit_zone_grid(net_wh, p2p_wh, home_zone, np.where(unconnected, NO_LIMIT, import_wh),
                           np.where(unconnected, NO_LIMIT, export_wh))
    zone_prices = tuple(int(p) for p in zone_prices_units(optimiser, buy - p2p_fee, sell))
    grid_wh = net_wh - p2p_wh
    # Each entry's wallet change in thousandths of a unit, as the contract prices it.
    milli = -grid_wh * np.where(grid_wh > 0, buy, sell) - p2p_wh * prices - np.maximum(p2p_wh, 0) * p2p_fee
    refused = {}
    for i, m in enumerate(terms):
        net = int(net_wh[i])
        if m is None or net == 0:
            continue
        if net > 0 and -int(milli[i]) > net * m.max_buy_price:
            refused[int(ids[i])] = (f"mandate {m.nonce} pays at most {m.max_buy_price}/kWh; at its zone's P2P price "
                                    f"{int(prices[i])} and the grid's {buy} it would pay {-int(milli[i]) / net:.0f}/kWh")
        elif net < 0 and int(milli[i]) < -net * m.min_sell_price:
            refused[int(ids[i])] = (f"mandate {m.nonce} sells at no less than {m.min_sell_price}/kWh; at its zone's "
                                    f"P2P price {int(prices[i])} and the grid's {sell} it would get "
                                    f"{int(milli[i]) / -net:.0f}/kWh")
    return ZonalStep(net_wh, p2p_wh, prices, zone_prices, refused)


def _floor_wh(kwh: np.ndarray) -> np.ndarray:
    """Limits in whole Wh, rounded down (NO_LIMIT for none), as NetworkInputs commits them."""
    return np.where(np.isfinite(kwh), np.floor(np.where(np.isfinite(kwh), kwh, 0) * 1000 + 1e-9), NO_LIMIT).astype(np.int64)


def fit_zone_grid(net_wh: np.ndarray, p2p_wh: np.ndarray, home_zone: np.ndarray, import_wh: np.ndarray,
                  export_wh: np.ndarray) -> np.ndarray:
    """`p2p_wh` with whole Wh moved between zones so that every zone's grid energy
    (Σ net - P2P of its homes, + imported) lies within [-export_wh, import_wh]
    (NO_LIMIT: none), still summing to 0; the contract checks each zone's limit exactly.
    The clearing keeps each zone's exchange within its limit less a margin of 1 Wh per
    home, but rounding every home's energy to the Wh can pass it, and the clearing
    splits P2P from grid energy community-wide (`optimizer.zones.split_zonal`), so it can
    give the homes of a zone with a small connection grid energy that entered at
    another zone. A zone over its limit buys (or sells) the excess P2P, on the home that
    imports (exports) most; a zone with room takes the other side on the home that
    exports (imports) most, so that both trade less with the grid. A zone that no
    other zone can balance is left as it is (the contract then refuses the settlement,
    naming the zone)."""
    p2p = np.array(p2p_wh, dtype=np.int64, copy=True)
    zone = np.asarray(home_zone)
    imp = np.where(np.asarray(import_wh) == NO_LIMIT, np.iinfo(np.int64).max // 4, import_wh).astype(np.int64)
    exp = np.where(np.asarray(export_wh) == NO_LIMIT, np.iinfo(np.int64).max // 4, export_wh).astype(np.int64)

    def grid(z: int) -> int:
        return int((net_wh[zone == z] - p2p[zone == z]).sum())

    def move(z: int, wh: int) -> None:
        """Zone z's homes buy `wh` more P2P (sell, if negative): its grid energy falls by wh."""
        rows = np.flatnonzero(zone == z)
        g = net_wh[rows] - p2p[rows]
        p2p[rows[int(np.argmax(g)) if wh > 0 else int(np.argmin(g))]] += wh

    for z in range(len(imp)):
        if not (zone == z).any():
            continue
        g = grid(z)
        need = g - imp[z] if g > imp[z] else (g + exp[z] if g < -exp[z] else 0)
        for y in range(len(imp)):
            if need == 0:
                break
            if y == z or not (zone == y).any():
                continue
            # Zone y's grid energy rises by what it gives: how much of `need` it can take.
            gy = grid(y)
            room = max(min(need, imp[y] - gy), 0) if need > 0 else min(max(need, -exp[y] - gy), 0)
            if room:
                move(z, room)
                move(y, -room)
                need -= room
    return p2p


def settled_injections_wh(network: NetworkInputs, participants: list[int], entries: dict[int, tuple[int, int]]
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Each zone's grid exchange (Wh, + imported) and injection into the lines when
    participant p settled `entries[p]` = (grid Wh, P2P Wh), both + into the home. A
    zone's injection is its grid exchange less its homes' net energy; its grid exchange
    is its homes' grid energy where the zone has a grid connection, and homes in a zone
    without one draw theirs through the lines from the reference zone (or, if that has
    no connection either, the first zone with one), which is exact on a radial grid fed
    at its root. `participants` is the inputs' order (the network's participant_zone)."""
    zone_of = dict(zip(participants, network.participant_zone))
    connected = [any(network.grid_import_wh[z][:1]) or any(network.grid_export_wh[z][:1]) for z in range(len(network.zones))]
    feeder = network.reference_zone if connected[network.reference_zone] else next(
        (z for z, c in enumerate(connected) if c), network.reference_zone)
    exchange, injection = np.zeros(len(network.zones)), np.zeros(len(network.zones))
    for pid, (grid, p2p) in entries.items():
        zone = zone_of[pid]
        injection[zone] -= grid + p2p
        exchange[zone if connected[zone] else feeder] += grid
    return exchange, injection + exchange


def settled_line_flows_wh(network: NetworkInputs, participants: list[int], entries: dict[int, tuple[int, int]]
                          ) -> np.ndarray:
    """Each line's step-0 flow (Wh, + from line_from to line_to) of the settled
    energies: the PTDF times the zones' injections (`settled_injections_wh`)."""
    if not network.line_from:
        return np.zeros(0)
    _, injection = settled_injections_wh(network, participants, entries)
    return NetworkBlock(network.to_network(), max(network.steps, 1)).ptdf @ injection


def network_reasons(network: NetworkInputs, participants: list[int], entries: dict[int, tuple[int, int]]) -> list[str]:
    """Lines the settled energies load beyond their committed step-0 limits, and zones
    whose grid exchange passes their connection's committed limit. Each
    home's energy is rounded to the Wh after the clearing, so a flow may pass its limit
    by at most one Wh per settled home."""
    unknown = sorted(set(entries) - set(participants))
    if unknown:
        return [f"participants {unknown[:10]} are settled but have no zone in the committed network"]
    flows = settled_line_flows_wh(network, participants, entries)
    slack = len(entries)
    reasons = []
    exchange, _ = settled_injections_wh(network, participants, entries)
    for z, wh in enumerate(exchange):
        limit, way = (network.grid_import_wh[z][0], "imports from") if wh > 0 else (network.grid_export_wh[z][0], "exports to")
        if limit != NO_LIMIT and abs(wh) > limit + slack:
            reasons.append(f"zone {network.zones[z]} {way} the grid {abs(wh):.0f} Wh, over its limit of {limit} Wh")
    for line, flow in enumerate(flows):
        forward, back = network.line_forward_wh[line][0], network.line_back_wh[line][0]
        a, b = network.zones[network.line_from[line]], network.zones[network.line_to[line]]
        if forward != NO_LIMIT and flow > forward + slack:
            reasons.append(f"line {line} ({a}->{b}) carries {flow:.0f} Wh, over its limit of {forward} Wh")
        if back != NO_LIMIT and -flow > back + slack:
            reasons.append(f"line {line} ({b}->{a}) carries {-flow:.0f} Wh, over its limit of {back} Wh")
    return reasons
