"""Participants' signed intent as EIP-712 typed data: orders, mandates, revocations,
and the read requests that show a server who asks for a participant's own orders.

EIP-712 is what wallets (MetaMask's ``eth_signTypedData_v4``, hardware wallets) show
a human field by field before signing, and what OpenZeppelin's ``EIP712`` and
``ECDSA`` check on chain. The market contract recomputes the same digests from the
type strings below, so they must match it character for character: paste
``SOLIDITY_TYPEHASHES`` into the contract rather than retyping them.

Each message type is described once (``_Field`` tables, node.intent.eip712); the type
string, the struct hash, the wallet JSON, range checks and JSON parsing all derive from
that table, so they cannot drift apart. Integers are the chain's: energy in Wh, prices in token
minor units (6 decimals) per kWh, times in unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Union

from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from node.errors import InputError
from node.intent.eip712 import (  # noqa: F401 (the EIP-712 machinery, used through this module too)
    DOMAIN_NAME,
    DOMAIN_VERSION,
    EIP712_DOMAIN_TYPE,
    SECP256K1_HALF_N,
    SECP256K1_N,
    U64_MAX,
    Domain,
    _check_uint,
    _Field,
    _json_int,
    _short,
    _Signed,
    _Typed,
    digest,
    parse_signature,
    recover_address,
    recover_signer,
    sign,
    split_signature,
    struct_hash,
    type_string,
    typed_data,
)
from node.units import BUY, PPM, SELL  # noqa: F401 (part of the signed types' vocabulary)


@dataclass(frozen=True)
class Order(_Typed):
    """A participant's intent for one interval: buy or sell up to `energy_wh` at no worse
    than `limit_price` (minor units per kWh). Valid until `expiry` inclusive, as
    OpenZeppelin's permit deadlines; `nonce` is single-use per participant."""

    participant: int
    interval: int
    side: int
    energy_wh: int
    limit_price: int
    expiry: int
    nonce: int

    TYPE_NAME: ClassVar[str] = "Order"
    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("participant", "participant", 32),
        _Field("interval", "interval", 64),
        _Field("side", "side", 8),
        _Field("energy_wh", "energyWh", 64),
        _Field("limit_price", "limitPrice", 64),
        _Field("expiry", "expiry", 64),
        _Field("nonce", "nonce", 64),
    )

    def _check(self) -> None:
        if self.side not in (BUY, SELL):
            raise InputError(f"order.side must be {BUY} (buy) or {SELL} (sell), got {self.side}", field="order.side")
        if self.energy_wh == 0:
            raise InputError("order.energyWh must be more than 0 Wh", field="order.energyWh")


@dataclass(frozen=True)
class Mandate(_Typed):
    """Standing permission for the oracle to settle a participant's metered energy and run
    their battery: buy at no more than `max_buy_price`, sell at no less than
    `min_sell_price`, at most `max_energy_wh` either way per interval, keep the state of
    charge within [`min_soc_ppm`, `max_soc_ppm`], for the intervals that lie wholly
    within [`valid_from`, `valid_until`] (unix seconds, inclusive) on the market's clock.
    `valid_from` and `max_energy_wh` may be left out: from the epoch on, no energy bound."""

    participant: int
    max_buy_price: int
    min_sell_price: int
    min_soc_ppm: int
    max_soc_ppm: int
    valid_until: int
    nonce: int
    valid_from: int = 0
    max_energy_wh: int = U64_MAX

    TYPE_NAME: ClassVar[str] = "Mandate"
    # The EIP-712 order (the contract's); the dataclass keeps the old positional order.
    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("participant", "participant", 32),
        _Field("max_buy_price", "maxBuyPrice", 64),
        _Field("min_sell_price", "minSellPrice", 64),
        _Field("min_soc_ppm", "minSocPpm", 32),
        _Field("max_soc_ppm", "maxSocPpm", 32),
        _Field("valid_from", "validFrom", 64, default=0),
        _Field("valid_until", "validUntil", 64),
        _Field("max_energy_wh", "maxEnergyWh", 64, default=U64_MAX),
        _Field("nonce", "nonce", 64),
    )

    def covers(self, starts_at: int, ends_at: int) -> bool:
        """Whether the interval [starts_at, ends_at) lies wholly within the validity, as
        the contract checks it."""
        return self.valid_from <= starts_at and ends_at <= self.valid_until + 1

    def _check(self) -> None:
        if self.max_soc_ppm > PPM:
            raise InputError(f"mandate.maxSocPpm must be at most {PPM} (100%), got {self.max_soc_ppm}",
                             field="mandate.maxSocPpm")
        if self.min_soc_ppm > self.max_soc_ppm:
            raise InputError(
                f"mandate.minSocPpm ({self.min_soc_ppm}) must not exceed mandate.maxSocPpm ({self.max_soc_ppm})",
                field="mandate.minSocPpm")


@dataclass(frozen=True)
class Revocation(_Typed):
    """Withdraws, for good, every mandate of the participant with a nonce up to this one,
    those signed but never submitted included."""

    participant: int
    nonce: int

    TYPE_NAME: ClassVar[str] = "Revocation"
    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("participant", "participant", 32),
        _Field("nonce", "nonce", 64),
    )


@dataclass(frozen=True)
class OrderCancellation(_Typed):
    """Cancels every order of the participant with a nonce up to this one, so that the
    oracle can settle none of them (e.g. an order its owner amended with a higher nonce)."""

    participant: int
    nonce: int

    TYPE_NAME: ClassVar[str] = "OrderCancellation"
    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("participant", "participant", 32),
        _Field("nonce", "nonce", 64),
    )


