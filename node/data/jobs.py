"""Deferrable appliance jobs, read from PySSMic's consumer-event layout.

A jobs file has no header; each line is one job, ``;``-separated:

    registered      when the job was registered, unix seconds
    earliest        earliest start, unix seconds
    latest_start    latest start, unix seconds (>= earliest)
    device          house:device:id, e.g. ``[57]:[221]:[3]`` or ``house-57:washer:1``;
                    the house (brackets dropped) is a participant name, or PySSMic's
                    numeric house id N of participant ``house-N``
    profile         the load-profile file, relative to the jobs file (or in its
                    ``loads/`` folder, as PySSMic keeps them)

A load profile is PySSMic's: one line per sample, ``seconds cumulative_wh`` separated
by a space (or a comma): seconds since the job started and the energy used so far, Wh.
The job's energy in an interval is the rise of that curve across the interval, linear
between samples.

A job is flexible only within a window its participant signed (node.intent.jobs); this
module only reads what the file asks for. Errors name the file, the line and the field.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from eth_utils import keccak

from node.errors import DataError

FIELDS = ("registered", "earliest", "latest_start", "device", "profile")
MAX_PROFILE_WH = 1_000_000.0  # a household appliance run above 1 MWh is a unit error


@dataclass(frozen=True, eq=False)
class LoadProfile:
    """Energy used since the start: ``cumulative_wh`` at ``seconds`` (both increasing)."""

    name: str
    seconds: np.ndarray
    cumulative_wh: np.ndarray

    @property
    def duration_s(self) -> float:
        return float(self.seconds[-1])

    @property
    def energy_wh(self) -> float:
        return float(self.cumulative_wh[-1])

    def used_by(self, elapsed_s: np.ndarray) -> np.ndarray:
        """Energy used by each elapsed time (0 before the start, all after the end), Wh."""
        return np.interp(elapsed_s, self.seconds, self.cumulative_wh, left=0.0, right=self.energy_wh)

    def per_interval(self, start_s: float, interval_starts_s: np.ndarray, length_s: float) -> np.ndarray:
        """Wh the job uses in each interval [g, g + length) when it starts at ``start_s``."""
        return self.used_by(interval_starts_s + length_s - start_s) - self.used_by(interval_starts_s - start_s)


@dataclass(frozen=True, eq=False)
class Job:
    """One deferrable run of a device, as the file asks for it."""

    line: int
    participant: str
    device: str
    registered: int
    earliest: int
    latest_start: int
    profile: LoadProfile

    @property
    def key(self) -> str:
        return f"{self.participant}:{self.device}"

    @property
    def job_id(self) -> int:
        """A stable uint64 naming the job in signed messages: its key's hash."""
        return int.from_bytes(keccak(text=self.key)[:8], "big")

    @property
    def energy_wh(self) -> int:
        return int(round(self.profile.energy_wh))


def load_jobs(path: str | Path, participants: Collection[str]) -> list[Job]:
    """The jobs of a consumer-event file, in file order; `participants` are the names the
    data knows (a job of anyone else is an error)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DataError(str(path), None, None, "jobs file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(str(path), None, None, f"cannot read the jobs file ({error})") from None
    profiles: dict[Path, LoadProfile] = {}
    jobs, seen = [], {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        cells = [cell.strip() for cell in text.split(";")]
        if len(cells) != len(FIELDS):
            raise DataError(str(path), number, None, f"has {len(cells)} fields; expected {len(FIELDS)} separated by ';': "
                            + "; ".join(FIELDS))
        registered, earliest, latest = (_unix(path, number, name, cell) for name, cell in zip(FIELDS, cells[:3]))
        if latest < earliest:
            raise DataError(str(path), number, "latest_start", f"{latest} is before the earliest start {earliest}")
        participant, device = _device(path, number, cells[3], participants)
        key = f"{participant}:{device}"
        if key in seen:
            raise DataError(str(path), number, "device", f"job {cells[3]!r} is listed already on line {seen[key]}")
        seen[key] = number
        profile_path = _profile_path(path, number, cells[4])
        if profile_path not in profiles:
            profiles[profile_path] = load_profile(profile_path)
        jobs.append(Job(number, participant, device, registered, earliest, latest, profiles[profile_path]))
    if not jobs:
        raise DataError(str(path), None, None, "no jobs; expected one line per job: " + "; ".join(FIELDS))
    return jobs


def load_profile(path: Path, from_zero: bool = True) -> LoadProfile:
    """A PySSMic load profile: ``seconds cumulative_wh`` per line. With `from_zero` the
    job uses nothing before its first sample (a PV prediction file, whose first column
    is a unix time, is read with it off)."""
    rows = []
    for number, text in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if not text.strip():
            continue
        cells = re.split(r"[\s,;]+", text.strip())
        try:
            seconds, wh = (float(cell) for cell in cells)
        except ValueError:
            raise DataError(str(path), number, None, f"{text!r} is not 'seconds cumulative_wh'") from None
        if not (np.isfinite(seconds) and np.isfinite(wh)) or seconds < 0 or wh < 0 or wh > MAX_PROFILE_WH:
            raise DataError(str(path), number, None, f"{text!r}: expected seconds >= 0 and 0 <= Wh <= {MAX_PROFILE_WH:g}")
        if rows and (seconds <= rows[-1][0] or wh < rows[-1][1]):
            raise DataError(str(path), number, None, "seconds must increase and the cumulative energy must not fall")
        rows.append((seconds, wh))
    if not rows:
        raise DataError(str(path), None, None, "empty load profile; expected lines 'seconds cumulative_wh'")
    if from_zero and rows[0][0] > 0:
        rows.insert(0, (0.0, 0.0))  # the job uses nothing before its first sample
    table = np.array(rows)
    return LoadProfile(path.name, table[:, 0], table[:, 1])


def _unix(path: Path, line: int, field: str, cell: str) -> int:
    if not re.fullmatch(r"\d{1,12}", cell):
        raise DataError(str(path), line, field, f"{cell!r} is not a unix time in seconds")
    return int(cell)


def _device(path: Path, line: int, cell: str, participants: Collection[str]) -> tuple[str, str]:
    parts = [part.strip().strip("[]") for part in cell.split(":")]
    if len(parts) != 3 or not all(parts):
        raise DataError(str(path), line, "device", f"{cell!r} is not house:device:id")
    house = parts[0]
    for name in (house, f"house-{house}"):
        if name in participants:
            return name, f"{parts[1]}:{parts[2]}"
    raise DataError(str(path), line, "device", f"house {house!r} is not a participant of the data (nor is 'house-{house}')")


def find_profile(jobs_file: Path, name: str) -> Path | None:
    """Where a jobs file's load profile `name` is: next to it, or in its loads/ folder."""
    for candidate in (jobs_file.parent / name, jobs_file.parent / "loads" / name):
        if candidate.is_file():
            return candidate
    return None


def _profile_path(path: Path, line: int, name: str) -> Path:
    found = find_profile(path, name)
    if found is None:
        raise DataError(str(path), line, "profile", f"load profile {name!r} not found next to the jobs file or in loads/")
    return found
