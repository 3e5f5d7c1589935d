"""The local query store: the market's events, as read from the chain, in SQLite.

The chain is the source of truth; this index is a cache of its events that the web UI
and CLI query without touching the chain. It is written from transaction receipts as
the oracle settles (no log scans), can catch up on blocks it missed, and holds what the
pages show of each interval's committed inputs (start, capacities, battery states).
The inputs themselves live in their own store (node.clearing.store, ``inputs/`` beside
the index file), so the index is derived data: `gridledger index rebuild` recreates it
from the chain and the store. Wallet balances are not stored: they are sums over the
indexed events.

A damaged index file (truncated, overwritten) is reported as IndexDamaged, one line
saying to rebuild it, never as a raw SQLite error.
"""

from __future__ import annotations

import logging
import sqlite3
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from node.errors import InputError
from node.chain.events import Event
from node.index.schema import APPLY, SCHEMA, check_header
from node.index.audits import IndexAudits
from node.index.views import IndexViews
from node.clearing.inputs import IntervalInputs
from node.clearing.readings_store import READINGS_DIR, ReadingsStore
from node.clearing.store import INPUTS_DIR, InputsStore
from node.intent.signing import Reading, SignedReading

log = logging.getLogger("gridledger.index")


class IndexDamaged(InputError):
    """The index file is not a readable SQLite database: rebuild it from the chain."""

    def __init__(self, path: Path, problem: object) -> None:
        state = path.parent
        super().__init__(f"the index {path} is damaged ({problem}): rebuild it from the chain and the inputs store "
                         f"with `gridledger index rebuild --state {state}` (it keeps the damaged file as "
                         f"{path.name}.old)")


