"""A settlement as the market contract takes it: integer energies and amounts, packed
into the contract's calldata words (SettlementEntry, PackedOrder).

This module only encodes; what the numbers are is decided upstream (node.clearing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from node.errors import InputError
from node.intent.signing import Order, SignedOrder, split_signature

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
    auditor's way back from calldata to something node.intent.signing can verify)."""
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
