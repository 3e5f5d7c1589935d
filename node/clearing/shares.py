"""Accounts in shared batteries, as the contract keeps them (SharedBatteryFees).

An account holds the energy it can *deliver at its meter*, in pWh (10^-12 Wh), exact in
integers: an entry taking in w Wh at the meter adds w x c x d pWh (c, d: the battery's
charge and discharge efficiency in millionths), one giving out w Wh takes w x 10^12; a
share of S Wh holds at most S x d x 10^6 pWh. The contract refuses energy in above that
and energy out below zero, so the oracle carries the same integer from interval to
interval (in the committed inputs: ShareInputs.deliverable_pwh) and, after rounding the
optimiser's step to whole Wh, trims a share's entry to the Wh it may move (`clamp_shares`:
its grid energy takes the difference, at most a Wh or so, which the capacity margin of a
Wh per home covers).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

PPM = 1_000_000
PWH_PER_WH = 10**12


def deliverable_delta(net_wh: int, charge_ppm: int, discharge_ppm: int) -> int:
    """pWh an entry of `net_wh` at the meter (+ in) adds to an account (- takes)."""
    return net_wh * charge_ppm * discharge_ppm if net_wh > 0 else net_wh * PWH_PER_WH


def capacity_pwh(share_wh: int, discharge_ppm: int) -> int:
    """The most pWh an account of `share_wh` holds."""
    return share_wh * discharge_ppm * PPM


def stored_pwh(stored_wh: int, discharge_ppm: int) -> int:
    """What an account holding `stored_wh` can deliver (its registration's)."""
    return stored_wh * discharge_ppm * PPM


def allowed_net_wh(net_wh: int, before_pwh: int, share_wh: int, charge_ppm: int, discharge_ppm: int) -> int:
    """`net_wh` trimmed to what the contract takes: in at most up to the share, out at
    most down to zero (an account a dispute left below zero gives nothing out)."""
    if net_wh > 0:
        room = capacity_pwh(share_wh, discharge_ppm) - before_pwh
        return min(net_wh, max(room, 0) // (charge_ppm * discharge_ppm))
    if net_wh < 0:
        return max(net_wh, -(max(before_pwh, 0) // PWH_PER_WH))
    return 0


def share_terms(inputs) -> dict[int, tuple[int, int, int, int]]:
    """participant -> (deliverable pWh, share Wh, charge ppm, discharge ppm) of the
    inputs' shares that carry their energy (older inputs do not: nothing to trim)."""
    batteries = {b.participant: b for b in inputs.batteries}
    out = {}
    for s in inputs.shares:
        b = batteries.get(s.participant)
        if s.deliverable_pwh is not None and b is not None:
            out[s.participant] = (s.deliverable_pwh, s.share_wh, b.charge_efficiency_ppm, b.discharge_efficiency_ppm)
    return out


def clamp_shares(inputs, result):
    """`result` with each share's entry trimmed to what its account may move."""
    terms = share_terms(inputs)
    if not terms:
        return result
    grid = np.array(result.grid_wh, dtype=np.int64, copy=True)
    changed = False
    for i, pid in enumerate(np.asarray(result.participants).tolist()):
        if pid not in terms:
            continue
        net = int(grid[i] + result.p2p_wh[i])
        allowed = allowed_net_wh(net, *terms[pid])
        if allowed != net:
            grid[i] += allowed - net
            changed = True
    return replace(result, grid_wh=grid) if changed else result


def shares_after(inputs, result) -> dict[int, int]:
    """Each share's deliverable pWh after the interval's settlement of `result`."""
    terms = share_terms(inputs)
    after = {pid: t[0] for pid, t in terms.items()}
    for pid, g, p in zip(np.asarray(result.participants).tolist(), np.asarray(result.grid_wh).tolist(),
                         np.asarray(result.p2p_wh).tolist()):
        if pid in terms:
            _, _, c, d = terms[pid]
            after[pid] += deliverable_delta(int(g + p), c, d)
    return after


def auction_order_bounds(inputs, participant: int, side_buy: bool, energy_wh: int, limit_price: int
                         ) -> tuple[int, int] | None:
    """(energy Wh, limit) an account's order may clear with in an auction: its energy
    within what its account may take in or give out, a buy's limit less the storage fee
    (which the account pays on top of the price, within its signed limit). None: the
    order cannot settle (nothing to move, or a buy under pay-as-bid, where the contract
    prices a buyer's P2P energy at its own limit, leaving no room for the fee)."""
    terms = share_terms(inputs).get(participant)
    if terms is None:
        return energy_wh, limit_price
    if side_buy:
        if inputs.pricing == "pay_as_bid" and inputs.storage_fee:
            return None
        energy = allowed_net_wh(energy_wh, *terms)
        limit = max(limit_price - inputs.storage_fee, 0)
    else:
        energy, limit = -allowed_net_wh(-energy_wh, *terms), limit_price
    return (energy, limit) if energy > 0 else None
