"""Participant keys in standard encrypted keystore files (Web3 Secret Storage v3).

The files are the ones geth, MetaMask and most wallets export and import, so a
participant can bring the key they already hold, and take a GridLedger key to any
wallet. Keys are decrypted only in memory, only when a command has to sign.

A keystore is a directory of files named like geth's
(``UTC--<iso time>--<address without 0x>``), each readable only by its owner. Files
are created next to the target and hard-linked into place, so a crash leaves either
a complete file or none, and an existing file is never overwritten.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

from node.errors import InputError

# eth_account and eth_utils are imported where a key is used: they take most of a
# second to load, and the CLI reads this module's defaults to build its parser.

DEFAULT_KEYSTORE = Path("~/.gridledger/keystore")
KEYSTORE_ENV = "GRIDLEDGER_KEYSTORE"
PASSWORD_ENV = "GRIDLEDGER_PASSWORD"

# Users get the standard scrypt cost (n = 2**18, about a second and 256 MB per unlock),
# the same as geth. Tests lower it here; nothing else should.
KDF: tuple[str, int | None] = ("scrypt", None)

_KDFS = ("scrypt", "pbkdf2")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX = re.compile(r"^(0x)?[0-9a-fA-F]+$")


@dataclass(frozen=True)
class KeyFile:
    """One account in a keystore: its checksummed address and the file holding its key."""

    address: str
    path: Path


class Keystore:
    """A directory of v3 keystore files, as geth keeps them."""

    def __init__(self, directory: Path | str | None = None, kdf: str | None = None,
                 iterations: int | None = None) -> None:
        self.directory = Path(directory or os.environ.get(KEYSTORE_ENV) or DEFAULT_KEYSTORE).expanduser()
        self.kdf = kdf or KDF[0]
        self.iterations = iterations if iterations is not None else KDF[1]
        if self.kdf not in _KDFS:
            raise InputError(f"unknown key derivation function {self.kdf!r}: use one of {', '.join(_KDFS)}")

    def new(self, password: str) -> str:
        """Creates a fresh random key, stores it encrypted; returns its address."""
        return self.import_key("0x" + secrets.token_hex(32), password)

    def import_key(self, private_key_hex: str, password: str) -> str:
        """Encrypts a raw private key (64 hex digits) into the keystore; returns its address."""
        from eth_account import Account

        key = _parse_private_key(private_key_hex)
        _require_password(password)
        address = Account.from_key(key).address
        self._refuse_duplicate(address)
        keyfile = Account.encrypt(key, password, kdf=self.kdf, iterations=self.iterations)
        self._write(address, keyfile)
        return address

    def import_file(self, path: Path | str, password: str | None = None) -> str:
        """Copies a v3 keystore file in unchanged; returns its address.

        With `password`, the file is also decrypted first, so a typo in the password or a
        damaged file is found now rather than at the first signature."""
        path = Path(path)
        return self._import_keyfile(_load_keyfile(path), path, password)

    def import_keyfile_text(self, text: str, source: Path, password: str | None) -> str:
        """Copies in a v3 keystore file given as `text` (read from `source`); returns its address."""
        return self._import_keyfile(_parse_keyfile(text, source), source, password)

    def _import_keyfile(self, keyfile: dict[str, Any], source: Path, password: str | None) -> str:
        from eth_account import Account

        if "address" not in keyfile:
            # The v3 spec makes the address optional (its own test vector has none); we
            # need it to find the key later, and only the password can reveal it.
            if password is None:
                raise InputError(f"{source} does not name its address: give its password so it can be read")
            key = _decrypt(keyfile, password, None, source)
            keyfile = {**keyfile, "address": Account.from_key(key).address[2:].lower()}
        address = _keyfile_address(keyfile, source)
        if password is not None:
            _decrypt(keyfile, password, address, source)
        self._refuse_duplicate(address)
        self._write(address, keyfile)
        return address

    def list(self) -> list[KeyFile]:
        """Every account in the keystore, oldest first (file names start with the time)."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in sorted(self.directory.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue  # our own half-written temporaries, editor droppings
            try:
                found.append(KeyFile(_keyfile_address(_load_keyfile(path), path), path))
            except InputError:
                continue  # geth also skips files that are not keys
        return found

    def find(self, address: str) -> KeyFile:
        """The key file of `address`; InputError naming the keystore if there is none."""
        wanted = _parse_address(address)
        for keyfile in self.list():
            if keyfile.address == wanted:
                return keyfile
        raise InputError(
            f"no key for {wanted} in {self.directory}: see `gridledger account list`, or add it with "
            "`gridledger account import`"
        )

    def unlock(self, address: str, password: str) -> LocalAccount:
        """Decrypts the key of `address`; InputError on a wrong password or a damaged file."""
        from eth_account import Account

        keyfile = self.find(address)
        return Account.from_key(_decrypt(_load_keyfile(keyfile.path), password, keyfile.address, keyfile.path))

    # -- files -------------------------------------------------------------------

    def _refuse_duplicate(self, address: str) -> None:
        for keyfile in self.list():
            if keyfile.address == address:
                raise InputError(f"{address} is already in the keystore ({keyfile.path}); nothing imported")

    def _write(self, address: str, keyfile: dict[str, Any]) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.directory / f"UTC--{_geth_time()}--{address[2:].lower()}"
        temporary = self.directory / f".{target.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(keyfile, out)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, target)  # fails if the target exists: never overwrite a key
            except FileExistsError as exc:
                raise InputError(f"{target} already exists; try again") from exc
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(self.directory)
        return target


