"""What the market can settle: each signed field against what the contract encodes.

EIP-712 lets a participant sign any uint64, but a settlement carries some fields in
narrower slots (contracts/src/lib/PackedOrder.sol, SettlementEntry.sol): an order's nonce
in 56 bits, every entry's grid and P2P energy in an int48. An order outside them is
valid typed data that no settlement can ever carry, so it would fail every retry of
its interval. The order book refuses such orders on receipt (the API answers 400
naming the field), and the oracle skips and names any it still finds, so one
participant can never halt the market.

`tests/test_bounds.py` checks these limits against node.chain.settlement's encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from node.intent.signing import Order

ORDER_NONCE_BITS = 56  # PackedOrder's nonce field
# SettlementEntry's grid and P2P energies are int48. An entry's energies are at most its
# order's energy (a fill never exceeds what was signed), so this bound on orders keeps
# every entry encodable, and energy x price stays far inside the int128 amount.
MAX_ENTRY_WH = 2**47 - 1
# An order may be for an interval at most this far ahead of the next open one: a year
# of 15-minute intervals. Further ahead it would only sit in the book.
MAX_INTERVALS_AHEAD = 366 * 96


@dataclass(frozen=True)
class Unsettlable:
    """Why an order cannot be settled: the field (EIP-712 name) and the reason."""

    field: str
    reason: str

    def __str__(self) -> str:
        return self.reason


def order_problem(order: Order, next_interval: int | None = None) -> Unsettlable | None:
    """Why no settlement can carry `order` (None if one can). With `next_interval`, an
    order for an interval too far ahead of it is refused too."""
    if order.nonce >= 1 << ORDER_NONCE_BITS:
        return Unsettlable("order.nonce", (
            f"order.nonce {order.nonce} does not fit the settlement's {ORDER_NONCE_BITS} bits: sign the order again "
            f"with a nonce below 2**{ORDER_NONCE_BITS} ({1 << ORDER_NONCE_BITS})"))
    if order.energy_wh > MAX_ENTRY_WH:
        return Unsettlable("order.energyWh", (
            f"order.energyWh {order.energy_wh} is more than a settlement entry can carry ({MAX_ENTRY_WH} Wh, an "
            "int48): sign an order for less energy"))
    if next_interval is not None and order.interval > next_interval + MAX_INTERVALS_AHEAD:
        return Unsettlable("order.interval", (
            f"order.interval {order.interval} is more than {MAX_INTERVALS_AHEAD} intervals after the next open one "
            f"({next_interval}): orders are taken for the coming year only"))
    return None
