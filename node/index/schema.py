"""The index's tables, and how each market event lands in them.

Every handler is idempotent (INSERT OR IGNORE, upserts), so applying the same events
twice changes nothing and a block range can always be replayed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.chain.events import Event
from node.chain.settlement import decode_entry

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS participants (
    id INTEGER PRIMARY KEY, owner TEXT NOT NULL, zone INTEGER NOT NULL,
    active INTEGER NOT NULL, name TEXT NOT NULL, battery_wh INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS intervals (
    interval INTEGER PRIMARY KEY, block INTEGER NOT NULL, tx_hash TEXT NOT NULL,
    inputs_hash TEXT NOT NULL, buy_price INTEGER NOT NULL, sell_price INTEGER NOT NULL,
    p2p_price INTEGER NOT NULL, grid_import_wh INTEGER NOT NULL, grid_export_wh INTEGER NOT NULL,
    grid_amount INTEGER NOT NULL, participants INTEGER NOT NULL, gas_used INTEGER,
    pay_as_bid INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS entries (
    interval INTEGER NOT NULL, participant INTEGER NOT NULL, grid_wh INTEGER NOT NULL,
    p2p_wh INTEGER NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (interval, participant));
CREATE INDEX IF NOT EXISTS entries_by_participant ON entries (participant, interval);
-- A zonal settlement's P2P price per zone and its congestion rent (ZonePricesSettled;
-- thousandths of a unit, part of the grid's amount).
CREATE TABLE IF NOT EXISTS zone_prices (
    interval INTEGER NOT NULL, zone INTEGER NOT NULL, price INTEGER NOT NULL, PRIMARY KEY (interval, zone));
CREATE TABLE IF NOT EXISTS congestion_rents (interval INTEGER PRIMARY KEY, rent_milli INTEGER NOT NULL);
-- Participants a settlement left out, declared with their metered net energy.
CREATE TABLE IF NOT EXISTS exclusions (
    interval INTEGER NOT NULL, participant INTEGER NOT NULL, net_wh INTEGER NOT NULL,
    PRIMARY KEY (interval, participant));
-- Settlements a dispute reversed (their entries and interval row are gone from the
-- tables above until the interval is settled again).
CREATE TABLE IF NOT EXISTS reversals (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL,
    interval INTEGER NOT NULL, participant INTEGER NOT NULL, disputer TEXT NOT NULL,
    kind INTEGER NOT NULL, reward INTEGER NOT NULL, PRIMARY KEY (tx_hash, log_index));
-- The entries a reversal took back (they leave `entries`): what a participant's page
-- shows of a disputed interval, whose wallet change is undone.
CREATE TABLE IF NOT EXISTS reversed_entries (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, interval INTEGER NOT NULL, participant INTEGER NOT NULL,
    grid_wh INTEGER NOT NULL, p2p_wh INTEGER NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (tx_hash, log_index, participant));
-- Each reversal's steps on chain: 'open' (chunk = how many chunks it takes back),
-- 'chunk' (one chunk taken back: its entries and their amounts' sum), 'close' (amount =
-- the grid's). While one is open, the contract refuses settlements and withdrawals.
CREATE TABLE IF NOT EXISTS reversal_steps (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL,
    interval INTEGER NOT NULL, kind TEXT NOT NULL, chunk INTEGER, entries INTEGER, amount INTEGER,
    PRIMARY KEY (tx_hash, log_index));
-- Each interval's meter-signed readings, as the oracle received them (not on chain:
-- the auditor checks every settlement against them; a dispute sends one on chain).
CREATE TABLE IF NOT EXISTS readings (
    interval INTEGER NOT NULL, participant INTEGER NOT NULL, import_wh INTEGER NOT NULL,
    export_wh INTEGER NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (interval, participant));
-- Meter keys by participant, each from an interval on (MeterKeySet).
CREATE TABLE IF NOT EXISTS meter_keys (
    participant INTEGER NOT NULL, from_interval INTEGER NOT NULL, meter TEXT NOT NULL,
    PRIMARY KEY (participant, from_interval));
CREATE TABLE IF NOT EXISTS wallet_events (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL,
    participant INTEGER NOT NULL, kind TEXT NOT NULL, account TEXT NOT NULL,
    amount INTEGER NOT NULL, PRIMARY KEY (tx_hash, log_index));
CREATE TABLE IF NOT EXISTS capacity_events (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL,
    interval INTEGER, import_wh INTEGER NOT NULL, export_wh INTEGER NOT NULL,
    PRIMARY KEY (tx_hash, log_index));
-- AccessControl's RoleGranted/RoleRevoked, kept as history: an account holds a role
-- if its last event for that role is a grant. role is the bytes32 id (0x hex).
CREATE TABLE IF NOT EXISTS role_events (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL,
    role TEXT NOT NULL, account TEXT NOT NULL, kind TEXT NOT NULL, sender TEXT NOT NULL,
    PRIMARY KEY (tx_hash, log_index));
CREATE TABLE IF NOT EXISTS settlement_chunks (
    tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL, block INTEGER NOT NULL,
    interval INTEGER NOT NULL, kind TEXT NOT NULL, chunk INTEGER NOT NULL, entries INTEGER NOT NULL,
    gas_used INTEGER, PRIMARY KEY (tx_hash, log_index));
CREATE INDEX IF NOT EXISTS settlement_chunks_by_interval ON settlement_chunks (interval);
-- The inputs last stored for each interval, so an oracle resuming a half-settled
-- (chunked) interval continues it from the very inputs its first chunk committed to.
CREATE TABLE IF NOT EXISTS last_inputs (interval INTEGER PRIMARY KEY, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS interval_inputs (
    interval INTEGER PRIMARY KEY, start TEXT NOT NULL, import_capacity_wh INTEGER NOT NULL,
    export_capacity_wh INTEGER NOT NULL, load_wh INTEGER NOT NULL, pv_wh INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS battery_states (
    interval INTEGER NOT NULL, participant INTEGER NOT NULL, soc_wh INTEGER NOT NULL,
    capacity_wh INTEGER NOT NULL, PRIMARY KEY (interval, participant));
-- Each home's load and PV of the interval itself (column 0 of the committed inputs'
-- horizon), so per-home charts need not decompress every interval's inputs.
CREATE TABLE IF NOT EXISTS home_energy (
    interval INTEGER NOT NULL, participant INTEGER NOT NULL, load_wh INTEGER NOT NULL,
    pv_wh INTEGER NOT NULL, PRIMARY KEY (participant, interval));
CREATE INDEX IF NOT EXISTS home_energy_by_interval ON home_energy (interval);
-- The no-trading baseline's battery state at the start of each interval (computed
-- locally from the dataset, like the baseline itself).
CREATE TABLE IF NOT EXISTS baseline_battery (
    interval INTEGER NOT NULL, participant INTEGER NOT NULL, soc_wh INTEGER NOT NULL,
    PRIMARY KEY (participant, interval));
CREATE TABLE IF NOT EXISTS baseline (
    interval INTEGER NOT NULL, participant INTEGER NOT NULL, grid_import_wh INTEGER NOT NULL,
    grid_export_wh INTEGER NOT NULL, cost INTEGER NOT NULL, PRIMARY KEY (interval, participant));
-- Shared batteries (issue 12): share participants, and the storage fees each interval
-- paid the operator (gone with the interval if a dispute reverses it).
CREATE TABLE IF NOT EXISTS shares (
    participant INTEGER PRIMARY KEY, battery INTEGER NOT NULL, capacity_wh INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS storage_fees (
    interval INTEGER PRIMARY KEY, operator INTEGER NOT NULL, amount INTEGER NOT NULL);
-- Index._open drops an older form of this view (before storage fees were wallet changes).
CREATE VIEW IF NOT EXISTS wallet_changes AS
    SELECT participant, amount FROM entries
    UNION ALL SELECT 0, grid_amount FROM intervals
    UNION ALL SELECT operator, amount FROM storage_fees
    UNION ALL SELECT participant, CASE kind WHEN 'deposit' THEN amount ELSE -amount END FROM wallet_events;
CREATE TABLE IF NOT EXISTS audit_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, audited_at TEXT NOT NULL, chain_head_block INTEGER NOT NULL,
    verdicts INTEGER NOT NULL, failed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit_verdicts (
    run INTEGER NOT NULL REFERENCES audit_runs (id), position INTEGER NOT NULL, interval INTEGER NOT NULL,
    tx_hash TEXT NOT NULL, ok INTEGER NOT NULL, reasons TEXT NOT NULL, PRIMARY KEY (run, position));
CREATE INDEX IF NOT EXISTS audit_verdicts_by_interval ON audit_verdicts (run, interval);
CREATE INDEX IF NOT EXISTS audit_verdicts_failed ON audit_verdicts (run, ok, position);
"""