# -- keystore file format -----------------------------------------------------------


def _load_keyfile(path: Path) -> dict[str, Any]:
    return _parse_keyfile(read_text(path), path)


def _parse_keyfile(text: str, source: Path) -> dict[str, Any]:
    try:
        keyfile = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source} is not a keystore file (not JSON: {exc})") from exc
    _validate_v3(keyfile, source)
    return keyfile


def _validate_v3(keyfile: Any, path: Path) -> None:
    """Checks the structure of Web3 Secret Storage v3 so a bad file fails on import,
    not later when its owner needs to sign."""
    def bad(problem: str) -> InputError:
        return InputError(f"{path} is not a v3 keystore file: {problem}; export the key again from its wallet")

    if not isinstance(keyfile, dict):
        raise bad("expected a JSON object")
    if keyfile.get("version") != 3:
        raise bad(f"version is {keyfile.get('version')!r}, expected 3")
    crypto = keyfile.get("crypto", keyfile.get("Crypto"))  # old geth wrote "Crypto"
    if not isinstance(crypto, dict):
        raise bad("no 'crypto' section")
    if crypto.get("cipher") != "aes-128-ctr":
        raise bad(f"cipher is {crypto.get('cipher')!r}, expected 'aes-128-ctr'")
    if crypto.get("kdf") not in _KDFS:
        raise bad(f"kdf is {crypto.get('kdf')!r}, expected one of {', '.join(_KDFS)}")
    if not isinstance(crypto.get("kdfparams"), dict):
        raise bad("no 'kdfparams'")
    iv = (crypto.get("cipherparams") or {}).get("iv")
    for name, value in (("ciphertext", crypto.get("ciphertext")), ("mac", crypto.get("mac")), ("iv", iv)):
        if not isinstance(value, str) or not _HEX.match(value):
            raise bad(f"'{name}' is missing or not hex")


def _keyfile_address(keyfile: dict[str, Any], path: Path) -> str:
    from eth_utils import is_hex_address, to_checksum_address

    raw = keyfile.get("address")
    if not isinstance(raw, str) or not is_hex_address(raw if raw.startswith("0x") else "0x" + raw):
        raise InputError(
            f"{path} has no valid 'address' field; import the private key instead (`gridledger account import`)"
        )
    return to_checksum_address(raw if raw.startswith("0x") else "0x" + raw)


def _decrypt(keyfile: dict[str, Any], password: str, address: str | None, path: Path) -> bytes:
    from eth_account import Account

    try:
        key = Account.decrypt(keyfile, password)
    except ValueError as exc:
        # eth_keyfile says "MAC mismatch" for a wrong password; nothing else tells them apart.
        if "MAC" in str(exc):
            raise InputError(f"wrong password for {address or 'the key'} ({path.name}); try again") from exc
        raise InputError(f"{path} could not be decrypted: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise InputError(f"{path} is damaged ({exc!r}); export the key again from its wallet") from exc
    actual = Account.from_key(key).address
    if address is not None and actual != address:
        # The address field is plain text; a file whose key does not match it was edited or mixed up.
        raise InputError(f"{path} says it holds {address} but its key is for {actual}; do not use this file")
    return bytes(key)


def _parse_private_key(text: str) -> bytes:
    text = text.strip()
    digits = text[2:] if text.startswith("0x") else text
    if len(digits) != 64 or not _HEX.match(digits):
        raise InputError("a private key is 64 hex digits (optionally 0x-prefixed); check for a truncated copy")
    key = bytes.fromhex(digits)
    if not 0 < int.from_bytes(key, "big") < _SECP256K1_N:
        raise InputError("the private key is out of range for secp256k1; it is not a valid Ethereum key")
    return key


def _parse_address(text: str) -> str:
    from eth_utils import is_hex_address, to_checksum_address

    if not isinstance(text, str) or not is_hex_address(text):
        raise InputError(f"{text!r} is not an address: expected 0x and 40 hex digits")
    return to_checksum_address(text)


def _require_password(password: str) -> None:
    if not password:
        raise InputError(f"an empty password leaves the key unprotected: choose one (or set {PASSWORD_ENV})")


def _geth_time() -> str:
    # geth's layout, "2006-01-02T15-04-05.000000000Z": colons are not allowed on every file system.
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H-%M-%S.") + f"{now.microsecond:06d}000Z"


def _fsync_directory(directory: Path) -> None:
    # Makes the new name durable too, not only the file's contents.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_text(path: Path) -> str:
    """The text of a file the user named; a missing or unreadable one is an InputError."""
    try:
        return path.read_text()
    except FileNotFoundError as exc:
        raise InputError(f"{path} not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
