"""The committed inputs' own durable home: one file per inputs, named by its hash.

A settlement commits on chain only to the keccak hash of its clearing's inputs; these
files are what the hash stands for, and nothing else holds them. So the oracle writes
an interval's inputs here, fsynced, before it sends the settlement; the index, the web
UI (``/api/inputs/<hash>``) and the auditor read them from here; `gridledger inputs
export` and `import` copy them to and from a mirror (a directory or a tar archive).

Layout: ``<root>/<2 hex digits>/0x<64 hex digits>.json.gz``, gzip of the canonical JSON.
Content addressing makes every copy checkable: a file is taken (read, imported,
served) only if its content hashes to its name, so a mirror needs no trust, and
writing the same inputs twice is a no-op.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path

from eth_utils import keccak

from node.errors import InputError

INPUTS_DIR = "inputs"
SUFFIX = ".json.gz"
_DIGEST = re.compile(r"0x[0-9a-f]{64}")
NAME = re.compile(r"(0x[0-9a-f]{64})\.json\.gz")


def digest_of(body: bytes) -> str:
    return "0x" + keccak(body).hex()


class InputsStore:
    """A directory of committed inputs by hash."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        digest = _checked_digest(digest)
        return self.root / digest[2:4] / f"{digest}{SUFFIX}"

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, body: bytes, expected: str | None = None) -> str:
        """Stores the canonical JSON `body` durably (written, fsynced, renamed into
        place, directory fsynced) and returns its hash; with `expected`, refuses a body
        that hashes to anything else. Storing what is there already changes nothing."""
        digest = digest_of(body)
        if expected is not None and digest != expected.lower():
            raise InputError(f"inputs claimed to be {expected} hash to {digest}: refused")
        target = self.path(digest)
        if target.is_file():
            return digest
        new_dir = not target.parent.is_dir()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                # mtime 0: the same inputs give the same bytes on every machine.
                with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6, mtime=0) as gz:
                    gz.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        sync_dir(target.parent)
        if new_dir:
            sync_dir(self.root)
        return digest

    def get(self, digest: str) -> bytes:
        """The canonical JSON of the inputs with hash `digest`; InputError if they are
        not here or the file does not hash to its name."""
        return self._read(digest)[1]

    def gzipped(self, digest: str) -> bytes:
        """The stored file itself (gzip of the canonical JSON), checked like `get`: what
        a server sends a client that accepts gzip."""
        return self._read(digest)[0]

    def _read(self, digest: str) -> tuple[bytes, bytes]:
        path = self.path(digest)
        try:
            data = path.read_bytes()
            body = gzip.decompress(data)
        except FileNotFoundError:
            raise InputError(f"no inputs with hash {digest} in {self.root}: copy them in with "
                             f"`gridledger inputs import` from a mirror or a GridLedger server") from None
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path} is damaged ({exc}): import the inputs again from a mirror") from exc
        if digest_of(body) != digest.lower():
            raise InputError(f"{path} does not hash to its name (it hashes to {digest_of(body)}): the file is damaged "
                             "or was altered; import the inputs again from a mirror")
        return data, body

    def digests(self) -> Iterator[str]:
        """Every hash held here (by name; `get` checks the content)."""
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for path in sorted(sub.iterdir()):
                    if (m := NAME.fullmatch(path.name)) and m.group(1)[2:4] == sub.name:
                        yield m.group(1)


def _checked_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest.lower()):
        raise InputError(f"an inputs hash is 0x and 64 hex digits, got {digest!r}")
    return digest.lower()


def sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

