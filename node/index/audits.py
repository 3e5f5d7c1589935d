"""The audit runs an index keeps: `gridledger audit` stores each run's verdicts here so
the web UI shows them without the chain. Kept apart from store.py, which indexes the
chain: these rows are the auditor's verdicts, not chain events, so a rebuilt index has
none until the next `gridledger audit`.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import Callable, Iterable


class IndexAudits:
    db: sqlite3.Connection
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]

    def store_audit(self, verdicts: Iterable, chain_head_block: int, audited_at_iso: str | None = None) -> int:
        """Keeps one run of `gridledger audit` (node.audit.verify.Verdict-like objects: interval,
        tx_hash, ok, reasons) so the UI can show it without the chain; returns the run id.

        Runs are appended, never replaced: an earlier run that failed stays on record."""
        import json
        from datetime import datetime, timezone

        if audited_at_iso is None:
            audited_at_iso = datetime.now(timezone.utc).isoformat(timespec="seconds")
        rows = [(v.interval, v.tx_hash, int(bool(v.ok)), json.dumps(list(v.reasons))) for v in verdicts]
        with self.transaction() as db:
            run = db.execute(
                "INSERT INTO audit_runs (audited_at, chain_head_block, verdicts, failed) VALUES (?, ?, ?, ?)",
                (audited_at_iso, int(chain_head_block), len(rows), sum(1 for r in rows if not r[2])),
            ).lastrowid
            db.executemany(
                "INSERT INTO audit_verdicts (run, position, interval, tx_hash, ok, reasons) VALUES (?, ?, ?, ?, ?, ?)",
                [(run, i, *row) for i, row in enumerate(rows)],
            )
        return int(run)

    def latest_audit(self) -> dict | None:
        """The last stored audit run: id, audited_at, chain_head_block, verdicts, passed, failed."""
        row = self.db.execute("SELECT * FROM audit_runs ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        run = dict(row)
        return run | {"passed": run["verdicts"] - run["failed"]}

    def audit_verdicts(self, run: int, failed_only: bool = False, limit: int = 1000, offset: int = 0) -> list[dict]:
        """A run's verdicts in the order the auditor gave them (chain order)."""
        rows = self.db.execute(
            "SELECT interval, tx_hash, ok, reasons FROM audit_verdicts WHERE run = ?"
            + (" AND ok = 0" if failed_only else "") + " ORDER BY position LIMIT ? OFFSET ?",
            (run, limit, offset),
        )
        return [self._verdict(row) for row in rows]

    def audit_verdict(self, k: int) -> dict | None:
        """Interval `k`'s verdict in the latest run, None if that run did not cover it.

        Only the latest run counts: an older verdict may predate a re-settlement or a
        different chain, so showing it would vouch for something nobody checked."""
        rows = self.db.execute(
            """SELECT interval, tx_hash, ok, reasons FROM audit_verdicts
               WHERE run = (SELECT MAX(id) FROM audit_runs) AND interval = ? ORDER BY ok, position""",
            (k,),
        ).fetchall()
        return self._verdict(rows[0]) if rows else None

    def intervals_not_audited(self, run: int) -> int:
        """How many settled intervals run `run` has no verdict for (settled after it)."""
        return self.db.execute(
            "SELECT COUNT(*) AS n FROM intervals WHERE interval NOT IN (SELECT interval FROM audit_verdicts WHERE run = ?)",
            (run,),
        ).fetchone()["n"]

    @staticmethod
    def _verdict(row: sqlite3.Row) -> dict:
        import json

        return {"interval": row["interval"], "tx_hash": row["tx_hash"], "ok": bool(row["ok"]),
                "reasons": json.loads(row["reasons"])}