class Index(IndexViews, IndexAudits):
    """SQLite store of indexed chain events and what pages show of the committed inputs,
    whose bodies live in `inputs` (default: the ``inputs/`` store beside the file); the
    per-interval series the UI charts are read through IndexViews."""

    def __init__(self, path: str | Path, inputs: InputsStore | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.inputs_store = inputs if inputs is not None else InputsStore(self.path.parent / INPUTS_DIR)
        # Meter-signed readings live beside the inputs, as durably (node.clearing.readings_store).
        self.readings_store = ReadingsStore(self.inputs_store.root.parent / READINGS_DIR)
        try:
            check_header(self.path)
            self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self._open()
        except sqlite3.DatabaseError as exc:
            raise IndexDamaged(self.path, exc) from exc
        except ValueError as exc:  # check_header: a truncated file
            raise IndexDamaged(self.path, exc) from exc

    def _open(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        view = self.db.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'wallet_changes'").fetchone()
        if view is not None and "storage_fees" not in view[0]:
            # Written before storage fees (shared batteries) were wallet changes: SCHEMA makes it anew.
            self.db.execute("DROP VIEW wallet_changes")
        self.db.executescript(SCHEMA)
        if "pay_as_bid" not in {row["name"] for row in self.db.execute("PRAGMA table_info(intervals)")}:
            # Written before IntervalSettled carried payAsBid, so by a market whose
            # intervals it could not tell apart anyway.
            self.db.execute("ALTER TABLE intervals ADD COLUMN pay_as_bid INTEGER NOT NULL DEFAULT 0")
        if "meta" in tables and "role_events" not in tables and self.last_block >= 0:
            # An index written before role events were indexed: the grants in the blocks
            # it covers already (the deployer's, at least) are not in it.
            self.set_meta(roles_from_block=self.last_block + 1)
        if "inputs" in tables:
            self._move_inputs_to_store()
        if "home_energy" not in tables:
            self._backfill_home_energy()

    def _move_inputs_to_store(self) -> None:
        """An index from before the inputs store kept the inputs' bodies in a table:
        copies each one that hashes right into the store (once; the table is left as
        it was, GridLedger deletes nothing)."""
        if self.meta().get("inputs_in_store") == "1":
            return
        moved = 0
        for row in self.db.execute("SELECT hash, body FROM inputs"):
            body = zlib.decompress(row["body"])
            try:
                self.inputs_store.put(body, row["hash"])
                moved += 1
            except InputError:
                log.warning("%s: the stored inputs %s do not hash to their name; not copied", self.path, row["hash"])
            except OSError as exc:
                log.warning("could not copy the index's inputs into %s (%s); they are read from the index meanwhile",
                            self.inputs_store.root, exc)
                return
        self.set_meta(inputs_in_store=1)
        if moved:
            log.info("copied %d committed inputs from %s into the inputs store %s", moved, self.path, self.inputs_store.root)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- meta ---------------------------------------------------------------------

    def set_meta(self, **values: object) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(k, str(v)) for k, v in values.items()],
            )

    def meta(self) -> dict[str, str]:
        """Descriptive values (chain, market, currency...), without the KPIs document."""
        return {row["key"]: row["value"] for row in self.db.execute("SELECT key, value FROM meta WHERE key != 'kpis'")}

    def store_kpis(self, document: dict) -> None:
        """The KPIs of the last evaluated run (node.metrics.kpis.Evaluation.to_json plus
        caveats), for the web UI; kept in the meta table, so a rebuild copies them."""
        import json

        self.set_meta(kpis=json.dumps(document))

    def kpis(self) -> dict | None:
        import json

        row = self.db.execute("SELECT value FROM meta WHERE key = 'kpis'").fetchone()
        return None if row is None else json.loads(row["value"])

    def version(self) -> tuple[int, int]:
        """Changes whenever the index's content may have: another connection committed
        (SQLite's data_version) or this one wrote. What readers cache is keyed on it."""
        return self.db.execute("PRAGMA data_version").fetchone()[0], self.db.total_changes

    @property
    def last_block(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'last_block'").fetchone()
        return int(row["value"]) if row else -1

    # -- writing ------------------------------------------------------------------

    def apply(self, events: Iterable[Event], gas_used: dict[str, int] | None = None, up_to_block: int | None = None) -> None:
        """Records decoded market events in one SQLite transaction. Applying the same
        events twice changes nothing, so replaying a block range is always safe."""
        gas_used = gas_used or {}
        with self.transaction() as db:
            last = self.last_block
            for event in events:
                APPLY[event.name](db, event, gas_used)
                last = max(last, event.block)
            if up_to_block is not None:
                last = max(last, up_to_block)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_block', ?)", (str(last),))

    def store_inputs(self, inputs: IntervalInputs) -> str:
        """Keeps an interval's inputs: durably in the inputs store first (fsynced, so
        they are on disk before the settlement committing to them is sent), then what
        the pages show of them here. Idempotent; returns the hash."""
        digest = self.inputs_store.put(inputs.canonical_json())
        self.record_inputs(inputs, digest)
        return digest

    def record_inputs(self, inputs: IntervalInputs, digest: str | None = None) -> None:
        """What the pages show of an interval's inputs (derived data; `store_inputs`
        also keeps the inputs themselves)."""
        digest = digest or "0x" + inputs.hash().hex()
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO last_inputs (interval, hash) VALUES (?, ?)", (inputs.interval, digest))
            db.execute(
                "INSERT OR REPLACE INTO interval_inputs VALUES (?, ?, ?, ?, ?, ?)",
                (
                    inputs.interval,
                    inputs.start,
                    inputs.import_capacity_wh[0],
                    inputs.export_capacity_wh[0],
                    sum(row[0] for row in inputs.load_wh),
                    sum(row[0] for row in inputs.pv_wh),
                ),
            )
            db.executemany(
                "INSERT OR REPLACE INTO home_energy VALUES (?, ?, ?, ?)",
                [(inputs.interval, pid, load[0], pv[0]) for pid, load, pv in zip(inputs.participants, inputs.load_wh, inputs.pv_wh)],
            )
            db.executemany(
                "INSERT OR REPLACE INTO battery_states VALUES (?, ?, ?, ?)",
                [(inputs.interval, b.participant, b.soc_wh, b.capacity_wh) for b in inputs.batteries],
            )
            db.executemany(
                "UPDATE participants SET battery_wh = ? WHERE id = ?",
                [(b.capacity_wh, b.participant) for b in inputs.batteries],
            )

    def store_readings(self, readings: Iterable[SignedReading]) -> None:
        """Keeps meter-signed readings (one per interval and participant; a later one of
        the same interval and participant replaces it): durably in the readings store
        first (fsynced, before the settlement they back is sent), then here."""
        readings = list(readings)
        self.readings_store.put(readings)
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?, ?)",
                [(r.reading.interval, r.reading.participant, r.reading.import_wh, r.reading.export_wh,
                  "0x" + r.signature.hex()) for r in readings],
            )

    def readings(self, interval: int) -> list[SignedReading]:
        """The meter-signed readings of `interval` the oracle received: from the readings
        store (so a rebuilt index has them all), else as an index from before the store
        kept them."""
        kept = self.readings_store.get(interval)
        if kept:
            return kept
        rows = self.db.execute(
            "SELECT * FROM readings WHERE interval = ? ORDER BY participant", (interval,)
        ).fetchall()
        return [
            SignedReading(Reading(r["participant"], r["interval"], r["import_wh"], r["export_wh"]),
                          bytes.fromhex(r["signature"][2:]))
            for r in rows
        ]

    def store_baseline(self, rows: Iterable[tuple[int, int, int, int, int]]) -> None:
        """(interval, participant, grid_import_wh, grid_export_wh, cost) of the no-trading baseline."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO baseline VALUES (?, ?, ?, ?, ?)", rows)

    def store_baseline_battery(self, rows: Iterable[tuple[int, int, int]]) -> None:
        """(interval, participant, soc_wh at the interval's start) of the no-trading baseline."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO baseline_battery VALUES (?, ?, ?)", rows)

    def _backfill_home_energy(self) -> None:
        """Fills home_energy for an index written before it existed, from the inputs it holds."""
        for row in self.db.execute("SELECT hash FROM last_inputs ORDER BY interval").fetchall():
            inputs = IntervalInputs.from_json(self.inputs(row["hash"]))
            with self.transaction() as db:
                db.executemany(
                    "INSERT OR REPLACE INTO home_energy VALUES (?, ?, ?, ?)",
                    [(inputs.interval, pid, load[0], pv[0])
                     for pid, load, pv in zip(inputs.participants, inputs.load_wh, inputs.pv_wh)],
                )

    # -- reading ------------------------------------------------------------------

    def last_inputs_for(self, interval: int) -> bytes | None:
        """The canonical JSON of the inputs last stored for `interval`, if any."""
        row = self.db.execute("SELECT hash FROM last_inputs WHERE interval = ?", (interval,)).fetchone()
        return None if row is None else self.inputs(row[0])

    def inputs(self, digest: str) -> bytes:
        """The canonical JSON of the inputs with hash `digest` (0x-prefixed hex), from the
        inputs store; InputError if it does not hold them (or they are damaged)."""
        return self.inputs_store.get(digest)

    def last_interval(self) -> int | None:
        row = self.db.execute("SELECT MAX(interval) AS k FROM intervals").fetchone()
        return row["k"]

    def balances(self) -> dict[int, int]:
        rows = self.db.execute("SELECT participant, SUM(amount) AS b FROM wallet_changes GROUP BY participant")
        return {row["participant"]: row["b"] for row in rows}

    def participants(self) -> list[dict]:
        balances = self.balances()
        rows = self.db.execute("SELECT * FROM participants ORDER BY id")
        return [dict(row) | {"balance": balances.get(row["id"], 0)} for row in rows]

    def participant(self, pid: int) -> dict | None:
        row = self.db.execute("SELECT * FROM participants WHERE id = ?", (pid,)).fetchone()
        if row is None:
            return None
        balance = self.db.execute(
            "SELECT COALESCE(SUM(amount), 0) AS b FROM wallet_changes WHERE participant = ?", (pid,)
        ).fetchone()["b"]
        return dict(row) | {"balance": balance}

    def participant_history(self, pid: int) -> list[dict]:
        rows = self.db.execute(
            """SELECT e.interval, e.grid_wh, e.p2p_wh, e.amount, i.p2p_price, i.tx_hash,
                      s.soc_wh, s.capacity_wh
               FROM entries e JOIN intervals i USING (interval)
               LEFT JOIN battery_states s ON s.interval = e.interval AND s.participant = e.participant
               WHERE e.participant = ? ORDER BY e.interval""",
            (pid,),
        )
        return [dict(row) for row in rows]

    def wallet_events(self, pid: int | None = None) -> list[dict]:
        sql = "SELECT * FROM wallet_events" + (" WHERE participant = ?" if pid is not None else "")
        return [dict(row) for row in self.db.execute(sql + " ORDER BY block, log_index", () if pid is None else (pid,))]

    def intervals(self, limit: int = 1000, offset: int = 0) -> list[dict]:
        rows = self.db.execute(
            """SELECT i.*, ii.start, ii.import_capacity_wh, ii.export_capacity_wh,
                      (SELECT COALESCE(SUM(p2p_wh), 0) FROM entries e WHERE e.interval = i.interval AND e.p2p_wh > 0) AS p2p_wh
               FROM intervals i LEFT JOIN interval_inputs ii USING (interval)
               ORDER BY i.interval LIMIT ? OFFSET ?""",
            (limit, offset),
        )
        return [dict(row) for row in rows]

    def interval(self, k: int) -> dict | None:
        row = self.db.execute(
            """SELECT i.*, ii.start, ii.import_capacity_wh, ii.export_capacity_wh
               FROM intervals i LEFT JOIN interval_inputs ii USING (interval) WHERE i.interval = ?""",
            (k,),
        ).fetchone()
        if row is None:
            return None
        zones = self.db.execute("SELECT zone, price FROM zone_prices WHERE interval = ? ORDER BY zone", (k,))
        rent = self.db.execute("SELECT rent_milli FROM congestion_rents WHERE interval = ?", (k,)).fetchone()
        zonal = {"zone_prices": [z["price"] for z in zones], "congestion_rent_milli": None if rent is None else rent[0]}
        entries = self.db.execute(
            """SELECT e.*, p.name FROM entries e JOIN participants p ON p.id = e.participant
               WHERE e.interval = ? ORDER BY e.participant""",
            (k,),
        )
        return dict(row) | zonal | {"entries": [dict(e) for e in entries]}

    def zone_price_series(self) -> list[dict]:
        """Every zonal interval's zone prices and congestion rent, in interval order:
        [{interval, prices: [per zone], rent_milli}]; empty for a copper-plate run."""
        prices: dict[int, list[int]] = {}
        for row in self.db.execute("SELECT interval, zone, price FROM zone_prices ORDER BY interval, zone"):
            prices.setdefault(row["interval"], []).append(row["price"])
        rents = dict(self.db.execute("SELECT interval, rent_milli FROM congestion_rents").fetchall())
        return [{"interval": k, "prices": v, "rent_milli": rents.get(k, 0)} for k, v in prices.items()]

    def entries_between(self, start: int, stop: int) -> list[tuple[int, int, int, int, int]]:
        """(interval, participant, grid_wh, p2p_wh, amount) of every settled entry of
        intervals start..stop-1."""
        return [tuple(row) for row in self.db.execute(
            "SELECT interval, participant, grid_wh, p2p_wh, amount FROM entries WHERE interval >= ? AND interval < ?",
            (start, stop))]

    def capacities_between(self, start: int, stop: int) -> list[tuple[int, int]]:
        """(import, export) Wh of intervals start..stop-1 as their committed inputs give
        them; an interval without stored inputs takes the one before it."""
        known = {row[0]: (row[1], row[2]) for row in self.db.execute(
            "SELECT interval, import_capacity_wh, export_capacity_wh FROM interval_inputs WHERE interval >= ? AND interval < ?",
            (start, stop))}
        last = next(iter(known.values()), (0, 0))
        out = []
        for k in range(start, stop):
            last = known.get(k, last)
            out.append(last)
        return out

    def battery_series(self) -> list[dict]:
        rows = self.db.execute("SELECT interval, participant, soc_wh, capacity_wh FROM battery_states ORDER BY interval, participant")
        return [dict(row) for row in rows]

    def summary(self) -> dict:
        """Community totals over every settled interval, and the baseline comparison."""
        totals = dict(
            self.db.execute(
                """SELECT COUNT(*) AS intervals, COALESCE(SUM(grid_import_wh), 0) AS grid_import_wh,
                          COALESCE(SUM(grid_export_wh), 0) AS grid_export_wh,
                          COALESCE(SUM(grid_amount), 0) AS paid_to_grid, MAX(interval) AS last_interval,
                          COALESCE(SUM(gas_used), 0) AS gas_used
                   FROM intervals"""
            ).fetchone()
        )
        totals["p2p_wh"] = self.db.execute("SELECT COALESCE(SUM(p2p_wh), 0) AS v FROM entries WHERE p2p_wh > 0").fetchone()["v"]
        totals["participants"] = self.db.execute("SELECT COUNT(*) AS n FROM participants WHERE id != 0").fetchone()["n"]
        base = self.db.execute(
            """SELECT COUNT(*) AS n, COALESCE(SUM(cost), 0) AS cost, COALESCE(SUM(grid_import_wh), 0) AS imp,
                      COALESCE(SUM(grid_export_wh), 0) AS exp
               FROM baseline WHERE interval IN (SELECT interval FROM intervals)"""
        ).fetchone()
        totals["community_cost"] = -self.db.execute("SELECT COALESCE(SUM(amount), 0) AS v FROM entries").fetchone()["v"]
        if base["n"]:
            totals["baseline_cost"] = base["cost"]
            totals["baseline_import_wh"] = base["imp"]
            totals["baseline_export_wh"] = base["exp"]
            totals["savings"] = base["cost"] - totals["community_cost"]
        return totals

    def capacity_events(self) -> list[dict]:
        """Every indexed DefaultCapacitySet (interval None) and CapacitySet, in chain order."""
        rows = self.db.execute(
            "SELECT block, tx_hash, interval, import_wh, export_wh FROM capacity_events ORDER BY block, log_index"
        )
        return [dict(row) for row in rows]

    def role_holders(self) -> dict:
        """Who holds each market role now, as GET /api/admin/roles and `gridledger admin
        roles` give it: `roles` maps each role's name (node.chain.roles.ROLES; an unknown role
        as its 0x id) to its holders in the order they were granted, each with the
        grant's block, tx_hash and sender (every known role, one without holders with
        an empty list); `as_of_block` is the index's last block; `complete` is False
        for an index written before role events were indexed, whose older grants are
        missing until `gridledger index rebuild`."""
        from eth_utils import to_checksum_address

        from node.chain.roles import ROLES, role_name  # not at the top: it loads web3, which the CLI's index readers avoid

        holders: dict[str, list[dict]] = {name: [] for name in ROLES}
        rows = self.db.execute(
            """SELECT role, account, block, tx_hash, sender FROM (
                   SELECT *, ROW_NUMBER() OVER (PARTITION BY role, account ORDER BY block DESC, log_index DESC) AS n
                   FROM role_events)
               WHERE n = 1 AND kind = 'grant' ORDER BY block, log_index"""
        )
        for row in rows:
            holders.setdefault(role_name(bytes.fromhex(row["role"][2:])), []).append({
                "account": to_checksum_address(row["account"]), "block": row["block"], "tx_hash": row["tx_hash"],
                "sender": to_checksum_address(row["sender"]),
            })
        return {"roles": holders, "as_of_block": self.last_block, "complete": "roles_from_block" not in self.meta()}

    def participant_totals(self) -> list[dict]:
        """Per participant over every settled interval: cost (minor units, positive =
        paid), P2P Wh bought and sold, and the baseline's cost for the same intervals."""
        rows = self.db.execute(
            """SELECT e.participant AS id, -SUM(e.amount) AS cost_units,
                      SUM(CASE WHEN e.p2p_wh > 0 THEN e.p2p_wh ELSE 0 END) AS p2p_bought_wh,
                      SUM(CASE WHEN e.p2p_wh < 0 THEN -e.p2p_wh ELSE 0 END) AS p2p_sold_wh,
                      (SELECT SUM(cost) FROM baseline b WHERE b.participant = e.participant
                         AND b.interval IN (SELECT interval FROM intervals)) AS baseline_cost_units
               FROM entries e GROUP BY e.participant"""
        )
        return [dict(row) for row in rows]
