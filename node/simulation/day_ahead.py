"""Dynamic tariffs on chain: the grid operator posts each interval's prices a day ahead.

A market settles every interval at the tariffs the chain holds for it, and the contract
lets the grid operator fix an interval's prices (`setIntervalPrices`) only the notice
period (a day here) before the interval starts: nobody's price changes once it is near.
So a replay of a prices file (``tariffs.prices_file``) does what a grid operator does
live: before the chain's clock reaches an interval's notice deadline, it posts that
interval's import and export prices, up to two days' worth at a time, and the oracle
settles at most that far before the next posting. The chain must be able to be early: a
fresh embedded chain starts before the data (``replay_genesis``), and on any other chain
an interval whose deadline has passed unposted is refused, never settled at the
time-of-use tariffs instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from node.chain.market import Market
from node.data.community import Community
from node.data.config import CommunityConfig
from node.data.tariffs import TariffConfig
from node.errors import InputError
from node.oracle.daemon import IntervalReport, Oracle
from node.oracle.guards import chain_now
from node.oracle.inputs_builder import InputsBuilder
from node.oracle.terms import ChainTerms
from node.simulation.setup import NOTICE_S
from node.units import round_price_units

log = logging.getLogger("gridledger.prices")

# Prices are posted up to two days past the notice period, and the oracle settles until
# the chain's clock is an hour short of two days on: each posting then reaches past where
# the next one starts, even after the first interval's end moved the clock a whole
# notice period and more from the genesis.
WINDOW_S = 2 * 86_400
MARGIN_S = 3_600  # the chain's clock moves a second per transaction: room for the set-up, and for a day's postings


def replay_genesis(community: Community, config: CommunityConfig) -> int | None:
    """The genesis time of a fresh embedded chain for a replay of `community`'s data:
    with a prices file, early enough to post the first intervals' prices with notice;
    else None (the chain starts now)."""
    if not config.tariffs.dynamic:
        return None
    return int(pd.Timestamp(community.timestamps[0]).timestamp()) - NOTICE_S - MARGIN_S


@dataclass
class DayAheadPrices:
    """Posts the prices file's import and export prices of the data's intervals."""

    market: Market
    tariffs: TariffConfig
    builder: InputsBuilder
    terms: ChainTerms = field(init=False)

    def __post_init__(self) -> None:
        self.terms = ChainTerms(self.market)

    def post_ahead(self) -> int:
        """Posts every interval the file prices that starts between the notice period and
        two days past it from the chain's now and has no prices on chain yet; refuses (before
        anything is settled at other prices) an interval not yet settled whose deadline
        passed unposted. Returns how many intervals it posted."""
        self.terms.refresh()
        clock = self.terms.clock
        now = int(chain_now(self.market).timestamp())
        # Every interval the file prices, the data's too where the file repeats its last
        # day: a later run with more data then finds their prices posted in time.
        known = range(self.market.next_interval(), max(self.builder.intervals.stop, self._file_stop(clock)))
        # The first posting is mined a second from now at the earliest.
        late = [k for k in known if k < self.builder.intervals.stop and k not in self.terms.interval_prices
                and clock.start(k) < now + clock.notice_s + 2]
        if late:
            raise InputError(
                f"interval {late[0]} starts at {_iso(clock.start(late[0]))}, less than the market's notice "
                f"({clock.notice_s} s) after the chain's clock ({_iso(now)}), and has no prices on chain: its "
                "prices from tariffs.prices_file can no longer be posted. Replay the prices file in a fresh state "
                "(`simulate --fresh`: the embedded chain then starts before the data), or post prices with notice")
        # Each posting moves the clock on a second, the intervals' starts by their length:
        # posted in order, every one is still within its notice when mined.
        due = [k for k in known if k not in self.terms.interval_prices
               and now + clock.notice_s + 2 <= clock.start(k) < now + clock.notice_s + WINDOW_S]
        if not due:
            return 0
        times = pd.DatetimeIndex([self.builder.start_of(k) for k in due])
        for k, buy, sell in zip(due, self.tariffs.buy_price(times), self.tariffs.sell_price(times)):
            self.market.set_interval_prices(k, round_price_units(buy), round_price_units(sell))
        log.info("posted the prices of intervals %d..%d as the grid operator (with %d s of notice or more)",
                 due[0], due[-1], clock.notice_s)
        self.terms.refresh()
        return len(due)

    def _file_stop(self, clock) -> int:
        """The first interval the prices file no longer prices."""
        end = int(self.tariffs.prices_end().timestamp())
        return max(0, -(-(end - clock.epoch) // clock.interval_s))

    def settle(self, oracle: Oracle, until: int, progress: bool, live: bool) -> list[IntervalReport]:
        """Settles up to `until` (exclusive) with the oracle, a day at a time, each day's
        prices posted before the chain's clock could pass their deadline."""
        reports: list[IntervalReport] = []
        clock = self.market.clock()
        while True:
            self.post_ahead()
            start = self.market.next_interval()
            if start >= until:
                return reports
            # The clock reaches each settled interval's end: stop a margin short of the
            # window, so the next posting still has notice for everything not posted yet.
            horizon = int(chain_now(self.market).timestamp()) + WINDOW_S - MARGIN_S
            stop = start + 1
            while stop < until and clock.end(stop) <= horizon:
                stop += 1
            reports += oracle.run(until=stop, progress=progress, live=live)


def _iso(seconds: int) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()
