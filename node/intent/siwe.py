"""Sign-In with Ethereum (EIP-4361): the message a wallet signs to show a server which
account it holds, parsed and verified with eth-account.

The message is plain text in the EIP's fixed layout, signed with EIP-191
``personal_sign``. A server issues the nonce, so a signature cannot be replayed; it
binds the domain (no other site can reuse it), the chain, and a validity window.
Signing it moves nothing and authorises no transaction.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime, timezone

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_utils import is_checksum_address, is_hex_address, to_checksum_address

from node.errors import InputError

_PREAMBLE = " wants you to sign in with your Ethereum account:"
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
# The layout of EIP-4361's ABNF, line by line; optional fields in their fixed order.
_MESSAGE = re.compile(
    r"(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://)?(?P<domain>[^\s/?#]+)" + re.escape(_PREAMBLE) + r"\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n\n"
    r"(?:(?P<statement>[^\n]+)\n)?\n"
    r"URI: (?P<uri>[^\n]+)\n"
    r"Version: (?P<version>1)\n"
    r"Chain ID: (?P<chain_id>[0-9]+)\n"
    r"Nonce: (?P<nonce>[A-Za-z0-9]{8,})\n"
    r"Issued At: (?P<issued_at>[^\n]+)"
    r"(?:\nExpiration Time: (?P<expiration_time>[^\n]+))?"
    r"(?:\nNot Before: (?P<not_before>[^\n]+))?"
    r"(?:\nRequest ID: (?P<request_id>[^\n]*))?"
    r"(?:\nResources:(?P<resources>(?:\n- [^\n]+)+))?"
)


class SiweError(InputError):
    """A sign-in message or its signature is not acceptable; the message says why."""


def new_nonce() -> str:
    """17 random alphanumerics (EIP-4361 asks for at least 8)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(17))


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _time(text: str, what: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SiweError(f"the sign-in message's {what} {text!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise SiweError(f"the sign-in message's {what} {text!r} has no time zone")
    return moment


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = field(default_factory=tuple)
    scheme: str | None = None
    version: str = "1"

    def __post_init__(self) -> None:
        if not is_hex_address(self.address) or not is_checksum_address(self.address):
            raise SiweError(f"the sign-in address {self.address!r} is not an EIP-55 checksummed address")
        if not _NONCE.fullmatch(self.nonce):
            raise SiweError("the sign-in nonce must be at least 8 letters or digits")
        if self.statement is not None and "\n" in self.statement:
            raise SiweError("the sign-in statement must be one line")
        for name in ("issued_at", "expiration_time", "not_before"):
            if getattr(self, name) is not None:
                _time(getattr(self, name), name.replace("_", " "))

    @staticmethod
    def create(domain: str, address: str, uri: str, chain_id: int, statement: str, now: datetime,
               valid_seconds: int, nonce: str | None = None, scheme: str | None = None) -> "SiweMessage":
        expiry = datetime.fromtimestamp(now.timestamp() + valid_seconds, timezone.utc)
        return SiweMessage(domain=domain, address=to_checksum_address(address), uri=uri, chain_id=chain_id,
                           nonce=nonce or new_nonce(), issued_at=_iso(now), statement=statement,
                           expiration_time=_iso(expiry), scheme=scheme)

    def to_text(self) -> str:
        """The message exactly as EIP-4361 lays it out (what the wallet shows and signs)."""
        head = (f"{self.scheme}://" if self.scheme else "") + self.domain + _PREAMBLE
        lines = [head, self.address, ""]
        if self.statement is not None:
            lines.append(self.statement)
        lines += ["", f"URI: {self.uri}", f"Version: {self.version}", f"Chain ID: {self.chain_id}",
                  f"Nonce: {self.nonce}", f"Issued At: {self.issued_at}"]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines += ["Resources:"] + [f"- {r}" for r in self.resources]
        return "\n".join(lines)

    @staticmethod
    def parse(text: str) -> "SiweMessage":
        match = _MESSAGE.fullmatch(text.replace("\r\n", "\n"))
        if match is None:
            raise SiweError("not an EIP-4361 sign-in message: sign the message this server prepared, unchanged")
        g = match.groupdict()
        resources = tuple(line[2:] for line in (g["resources"] or "").split("\n") if line)
        return SiweMessage(domain=g["domain"], address=g["address"], uri=g["uri"], chain_id=int(g["chain_id"]),
                           nonce=g["nonce"], issued_at=g["issued_at"], statement=g["statement"],
                           expiration_time=g["expiration_time"], not_before=g["not_before"],
                           request_id=g["request_id"], resources=resources, scheme=g["scheme"], version=g["version"])

    def verify(self, signature: str | bytes, *, domain: str, nonce: str, chain_id: int, now: datetime) -> str:
        """The signer's checksummed address if `signature` (personal_sign of to_text())
        is this message's address's, for `domain`, `nonce` and `chain_id`, within its
        validity window at `now`; SiweError naming the failed check otherwise."""
        if self.domain != domain:
            raise SiweError(f"the sign-in message is for {self.domain}, not {domain}: sign in on this site")
        if not secrets.compare_digest(self.nonce, nonce):
            raise SiweError("the sign-in message's nonce is not the one this server issued (used or expired): sign in again")
        if self.chain_id != chain_id:
            raise SiweError(f"the sign-in message is for chain {self.chain_id}, not this market's chain {chain_id}")
        if self.expiration_time is not None and now >= _time(self.expiration_time, "expiration time"):
            raise SiweError(f"the sign-in message expired at {self.expiration_time}: sign in again")
        if self.not_before is not None and now < _time(self.not_before, "not-before time"):
            raise SiweError(f"the sign-in message is not valid before {self.not_before}")
        try:
            raw = bytes.fromhex(signature.removeprefix("0x")) if isinstance(signature, str) else bytes(signature)
            signer = Account.recover_message(encode_defunct(text=self.to_text()), signature=raw)
        except Exception as exc:  # eth-keys raises several types for malformed signatures
            raise SiweError(f"the sign-in signature is not a valid 65-byte signature: {exc}") from None
        if signer != self.address:
            raise SiweError(f"the sign-in message was signed by {signer}, not by {self.address}")
        return signer
