"""The durable order book: signed orders and mandates, checked on receipt, kept in SQLite.

An order the book accepts is committed to disk (WAL, ``synchronous=FULL``) before
:meth:`OrderBook.submit` returns, so whoever answered "accepted" to a participant can
crash the next instant without losing it. A rejected order raises InputError with
the reason and leaves the file exactly as it was.

The checks here are the ones the market contract repeats at settlement (signature
by the registered owner, expiry, single-use nonce); doing them on receipt tells a
participant at once, instead of their order silently failing an interval later.

Nonces are per participant and per kind: an order nonce and a mandate nonce may be
equal, since the type hash in the signed digest already keeps the two apart.

uint64 values (interval, nonce, times) may exceed SQLite's signed 64-bit INTEGER, so
they are stored as 20-digit zero-padded text, which still sorts numerically.

Reading is owner-only: in an auction, a participant's pending bids must stay hidden
from the others until the interval is settled (then they are in the settlement's
calldata and its committed inputs, for anyone to audit). :meth:`OrderBook.authorize_read`
checks a signed ReadRequest: recent, and signed by the participant's owner, the same
owner lookup that accepts orders.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Callable, TypeVar

from node.errors import InputError
from node.intent.bounds import order_problem
from node.intent.jobs import SignedJobWindow
from node.intent.signing import (
    Domain,
    Message,
    Revocation,
    SignedMandate,
    SignedOrder,
    SignedReadRequest,
    SignedRevocation,
    recover_signer,
)

RegistryLookup = Callable[[int], "str | None"]
S = TypeVar("S")

# A read request is a bearer credential for its participant's orders: short-lived, with
# a little slack for a client clock that runs ahead.
READ_REQUEST_MAX_AGE = 300  # seconds
READ_REQUEST_MAX_AHEAD = 60  # seconds


class NotOwner(InputError):
    """A message for a participant is not signed by that participant's registered owner
    (or nobody owns it). Submissions answer it as a bad request, reads as forbidden."""


class StaleReadRequest(InputError):
    """A read request issued too long ago (or too far in the future): sign a new one."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    participant INTEGER NOT NULL,
    nonce       TEXT NOT NULL,
    interval    TEXT NOT NULL,
    expiry      TEXT NOT NULL,
    signed      TEXT NOT NULL,     -- SignedOrder.to_json(), the exact signed content
    received_at INTEGER NOT NULL,
    UNIQUE (participant, nonce)    -- the replay guard, enforced by the database too
);
CREATE INDEX IF NOT EXISTS orders_by_interval ON orders (interval, participant, nonce);
CREATE TABLE IF NOT EXISTS mandates (
    participant INTEGER NOT NULL,
    nonce       TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    signed      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (participant, nonce)
);
CREATE TABLE IF NOT EXISTS job_windows (
    participant INTEGER NOT NULL,
    job         TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    signed      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (participant, nonce)
);
CREATE TABLE IF NOT EXISTS revocations (
    participant INTEGER NOT NULL,
    nonce       TEXT NOT NULL,
    signed      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (participant, nonce)
);
"""


class OrderBook:
    """Signed orders and mandates of one market (one EIP-712 domain)."""

    def __init__(self, path: Path | str, domain: Domain, registry_lookup: RegistryLookup) -> None:
        self.path = Path(path)
        self.domain = domain
        self._owner_of = registry_lookup
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every write below opens its own BEGIN IMMEDIATE ... COMMIT.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()  # one connection shared by the web server's threads
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a COMMIT is on disk when it returns
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "OrderBook":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- orders ------------------------------------------------------------------

    def submit(self, signed: SignedOrder, now: int, next_interval: int) -> int:
        """Checks and stores a signed order; returns its id once it is on disk.

        `next_interval` is the first interval not yet settled: orders for earlier ones
        could never be used. InputError says why an order is refused."""
        return self.submit_many([signed], now, next_interval)[0]

    def submit_many(self, orders: list[SignedOrder], now: int, next_interval: int) -> list[int]:
        """`submit` for a batch in one transaction (one disk sync, as a bidding agent fleet
        needs for a thousand homes): every order is checked first, and if any is refused
        none is stored. Returns their ids in the order given."""
        for signed in orders:
            order = _require(signed, SignedOrder).order
            if now > order.expiry:
                raise InputError(f"order expired at {order.expiry} (now {now}); sign a new one with a later expiry",
                                 field="order.expiry")
            if order.interval < next_interval:
                raise InputError(f"order is for interval {order.interval}, which is closed; the next open interval "
                                 f"is {next_interval}", field="order.interval")
            if (problem := order_problem(order, next_interval)) is not None:
                raise InputError(problem.reason, field=problem.field)
            self._check_signer(order, signed.signature)
        keys = [(s.order.participant, _u64(s.order.nonce)) for s in orders]
        if len(set(keys)) != len(keys):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise _replayed("order", twice[0], int(twice[1]))
        ids = []
        with self._write() as db:
            for signed, key in zip(orders, keys):
                order = signed.order
                if db.execute("SELECT 1 FROM orders WHERE participant = ? AND nonce = ?", key).fetchone():
                    raise _replayed("order", order.participant, order.nonce)
                cursor = db.execute(
                    "INSERT INTO orders (participant, nonce, interval, expiry, signed, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (*key, _u64(order.interval), _u64(order.expiry), json.dumps(signed.to_json()), now),
                )
                ids.append(int(cursor.lastrowid))
        return ids

    def has_order(self, participant: int, nonce: int) -> bool:
        """Whether the book holds `participant`'s order with `nonce` (an agent resuming
        after a crash asks before signing the same order again)."""
        return bool(self._read("SELECT 1 FROM orders WHERE participant = ? AND nonce = ?", (participant, _u64(nonce))))

    def orders_for(self, interval: int, now: int | None = None) -> list[SignedOrder]:
        """The orders for `interval`, by participant then nonce, so the clearing sees the
        same list whatever order they arrived in. With `now`, expired ones are left out."""
        rows = self._read("SELECT signed, expiry FROM orders WHERE interval = ? ORDER BY participant, nonce",
                          (_u64(interval),))
        return [SignedOrder.from_json(signed) for signed, expiry in rows if now is None or now <= int(expiry)]

    def get(self, order_id: int) -> SignedOrder:
        rows = self._read("SELECT signed FROM orders WHERE id = ?", (order_id,))
        if not rows:
            raise InputError(f"no order with id {order_id}")
        return SignedOrder.from_json(rows[0][0])

    def orders_of(self, participant: int, interval: int | None = None) -> list[tuple[int, SignedOrder]]:
        """(id, order) of one participant's orders, of one interval or all, by interval then
        nonce: what its owner may read (see authorize_read)."""
        sql = "SELECT id, signed FROM orders WHERE participant = ?"
        params: tuple = (participant,)
        if interval is not None:
            sql += " AND interval = ?"
            params += (_u64(interval),)
        rows = self._read(sql + " ORDER BY interval, nonce", params)
        return [(int(order_id), SignedOrder.from_json(signed)) for order_id, signed in rows]

    def count_for(self, interval: int, now: int | None = None) -> int:
        """How many orders there are for `interval` (with `now`, unexpired ones): public
        information that shows no one's bid."""
        rows = self._read("SELECT expiry FROM orders WHERE interval = ?", (_u64(interval),))
        return sum(1 for (expiry,) in rows if now is None or now <= int(expiry))

    # -- mandates ----------------------------------------------------------------

    def submit_mandate(self, signed: SignedMandate, now: int) -> None:
        """Checks and stores a signed mandate, durably, before returning."""
        mandate = _require(signed, SignedMandate).mandate
        if now > mandate.valid_until:
            raise InputError(f"mandate expired at {mandate.valid_until} (now {now}); sign a new one with a "
                             "later validUntil")
        self._check_signer(mandate, signed.signature)
        key = (mandate.participant, _u64(mandate.nonce))
        with self._write() as db:
            if db.execute("SELECT 1 FROM revocations WHERE participant = ? AND nonce = ?", key).fetchone():
                raise InputError(f"participant {mandate.participant} revoked mandate nonce {mandate.nonce}; "
                                 "sign a new mandate with a fresh nonce")
            if db.execute("SELECT 1 FROM mandates WHERE participant = ? AND nonce = ?", key).fetchone():
                raise _replayed("mandate", mandate.participant, mandate.nonce)
            db.execute("INSERT INTO mandates (participant, nonce, valid_until, signed, received_at) "
                       "VALUES (?, ?, ?, ?, ?)", (*key, _u64(mandate.valid_until), json.dumps(signed.to_json()), now))

    def active_mandates(self, now: int) -> list[SignedMandate]:
        """Mandates valid at `now` and not revoked, by participant then nonce.

        A participant may hold several; each stays valid on chain until it expires or is
        revoked, so choosing among them is the clearing's policy, not the book's."""
        rows = self._read(
            "SELECT m.signed, m.valid_until FROM mandates m LEFT JOIN revocations r "
            "ON r.participant = m.participant AND r.nonce = m.nonce WHERE r.nonce IS NULL "
            "ORDER BY m.participant, m.nonce", ())
        return [SignedMandate.from_json(signed) for signed, valid_until in rows if now <= int(valid_until)]

    def revoke_mandate(self, participant: int, nonce: int, signature: bytes, now: int) -> SignedRevocation:
        """Records the owner's signed Revocation{participant, nonce}. The mandate need not
        be in the book: revoking first stops it being submitted later. Revoking twice is
        harmless. Returns the signed revocation, which the chain must also be told of."""
        revocation = Revocation(participant, nonce)
        signed = SignedRevocation(revocation, signature)
        self._check_signer(revocation, signature)
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO revocations (participant, nonce, signed, received_at) "
                       "VALUES (?, ?, ?, ?)", (participant, _u64(nonce), json.dumps(signed.to_json()), now))
        return signed

    def revocations(self) -> list[SignedRevocation]:
        rows = self._read("SELECT signed FROM revocations ORDER BY participant, nonce", ())
        return [SignedRevocation.from_json(signed) for (signed,) in rows]

    # -- job windows -------------------------------------------------------------

    def submit_job_window(self, signed: SignedJobWindow, now: int) -> None:
        """Checks and stores a participant's signed window for a deferrable job, durably."""
        window = _require(signed, SignedJobWindow).job_window
        self._check_signer(window, signed.signature)
        key = (window.participant, _u64(window.nonce))
        with self._write() as db:
            if db.execute("SELECT 1 FROM job_windows WHERE participant = ? AND nonce = ?", key).fetchone():
                raise _replayed("job window", window.participant, window.nonce)
            db.execute("INSERT INTO job_windows (participant, job, nonce, signed, received_at) VALUES (?, ?, ?, ?, ?)",
                       (window.participant, _u64(window.job), key[1], json.dumps(signed.to_json()), now))

    def job_windows(self) -> dict[tuple[int, int], SignedJobWindow]:
        """The window in force for each (participant, job): the one with the highest nonce."""
        rows = self._read("SELECT signed FROM job_windows ORDER BY participant, nonce", ())
        windows = [SignedJobWindow.from_json(signed) for (signed,) in rows]
        return {(w.job_window.participant, w.job_window.job): w for w in windows}

    def has_job_window(self, participant: int, nonce: int) -> bool:
        return bool(self._read("SELECT 1 FROM job_windows WHERE participant = ? AND nonce = ?",
                               (participant, _u64(nonce))))

    # -- reading on behalf of an owner ---------------------------------------------------

    def authorize_read(self, signed: SignedReadRequest, now: int) -> int:
        """The participant whose orders and mandates the bearer of `signed` may read.

        StaleReadRequest if it was issued more than READ_REQUEST_MAX_AGE seconds before
        `now` (or more than READ_REQUEST_MAX_AHEAD after); NotOwner if its signer does not
        own the participant. Within its lifetime a read request may be used again: it
        only reveals what its signer may see anyway."""
        request = _require(signed, SignedReadRequest).read_request
        age = now - request.issued_at
        if age > READ_REQUEST_MAX_AGE:
            raise StaleReadRequest(
                f"the read request was issued at {request.issued_at}, {age} s ago; it is valid for "
                f"{READ_REQUEST_MAX_AGE} s: sign a new one"
            )
        if -age > READ_REQUEST_MAX_AHEAD:
            raise StaleReadRequest(
                f"the read request is issued at {request.issued_at}, {-age} s in the future (server time {now}): "
                "check the clock of the signing machine and sign a new one"
            )
        self._check_signer(request, signed.signature)
        return request.participant

    # -- checks and storage -----------------------------------------------------------

    def _check_signer(self, message: Message, signature: bytes) -> None:
        kind = {"ReadRequest": "read request", "JobWindow": "job window"}.get(type(message).__name__, type(message).__name__.lower())
        owner = self._owner_of(message.participant)
        if owner is None:
            raise NotOwner(f"participant {message.participant} is not registered in this market; "
                           f"check the {kind}'s participant id")
        signer = recover_signer(self.domain, message, signature)
        if signer.lower() != owner.lower():
            raise NotOwner(
                f"{kind} for participant {message.participant} is signed by {signer}, but the participant's owner "
                f"is {owner}: sign with the owner's key, for chain {self.domain.chain_id} and market "
                f"{self.domain.verifying_contract}"
            )

    def _write(self) -> "_Transaction":
        return _Transaction(self._db, self._lock)

    def _read(self, sql: str, params: tuple) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception, under the book's lock.

    IMMEDIATE takes the write lock at the start, so the replay check and the insert
    cannot interleave with another process writing the same file."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db, self._lock = db, lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self._lock.release()


def _require(signed: object, cls: type[S]) -> S:
    if not isinstance(signed, cls):
        raise InputError(f"expected a {cls.__name__}, got {type(signed).__name__}")
    return signed


def _replayed(kind: str, participant: int, nonce: int) -> InputError:
    return InputError(f"participant {participant} already used {kind} nonce {nonce} (a replay?); sign a new "
                      f"{kind} with a fresh nonce")


def _u64(value: int) -> str:
    return f"{value:020d}"
