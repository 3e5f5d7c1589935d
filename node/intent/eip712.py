"""EIP-712 typed data as the market contract checks it: message types described once
by ``_Field`` tables, their type strings, struct hashes, digests and wallet JSON, and
65-byte signatures with OpenZeppelin ECDSA's checks. The message types themselves are in
node.intent.signing (and node.intent.jobs).

Each message type is described once; the type string, the struct hash, the wallet JSON,
range checks and JSON parsing all derive from that table, so they cannot drift apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Mapping, TypeVar

import coincurve
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_keys import keys as eth_keys
from eth_keys.exceptions import BadSignature
from eth_utils import is_hex_address, keccak, to_checksum_address

from node.errors import InputError

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
            raise InputError(f"{label} must be a JSON object with fields {', '.join(f.name for f in cls.FIELDS)}", field=label)
        names = {f.name for f in cls.FIELDS}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InputError(f"{label} has unknown field(s) {', '.join(map(str, unknown))}", field=label)
        missing = [f.name for f in cls.FIELDS if f.name not in values and f.default is None]
        if missing:
            raise InputError(f"{label} is missing field(s) {', '.join(missing)}", field=f"{label}.{missing[0]}")
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


def type_string(cls: type[_Typed]) -> str:
    """``Name(uint32 participant,...)``: the EIP-712 encodeType of a message type."""
    return f"{cls.TYPE_NAME}({','.join(f'uint{f.bits} {f.name}' for f in cls.FIELDS)})"


def struct_hash(message: _Typed) -> bytes:
    """EIP-712 hashStruct: keccak(typeHash || each field as a 32-byte word), which is
    ``keccak256(abi.encode(TYPEHASH, fields...))`` in Solidity."""
    # Every field is a uint checked to fit its width, so its ABI word is the value as
    # 32 big-endian bytes (eth_abi's encoder gives the same bytes at 4x the cost).
    cls = type(message)
    return keccak(_type_hash(cls) + b"".join(getattr(message, f.attr).to_bytes(32, "big") for f in cls.FIELDS))


@lru_cache(maxsize=None)
def _type_hash(cls: type[_Typed]) -> bytes:
    return keccak(text=type_string(cls))


def digest(domain: Domain, message: _Typed) -> bytes:
    """What is signed: keccak(0x1901 || domainSeparator || structHash), OpenZeppelin's
    ``_hashTypedDataV4(structHash)``."""
    return keccak(b"\x19\x01" + domain.separator() + struct_hash(message))


def typed_data(domain: Domain, message: _Typed) -> dict[str, Any]:
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


def sign(account: LocalAccount, domain: Domain, message: _Typed) -> bytes:
    """A 65-byte signature r || s || v (v = 27 or 28) over the message's typed data: its
    EIP-712 digest signed directly with libsecp256k1, as a wallet does. The bytes are a
    wallet's (RFC 6979 nonces, low s; tests compare them with eth_account's typed-data
    path, which takes 4x as long: simulated meters sign 100 readings an interval and
    bidding agents 1,000 orders)."""
    recoverable = coincurve.PrivateKey(bytes(account.key)).sign_recoverable(digest(domain, message), hasher=None)
    return recoverable[:64] + bytes([recoverable[64] + 27])


def recover_signer(domain: Domain, message: _Typed, signature: bytes) -> str:
    """The checksummed address that signed `message`; InputError if the signature is
    malformed or malleable, exactly where OpenZeppelin's ECDSA.recover would revert."""
    return to_checksum_address(recover_address(domain, message, signature))


def recover_address(domain: Domain, message: _Typed, signature: bytes) -> bytes:
    """recover_signer as the 20 address bytes (no checksum: a keccak less, for auditors
    comparing many signers)."""
    r, s, v = split_signature(signature)
    try:
        public_key = eth_keys.Signature(vrs=(v - 27, r, s)).recover_public_key_from_msg_hash(digest(domain, message))
    except (BadSignature, ValueError) as exc:
        raise InputError(f"signature does not recover to any address ({exc}); sign the message again", field="signature") from exc
    return public_key.to_canonical_address()


def split_signature(signature: bytes) -> tuple[int, int, int]:
    """(r, s, v) of a 65-byte signature, with the checks of OpenZeppelin's ECDSA."""
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != 65:
        size = len(signature) if isinstance(signature, (bytes, bytearray)) else type(signature).__name__
        raise InputError(f"signature must be 65 bytes (r || s || v), got {size}", field="signature")
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    v = signature[64]
    if v not in (27, 28):
        raise InputError(f"signature v must be 27 or 28, got {v}; the chain's ecrecover accepts nothing else", field="signature")
    if not 0 < r < SECP256K1_N or s == 0:
        raise InputError("signature r or s is out of range; sign the message again", field="signature")
    if s > SECP256K1_HALF_N:
        # (r, n - s, v ^ 1) is a second valid signature of the same message; accepting
        # both would let anyone mint a "new" signature for a replay. EIP-2 and OZ forbid it.
        raise InputError("signature s is in the upper half of the curve order (malleable); sign it again "
                         "with a wallet that produces low-s signatures", field="signature")
    return r, s, v


# -- signed messages ----------------------------------------------------------------


class _Signed:
    """Shared behaviour of the signed messages: a message plus its 65-byte signature."""

    KEY: ClassVar[str]  # the message's key in the JSON form
    MESSAGE: ClassVar[type[_Typed]]
    signature: bytes

    @property
    def message(self) -> _Typed:
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
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an integer of over 4,300 digits
                raise InputError(f"signed {cls.KEY} is not valid JSON: {exc}", field=cls.KEY) from exc
        if not isinstance(data, Mapping) or set(data) != {cls.KEY, "signature"}:
            raise InputError(f'a signed {cls.KEY} is {{"{cls.KEY}": {{...}}, "signature": "0x..."}} and nothing else', field=cls.KEY)
        return cls(cls.MESSAGE.from_values(data[cls.KEY]), parse_signature(data["signature"]))  # type: ignore[call-arg]


def parse_signature(text: Any) -> bytes:
    """A ``0x``-prefixed hex signature of 65 bytes."""
    if not isinstance(text, str) or not text.startswith("0x"):
        raise InputError("signature must be a 0x-prefixed hex string of 65 bytes", field="signature")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError as exc:
        raise InputError("signature is not valid hex", field="signature") from exc
    if len(raw) != 65:
        raise InputError(f"signature must be 65 bytes (r || s || v), got {len(raw)}", field="signature")
    return raw


# -- integer checks -----------------------------------------------------------------


def _check_uint(name: str, value: Any, bits: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be an integer, got {_short(value)}", field=name)
    if not 0 <= value < 1 << bits:
        raise InputError(f"{name} must be between 0 and {(1 << bits) - 1} (uint{bits}), got {_short(value)}", field=name)


def _json_int(name: str, value: Any) -> Any:
    # JavaScript loses precision above 2**53, so uint64s may arrive as decimal strings.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= _UINT256_DIGITS:
        return int(value)
    return value  # anything else is judged (and named) by _check_uint


_UINT256_DIGITS = len(str(2**256 - 1))


def _short(value: Any) -> str:
    """A value as an error message shows it: never thousands of digits."""
    text = repr(value) if not isinstance(value, int) else str(value) if value.bit_length() < 300 else "a number too large"
    return text if len(text) <= 100 else text[:97] + "..."