def check_header(path: Path) -> None:
    """Raises ValueError if the SQLite file at `path` is shorter than its header says
    (truncated): SQLite itself would only notice at the first query that reaches a
    missing page, deep inside some command. A missing or empty file is fine (new)."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
            size = f.seek(0, 2)
    except FileNotFoundError:
        return
    if not header:
        return
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise ValueError("not an SQLite database")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count is valid only if the "version valid for" number equals the change counter.
    if header[92:96] == header[24:28] and pages * page_size > size:
        raise ValueError(f"the file has {size} bytes, its header says {pages * page_size}: it was truncated")


def _registered(db: sqlite3.Connection, e: Event, _: dict) -> None:
    a = e.args
    db.execute(
        """INSERT INTO participants (id, owner, zone, active, name) VALUES (?, ?, ?, 1, ?)
           ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, name = excluded.name""",
        (a["participant"], a["owner"], a["zone"], a["name"]),
    )


def _updated(db: sqlite3.Connection, e: Event, _: dict) -> None:
    db.execute("UPDATE participants SET zone = ?, active = ? WHERE id = ?", (e.args["zone"], int(e.args["active"]), e.args["participant"]))


def _interval(db: sqlite3.Connection, e: Event, gas_used: dict) -> None:
    """A settled interval. One settled in chunks closes in its last apply transaction,
    after its chunks' EntriesSettled events; its gas is that of all its transactions."""
    a = e.args
    # Only this settlement's chunks: those of one a dispute reversed came before it.
    txs = {row["tx_hash"]: row["gas"] for row in db.execute(
        """SELECT tx_hash, MAX(gas_used) AS gas FROM settlement_chunks c WHERE interval = ?
           AND NOT EXISTS (SELECT 1 FROM reversals r WHERE r.interval = c.interval
                           AND (r.block > c.block OR (r.block = c.block AND r.log_index > c.log_index)))
           GROUP BY tx_hash""", (a["interval"],)
    )}
    txs.setdefault(e.tx_hash, gas_used.get(e.tx_hash))
    gas = None if None in txs.values() else sum(txs.values())
    db.execute(
        "INSERT OR IGNORE INTO intervals VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            a["interval"], e.block, e.tx_hash, "0x" + a["inputsHash"].hex(), a["importPrice"], a["exportPrice"],
            a["p2pPrice"], a["gridImportWh"], a["gridExportWh"], a["gridAmount"], a["participants"], gas,
            int(a["payAsBid"]),
        ),
    )


