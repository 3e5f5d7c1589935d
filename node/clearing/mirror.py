"""A mirror of a state directory's committed inputs and meter-signed readings.

An auditor needs both: the inputs each settlement committed to by hash
(node.clearing.store) and the readings the meters signed (node.clearing.readings_store).
A mirror is a directory laid out as an inputs store with the readings store in its
``readings/`` subdirectory (so `audit --inputs DIR` reads it as it stands), or a tar
archive of the same tree. Nothing in a mirror is trusted: an inputs file is taken only
if it hashes to its name, a readings file only if all its readings are of the interval
it is named after (the auditor then checks each meter's signature), and an import adds
only readings the state lacks: a forged copy never replaces a reading held.
"""

from __future__ import annotations

import gzip
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from node.clearing.readings_store import READINGS_DIR, ReadingsStore
from node.clearing.store import NAME, SUFFIX, InputsStore, digest_of
from node.errors import InputError


@dataclass(frozen=True)
class Copied:
    """What a copy moved: inputs new to the target and already there, intervals of readings."""

    inputs: int
    inputs_known: int
    readings: int


def export_mirror(inputs: InputsStore, readings: ReadingsStore, target: str | Path) -> Copied:
    """Copies every inputs file and readings file that checks out to `target`: a
    directory, or a ``.tar``/``.tar.gz``/``.tgz`` archive. InputError for a damaged file
    (reading it fails before anything of it is written)."""
    target = Path(target)
    digests = list(inputs.digests())
    intervals = list(readings.intervals())
    if is_archive(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(target, "w:gz" if target.name.endswith("gz") else "w") as tar:
            for digest in digests:
                inputs.get(digest)
                tar.add(inputs.path(digest), arcname=f"{digest[2:4]}/{digest}{SUFFIX}", recursive=False)
            for interval in intervals:
                readings.get(interval)
                path = readings.path(interval)
                tar.add(path, arcname=f"{READINGS_DIR}/{path.relative_to(readings.root).as_posix()}", recursive=False)
        return Copied(len(digests), 0, len(intervals))
    mirror = InputsStore(target)
    known = sum(mirror.has(d) for d in digests)
    for digest in digests:
        mirror.put(inputs.get(digest), digest)
    copy = ReadingsStore(target / READINGS_DIR)
    for interval in intervals:
        copy.put(readings.get(interval))
    return Copied(len(digests) - known, known, len(intervals))


def import_mirror(inputs: InputsStore, readings: ReadingsStore, source: str | Path) -> Copied:
    """Copies in every file of `source` (a mirror directory or archive) that checks out.
    A file that does not is refused with InputError naming it; those before it are kept
    (each one is checked on its own)."""
    source = Path(source)
    new = known = intervals = 0
    for name, data in _files(source):
        if (m := NAME.fullmatch(Path(name).name)) is not None:
            digest = m.group(1)
            try:
                body = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise InputError(f"{source}: {name} is not a gzip file ({exc})") from exc
            if digest_of(body) != digest:
                raise InputError(f"{source}: {name} does not hash to its name: refused")
            if inputs.has(digest):
                known += 1
            else:
                inputs.put(body, digest)
                new += 1
        elif Path(name).parts[:1] == (READINGS_DIR,) and name.endswith(".json"):
            try:
                brought = ReadingsStore.parse(name, data)
            except InputError as exc:
                raise InputError(f"{source}: {exc}") from exc
            # Only what the state lacks: a mirror never replaces a reading held here.
            held = {r.reading.participant for r in readings.get(brought[0].reading.interval)} if brought else set()
            readings.put(r for r in brought if r.reading.participant not in held)
            intervals += 1
    return Copied(new, known, intervals)


def is_archive(path: Path) -> bool:
    return path.name.endswith((".tar", ".tar.gz", ".tgz"))


def _files(source: Path) -> Iterator[tuple[str, bytes]]:
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".tmp-")):
            yield path.relative_to(source).as_posix(), path.read_bytes()
        return
    if not source.is_file():
        raise InputError(f"{source} is neither a mirror directory nor an archive")
    try:
        with tarfile.open(source) as tar:
            for member in tar:
                if member.isfile():
                    handle = tar.extractfile(member)
                    yield member.name, handle.read() if handle else b""
    except tarfile.TarError as exc:
        raise InputError(f"{source} is not a tar archive of a mirror ({exc})") from exc
