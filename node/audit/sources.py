"""Where the auditor fetches committed inputs by hash, and meter-signed readings by
interval: a state directory's inputs store (or a mirror of it), an index file, or a
GridLedger server. Every body fetched is checked against the hash the settlement
committed to (node.audit.verify), so no source needs to be trusted.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from node.clearing.readings_store import ReadingsStore
from node.clearing.store import InputsStore
from node.errors import GridLedgerError, InputError
from node.index.store import Index
from node.intent.signing import SignedReading


class InputsSource(Protocol):
    def fetch(self, digest: str) -> bytes: ...

    def readings(self, interval: int) -> list[SignedReading] | None: ...


@dataclass
class IndexInputs:
    """Inputs and meter readings kept in a GridLedger index file."""

    index: Index

    def fetch(self, digest: str) -> bytes:
        return self.index.inputs(digest)

    def readings(self, interval: int) -> list[SignedReading] | None:
        return self.index.readings(interval) or None


@dataclass
class StoreInputs:
    """Inputs in an inputs store directory (node.clearing.store): a state directory's
    own, or a mirror of it (node.clearing.mirror); meter readings from `readings_store`
    (a mirror's), else from `index` (a state directory's)."""

    store: InputsStore
    index: Index | None = None
    readings_store: ReadingsStore | None = None

    def fetch(self, digest: str) -> bytes:
        return self.store.get(digest)

    def readings(self, interval: int) -> list[SignedReading] | None:
        if self.readings_store is not None and (kept := self.readings_store.get(interval)):
            return kept
        return (self.index.readings(interval) or None) if self.index is not None else None


@dataclass
class HttpInputs:
    """Inputs served by a GridLedger web UI at ``/api/inputs/<hash>``."""

    base_url: str

    def fetch(self, digest: str) -> bytes:
        url = f"{self.base_url.rstrip('/')}/api/inputs/{digest}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise InputError(f"{url} answered {exc.code}") from exc
        except urllib.error.URLError as exc:
            raise InputError(f"cannot fetch {url}: {exc.reason}") from exc

    def readings(self, interval: int) -> list[SignedReading] | None:
        """The interval's meter-signed readings at ``/api/readings/<interval>``; None if
        the server has none to give."""
        url = f"{self.base_url.rstrip('/')}/api/readings/{interval}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return [SignedReading.from_json(r) for r in json.loads(response.read())]
        except (urllib.error.URLError, ValueError, GridLedgerError):
            return None
