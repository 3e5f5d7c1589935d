"""Meter-signed readings as the oracle received them, in a durable home of their own.

The chain holds no reading, only each settlement's energies (and the meters' keys): an
auditor checks that every participant was settled exactly as its meter signed, so the
signed readings must outlive the index as the committed inputs do (node.clearing.store).
The oracle writes an interval's readings here, fsynced, before it sends the settlement;
the index reads them from here, so `index rebuild` loses none.

Layout: ``<root>/<interval // 1000>/<interval>.json``, a JSON list of signed readings
(node.intent.signing.SignedReading's JSON form) by participant. Each file is written
whole (temporary file, fsync, rename, directory fsync); a reading of a participant the
file holds already replaces it, as a meter's correction does.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from node.clearing.store import sync_dir
from node.errors import InputError
from node.intent.signing import SignedReading

READINGS_DIR = "readings"
_BUCKET = 1000  # intervals per subdirectory: 35,040 intervals a year make 36 of them
_NAME = re.compile(r"(0|[1-9][0-9]*)\.json")


class ReadingsStore:
    """A directory of each interval's meter-signed readings."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, interval: int) -> Path:
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 0:
            raise InputError(f"an interval is a whole number, got {interval!r}")
        return self.root / str(interval // _BUCKET) / f"{interval}.json"

    def get(self, interval: int) -> list[SignedReading]:
        """The readings of `interval` kept here, by participant ([] if none); InputError
        naming the file if it is damaged."""
        path = self.path(interval)
        try:
            rows = json.loads(path.read_text())
            return [SignedReading.from_json(row) for row in rows]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError, InputError) as exc:
            raise InputError(f"{path} is damaged ({exc}): restore it from a backup of the state directory") from exc

    def intervals(self) -> Iterator[int]:
        """Every interval with a readings file here, ascending (by name; `get` checks the content)."""
        if not self.root.is_dir():
            return
        found = [int(m.group(1)) for sub in self.root.iterdir() if sub.is_dir()
                 for path in sub.iterdir() if (m := _NAME.fullmatch(path.name))]
        yield from sorted(k for k in found if self.path(k).is_file())

    @staticmethod
    def parse(name: str, data: bytes) -> list[SignedReading]:
        """The readings of a file called `name` (``<interval>.json``) holding `data`, as a
        mirror brings it: InputError unless every reading in it is of that interval."""
        m = _NAME.fullmatch(Path(name).name)
        if m is None:
            raise InputError(f"{name}: a readings file is named <interval>.json")
        try:
            readings = [SignedReading.from_json(row) for row in json.loads(data)]
        except (ValueError, TypeError, InputError) as exc:
            raise InputError(f"{name} is not a list of meter-signed readings ({exc})") from exc
        others = sorted({r.reading.interval for r in readings} - {int(m.group(1))})
        if others:
            raise InputError(f"{name} holds readings of interval {others[0]}, not of interval {m.group(1)}: refused")
        return readings

    def put(self, readings: Iterable[SignedReading]) -> None:
        """Keeps `readings` durably (written, fsynced, renamed into place), one file per
        interval they are of, merged with what the file holds."""
        by_interval: dict[int, list[SignedReading]] = {}
        for r in readings:
            by_interval.setdefault(r.reading.interval, []).append(r)
        for interval, new in sorted(by_interval.items()):
            kept = {r.reading.participant: r for r in self.get(interval)}
            kept |= {r.reading.participant: r for r in new}
            self._write(self.path(interval), [kept[p].to_json() for p in sorted(kept)])

    @staticmethod
    def _write(target: Path, rows: list[dict]) -> None:
        new_dirs = [d for d in (target.parent.parent, target.parent) if not d.is_dir()]
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(rows, out, separators=(",", ":"))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for directory in [target.parent, *(d.parent for d in new_dirs)]:
            sync_dir(directory)
