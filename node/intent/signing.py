"""Participants' signed intent as EIP-712 typed data: orders, mandates, revocations,
and the read requests that show a server who asks for a participant's own orders.

EIP-712 is what wallets (MetaMask's ``eth_signTypedData_v4``, hardware wallets) show
a human field by field before signing, and what OpenZeppelin's ``EIP712`` and
``ECDSA`` check on chain. The market contract recomputes the same digests from the
type strings below, so they must match it character for character: paste
``SOLIDITY_TYPEHASHES`` into the contract rather than retyping them.

Each message type is described once (``_Field`` tables); the type string, the struct
hash, the wallet JSON, range checks and JSON parsing all derive from that table, so
they cannot drift apart. Integers are the chain's: energy in Wh, prices in token
minor units (6 decimals) per kWh, times in unix seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Mapping, TypeVar, Union

from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_keys import keys as eth_keys
from eth_keys.exceptions import BadSignature
from eth_utils import is_hex_address, keccak, to_checksum_address

from node.errors import InputError
from node.units import BUY, PPM, SELL  # noqa: F401 (part of the signed types' vocabulary)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
SECP256K1_HALF_N = SECP256K1_N // 2  # OpenZeppelin ECDSA rejects s above this
U64_MAX = 2**64 - 1


EIP712_DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_NAME = "GridLedger"
DOMAIN_VERSION = "1"


@dataclass(frozen=True)
class _Field:
    attr: str  # Python name
    name: str  # EIP-712 / Solidity name
    bits: int  # width of the uint
    default: int | None = None  # value when the JSON form leaves the field out (None: required)


class _Typed:
    """Shared behaviour of the typed messages; subclasses declare TYPE_NAME and FIELDS."""

    TYPE_NAME: ClassVar[str]
    FIELDS: ClassVar[tuple[_Field, ...]]

    def __post_init__(self) -> None:
        for f in self.FIELDS:
            _check_uint(f"{self.TYPE_NAME.lower()}.{f.name}", getattr(self, f.attr), f.bits)
        self._check()

    def _check(self) -> None:
        """Rules beyond the integer ranges; the message names the field."""

    def values(self) -> dict[str, int]:
        """The message as EIP-712 names and integers, in type order."""
        return {f.name: getattr(self, f.attr) for f in self.FIELDS}

    @classmethod
    def from_values(cls: type[T], values: Any) -> T:
        """Parses the JSON form (EIP-712 names; integers as numbers or decimal strings)."""
        label = cls.TYPE_NAME.lower()
        if not isinstance(values, Mapping):
            raise InputError(f"{label} must be a JSON object with fields {', '.join(f.name for f in cls.FIELDS)}")
        names = {f.name for f in cls.FIELDS}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"{label} has unknown field(s) {', '.join(map(str, unknown))}")
        missing = [f.name for f in cls.FIELDS if f.name not in values and f.default is None]
        if missing:
            raise InputError(f"{label} is missing field(s) {', '.join(missing)}")
        return cls(**{f.attr: _json_int(f"{label}.{f.name}", values.get(f.name, f.default)) for f in cls.FIELDS})


T = TypeVar("T", bound=_Typed)


@dataclass(frozen=True)
class Domain:
    """Binds a signature to one chain and one market contract, so it cannot be replayed
    on a test network or against another market."""

    chain_id: int
    verifying_contract: str
    name: str = DOMAIN_NAME
    version: str = DOMAIN_VERSION

    def __post_init__(self) -> None:
        _check_uint("domain.chainId", self.chain_id, 256)
        if not isinstance(self.verifying_contract, str) or not is_hex_address(self.verifying_contract):
            raise InputError(f"domain.verifyingContract must be a contract address, got {self.verifying_contract!r}")
        object.__setattr__(self, "verifying_contract", to_checksum_address(self.verifying_contract))

    def values(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "chainId": self.chain_id,
                "verifyingContract": self.verifying_contract}

    def separator(self) -> bytes:
        """OpenZeppelin's ``_domainSeparatorV4()``."""
        return _separator(self)


@lru_cache(maxsize=16)
def _separator(domain: Domain) -> bytes:
    # Cached: an auditor recovers hundreds of signatures per interval under one domain.
    return keccak(abi_encode(
        ["bytes32", "bytes32", "bytes32", "uint256", "address"],
        [keccak(text=EIP712_DOMAIN_TYPE), keccak(text=domain.name), keccak(text=domain.version), domain.chain_id,
         domain.verifying_contract],
    ))


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
            raise InputError(f"order.side must be {BUY} (buy) or {SELL} (sell), got {self.side}")
        if self.energy_wh == 0:
            raise InputError("order.energyWh must be more than 0 Wh")


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
            raise InputError(f"mandate.maxSocPpm must be at most {PPM} (100%), got {self.max_soc_ppm}")
        if self.min_soc_ppm > self.max_soc_ppm:
            raise InputError(
                f"mandate.minSocPpm ({self.min_soc_ppm}) must not exceed mandate.maxSocPpm ({self.max_soc_ppm})"
            )


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


def type_string(cls: type[_Typed]) -> str:
    """``Name(uint32 participant,...)``: the EIP-712 encodeType of a message type."""
    return f"{cls.TYPE_NAME}({','.join(f'uint{f.bits} {f.name}' for f in cls.FIELDS)})"


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


def struct_hash(message: Message) -> bytes:
    """EIP-712 hashStruct: keccak(typeHash || each field as a 32-byte word), which is
    ``keccak256(abi.encode(TYPEHASH, fields...))`` in Solidity."""
    cls = type(message)
    types = ["bytes32"] + [f"uint{f.bits}" for f in cls.FIELDS]
    return keccak(abi_encode(types, [_type_hash(cls)] + list(message.values().values())))


