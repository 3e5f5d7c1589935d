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
PACKED_NONCE_BITS = 56  # see contracts/src/lib/PackedOrder.sol
BY_ORDER = 1 << 255  # SettlementEntry flags, see contracts/src/lib/SettlementEntry.sol
EXCLUDED = 1 << 254
PARTICIPANT_MASK = (1 << 30) - 1


@dataclass(frozen=True)
class Settlement:
    """One interval's settlement in chain units; per-participant arrays are aligned.

    The tariffs and the P2P fee are the chain's terms for the interval (version
    ``terms_index``), which the contract prices every entry by. ``p2p_prices`` (units
    per kWh, one per entry) makes it a pay-as-bid settlement; ``p2p_price`` then only
    prices mandate-authorised entries on chain (their entries in ``p2p_prices`` must
    equal it) and is otherwise informational, but must still lie between the export
    tariff and the import tariff less the fee. ``None``: every entry at ``p2p_price``.
    ``excluded`` names participants left out with their metered net energy (Wh): the
    contract checks that their mandate or credit rules out settling it at the tariff.
    ``zone_prices`` (units per kWh, one per zone on chain) makes it zonal
    (EnergyMarket.settleZonal): ``p2p_prices`` then holds each entry's zone price, the
    contract checks it against the participant's zone, and ``p2p_price`` is the
    community's reference price (the lowest zone price)."""

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
    p2p_fee: int = 0  # units per kWh bought P2P, paid to the grid's wallet
    terms_index: int = 0  # the chain's terms version in force for the interval
    excluded: tuple[tuple[int, int], ...] = ()  # (participant, metered net Wh) left out
    # Storage fees the share participants' amounts include, which the contract credits to
    # the terms' storage operator (node.chain.shares): amounts + grid_amount + storage_fees == 0.
    storage_fees: int = 0
    storage_operator: int = 0
    zone_prices: tuple[int, ...] = ()  # zonal: P2P price of each zone, units per kWh

    @property
    def pay_as_bid(self) -> bool:
        return self.p2p_prices is not None and not self.zone_prices

    @property
    def zonal(self) -> bool:
        return bool(self.zone_prices)

    @property
    def congestion_rent_milli(self) -> int:
        """What P2P buyers pay beyond what P2P sellers get, thousandths of a unit (0 at
        one price): part of the grid's wallet change."""
        prices = self.p2p_prices if self.p2p_prices is not None else np.full(len(self.p2p_wh), self.p2p_price)
        return int(np.asarray(self.p2p_wh, dtype=np.int64) @ np.asarray(prices, dtype=np.int64))

    @property
    def grid_import_wh(self) -> int:
        return int(self.grid_wh[self.grid_wh > 0].sum())

    @property
    def grid_export_wh(self) -> int:
        return int(-self.grid_wh[self.grid_wh < 0].sum())

    def header(self) -> tuple:
        """The contract's ``Header`` struct (MarketStorage.Header)."""
        return (self.interval, self.inputs_hash, self.p2p_price, self.terms_index)

    def entries(self, by_order: frozenset[int] | set[int] = frozenset()) -> list[int]:
        """Participants packed as SettlementEntry words in ascending order (see
        contracts/src/lib/SettlementEntry.sol): those in `by_order` flagged as authorised
        by an order, the rest by mandate, and the excluded ones flagged as such."""
        words = [
            (BY_ORDER if int(pid) in by_order else 0) | entry_word(int(pid), int(g), int(p), int(a))
            for pid, g, p, a in zip(self.participants, self.grid_wh, self.p2p_wh, self.amount)
        ]
        words += [EXCLUDED | entry_word(pid, net, 0, 0) for pid, net in self.excluded]
        return sorted(words, key=lambda w: (w >> 224) & PARTICIPANT_MASK)


def storage_fee_units(net_wh: int, fee_per_kwh: int) -> int:
    """The storage fee of one share entry with net energy `net_wh` (+ into the account),
    as SharedBatteryFees._storageFeeOf: whole units, rounded half up; 0 for energy out."""
    return (net_wh * fee_per_kwh + 500) // 1000 if net_wh > 0 else 0


def entry_word(participant: int, grid_wh: int, p2p_wh: int, amount: int) -> int:
    """A SettlementEntry word without flags."""
    return (participant << 224) | ((grid_wh & _MASK48) << 176) | ((p2p_wh & _MASK48) << 128) | (amount & _MASK128)


@dataclass(frozen=True)
class Entry:
    """One decoded SettlementEntry word, as EntriesSettled logs it."""

    participant: int
    grid_wh: int
    p2p_wh: int
    amount: int
    by_order: bool
    excluded: bool

    @property
    def net_wh(self) -> int:
        return self.grid_wh + self.p2p_wh


def decode_entry(word: int) -> Entry:
    """The fields of a SettlementEntry word (signed ones sign-extended)."""

    def signed(value: int, bits: int) -> int:
        return value - (1 << bits) if value >> (bits - 1) else value

    return Entry(
        participant=(word >> 224) & PARTICIPANT_MASK,
        grid_wh=signed((word >> 176) & _MASK48, 48),
        p2p_wh=signed((word >> 128) & _MASK48, 48),
        amount=signed(word & _MASK128, 128),
        by_order=bool(word & BY_ORDER),
        excluded=bool(word & EXCLUDED),
    )


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
