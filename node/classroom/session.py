"""The classroom's state and its one lock: the case in play, everyone's offers, the zone
loads, the rounds cleared so far, who holds which key, and the clock that clears every
N seconds.

Keys: every generator and the admin get a random key when they first appear. Only
their SHA-256 hashes are in the state file; the keys themselves are written once to
``keys.csv`` in the state directory (readable by its owner only) for the lecturer to
hand out. A key is checked in constant time.

Durability: every change is written to ``classroom.json`` (a temporary file, fsynced,
then renamed over the old one) before the call returns, so a crash or a restart keeps
every accepted offer and every round. A bad offer, load or case changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from node.classroom.results import Round, tabulate
from node.data.wholesale import Offer, WholesaleCase, load_mini_iso
from node.errors import GridLedgerError, InputError

log = logging.getLogger("gridledger.classroom")

STATE_FILE = "classroom.json"
KEYS_FILE = "keys.csv"
ADMIN = "admin"
MAX_TRANCHES = 10
PRICE_LIMIT = 100_000.0  # per MWh either way: beyond it a typo, not a bid
LOAD_LIMIT_MW = 1_000_000.0
ROUNDS_KEPT = 500
STATE_VERSION = 1


@dataclass(frozen=True)
class Identity:
    role: str  # "admin" or "generator"
    name: str  # the generator's name, or "admin"

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


class Classroom:
    """A classroom market over one or more Mini-ISO cases (`cases`: name -> manifest)."""

    def __init__(self, cases: Mapping[str, Path], state_dir: Path, *, value_of_lost_load: float | None = None,
                 clock=time.time) -> None:
        if not cases:
            raise InputError("a classroom needs at least one case (--case FILE)")
        self.cases = {name: Path(path) for name, path in cases.items()}
        self.state_dir = Path(state_dir)
        self.value_of_lost_load = value_of_lost_load
        self._clock = clock
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._restore()

    @classmethod
    def from_files(cls, files: Sequence[Path | str], state_dir: Path, **options) -> Classroom:
        cases: dict[str, Path] = {}
        for file in map(Path, files):
            if file.stem in cases:
                raise InputError(f"two cases are named {file.stem!r} ({cases[file.stem]} and {file}); rename one")
            load_mini_iso(file)  # judged now, so a bad case is said at start
            cases[file.stem] = file
        return cls(cases, state_dir, **options)

    # -- reading ------------------------------------------------------------------------------

    @property
    def case(self) -> WholesaleCase:
        with self._lock:
            return self._case

    @property
    def case_name(self) -> str:
        return self._case_name

    @property
    def auto_clear_s(self) -> float:
        return self._auto_clear_s

    @property
    def secret(self) -> str:
        """The web UI's session signing key, kept with the state so logins survive a restart."""
        return self._secret

    def rounds(self) -> list[Round]:
        with self._lock:
            return list(self._rounds)

    def latest(self) -> Round | None:
        with self._lock:
            return self._rounds[-1] if self._rounds else None

    def submitted(self) -> set[str]:
        """Generators who entered offers themselves since the case was loaded."""
        with self._lock:
            return set(self._submitted)

    def pending(self) -> bool:
        """Whether anything changed since the last round."""
        return self._dirty

    def authenticate(self, key: str) -> Identity | None:
        digest = _hash(key)
        found = None
        for (role, name), stored in self._key_hashes.items():
            if hmac.compare_digest(stored, digest):  # every key compared: the time says nothing
                found = Identity(role, name)
        return found

    # -- changing (each change is on disk before it returns) ------------------------------------

    def submit_offers(self, generator: str, tranches: Sequence[tuple[str, float, float]]) -> None:
        """Replaces `generator`'s offers with `tranches` of (name, MW, price per MWh)."""
        with self._lock:
            capacity = self._case.generator(generator).capacity_mw
            offers = _checked_tranches(generator, tranches, capacity)
            self._case = self._case.with_offers(generator, offers)
            self._submitted.add(generator)
            self._changed()
        log.info("%s offers %s", generator, ", ".join(f"{o.quantity_mw:g} MW at {o.price_per_mwh:g}" for o in offers) or "nothing")

    def set_loads(self, loads_mw: Mapping[str, float]) -> None:
        with self._lock:
            for zone, load in loads_mw.items():
                if zone not in self._case.loads_mw:
                    raise InputError(f"no zone {zone!r} in case {self._case_name}")
                if not (isinstance(load, (int, float)) and math.isfinite(load) and 0 <= load <= LOAD_LIMIT_MW):
                    raise InputError(f"zone {zone}: load must be a number from 0 to {LOAD_LIMIT_MW:g} MW, got {load!r}")
            self._case = self._case.with_loads({z: float(v) for z, v in loads_mw.items()})
            self._changed()

    def load_case(self, name: str) -> None:
        """Starts case `name` afresh from its files (offers and loads as written there)."""
        with self._lock:
            if name not in self.cases:
                raise InputError(f"no case {name!r}; the cases are {', '.join(self.cases)}")
            self._case = load_mini_iso(self.cases[name])
            self._case_name = name
            self._submitted = set()
            self._ensure_keys()
            self._changed()
        log.info("case %s loaded", name)

    def set_auto_clear(self, seconds: float) -> None:
        """Clear every `seconds` while something changed (0: only on the admin's button)."""
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and (seconds == 0 or 1 <= seconds <= 86_400)):
            raise InputError(f"clear every 0 (never) or 1 to 86400 seconds, got {seconds!r}")
        with self._lock:
            self._auto_clear_s = float(seconds)
            self._save()
        self._wake.set()

    def clear(self) -> Round:
        """Clears the market as it stands now; a round that cannot clear is kept with the
        reason, so the class sees why."""
        from optimizer.zonal import clear_zonal

        with self._lock:
            number = (self._rounds[-1].number + 1) if self._rounds else 1
            stamp = datetime.fromtimestamp(self._clock(), timezone.utc).isoformat(timespec="seconds")
            try:
                result = clear_zonal(**self._case.clearing_input(), value_of_lost_load=self.value_of_lost_load)
                cleared = tabulate(number, stamp, self._case, result)
            except GridLedgerError as error:
                cleared = Round(number, stamp, self._case_name, error=str(error))
            self._rounds = (self._rounds + [cleared])[-ROUNDS_KEPT:]
            self._dirty = False
            self._last_clear = self._clock()
            self._save()
        if cleared.ok:
            log.info("round %d of %s: prices %s; congestion rent %.2f", number, self._case_name,
                     ", ".join(f"{z} {p:.2f}" for z, p in cleared.lmp().items()), cleared.congestion_rent)
        else:
            log.info("round %d of %s did not clear: %s", number, self._case_name, cleared.error)
        return cleared

    # -- clearing every N seconds ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="classroom-clock", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def due(self) -> bool:
        """Whether the clock should clear now: automatic clearing on, something changed
        (or nothing cleared yet), and N seconds since the last round."""
        return self._auto_clear_s > 0 and self._dirty and self._clock() >= self._last_clear + self._auto_clear_s

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.due():
                try:
                    self.clear()
                except Exception:  # the clock must keep going; the error is in the log
                    log.exception("automatic clearing failed")
            wait = self._auto_clear_s or 3600.0
            self._wake.wait(timeout=max(0.2, min(wait, self._last_clear + wait - self._clock())))
            self._wake.clear()

    # -- state on disk --------------------------------------------------------------------------

    def _changed(self) -> None:
        self._dirty = True
        self._save()
        self._wake.set()

    def _restore(self) -> None:
        path = self.state_dir / STATE_FILE
        others = sorted(p.name for p in self.state_dir.iterdir() if p.name not in (STATE_FILE, KEYS_FILE))
        if not path.exists() and others:
            raise InputError(f"{self.state_dir} holds other files ({', '.join(others[:3])}) but no classroom; "
                             "choose an empty or new directory with --state")
        state = _read_state(path) if path.exists() else {}
        name = state.get("case") if state.get("case") in self.cases else next(iter(self.cases))
        self._case_name = name
        self._case = load_mini_iso(self.cases[name])
        self._secret = state.get("secret") or secrets.token_hex(32)
        self._key_hashes = {tuple(k.split("/", 1)): v for k, v in state.get("keys", {}).items()}
        self._auto_clear_s = float(state.get("auto_clear_s", 0.0))
        self._rounds = [Round.from_json(r) for r in state.get("rounds", [])]
        self._submitted = set()
        self._dirty = True
        self._last_clear = 0.0
        if state.get("case") == name:
            self._apply_saved(state)
        self._ensure_keys()
        self._save()

    def _apply_saved(self, state: dict) -> None:
        try:
            self._case = self._case.with_loads({z: float(v) for z, v in state.get("loads", {}).items()
                                                if z in self._case.loads_mw})
        except InputError as error:
            log.warning("saved loads no longer fit case %s (%s); using the file's", self._case_name, error)
        for generator, rows in state.get("offers", {}).items():
            try:
                offers = _checked_tranches(generator, [tuple(r) for r in rows], self._case.generator(generator).capacity_mw)
                self._case = self._case.with_offers(generator, offers)
                self._submitted.add(generator)
            except InputError as error:
                log.warning("saved offers of %s no longer fit case %s (%s); using the file's", generator,
                            self._case_name, error)

    def _ensure_keys(self) -> None:
        """A key for the admin and every generator that has none; new keys go to keys.csv."""
        wanted = [(ADMIN, ADMIN)] + [("generator", g.name) for g in self._case.generators]
        new = [(role, name, secrets.token_urlsafe(12)) for role, name in wanted if (role, name) not in self._key_hashes]
        if not new:
            return
        path = self.state_dir / KEYS_FILE
        fresh = not path.exists()
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(descriptor, "a", newline="") as file:
            writer = csv.writer(file)
            if fresh:
                writer.writerow(["role", "name", "key"])
            writer.writerows(new)
            file.flush()
            os.fsync(file.fileno())
        for role, name, key in new:
            self._key_hashes[(role, name)] = _hash(key)
        log.info("new keys for %s in %s", ", ".join(name for _, name, _ in new), path)

    def _save(self) -> None:
        submitted = {g: [[o.tranche, o.quantity_mw, o.price_per_mwh] for o in self._case.offers_of(g)]
                     for g in sorted(self._submitted)}
        state = {
            "version": STATE_VERSION,
            "case": self._case_name,
            "loads": self._case.loads_mw,
            "offers": submitted,
            "auto_clear_s": self._auto_clear_s,
            "secret": self._secret,
            "keys": {f"{role}/{name}": digest for (role, name), digest in self._key_hashes.items()},
            "rounds": [r.to_json() for r in self._rounds],
        }
        path = self.state_dir / STATE_FILE
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)