@lru_cache(maxsize=None)
def _type_hash(cls: type[_Typed]) -> bytes:
    return keccak(text=type_string(cls))


def digest(domain: Domain, message: Message) -> bytes:
    """What is signed: keccak(0x1901 || domainSeparator || structHash), OpenZeppelin's
    ``_hashTypedDataV4(structHash)``."""
    return keccak(b"\x19\x01" + domain.separator() + struct_hash(message))


def order_digest(domain: Domain, order: Order) -> bytes:
    return digest(domain, order)


def mandate_digest(domain: Domain, mandate: Mandate) -> bytes:
    return digest(domain, mandate)


def typed_data(domain: Domain, message: Message) -> dict[str, Any]:
    """The full EIP-712 JSON a wallet signs (``eth_signTypedData_v4``)."""
    cls = type(message)
    return {
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            cls.TYPE_NAME: [{"name": f.name, "type": f"uint{f.bits}"} for f in cls.FIELDS],
        },
        "primaryType": cls.TYPE_NAME,
        "domain": domain.values(),
        "message": message.values(),
    }


# -- signatures ---------------------------------------------------------------------


def sign(account: LocalAccount, domain: Domain, message: Message) -> bytes:
    """A 65-byte signature r || s || v (v = 27 or 28) over the message's typed data: its
    EIP-712 digest signed directly, as a wallet does (eth_account's typed-data path gives
    the same bytes at 2.5x the cost; simulated meters sign 100 readings an interval)."""
    signature = eth_keys.PrivateKey(account.key).sign_msg_hash(digest(domain, message))
    return signature.to_bytes()[:64] + bytes([signature.v + 27])


def recover_signer(domain: Domain, message: Message, signature: bytes) -> str:
    """The checksummed address that signed `message`; InputError if the signature is
    malformed or malleable, exactly where OpenZeppelin's ECDSA.recover would revert."""
    return to_checksum_address(recover_address(domain, message, signature))


def recover_address(domain: Domain, message: Message, signature: bytes) -> bytes:
    """recover_signer as the 20 address bytes (no checksum: a keccak less, for auditors
    comparing many signers)."""
    r, s, v = split_signature(signature)
    try:
        public_key = eth_keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest(domain, message))
    except (BadSignature, ValueError) as exc:
        raise InputError(f"signature does not recover to any address ({exc}); sign the message again") from exc
    return public_key.to_canonical_address()


def split_signature(signature: bytes) -> tuple[int, int, int]:
    """(r, s, v) of a 65-byte signature, with the checks of OpenZeppelin's ECDSA."""
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 65:
        size = len(signature) if isinstance(signature, (bytes, bytearray)) else type(signature).__name__
        raise InputError(f"signature must be 65 bytes (r || s || v), got {size}")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise InputError(f"signature v must be 27 or 28, got {v}; the chain's ecrecover accepts nothing else")
    if not 0 < r < SECP256K1_N or s == 0:
        raise InputError("signature r or s is out of range; sign the message again")
    if s > SECP256K1_HALF_N:
        # (r, n - s, v ^ 1) is a second valid signature of the same message; accepting
        # both would let anyone mint a "new" signature for a replay. EIP-2 and OZ forbid it.
        raise InputError("signature s is in the upper half of the curve order (malleable); sign it again "
                         "with a wallet that produces low-s signatures")
    return r, s, v


# -- signed messages ----------------------------------------------------------------


class _Signed:
    """Shared behaviour of the signed messages: a message plus its 65-byte signature."""

    KEY: ClassVar[str]  # the message's key in the JSON form
    MESSAGE: ClassVar[type[_Typed]]
    signature: bytes

    @property
    def message(self) -> Message:
        return getattr(self, self.KEY)

    def signer(self, domain: Domain) -> str:
        return recover_signer(domain, self.message, self.signature)

    def to_json(self) -> dict[str, Any]:
        """``{"<kind>": {EIP-712 fields}, "signature": "0x..."}``."""
        return {self.KEY: self.message.values(), "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, data: Any):
        """Parses the JSON form (a dict or its text); InputError names the bad field."""
        if isinstance(data, (str, bytes)):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InputError(f"signed {cls.KEY} is not valid JSON: {exc}") from exc
        if not isinstance(data, Mapping) or set(data) != {cls.KEY, "signature"}:
            raise InputError(f'a signed {cls.KEY} is {{"{cls.KEY}": {{...}}, "signature": "0x..."}} and nothing else')
        return cls(cls.MESSAGE.from_values(data[cls.KEY]), parse_signature(data["signature"]))  # type: ignore[call-arg]


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


def parse_signature(text: Any) -> bytes:
    """A ``0x``-prefixed hex signature of 65 bytes."""
    if not isinstance(text, str) or not text.startswith("0x"):
        raise InputError("signature must be a 0x-prefixed hex string of 65 bytes")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError as exc:
        raise InputError("signature is not valid hex") from exc
    if len(raw) != 65:
        raise InputError(f"signature must be 65 bytes (r || s || v), got {len(raw)}")
    return raw


# -- integer checks -----------------------------------------------------------------


def _check_uint(name: str, value: Any, bits: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value < 1 << bits:
        raise InputError(f"{name} must be between 0 and {(1 << bits) - 1} (uint{bits}), got {value}")


def _json_int(name: str, value: Any) -> Any:
    # JavaScript loses precision above 2**53, so uint64s may arrive as decimal strings.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value  # anything else is judged (and named) by _check_uint
