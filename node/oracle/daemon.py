"""The oracle daemon: each interval, build the inputs, clear, settle, index.

The chain is the source of truth. On start the oracle asks the market which interval
comes next, catches the index up on anything it missed, and recovers the battery
states by re-running the last settled clearing from its committed inputs, so a crash
at any point loses nothing and settles nothing twice.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

from node.errors import ChainError
from node.faults import crash_point
from node.oracle.inputs_builder import InputsBuilder
from node.oracle.pipeline import clearings_ahead
from node.index.store import Index
from node.clearing.interval import (
    IntervalClearing,
    run_clearing,
    settlement_for,
    soc_after,
)
from node.clearing.inputs import IntervalInputs
from node.chain.market import Market, Receipt
from node.data.meter_policy import split_late
from node.index.rebuild import record_settled_inputs, settlement_gas
from node.units import UNITS_PER_TOKEN
from node.chain.settlement import Settlement, storage_fee_units
from node.intent.orders import OrderBook
from node.intent.signing import SignedMandate, SignedOrder
from node.oracle.guards import LapseWatch, chain_now, check_ended, settlable_orders
from node.oracle.terms import EXPIRY_MARGIN_S, ChainTerms, Terms
from optimizer.auction import AuctionResult

log = logging.getLogger("gridledger.oracle")

PIPELINE_MIN_INTERVALS = 16  # below this, starting a worker process costs more than it saves


class IntervalBidders(Protocol):
    """Who bids for participants in an auction market (node.simulation's agent fleet):
    told where the chain resumes, asked for the orders of each interval before it
    clears, and shown its settlement after."""

    def resume(self, next_interval: int) -> None: ...

    def before(self, interval: int) -> None: ...

    def after(self, report: "IntervalReport") -> None: ...


@dataclass
class IntervalReport:
    interval: int
    settlement: Settlement
    receipt: Receipt
    seconds: float


class Oracle:
    """Settles a community's intervals on a market, resuming from chain state.

    With an order `book` (the file the web UI and `gridledger order|mandate submit`
    write), it also relays participants' signed mandates and revocations to the chain
    and, in an auction market, clears the orders signed for each interval."""

    def __init__(
        self,
        market: Market,
        index: Index,
        builder: InputsBuilder,
        book: OrderBook | None = None,
        meters=None,
        bidders: "IntervalBidders | None" = None,
    ) -> None:
        self.market = market
        self.index = index
        self.builder = builder
        self.book = book
        # Where each interval's meter-signed readings come from: anything with
        # readings(inputs, settlement) -> [SignedReading] (a simulation's meters, see
        # node.simulation.meters); None: they arrive by other means, or not at all.
        self.meters = meters
        self.bidders = bidders
        self.terms = ChainTerms(market)
        self.lapses = LapseWatch()
        self._relay_failed: set[tuple[str, int, int]] = set()
        # The stored inputs of an interval the chain holds half-settled (found by resume).
        self._resumed: IntervalInputs | None = None
        # Battery states at the start of the chain's next interval, once run() has started.
        self.soc: dict[int, int] = {}
        # A replay clears ahead in a worker process; a process that may not start one
        # (a worker of an experiment) clears in turn.
        self.clear_ahead = True

    def catch_up_index(self, to_block: int | None = None) -> None:
        """Indexes market events the index missed, up to `to_block` (default: the head),
        in narrow block ranges: after a crash between sending a settlement and recording
        it, or others' transactions mined between two settlements."""
        catch_up(self.market, self.index, to_block)

    def resume(self) -> tuple[int, dict[int, int]]:
        """The next interval to settle and the battery states at its start."""
        self.catch_up_index()
        next_interval = self.market.next_interval()
        pending = self.market.pending()
        if pending.open:
            # A crash between chunks: settling the interval again from the inputs that
            # were stored before its first chunk gives the same settlement, and
            # Market.settle continues the chunks from the chain's counters.
            log.info(
                "interval %d is half-settled on chain (%s: %d chunks verified, %d applied): it will be resumed",
                pending.interval, pending.phase, pending.verified_chunks, pending.applied_chunks,
            )
            stored = self.index.last_inputs_for(pending.interval)
            self._resumed = None if stored is None else IntervalInputs.from_json(stored)
        if next_interval <= self.builder.first_interval:
            return next_interval, self.builder.initial_soc()
        last = self.index.interval(next_interval - 1)
        if last is None:
            raise ChainError(f"interval {next_interval - 1} is settled on chain but missing from the index after catching up")
        inputs = IntervalInputs.from_json(self.index.inputs(last["inputs_hash"]))
        return next_interval, soc_after(inputs, run_clearing(inputs))

    def prepare(self, interval: int, capacity_from: int | None = None) -> tuple[Terms, list[SignedOrder]]:
        """Relays what participants signed to the chain, then reads the chain's terms
        for `interval` (capacities from `capacity_from`, default `interval`, on) and, in
        an auction market, the interval's orders."""
        self.terms.refresh()
        if self.book is not None and self._relay():
            self.terms.refresh()
        now = int(time.time())
        terms = self.terms.snapshot(interval, interval if capacity_from is None else capacity_from)
        # Which mandates cover the interval is decided on the market's clock; whether
        # every one has lapsed by this machine's clock says whether that clock jumped.
        in_force = list(self.terms.mandates.values())
        self.lapses.check(in_force, [m for m in in_force if m.valid_until >= now + EXPIRY_MARGIN_S], now, EXPIRY_MARGIN_S)
        orders: list[SignedOrder] = []
        if self.book is not None and self.builder.config.market.mechanism == "auction":
            orders = settlable_orders(self.book.orders_for(interval), interval, now + EXPIRY_MARGIN_S)
        return terms, orders

    def inputs(self, interval: int, soc: dict[int, int]) -> IntervalInputs:
        """The inputs of `interval`: those already stored for it if the chain holds it
        half-settled (so a resumed chunked settlement continues the same one), else
        built from the data, the chain's terms and the order book."""
        if self._resumed is not None and self._resumed.interval == interval:
            inputs, self._resumed = self._resumed, None
            return inputs
        terms, orders = self.prepare(interval)
        return self.builder.inputs(interval, soc, terms, orders, self.unaffordable(interval, terms))

    def unaffordable(self, interval: int, terms: Terms) -> list[int]:
        """Participants with a mandate whose wallet, with its credit limit, cannot pay for
        the most the clearing may make them take in: their forecast import plus a whole
        interval of charging their battery (a home's, or an account's in a shared battery,
        which has no load of its own and would be missed otherwise) at the interval's
        import tariff, plus, for an account, the storage fee on it. The contract would
        refuse their entry, so they are left out (and named in the log). Conservative: an
        account that could pay to discharge but not to charge sits the interval out too.
        Only participants whose indexed balance is not comfortably above that cost are
        asked of the chain."""
        prices = terms.prices_of(interval)
        if prices is None or not terms.mandates:
            return []
        step = interval - self.builder.first_interval
        row = {int(p): i for i, p in enumerate(self.builder.participants)}
        charge = self.builder.battery_values("max_charge_wh")
        shares = {s.participant for s in self.builder.shares}
        storage_fee = terms.storage_of(interval)[0] if shares else 0
        balances = self.index.balances()
        out = []
        for m in terms.mandates:
            i = row.get(m.participant)
            if i is None:
                continue
            wh = max(int(self.builder.load_wh[i, step] - self.builder.pv_wh[i, step]), 0) + int(charge[i])
            cost = -(-wh * prices.import_price // 1000)
            if m.participant in shares:
                cost += storage_fee_units(wh, storage_fee)
            if cost == 0 or balances.get(m.participant, 0) >= 2 * cost + 2 * 1_000_000:
                continue
            _, _, _, _, balance, credit, locked = self.market.market.functions.accountOf(m.participant).call()
            if balance - locked + credit < cost:
                out.append(m.participant)
        return out

    def settle(self, interval: int, soc: dict[int, int]) -> tuple[IntervalReport, dict[int, int]]:
        started = time.perf_counter()
        inputs = self.inputs(interval, soc)
        result = run_clearing(inputs)
        return self.submit(inputs, result, started), soc_after(inputs, result)

    def submit(self, inputs: IntervalInputs, result: IntervalClearing, started: float) -> IntervalReport:
        """Stores the inputs, sends the settlement of `result` and indexes its receipt."""
        check_ended(inputs.interval, self.builder.start_of(inputs.interval + 1), self.market)
        crash_point("before_inputs")
        # The inputs are stored before the transaction is sent, so a settlement on chain
        # always has its inputs available to the auditor and to resume.
        self.index.store_inputs(inputs)
        settlement = settlement_for(inputs, result)
        if self.meters is not None:
            self.index.store_readings(self.meters.readings(inputs, settlement))
        crash_point("before_send")
        self._wait_for_chain_time(inputs.interval)
        receipt = self.market.settle(settlement, list(result.orders))
        crash_point("before_index")
        # Other transactions may have been mined since the last indexed block (a grid
        # operator's setCapacity or an admin's register, relayed by the web UI): index
        # them from the logs first, or up_to_block below would skip their blocks for good.
        self.catch_up_index(to_block=min(r.block for r in (receipt.parts or (receipt,))) - 1)
        self.index.apply(receipt.events, receipt.gas_by_tx, up_to_block=receipt.block)
        crash_point("after_index")
        report = IntervalReport(inputs.interval, settlement, receipt, time.perf_counter() - started)
        log.info(describe(report, self.builder))
        if result.auction is not None:
            log.info(describe_auction(inputs.interval, result.auction))
        if result.excluded:
            log.info(describe_excluded(inputs.interval, result.excluded))
        return report

    def run(self, until: int | None = None, live: bool = False, progress: bool = True) -> list[IntervalReport]:
        """Settles every interval from the chain's next one up to `until` (exclusive;
        default: the end of the data). `live` waits for each interval to end first."""
        interval, self.soc = self.resume()
        if self.bidders is not None:
            self.bidders.resume(interval)
        stop = self.builder.intervals.stop if until is None else until
        if interval >= stop:
            log.info("nothing to settle: the chain is at interval %d, the data ends before %d", interval, stop)
            return []
        split = split_late(self.builder.community, interval, self.builder.config.market)
        if len(split.late.timestamps):
            log.info("%s", split.describe())
        market = self.builder.config.market
        log.info("settling intervals %d..%d on %s (%s)", interval, stop - 1, self.market.chain.description,
                 market.mechanism if market.mechanism == "community" else f"auction, {market.pricing} pricing")
        reports: list[IntervalReport] = []
        bar = _progress(stop - interval, progress)
        # A replay of a community market: clear ahead in a second process while this one
        # settles. Orders arrive while the market runs, so an auction clears in turn.
        while (not live and self.clear_ahead and self.bidders is None and market.mechanism == "community"
               and stop - interval >= PIPELINE_MIN_INTERVALS):
            began, interval = interval, self._run_ahead(interval, stop, reports, bar)
            if interval == began:  # what changed cannot wait for a worker: settle this one here
                report, self.soc = self.settle(interval, self.soc)
                reports.append(report)
                interval += 1
                bar.update(1)
        while interval < stop:
            if live:
                _wait_until(self.builder.start_of(interval + 1))
            if self.bidders is not None:
                self.bidders.before(interval)
            report, self.soc = self.settle(interval, self.soc)
            if self.bidders is not None:
                self.bidders.after(report)
            reports.append(report)
            interval += 1
            bar.update(1)
        bar.close()
        return reports

    def _wait_for_chain_time(self, interval: int) -> None:
        """The contract settles an interval only once it has ended by the chain's clock.
        A node whose clock is behind (a simulated chain replaying future data) is moved
        on to the interval's end; a real network's clock is not ours to move."""
        end = self.terms.clock.end(interval) if self.terms.clock else self.market.clock().end(interval)
        if int(chain_now(self.market).timestamp()) < end:
            self.market.chain.advance_time(end)

    def _run_ahead(self, interval: int, stop: int, reports: list[IntervalReport], bar) -> int:
        """Settles from `interval` with clearings computed ahead under the chain's terms
        of now; returns where it stopped: `stop`, or the first interval whose terms
        changed on chain meanwhile (a new or revoked mandate, a capacity), from which
        the caller starts again with the new terms."""
        if self._resumed is not None and self._resumed.interval == interval:
            # The stored inputs of a half-settled interval come first.
            report, self.soc = self.settle(interval, self.soc)
            reports.append(report)
            bar.update(1)
            return interval + 1
        terms, _ = self.prepare(interval)
        # Homes whose wallet cannot pay are left out of every clearing ahead; the run
        # starts over where that set changes (a wallet ran dry, or was paid into).
        excluded = tuple(self.unaffordable(interval, terms))
        if excluded:
            log.info("wallets cannot pay for interval %d: %s left out", interval, ", ".join(map(str, excluded)))
        started = time.perf_counter()
        for inputs, result in clearings_ahead(self.builder, interval, stop, self.soc, terms, excluded):
            current, _ = self.prepare(inputs.interval, capacity_from=interval)
            if tuple(self.unaffordable(inputs.interval, current)) != excluded:
                log.info("the wallets that cannot pay changed at interval %d: clearing again from there",
                         inputs.interval)
                return inputs.interval
            if current != terms:
                log.info("the chain's terms changed before interval %d (mandates or capacity): clearing again from there",
                         inputs.interval)
                return inputs.interval
            reports.append(self.submit(inputs, result, started))
            self.soc = soc_after(inputs, result)
            started = time.perf_counter()
            bar.update(1)
        return stop

    def _relay(self) -> bool:
        """Sends the chain the book's newest mandate of each participant that the chain
        has not seen, and revocations of mandates in force; True if any was sent. A
        relay the contract refuses is logged once and not retried."""
        now = int(time.time())
        newest: dict[int, SignedMandate] = {}
        for signed in self.book.active_mandates(now):
            newest[signed.mandate.participant] = signed  # by participant, then nonce
        sent = False
        for pid, signed in sorted(newest.items()):
            if signed.mandate.nonce > self.terms.nonces.get(pid, 0):
                sent |= self._send_relay("mandate", pid, signed.mandate.nonce, lambda: self.market.submit_mandates([signed]))
        for signed in self.book.revocations():
            r = signed.revocation
            # A revocation reaches every mandate up to its nonce; relay those that raise the floor.
            if r.nonce >= self.terms.nonces.get(r.participant, 0) and r.participant in self.terms.mandates:
                sent |= self._send_relay("revocation", r.participant, r.nonce, lambda: self.market.revoke_mandate(signed))
        return sent

    def _send_relay(self, kind: str, participant: int, nonce: int, send) -> bool:
        key = (kind, participant, nonce)
        if key in self._relay_failed:
            return False
        try:
            send()
        except ChainError as exc:
            self._relay_failed.add(key)
            log.warning("the chain refused participant %d's %s %d: %s", participant, kind, nonce, exc)
            return False
        log.info("relayed participant %d's signed %s %d to the chain", participant, kind, nonce)
        return True


def catch_up(market: Market, index: Index, to_block: int | None = None) -> None:
    """Indexes `market`'s events that `index` missed, up to `to_block` (default: the head)."""
    start = max(index.last_block + 1, market.deployment.block)
    for _, high, events in market.log_chunks(start, to_block):
        index.apply(events, settlement_gas(market, events), up_to_block=high)
        # What the pages show of their inputs, from the inputs store (a new index).
        record_settled_inputs(index, intervals=[e.args["interval"] for e in events if e.name == "IntervalSettled"])


def describe(report: IntervalReport, builder: InputsBuilder) -> str:
    """One log line per interval, in words an operator understands."""
    s = report.settlement
    p2p_kwh = s.p2p_wh[s.p2p_wh > 0].sum() / 1000
    chunks = f" in {len(report.receipt.parts)} transactions" if report.receipt.parts else ""
    return (
        f"interval {s.interval} ({builder.start_of(s.interval):%Y-%m-%d %H:%M} UTC): "
        f"{len(s.participants)} participants, P2P {p2p_kwh:.2f} kWh at {describe_p2p_prices(s)}, "
        f"grid +{s.grid_import_wh / 1000:.2f}/-{s.grid_export_wh / 1000:.2f} kWh, "
        f"gas {report.receipt.gas_used:,}{chunks}, {report.seconds * 1000:.0f} ms, tx {report.receipt.tx_hash[:12]}"
    )


def describe_p2p_prices(s: Settlement) -> str:
    """The interval's P2P price, or on a network each zone's and the congestion rent."""
    if not s.zonal:
        return f"{s.p2p_price / UNITS_PER_TOKEN:.4f}/kWh"
    prices = "/".join(f"{p / UNITS_PER_TOKEN:.4f}" for p in s.zone_prices)
    return f"zone prices {prices}/kWh (congestion rent {s.congestion_rent_milli / 1000 / UNITS_PER_TOKEN:.4f})"


def describe_auction(interval: int, result: AuctionResult) -> str:
    """How an interval's double auction cleared (TESP's clearing types) and who gained."""
    price = ("each order at its own limit" if result.pricing == "pay_as_bid" else
             "no price" if result.clearing_price is None else f"{result.clearing_price / UNITS_PER_TOKEN:.4f}/kWh")
    surplus = ", ".join(f"{who} {milli / 1000 / UNITS_PER_TOKEN:.4f}" for who, milli in (
        ("buyers", result.buyer_surplus_milli), ("sellers", result.seller_surplus_milli),
        ("grid operator", result.operator_surplus_milli)))
    return (f"interval {interval}: auction of {len(result.orders)} orders cleared {result.volume_wh / 1000:.2f} kWh P2P, "
            f"clearing type {result.clearing_type.value}, {price}; surplus {surplus}")


def describe_excluded(interval: int, excluded: dict[int, str], shown: int = 5) -> str:
    """Who an interval left out and why, the first few by id."""
    first = "; ".join(f"participant {p}: {why}" for p, why in sorted(excluded.items())[:shown])
    more = f"; and {len(excluded) - shown} more" if len(excluded) > shown else ""
    return f"interval {interval}: {len(excluded)} participant(s) not settled here ({first}{more})"


def _wait_until(moment: pd.Timestamp) -> None:
    delay = (moment - pd.Timestamp.now(tz="UTC")).total_seconds()
    if delay > 0:
        log.info("waiting %.0f s for the interval to end at %s", delay, moment)
        time.sleep(delay)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="interval", disable=not enabled, dynamic_ncols=True)
