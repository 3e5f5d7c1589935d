"""From a clearing (floats) to the settlement the market contract checks (integers).

This is the one place where kWh become Wh and currency becomes minor units
(`step0_integers`, `priced_settlement`). Money conservation is exact: the wallet
changes of all participants and the grid sum to zero to the unit, each within one unit
of its exact value, as the contract verifies. (node.clearing splits the whole-Wh net
energies between peers and the grid, so P2P energy bought equals sold to the Wh.)

P2P energy is priced either uniformly (every entry at ``p2p_price``) or pay-as-bid
(each entry at its own price, ``p2p_prices``: for an order-authorised entry the
contract requires its order's effective limit, ``pay_as_bid_price``). Either way the
grid's wallet takes the other side of every payment, so under pay-as-bid it also
receives the spread between what buyers pay and sellers receive.
"""

from __future__ import annotations


import numpy as np

from node.errors import InputError
from node.chain.settlement import Settlement, storage_fee_units
from node.intent.signing import BUY
from node.units import round_price_units
from optimizer.auction import Side, effective_limit
from optimizer.rounding import round_conserving
from optimizer.types import Clearing



def pay_as_bid_price(side: int, limit_price: int, buy_price: int, sell_price: int, p2p_fee: int = 0) -> int:
    """What the contract prices an order's P2P energy at in a pay-as-bid settlement
    (EntryChecks._checkOrder): the order's limit clipped to the grid tariffs, the same
    effective limit as optimizer.auction; a buyer's limit is all-in, so its P2P price is
    that less the P2P fee (never below 0), a seller's is max(limit, sell tariff)."""
    limit = effective_limit(Side.BUY if side == BUY else Side.SELL, limit_price, buy_price, sell_price)
    return max(limit - p2p_fee, 0) if side == BUY else limit


def step0_integers(clearing: Clearing, buy_price: int, sell_price: int) -> tuple[np.ndarray, int]:
    """Step 0 of an optimiser `clearing` in chain units: each home's net energy in whole
    Wh (+ into the home, rows as in the clearing) and the P2P price in units per kWh,
    clipped to the tariffs `buy_price`/`sell_price`."""
    net_kwh = clearing.grid_import_kwh - clearing.grid_export_kwh + clearing.p2p_buy_kwh - clearing.p2p_sell_kwh
    net_wh = np.rint(net_kwh * 1000).astype(np.int64)
    return net_wh, min(max(round_price_units(clearing.p2p_price_per_kwh), sell_price), buy_price)


