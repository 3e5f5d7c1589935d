"""The agent fleet as the oracle's bidders in a replay: before each interval clears,
every home's agent signs its order and the fleet submits them to the order book (the
same book and checks as a person's order); after it settles, the settlement goes back
to the agents. On resume, the settled intervals are replayed to the agents from the
index, which rebuilds their state exactly."""

from __future__ import annotations

import csv
import time
from pathlib import Path

from node.agents.fleet import AgentFleet
from node.errors import ChainError
from node.index.store import Index
from node.intent.orders import OrderBook
from node.oracle.daemon import IntervalReport


class FleetBidders:
    def __init__(self, fleet: AgentFleet, book: OrderBook, index: Index) -> None:
        self.fleet, self.book, self.index = fleet, book, index

    def resume(self, next_interval: int) -> None:
        for k in range(self.fleet.first_interval, next_interval):
            row = self.index.interval(k)
            if row is None:
                raise ChainError(f"interval {k} is settled on chain but not in the index: the agents cannot be "
                                 "rebuilt; run `gridledger index rebuild` on this state directory")
            served = {e["participant"]: e["grid_wh"] + e["p2p_wh"] for e in row["entries"]}
            self.fleet.observe(k, served, row["p2p_price"])

    def before(self, interval: int) -> None:
        orders = self.fleet.sign(interval, self.fleet.decide(interval))
        # After a crash the book may hold this interval's orders already.
        new = [o for o in orders if not self.book.has_order(o.order.participant, o.order.nonce)]
        if new:
            self.book.submit_many(new, int(time.time()), interval)

    def after(self, report: IntervalReport) -> None:
        s = report.settlement
        served = {int(p): int(g + q) for p, g, q in zip(s.participants, s.grid_wh, s.p2p_wh)}
        self.fleet.observe(s.interval, served, int(s.p2p_price))

    def write(self, path: Path) -> None:
        """Every agent's record of every interval (order, fill, devices) as CSV."""
        records = self.fleet.records
        if not records:
            return
        columns = list(dict.fromkeys(key for r in records for key in r))
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, columns)
            writer.writeheader()
            writer.writerows(records)