def _chunk(kind: str):
    """A chunked settlement's verify or apply chunk, or an abandoned pending interval
    (chunk = how many chunks it had verified). Entries count only once IntervalSettled
    closes the interval; these rows record the steps and their gas."""

    def apply(db: sqlite3.Connection, e: Event, gas_used: dict) -> None:
        a = e.args
        db.execute(
            "INSERT OR IGNORE INTO settlement_chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (e.tx_hash, e.log_index, e.block, a["interval"], kind, a.get("chunk", a.get("verifiedChunks")),
             a.get("entries", 0), gas_used.get(e.tx_hash)),
        )

    return apply


def _entries(db: sqlite3.Connection, e: Event, _: dict) -> None:
    """One chunk's SettlementEntry words: the participants settled, and those declared
    left out with their metered energy."""
    k = e.args["interval"]
    for entry in map(decode_entry, e.args["entries"]):
        if entry.excluded:
            db.execute("INSERT OR IGNORE INTO exclusions VALUES (?, ?, ?)", (k, entry.participant, entry.grid_wh))
        else:
            db.execute(
                "INSERT OR IGNORE INTO entries VALUES (?, ?, ?, ?, ?)",
                (k, entry.participant, entry.grid_wh, entry.p2p_wh, entry.amount),
            )


def _reversed(db: sqlite3.Connection, e: Event, _: dict) -> None:
    """A dispute reversed the interval: its wallet changes are undone on chain, so its
    rows go (the interval may be settled again); the reversal is kept."""
    a = e.args
    k = a["interval"]
    # Not on a replay after the interval was settled again: those entries are the new ones.
    db.execute(
        """INSERT OR IGNORE INTO reversed_entries
           SELECT ?, ?, interval, participant, grid_wh, p2p_wh, amount FROM entries WHERE interval = ?
           AND NOT EXISTS (SELECT 1 FROM intervals WHERE interval = ? AND block > ?)""",
        (e.tx_hash, e.log_index, k, k, e.block),
    )
    for table in ("entries", "exclusions", "intervals", "storage_fees", "zone_prices", "congestion_rents"):
        db.execute(f"DELETE FROM {table} WHERE interval = ?", (k,))
    db.execute(
        "INSERT OR IGNORE INTO reversals VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (e.tx_hash, e.log_index, e.block, k, a["participant"], a["disputer"].lower(), a["kind"], a["reward"]),
    )


def _reversal_step(kind: str):
    """ReversalOpened, ChunkReversed or ReversalClosed: how far a reversal has got on
    chain (the index shows balances after the whole reversal from IntervalReversed on)."""

    def apply(db: sqlite3.Connection, e: Event, _: dict) -> None:
        a = e.args
        chunk = a.get("chunks", a.get("chunk"))
        db.execute(
            "INSERT OR IGNORE INTO reversal_steps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (e.tx_hash, e.log_index, e.block, a["interval"], kind, chunk, a.get("entries"), a.get("sum", a.get("gridAmount"))),
        )

    return apply


