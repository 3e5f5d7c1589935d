"""What the oracle checks before it settles, so that neither a bad clock nor one
participant's unsettlable order can make it write something wrong or stop the market.

Clocks. An interval is settled only once it has ended by the oracle's clock and by the
chain's (a node's newest block; the embedded chain mines on this process's clock), so
metered data for it can be complete and no settlement carries a time the chain has not
reached. Time also decides which mandates are in force: when every mandate the chain
holds has lapsed by this clock, that is a clock that jumped ahead far more often than
a whole community's mandates running out in the same minute, and settling on would
write intervals with nobody in them (and, on the embedded chain, blocks from the
future that no later run can take back). So the oracle stops with ClockError before
sending anything; single lapsed mandates are named in a warning.

Orders. The order book refuses orders no settlement can carry (node.intent.bounds), but
an older book may hold some; they are skipped here, by name, never sent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from node.chain.market import Market
from node.data.meter_policy import check_clock
from node.errors import ClockError, InputError
from node.intent.bounds import order_problem
from node.intent.signing import Mandate, SignedOrder

log = logging.getLogger("gridledger.oracle")

CLOCK_TOLERANCE_S = 30.0  # a few block periods of a PoA chain; NTP keeps clocks far closer


def chain_now(market: Market) -> pd.Timestamp:
    """The chain's clock: the newer of the latest block and the pending block a node
    would mine now (anvil mines on demand, so only its pending block is current). The
    embedded chain mines on this process's clock, or that far behind it that its clock
    lags (node.chain.connection.Chain.embedded)."""
    import time

    from web3 import EthereumTesterProvider

    w3 = market.chain.w3
    if isinstance(w3.provider, EthereumTesterProvider):
        if not market.chain.clock_lag:
            return pd.Timestamp.now(tz="UTC")
        seconds = max(int(w3.eth.get_block("latest")["timestamp"]), int(time.time()) - market.chain.clock_lag)
        return pd.Timestamp(seconds, unit="s", tz="UTC")
    seconds = max(int(w3.eth.get_block(tag)["timestamp"]) for tag in ("latest", "pending"))
    return pd.Timestamp(seconds, unit="s", tz="UTC")


def check_ended(interval: int, end: pd.Timestamp, market: Market) -> None:
    """Raises ClockError unless `interval` (ending at `end`) has ended by both clocks;
    warns when the chain's clock and this one disagree by more than the tolerance."""
    local = pd.Timestamp.now(tz="UTC")
    if end > local:
        raise ClockError(
            f"refusing to settle interval {interval}: it ends at {end.isoformat()}, in the future by this machine's "
            f"clock ({local.isoformat()}); settle it once it has ended (`simulate --live` waits for each interval), "
            "or check the clock")
    if market.chain.clock_lag:
        return  # a replay's chain behind this clock: the oracle moves it to the interval's end
    try:
        skew = check_clock(end, chain_now(market), local, CLOCK_TOLERANCE_S)
    except InputError as exc:
        raise ClockError(f"interval {interval}: {exc}") from exc
    if abs(skew) > CLOCK_TOLERANCE_S:
        log.warning("the chain's clock is %.0f s %s the oracle's: sync the oracle's clock (NTP)", abs(skew),
                    "ahead of" if skew > 0 else "behind")


class LapseWatch:
    """Names each mandate that lapses by time once, and stops the oracle when time has
    made every mandate in force lapse at once (see the module docstring)."""

    def __init__(self) -> None:
        self._named: set[tuple[int, int]] = set()

    def check(self, in_force: Iterable[Mandate], usable: Iterable[Mandate], now: int, margin_s: int) -> None:
        in_force, usable = list(in_force), {m.participant for m in usable}
        lapsed = [m for m in in_force if m.participant not in usable]
        if not lapsed:
            return
        if not usable:
            latest = max(m.valid_until for m in lapsed)
            raise ClockError(
                f"every mandate in force on chain ({len(lapsed)}) has lapsed by this machine's clock "
                f"({_iso(now)}, less {margin_s} s of margin): the last runs until {_iso(latest)}. If the clock is "
                "wrong, fix it (NTP) and run again; if it is right, the participants must sign new mandates. Nothing "
                "was settled")
        for m in lapsed:
            if (m.participant, m.nonce) not in self._named:
                self._named.add((m.participant, m.nonce))
                log.warning("participant %d's mandate %d lapsed at %s (now %s): it is not settled until it signs a "
                            "new one", m.participant, m.nonce, _iso(m.valid_until), _iso(now))


def settlable_orders(orders: Iterable[SignedOrder], interval: int, expires_after: int) -> list[SignedOrder]:
    """`orders` without those that expire before `expires_after` or that no settlement
    can carry; each one left out is named in a warning."""
    kept = []
    for signed in orders:
        o = signed.order
        problem = order_problem(o)
        if problem is None and o.expiry < expires_after:
            problem = f"it expires at {_iso(o.expiry)}, before the settlement could be mined"
        if problem is None:
            kept.append(signed)
        else:
            log.warning("interval %d: skipping participant %d's order (nonce %d): %s", interval, o.participant,
                        o.nonce, problem)
    return kept


def _iso(seconds: int) -> str:
    try:
        return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat()
    except (OverflowError, ValueError):
        return f"unix time {seconds}"
