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

from dataclasses import dataclass

import numpy as np

from node.errors import InputError
from node.signing import BUY, Order, SignedOrder, split_signature
from optimizer.auction import Side, effective_limit
from optimizer.types import Clearing

TOKEN_DECIMALS = 6
UNITS_PER_TOKEN = 10**TOKEN_DECIMALS
_MASK48 = (1 << 48) - 1
_MASK128 = (1 << 128) - 1
PACKED_NONCE_BITS = 56  # see contracts/src/PackedOrder.sol


@dataclass(frozen=True)
class Settlement:
    """One interval's settlement in chain units; per-participant arrays are aligned.

    ``p2p_prices`` (units per kWh, one per entry) makes it a pay-as-bid settlement;
    ``p2p_price`` then only prices mandate-authorised entries on chain (their entries
    in ``p2p_prices`` must equal it) and is otherwise informational, but must still
    lie between the tariffs. ``None``: every entry at ``p2p_price``."""

    interval: int
    inputs_hash: bytes
    buy_price: int  # minor units per kWh
    sell_price: int
    p2p_price: int
    participants: np.ndarray  # ascending participant ids (the grid, 0, excluded)
    grid_wh: np.ndarray  # + imported from the grid, - exported
    p2p_wh: np.ndarray  # + bought from peers, - sold
    amount: np.ndarray  # wallet change, minor units
    grid_amount: int  # wallet change of the grid
    p2p_prices: np.ndarray | None = None  # per entry, units per kWh; None: uniform at p2p_price

    @property
    def pay_as_bid(self) -> bool:
        return self.p2p_prices is not None

    @property
    def grid_import_wh(self) -> int:
        return int(self.grid_wh[self.grid_wh > 0].sum())

    @property
    def grid_export_wh(self) -> int:
        return int(-self.grid_wh[self.grid_wh < 0].sum())

    def header(self) -> tuple:
        """The contract's ``Settlement`` struct."""
        return (
            self.interval,
            self.inputs_hash,
            self.buy_price,
            self.sell_price,
            self.p2p_price,
            self.grid_import_wh,
            self.grid_export_wh,
            self.grid_amount,
            self.pay_as_bid,
        )

    def entries(self, by_order: frozenset[int] | set[int] = frozenset()) -> list[int]:
        """Participants packed as SettlementEntry words (see contracts/src/SettlementEntry.sol);
        those in `by_order` are flagged as authorised by an order, the rest by mandate."""
        return [
            (int(int(pid) in by_order) << 255) | (int(pid) << 224) | ((int(g) & _MASK48) << 176)
            | ((int(p) & _MASK48) << 128) | (int(a) & _MASK128)
            for pid, g, p, a in zip(self.participants, self.grid_wh, self.p2p_wh, self.amount)
        ]


def pack_order(signed: SignedOrder) -> tuple[int, bytes, bytes]:
    """The contract's ``OrderAuth`` (PackedOrder word, r, vs) of a signed order: the
    fields the settlement does not fix, packed into one word, and the signature in
    EIP-2098 compact form (v folded into the top bit of s)."""
    order = signed.order
    if order.nonce >= 1 << PACKED_NONCE_BITS:
        raise InputError(
            f"order nonce {order.nonce} of participant {order.participant} does not fit the settlement's "
            f"{PACKED_NONCE_BITS} bits; sign the order again with a nonce below 2**{PACKED_NONCE_BITS}"
        )
    r, s, v = split_signature(signed.signature)
    packed = (order.side << 248) | (order.energy_wh << 184) | (order.limit_price << 120) | (order.expiry << 56) | order.nonce
    vs = ((v - 27) << 255) | s
    return packed, r.to_bytes(32, "big"), vs.to_bytes(32, "big")


def unpack_order(participant: int, interval: int, packed: int, r: bytes | str, vs: bytes | str) -> SignedOrder:
    """The signed order an ``OrderAuth`` of a settlement for `interval` stands for (the
    auditor's way back from calldata to something node.signing can verify)."""
    r, vs = (bytes.fromhex(x[2:]) if isinstance(x, str) else bytes(x) for x in (r, vs))  # web3 decodes to hex
    vs_int = int.from_bytes(vs, "big")
    order = Order(
        participant=participant,
        interval=interval,
        side=packed >> 248,
        energy_wh=(packed >> 184) & (2**64 - 1),
        limit_price=(packed >> 120) & (2**64 - 1),
        expiry=(packed >> 56) & (2**64 - 1),
        nonce=packed & (2**PACKED_NONCE_BITS - 1),
    )
    signature = bytes(r) + (vs_int & (2**255 - 1)).to_bytes(32, "big") + bytes([27 + (vs_int >> 255)])
    return SignedOrder(order, signature)


def pay_as_bid_price(side: int, limit_price: int, buy_price: int, sell_price: int) -> int:
    """What the contract prices an order's P2P energy at in a pay-as-bid settlement
    (EnergyMarket._checkOrder): the order's limit clipped to the grid tariffs, a buy
    at min(limit, buy tariff), a sell at max(limit, sell tariff); the same effective
    limit as optimizer.auction."""
    return effective_limit(Side.BUY if side == BUY else Side.SELL, limit_price, buy_price, sell_price)


def price_units(price_per_kwh: float) -> int:
    """A currency-per-kWh price in minor units per kWh."""
    return int(round(price_per_kwh * UNITS_PER_TOKEN))


def step0_integers(clearing: Clearing, buy_price: int, sell_price: int) -> tuple[np.ndarray, int]:
    """Step 0 of an optimiser `clearing` in chain units: each home's net energy in whole
    Wh (+ into the home, rows as in the clearing) and the P2P price in units per kWh,
    clipped to the tariffs `buy_price`/`sell_price`."""
    net_kwh = clearing.grid_import_kwh - clearing.grid_export_kwh + clearing.p2p_buy_kwh - clearing.p2p_sell_kwh
    net_wh = np.rint(net_kwh * 1000).astype(np.int64)
    return net_wh, min(max(price_units(clearing.p2p_price_per_kwh), sell_price), buy_price)


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
) -> Settlement:
    """A settlement of integer energies (participants ascending) at the given prices,
    with wallet changes that conserve money exactly. With `p2p_prices` (units per kWh,
    one per participant) it is pay-as-bid: each participant's P2P energy at its own
    price (see ``pay_as_bid_price``; mandate-authorised participants at `p2p_price`)."""
    grid_wh = np.asarray(grid_wh, dtype=np.int64)
    p2p_wh = np.asarray(p2p_wh, dtype=np.int64)
    if p2p_prices is not None:
        p2p_prices = np.asarray(p2p_prices, dtype=np.int64)
        if p2p_prices.shape != p2p_wh.shape:
            raise InputError(f"{len(p2p_prices)} P2P prices for {len(p2p_wh)} participants: give one per participant")
    amount, grid_amount = _payments(grid_wh, p2p_wh, buy_price, sell_price, p2p_price if p2p_prices is None else p2p_prices)
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
    )


def _payments(
    grid_wh: np.ndarray, p2p_wh: np.ndarray, buy_price: int, sell_price: int, p2p_price: int | np.ndarray
) -> tuple[np.ndarray, int]:
    """Wallet changes in minor units, P2P energy at `p2p_price` (one price, or one per
    participant). Exact values are in thousandths of a unit (Wh times units per kWh);
    the grid's is minus the participants' sum, as the contract checks it, so they sum
    to zero and rounding them together conserves money."""
    grid_milli = grid_wh * np.where(grid_wh > 0, buy_price, sell_price)
    milli = -grid_milli - p2p_wh * p2p_price
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