def _share(db: sqlite3.Connection, e: Event, _: dict) -> None:
    a = e.args
    db.execute("INSERT OR REPLACE INTO shares VALUES (?, ?, ?)", (a["participant"], a["battery"], a["capacityWh"]))


def _storage_fees(db: sqlite3.Connection, e: Event, _: dict) -> None:
    a = e.args
    db.execute("INSERT OR REPLACE INTO storage_fees VALUES (?, ?, ?)", (a["interval"], a["operator"], a["amount"]))


def _zone_prices(db: sqlite3.Connection, e: Event, _: dict) -> None:
    """A zonal interval's zone prices and congestion rent (emitted after IntervalSettled)."""
    k = e.args["interval"]
    for zone, price in enumerate(e.args["zonePrices"]):
        db.execute("INSERT OR REPLACE INTO zone_prices VALUES (?, ?, ?)", (k, zone, price))
    db.execute("INSERT OR REPLACE INTO congestion_rents VALUES (?, ?)", (k, e.args["congestionRentMilli"]))


def _owner(db: sqlite3.Connection, e: Event, _: dict) -> None:
    db.execute("UPDATE participants SET owner = ? WHERE id = ?", (e.args["newOwner"], e.args["participant"]))


def _meter(db: sqlite3.Connection, e: Event, _: dict) -> None:
    a = e.args
    db.execute("INSERT OR REPLACE INTO meter_keys VALUES (?, ?, ?)", (a["participant"], a["fromInterval"], a["meter"]))


def _wallet(kind: str, account_field: str):
    def apply(db: sqlite3.Connection, e: Event, _: dict) -> None:
        db.execute(
            "INSERT OR IGNORE INTO wallet_events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (e.tx_hash, e.log_index, e.block, e.args["participant"], kind, e.args[account_field], e.args["amount"]),
        )

    return apply


def _capacity(db: sqlite3.Connection, e: Event, _: dict) -> None:
    db.execute(
        "INSERT OR IGNORE INTO capacity_events VALUES (?, ?, ?, ?, ?, ?)",
        (e.tx_hash, e.log_index, e.block, e.args.get("interval"), e.args["importWh"], e.args["exportWh"]),
    )


def _role(kind: str):
    def apply(db: sqlite3.Connection, e: Event, _: dict) -> None:
        a = e.args
        db.execute(
            "INSERT OR IGNORE INTO role_events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (e.tx_hash, e.log_index, e.block, "0x" + bytes(a["role"]).hex(), a["account"].lower(), kind, a["sender"].lower()),
        )

    return apply


def _ignore(db: sqlite3.Connection, e: Event, _: dict) -> None:
    """Mandate changes and RoleAdminChanged are read from the chain when needed (the
    auditor reads mandates, the admin relay getRoleAdmin); the UI does not show them."""


APPLY = {
    "ParticipantRegistered": _registered,
    "ParticipantUpdated": _updated,
    "IntervalSettled": _interval,
    "EntriesSettled": _entries,
    "IntervalReversed": _reversed,
    "ZonePricesSettled": _zone_prices,
    "OwnerRotated": _owner,
    "MeterKeySet": _meter,
    "ChunkVerified": _chunk("verify"),
    "ChunkApplied": _chunk("apply"),
    "PendingAbandoned": _chunk("abandon"),
    "Deposited": _wallet("deposit", "from"),
    "Withdrawn": _wallet("withdraw", "to"),
    "CapacitySet": _capacity,
    "DefaultCapacitySet": _capacity,
    "MandateSet": _ignore,
    "MandateRevoked": _ignore,
    "RoleGranted": _role("grant"),
    "RoleRevoked": _role("revoke"),
    "RoleAdminChanged": _ignore,
    "ShareRegistered": _share,
    "StorageFeesPaid": _storage_fees,
    # IntervalReversed removes the interval's storage fees; the terms are read from the chain.
    "StorageFeesReversed": _ignore,
    # IntervalReversed removes the interval's rows at once (every balance the index shows
    # is what the reversal leaves); its reverse chunks take the same amounts back on chain,
    # and their steps say how far it has got (Index.reversals).
    "ReversalOpened": _reversal_step("open"),
    "ChunkReversed": _reversal_step("chunk"),
    "ReversalClosed": _reversal_step("close"),
    "StorageFeeScheduled": _ignore,
    # Terms, credit, reserve, bond, freezes, cancellations and equivocations: the oracle
    # and the auditor read them from the chain when they need them; the UI does not
    # show them yet.
    **{name: _ignore for name in (
        "TermsScheduled", "IntervalPricesSet", "CreditLimitSet", "ReserveChanged", "BondChanged",
        "DisputeRewardSet", "ParticipantFrozen", "OrdersCancelled", "MeterEquivocated",
        "DefaultZoneCapacitySet", "ZoneCapacitySet",
    )},
}