def zonal_step0_integers(clearing: Clearing, home_zone: np.ndarray, buy_price: int, sell_price: int
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step 0 of a zonal `clearing` (`optimizer.zones`) in chain units: each home's net
    energy and its P2P part (+ bought, - sold) in whole Wh, the P2P parts summing to 0
    exactly, and each home's P2P price: its zone's, in units per kWh, clipped to the
    tariffs. Priced with `priced_settlement(..., p2p_prices=...)`, what buyers pay beyond
    what sellers receive (the congestion rent) falls to the grid's wallet with its legs."""
    if clearing.zone_price_per_kwh is None:
        raise InputError("the clearing has no zone prices: clear with a network (ClearingInputs.network)")
    net_wh, _ = step0_integers(clearing, buy_price, sell_price)
    p2p_wh = round_conserving((clearing.p2p_buy_kwh - clearing.p2p_sell_kwh) * 1000).astype(np.int64)
    return net_wh, p2p_wh, zone_prices_units(clearing, buy_price, sell_price)[np.asarray(home_zone)]


def zone_prices_units(clearing: Clearing, buy_price: int, sell_price: int) -> np.ndarray:
    """Each zone's P2P price in units per kWh, clipped to the tariffs (as the contract
    bounds it: `buy_price` is the import tariff less the P2P fee)."""
    if clearing.zone_price_per_kwh is None:
        raise InputError("the clearing has no zone prices: clear with a network (ClearingInputs.network)")
    return np.array([min(max(round_price_units(p), sell_price), buy_price) for p in clearing.zone_price_per_kwh],
                    dtype=np.int64)


def congestion_rent_milli(p2p_wh: np.ndarray, p2p_prices: np.ndarray) -> int:
    """What P2P buyers pay minus what P2P sellers receive, in thousandths of a unit."""
    return int(np.asarray(p2p_wh, dtype=np.int64) @ np.asarray(p2p_prices, dtype=np.int64))


def priced_settlement(
    interval: int,
    inputs_hash: bytes,
    participants: np.ndarray,
    grid_wh: np.ndarray,
    p2p_wh: np.ndarray,
    buy_price: int,
    sell_price: int,
    p2p_price: int,
    p2p_prices: np.ndarray | None = None,
    p2p_fee: int = 0,
    terms_index: int = 0,
    excluded: tuple[tuple[int, int], ...] = (),
    storage_fee: int = 0,
    storage_operator: int = 0,
    shares: frozenset[int] | set[int] = frozenset(),
    zone_prices: tuple[int, ...] = (),
) -> Settlement:
    """A settlement of integer energies (participants ascending) at the given prices,
    with wallet changes that conserve money exactly. With `p2p_prices` (units per kWh,
    one per participant) it is pay-as-bid: each participant's P2P energy at its own
    price (see ``pay_as_bid_price``; mandate-authorised participants at `p2p_price`).
    Energy bought P2P also pays `p2p_fee` per kWh, to the grid's wallet. A participant
    in `shares` (a home's account in a shared battery) also pays `storage_fee` per kWh
    it takes in, in whole units per entry (node.chain.shares.storage_fee_units), to the
    `storage_operator`'s wallet; the grid's side is that of the energy alone. With `zone_prices` it is
    zonal: `p2p_prices` are then each participant's zone price."""
    grid_wh = np.asarray(grid_wh, dtype=np.int64)
    p2p_wh = np.asarray(p2p_wh, dtype=np.int64)
    if p2p_prices is not None:
        p2p_prices = np.asarray(p2p_prices, dtype=np.int64)
        if p2p_prices.shape != p2p_wh.shape:
            raise InputError(f"{len(p2p_prices)} P2P prices for {len(p2p_wh)} participants: give one per participant")
    amount, grid_amount = _payments(
        grid_wh, p2p_wh, buy_price, sell_price, p2p_price if p2p_prices is None else p2p_prices, p2p_fee
    )
    fees = np.array([storage_fee_units(int(g + p), storage_fee) if int(pid) in shares else 0
                     for pid, g, p in zip(participants, grid_wh, p2p_wh)], dtype=np.int64)
    amount = amount - fees
    return Settlement(
        interval=interval,
        inputs_hash=inputs_hash,
        buy_price=buy_price,
        sell_price=sell_price,
        p2p_price=p2p_price,
        participants=np.asarray(participants, dtype=np.int64),
        grid_wh=grid_wh,
        p2p_wh=p2p_wh,
        amount=amount,
        grid_amount=grid_amount,
        p2p_prices=p2p_prices,
        p2p_fee=p2p_fee,
        terms_index=terms_index,
        excluded=tuple(excluded),
        storage_fees=int(fees.sum()),
        storage_operator=storage_operator,
        zone_prices=tuple(int(p) for p in zone_prices),
    )


def _payments(
    grid_wh: np.ndarray,
    p2p_wh: np.ndarray,
    buy_price: int,
    sell_price: int,
    p2p_price: int | np.ndarray,
    p2p_fee: int = 0,
) -> tuple[np.ndarray, int]:
    """Wallet changes in minor units, P2P energy at `p2p_price` (one price, or one per
    participant) plus the fee on what is bought. Exact values are in thousandths of a
    unit (Wh times units per kWh); the grid's is minus the participants' sum, as the
    contract checks it, so they sum to zero and rounding them together conserves money."""
    grid_milli = grid_wh * np.where(grid_wh > 0, buy_price, sell_price)
    milli = -grid_milli - p2p_wh * p2p_price - np.maximum(p2p_wh, 0) * p2p_fee
    units = round_milli(np.append(milli, -milli.sum()))
    return units[:-1], int(units[-1])


def round_milli(milli: np.ndarray) -> np.ndarray:
    """Integers within one unit of ``milli / 1000`` that sum exactly to
    ``sum(milli) / 1000`` (largest remainder, ties to the lower index)."""
    milli = np.asarray(milli, dtype=np.int64)
    total, rest = divmod(int(milli.sum()), 1000)
    if rest:
        raise ValueError(f"amounts sum to {int(milli.sum())} thousandths, not a whole number of units")
    floor = milli // 1000
    remainder = milli - floor * 1000
    short = total - int(floor.sum())
    winners = np.lexsort((np.arange(len(milli)), -remainder))[:short]
    floor[winners] += 1
    return floor