@dataclass(frozen=True)
class Reading(_Typed):
    """One interval's energy at a participant's connection point, signed by its meter's
    key: what settlements are checked against (by a dispute on chain, by the auditor)."""

    participant: int
    interval: int
    import_wh: int
    export_wh: int

    TYPE_NAME: ClassVar[str] = "Reading"
    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("participant", "participant", 32),
        _Field("interval", "interval", 64),
        _Field("import_wh", "importWh", 64),
        _Field("export_wh", "exportWh", 64),
    )

    @property
    def net_wh(self) -> int:
        """Energy into the home, Wh (what a settlement's grid + P2P must equal)."""
        return self.import_wh - self.export_wh

    @staticmethod
    def of_net(participant: int, interval: int, net_wh: int) -> "Reading":
        """The reading of a home whose net energy into it was `net_wh`."""
        return Reading(participant, interval, max(net_wh, 0), max(-net_wh, 0))


@dataclass(frozen=True)
class ReadRequest(_Typed):
    """Asks a GridLedger server for the participant's own orders and mandates; the
    owner's signature shows the server who is asking. It never goes on chain and moves
    nothing; the server accepts it only while `issued_at` (unix seconds) is recent (see
    node/intent/orders.py), so a leaked one stops working within minutes."""

    participant: int
    issued_at: int

    TYPE_NAME: ClassVar[str] = "ReadRequest"
    FIELDS: ClassVar[tuple[_Field, ...]] = (
        _Field("participant", "participant", 32),
        _Field("issued_at", "issuedAt", 64),
    )


Message = Union[Order, Mandate, Revocation, OrderCancellation, Reading, ReadRequest]


ORDER_TYPE = type_string(Order)
MANDATE_TYPE = type_string(Mandate)
REVOCATION_TYPE = type_string(Revocation)
CANCELLATION_TYPE = type_string(OrderCancellation)
READING_TYPE = type_string(Reading)
READ_REQUEST_TYPE = type_string(ReadRequest)  # off chain only: not in SOLIDITY_TYPEHASHES
ORDER_TYPEHASH = keccak(text=ORDER_TYPE)
MANDATE_TYPEHASH = keccak(text=MANDATE_TYPE)
REVOCATION_TYPEHASH = keccak(text=REVOCATION_TYPE)
CANCELLATION_TYPEHASH = keccak(text=CANCELLATION_TYPE)
READING_TYPEHASH = keccak(text=READING_TYPE)

# Ready to paste into the market contract.
SOLIDITY_TYPEHASHES = "\n".join(
    f'bytes32 private constant {name}_TYPEHASH =\n    keccak256("{text}");'
    for name, text in (
        ("ORDER", ORDER_TYPE),
        ("MANDATE", MANDATE_TYPE),
        ("REVOCATION", REVOCATION_TYPE),
        ("CANCELLATION", CANCELLATION_TYPE),
        ("READING", READING_TYPE),
    )
)


def order_digest(domain: Domain, order: Order) -> bytes:
    return digest(domain, order)


def mandate_digest(domain: Domain, mandate: Mandate) -> bytes:
    return digest(domain, mandate)



@dataclass(frozen=True)
class SignedOrder(_Signed):
    order: Order
    signature: bytes
    KEY: ClassVar[str] = "order"
    MESSAGE: ClassVar[type[_Typed]] = Order


@dataclass(frozen=True)
class SignedMandate(_Signed):
    mandate: Mandate
    signature: bytes
    KEY: ClassVar[str] = "mandate"
    MESSAGE: ClassVar[type[_Typed]] = Mandate


@dataclass(frozen=True)
class SignedRevocation(_Signed):
    revocation: Revocation
    signature: bytes
    KEY: ClassVar[str] = "revocation"
    MESSAGE: ClassVar[type[_Typed]] = Revocation


@dataclass(frozen=True)
class SignedCancellation(_Signed):
    cancellation: OrderCancellation
    signature: bytes
    KEY: ClassVar[str] = "cancellation"
    MESSAGE: ClassVar[type[_Typed]] = OrderCancellation


@dataclass(frozen=True)
class SignedReading(_Signed):
    reading: Reading
    signature: bytes
    KEY: ClassVar[str] = "reading"
    MESSAGE: ClassVar[type[_Typed]] = Reading


@dataclass(frozen=True)
class SignedReadRequest(_Signed):
    read_request: ReadRequest
    signature: bytes
    KEY: ClassVar[str] = "readRequest"
    MESSAGE: ClassVar[type[_Typed]] = ReadRequest

    @property
    def message(self) -> Message:
        return self.read_request


def sign_order(account: LocalAccount, domain: Domain, order: Order) -> SignedOrder:
    return SignedOrder(order, sign(account, domain, order))


def sign_mandate(account: LocalAccount, domain: Domain, mandate: Mandate) -> SignedMandate:
    return SignedMandate(mandate, sign(account, domain, mandate))


def sign_revocation(account: LocalAccount, domain: Domain, revocation: Revocation) -> SignedRevocation:
    return SignedRevocation(revocation, sign(account, domain, revocation))


def sign_cancellation(account: LocalAccount, domain: Domain, cancellation: OrderCancellation) -> SignedCancellation:
    return SignedCancellation(cancellation, sign(account, domain, cancellation))


def sign_reading(meter: LocalAccount, domain: Domain, reading: Reading) -> SignedReading:
    """A reading as the participant's meter signs it, with the meter's key."""
    return SignedReading(reading, sign(meter, domain, reading))


def sign_read_request(account: LocalAccount, domain: Domain, request: ReadRequest) -> SignedReadRequest:
    return SignedReadRequest(request, sign(account, domain, request))
