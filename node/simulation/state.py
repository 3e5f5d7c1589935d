"""A state directory: where a run keeps its chain, deployment record, index and results.

GridLedger deletes nothing it did not make. A directory becomes a state directory when
a run claims it (it must be new or empty) and gets a marker file naming its kind; only
then may a later run start it over, and starting over removes only the entries named in
`OWN_ENTRIES`, listing them. A directory with anything else in it is refused.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from node.errors import InputError

log = logging.getLogger("gridledger.state")

MARKER = "gridledger-state.json"
KINDS = ("demo", "simulate")
# Every file or folder GridLedger writes in a state directory; a new one must be added
# here, or starting over leaves it behind (and it then blocks nothing: see claim_state).
OWN_ENTRIES = (
    MARKER,
    "deployment.json",
    "chain.journal",
    "index.sqlite",
    "index.sqlite-journal",
    "index.sqlite-wal",
    "index.sqlite-shm",
    "index.sqlite.old",
    "index.rebuild.sqlite",
    "orders.sqlite",
    "orders.sqlite-journal",
    "orders.sqlite-wal",
    "orders.sqlite-shm",
    "webui-secret",
    "repairs.csv",
    "results",
    "anvil-state.json",
    "inputs",
    "market.json",
    "market.json.tmp",
    "chain.snapshot",
    "chain.snapshot.tmp",
    "meters.json",
    "meters.tmp",
    "readings",
)
# Found in a directory from before the marker existed: it is GridLedger's.
_LEGACY_SIGNS = ("deployment.json", "chain.journal", "index.sqlite")


@dataclass(frozen=True)
class StatePaths:
    """Where a run keeps its state: the index and the deployment record."""

    root: Path

    @property
    def index(self) -> Path:
        return self.root / "index.sqlite"

    @property
    def deployment(self) -> Path:
        return self.root / "deployment.json"

    @property
    def orders(self) -> Path:
        """The order book the web UI writes beside the index (webui.orders.orders_path)."""
        return self.root / "orders.sqlite"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def meters(self) -> Path:
        """The simulated homes' meter keys (node.simulation.meters)."""
        return self.root / "meters.json"

    @property
    def inputs(self) -> Path:
        """The committed inputs' store (node.clearing.store), beside the index."""
        return self.root / "inputs"

    @property
    def description(self) -> Path:
        """What the market is, beyond the chain: currency, epoch, interval length, time
        zone, name (the index's descriptive meta, kept so a rebuild needs no old index)."""
        return self.root / "market.json"


DESCRIPTION_KEYS = ("currency", "interval_minutes", "start", "first_interval", "description", "timezone")


def write_description(paths: StatePaths, meta: dict[str, str]) -> None:
    """Saves the descriptive part of an index's meta to market.json (atomically)."""
    described = {k: meta[k] for k in DESCRIPTION_KEYS if k in meta}
    tmp = paths.description.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(described, indent=2) + "\n")
    tmp.replace(paths.description)


def read_description(paths: StatePaths) -> dict[str, str]:
    """market.json's descriptive meta ({} if there is none or it is unreadable)."""
    try:
        described = json.loads(paths.description.read_text())
    except (OSError, ValueError):
        return {}
    return {k: str(v) for k, v in described.items() if k in DESCRIPTION_KEYS} if isinstance(described, dict) else {}


def state_kind(root: Path) -> str | None:
    """The kind of run that made `root` ("demo", "simulate", or "unknown" for a state
    directory from before markers), or None if it is not a GridLedger state directory."""
    marker = root / MARKER
    if marker.is_file():
        try:
            kind = json.loads(marker.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            kind = None
        return kind if kind in KINDS else "unknown"
    if any((root / sign).exists() for sign in _LEGACY_SIGNS):
        return "unknown"
    return None


def claim_state(root: Path, kind: str, start_over: bool = False) -> list[str]:
    """Makes `root` a state directory of `kind` for a run; returns what it removed.

    A new or empty directory is claimed. A GridLedger state directory is kept as it is
    (a `simulate` resumes) unless `start_over`, which removes GridLedger's own entries
    (`OWN_ENTRIES`) and nothing else. Anything else is refused with an InputError, before
    a file is touched: a path that is a file, or a non-empty directory without a marker."""
    if kind not in KINDS:
        raise ValueError(f"unknown state kind {kind!r}")
    if root.exists() and not root.is_dir():
        raise InputError(f"--state {root} is a file, not a directory: give a directory for GridLedger's state")
    found = state_kind(root) if root.exists() else None
    if root.exists() and found is None and any(root.iterdir()):
        raise InputError(
            f"--state {root} is not empty and is not a GridLedger state directory (it has no {MARKER}); GridLedger "
            "deletes nothing it did not make: give a new or empty directory, or the state directory of an earlier run")
    removed: list[str] = []
    if found is not None and start_over:
        for name in OWN_ENTRIES:
            entry = root / name
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            elif entry.exists() or entry.is_symlink():
                entry.unlink()
            else:
                continue
            removed.append(name)
        left = sorted(p.name for p in root.iterdir())
        if left:
            log.warning("kept in %s what GridLedger did not make: %s", root, ", ".join(left))
    root.mkdir(parents=True, exist_ok=True)
    if found is None or start_over or found == "unknown":
        _write_marker(root, kind)
    return removed


def _write_marker(root: Path, kind: str) -> None:
    marker = {"kind": kind, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "note": "GridLedger's state directory; `gridledger demo` / `simulate --fresh` remove only what "
                      "GridLedger wrote here"}
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps(marker, indent=2) + "\n")
    tmp.replace(root / MARKER)
