"""Read-only views of the index for charts and playback: balances as of an interval,
a home's series beside its baseline, statistics across homes, and the reversals disputes made.

Every number is still a sum or a row of indexed chain events (entries, intervals,
wallet events) or of what the index keeps beside them (committed inputs, the
baseline); nothing here reads the chain. Kept apart from store.py, which writes.
"""

from __future__ import annotations

import math
import sqlite3

# Per-home quantities the statistics across homes cover; all Wh per interval.
HOME_QUANTITIES = ("load_wh", "pv_wh", "grid_wh", "p2p_wh", "baseline_grid_wh")


class IndexViews:
    db: sqlite3.Connection

    def participant_list(self) -> list[dict]:
        """Every registered participant (id, owner, zone, active, name, battery_wh) without
        the balance sums Index.participants adds: for drawings that need only who is who."""
        return [dict(row) for row in self.db.execute("SELECT * FROM participants ORDER BY id")]

    def reversals(self) -> list[dict]:
        """Every settlement a dispute reversed, oldest first, with how far its reversal has
        got on chain: {interval, participant, kind (1: the entry contradicts the signed
        reading, 2: the reading was left out), disputer, reward, block, tx_hash, chunks,
        reversed (chunks taken back so far), closed (bool), closed_block, grid_amount}."""
        disputes = [dict(row) for row in self.db.execute("SELECT * FROM reversals ORDER BY block, log_index")]
        by_tx = {(d["tx_hash"], d["interval"]): d | {"chunks": None, "reversed": 0, "closed": False,
                                                      "closed_block": None, "grid_amount": None}
                 for d in disputes}
        current: dict[int, dict] = {}  # the reversal each interval's later steps belong to
        for step in self.db.execute("SELECT * FROM reversal_steps ORDER BY block, log_index"):
            k = step["interval"]
            if step["kind"] == "open":
                # A dispute opens its reversal in its own transaction.
                current[k] = by_tx.get((step["tx_hash"], k)) or {}
                current[k]["chunks"] = step["chunk"]
            elif k in current and step["kind"] == "chunk":
                current[k]["reversed"] = current[k].get("reversed", 0) + 1
            elif k in current:
                current[k] |= {"closed": True, "closed_block": step["block"], "grid_amount": step["amount"]}
        return [by_tx[(d["tx_hash"], d["interval"])] for d in disputes]

    def reversed_entries(self, pid: int) -> list[dict]:
        """Participant `pid`'s settlements that disputes took back, oldest first:
        {interval, grid_wh, p2p_wh, amount, tx_hash} (the dispute's transaction)."""
        rows = self.db.execute(
            "SELECT interval, grid_wh, p2p_wh, amount, tx_hash FROM reversed_entries WHERE participant = ? "
            "ORDER BY rowid", (pid,))
        return [dict(row) for row in rows]

    def open_reversal(self) -> dict | None:
        """The reversal still open on chain, if any (there is at most one at a time)."""
        return next((r for r in self.reversals() if r["chunks"] is not None and not r["closed"]), None)

    def settled_range(self) -> tuple[int, int] | None:
        """(first, last) settled interval; settlements are accepted in order, so every
        interval between them is settled too."""
        row = self.db.execute("SELECT MIN(interval) AS a, MAX(interval) AS b FROM intervals").fetchone()
        return None if row["a"] is None else (row["a"], row["b"])

    def share_account(self, pid: int) -> dict | None:
        """Participant `pid` as an account in a shared battery (ShareRegistered): its
        battery, its share (Wh) and the energy stored in it at the start of the latest
        interval the index has inputs for (None before any); None if `pid` is no share."""
        row = self.db.execute("SELECT battery, capacity_wh FROM shares WHERE participant = ?", (pid,)).fetchone()
        if row is None:
            return None
        state = self.db.execute("SELECT soc_wh FROM battery_states WHERE participant = ? ORDER BY interval DESC LIMIT 1",
                                (pid,)).fetchone()
        return {"participant": pid, "battery": row["battery"], "capacity_wh": row["capacity_wh"],
                "stored_wh": None if state is None else state["soc_wh"]}

    def share_accounts_of(self, pid: int) -> list[dict]:
        """The accounts in shared batteries of home `pid`: the share participants named
        ``<its name>@<battery>`` (node.data.shared_batteries), each as `share_account`."""
        rows = self.db.execute(
            """SELECT s.participant, p.name FROM shares s JOIN participants p ON p.id = s.participant
               WHERE p.name LIKE (SELECT name FROM participants WHERE id = ?) || '@%' ORDER BY s.participant""", (pid,))
        return [self.share_account(row["participant"]) | {"name": row["name"]} for row in rows.fetchall()]

    def battery_states(self, first: int, last: int) -> list[dict]:
        """Each battery's state at the start of every interval in [first, last]."""
        rows = self.db.execute(
            """SELECT interval, participant, soc_wh, capacity_wh FROM battery_states
               WHERE interval BETWEEN ? AND ? ORDER BY interval, participant""", (first, last))
        return [dict(row) for row in rows]

    def baseline_battery_totals(self, first: int, last: int) -> dict[int, int]:
        """The no-trading baseline's stored energy (Wh) over all batteries at the start of
        each interval in [first, last] (intervals without a baseline are left out)."""
        rows = self.db.execute(
            "SELECT interval, SUM(soc_wh) AS soc FROM baseline_battery WHERE interval BETWEEN ? AND ? GROUP BY interval",
            (first, last))
        return {row["interval"]: row["soc"] for row in rows}

    def balances_after(self, k: int) -> dict[int, int]:
        """Every wallet's balance right after interval `k` settled: its settlements up to
        `k` plus the deposits and withdrawals mined up to that settlement's block."""
        block = self.db.execute("SELECT block FROM intervals WHERE interval = ?", (k,)).fetchone()
        if block is None:
            return {}
        rows = self.db.execute(
            """SELECT participant, SUM(amount) AS b FROM (
                   SELECT participant, amount FROM entries WHERE interval <= :k
                   UNION ALL SELECT 0, grid_amount FROM intervals WHERE interval <= :k
                   UNION ALL SELECT participant, CASE kind WHEN 'deposit' THEN amount ELSE -amount END
                       FROM wallet_events WHERE block <= :block)
               GROUP BY participant""",
            {"k": k, "block": block["block"]},
        )
        return {row["participant"]: row["b"] for row in rows}

    def home_series(self, pid: int) -> list[dict]:
        """A home's settled intervals in order, each with its settlement entry (grid_wh,
        p2p_wh, amount), the interval's P2P price and start, the load and PV its inputs
        committed, its battery's state at the start, and the baseline's grid energy,
        cost and battery state beside them (None where the index has none)."""
        rows = self.db.execute(
            """SELECT e.interval, ii.start, e.grid_wh, e.p2p_wh, e.amount, i.p2p_price, i.tx_hash, i.block,
                      h.load_wh, h.pv_wh, s.soc_wh, s.capacity_wh,
                      b.grid_import_wh - b.grid_export_wh AS baseline_grid_wh, b.cost AS baseline_cost,
                      bb.soc_wh AS baseline_soc_wh
               FROM entries e JOIN intervals i USING (interval)
               LEFT JOIN interval_inputs ii USING (interval)
               LEFT JOIN home_energy h ON h.interval = e.interval AND h.participant = e.participant
               LEFT JOIN battery_states s ON s.interval = e.interval AND s.participant = e.participant
               LEFT JOIN baseline b ON b.interval = e.interval AND b.participant = e.participant
               LEFT JOIN baseline_battery bb ON bb.interval = e.interval AND bb.participant = e.participant
               WHERE e.participant = ? ORDER BY e.interval""",
            (pid,),
        )
        return [dict(row) for row in rows]

    def home_stats(self, first: int, last: int) -> list[dict]:
        """Per settled interval in [first, last]: how many homes settled, and the mean and
        standard deviation across them of each of HOME_QUANTITIES (Wh; population std).
        The baseline's grid energy is + import, - export, like a settlement entry's.

        A settled interval's rows never change, so its statistics are computed once per
        Index (a dashboard at 1,000 homes would otherwise join 24,000 rows per view)."""
        memo: dict[int, dict] = self.__dict__.setdefault("_home_stats_memo", {})
        settled = self.settled_range()
        if settled is None:
            return []
        last = min(last, settled[1])
        missing = [k for k in range(first, last + 1) if k not in memo]
        if missing:
            for stats in self._home_stats(missing[0], missing[-1]):
                memo[stats["interval"]] = stats
        return [memo[k] for k in range(first, last + 1) if k in memo]

    def _home_stats(self, first: int, last: int) -> list[dict]:
        rows = self.db.execute(
            """SELECT e.interval, COUNT(*) AS homes,
                      AVG(h.load_wh) AS load_m, AVG(h.load_wh * h.load_wh) AS load_s,
                      AVG(h.pv_wh) AS pv_m, AVG(h.pv_wh * h.pv_wh) AS pv_s,
                      AVG(e.grid_wh) AS grid_m, AVG(e.grid_wh * e.grid_wh) AS grid_s,
                      AVG(e.p2p_wh) AS p2p_m, AVG(e.p2p_wh * e.p2p_wh) AS p2p_s,
                      AVG(b.grid_import_wh - b.grid_export_wh) AS base_m,
                      AVG((b.grid_import_wh - b.grid_export_wh) * (b.grid_import_wh - b.grid_export_wh)) AS base_s
               FROM entries e
               LEFT JOIN home_energy h ON h.interval = e.interval AND h.participant = e.participant
               LEFT JOIN baseline b ON b.interval = e.interval AND b.participant = e.participant
               WHERE e.interval BETWEEN ? AND ? AND e.participant != 0
               GROUP BY e.interval ORDER BY e.interval""",
            (first, last),
        )
        out = []
        for row in rows:
            stats = {"interval": row["interval"], "homes": row["homes"]}
            for name, prefix in zip(HOME_QUANTITIES, ("load", "pv", "grid", "p2p", "base")):
                mean, square = row[prefix + "_m"], row[prefix + "_s"]
                stats[name + "_mean"] = mean
                stats[name + "_std"] = None if mean is None else math.sqrt(max(square - mean * mean, 0.0))
            out.append(stats)
        return out

    def battery_stats(self, first: int, last: int) -> list[dict]:
        """Per interval in [first, last]: the batteries' count, their summed state and
        capacity (Wh) at its start, and the mean and population std of their state of
        charge in percent of capacity."""
        rows = self.db.execute(
            """SELECT interval, COUNT(*) AS batteries, SUM(soc_wh) AS soc_wh, SUM(capacity_wh) AS capacity_wh,
                      AVG(100.0 * soc_wh / capacity_wh) AS m, AVG((100.0 * soc_wh / capacity_wh) * (100.0 * soc_wh / capacity_wh)) AS s
               FROM battery_states WHERE interval BETWEEN ? AND ? AND capacity_wh > 0 GROUP BY interval ORDER BY interval""",
            (first, last))
        return [{"interval": r["interval"], "batteries": r["batteries"], "soc_wh": r["soc_wh"], "capacity_wh": r["capacity_wh"],
                 "percent_mean": r["m"], "percent_std": math.sqrt(max(r["s"] - r["m"] * r["m"], 0.0))} for r in rows]

    def home_totals(self) -> dict[int, dict]:
        """Per home over every settled interval: load and PV (from the committed inputs),
        grid import and export, P2P bought and sold (Wh), cost (minor units, + paid) and
        the baseline's cost over the same intervals (None without a baseline)."""
        rows = self.db.execute(
            """SELECT e.participant AS id,
                      SUM(CASE WHEN e.grid_wh > 0 THEN e.grid_wh ELSE 0 END) AS grid_import_wh,
                      SUM(CASE WHEN e.grid_wh < 0 THEN -e.grid_wh ELSE 0 END) AS grid_export_wh,
                      SUM(CASE WHEN e.p2p_wh > 0 THEN e.p2p_wh ELSE 0 END) AS p2p_bought_wh,
                      SUM(CASE WHEN e.p2p_wh < 0 THEN -e.p2p_wh ELSE 0 END) AS p2p_sold_wh,
                      -SUM(e.amount) AS cost_units
               FROM entries e GROUP BY e.participant"""
        )
        totals = {row["id"]: dict(row) | {"load_wh": None, "pv_wh": None, "baseline_cost_units": None} for row in rows}
        settled = "interval IN (SELECT interval FROM intervals)"
        for row in self.db.execute(f"SELECT participant, SUM(load_wh) AS l, SUM(pv_wh) AS p FROM home_energy WHERE {settled} GROUP BY participant"):
            if row["participant"] in totals:
                totals[row["participant"]] |= {"load_wh": row["l"], "pv_wh": row["p"]}
        for row in self.db.execute(f"SELECT participant, SUM(cost) AS c FROM baseline WHERE {settled} GROUP BY participant"):
            if row["participant"] in totals:
                totals[row["participant"]]["baseline_cost_units"] = row["c"]
        return totals