def _checked_tranches(generator: str, tranches: Sequence[tuple[str, float, float]], capacity_mw: float) -> list[Offer]:
    if len(tranches) > MAX_TRANCHES:
        raise InputError(f"at most {MAX_TRANCHES} tranches per generator, got {len(tranches)}")
    offers, seen, total = [], set(), 0.0
    for tranche, quantity, price in tranches:
        tranche = str(tranche).strip()
        if not tranche or len(tranche) > 40:
            raise InputError("every tranche needs a name of 1 to 40 characters")
        if tranche in seen:
            raise InputError(f"tranche {tranche!r} appears twice")
        seen.add(tranche)
        for what, value in (("quantity", quantity), ("price", price)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"tranche {tranche}: {what} must be a number, got {value!r}")
        if quantity < 0:
            raise InputError(f"tranche {tranche}: quantity must be 0 MW or more, got {quantity:g}")
        if abs(price) > PRICE_LIMIT:
            raise InputError(f"tranche {tranche}: price {price:g} is beyond +-{PRICE_LIMIT:g} per MWh; check the number")
        total += quantity
        offers.append(Offer(generator, tranche, float(quantity), float(price)))
    if total > capacity_mw + 1e-9:
        raise InputError(f"{generator} can offer at most its capacity of {capacity_mw:g} MW; these tranches add up to {total:g} MW")
    return offers


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _read_state(path: Path) -> dict:
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: the classroom state cannot be read ({error}); move it away to start afresh") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise InputError(f"{path}: not a classroom state file of version {STATE_VERSION}; move it away to start afresh")
    return state
