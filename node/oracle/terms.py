"""What the chain says an interval's clearing must respect, followed from its events.

The oracle needs, before each clearing, every participant's mandate in force (the
contract rejects a whole settlement over one expired or revoked mandate), the grid
operator's capacity for the interval, and the terms every entry is priced by (tariffs,
the P2P fee, the pricing rule, posted ahead of a notice period). Asking the contract per
participant would cost an RPC call each; instead `ChainTerms.refresh` reads the market's
new events since the last call (one eth_getLogs for a few blocks) and keeps the picture
current. Prices are resolved here exactly as the contract resolves them
(MarketStorage._termsOf), so the committed inputs carry the chain's own numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.chain.deploy import Tariffs
from node.chain.market import Market
from node.chain.trust import Clock, IntervalTerms
from node.intent.signing import Mandate

# Orders that expire within this many seconds are left out: the settlement may be mined
# a few blocks after the oracle builds it.
EXPIRY_MARGIN_S = 300
_TERM_EVENTS = (
    "MandateSet",
    "MandateRevoked",
    "DefaultCapacitySet",
    "CapacitySet",
    "TermsScheduled",
    "IntervalPricesSet",
    "StorageFeeScheduled",
)


@dataclass(frozen=True)
class Terms:
    """A snapshot of the chain's terms for building inputs (picklable, comparable)."""

    mandates: tuple[Mandate, ...] = ()  # in force for the interval, by participant
    default_capacity: tuple[int, int] | None = None  # (import, export) Wh
    capacity: tuple[tuple[int, int, int], ...] = ()  # (interval, import, export) overrides
    # The default before the current one and when the current was set (unix s): an interval
    # that started in between (after the deployment) keeps the one before (DefaultCapacityWord).
    prior_default_capacity: tuple[int, int] | None = None
    default_changed_at: int = 0
    versions: tuple[tuple[int, Tariffs], ...] = ()  # (from interval, tariffs), in order
    interval_prices: tuple[tuple[int, int, int], ...] = ()  # (interval, import, export)
    clock: Clock | None = None
    storage: tuple[tuple[int, int], ...] = ()  # (storage fee per kWh, operator) per version

    def storage_of(self, interval: int) -> tuple[int, int]:
        """(storage fee per kWh, storage operator) of the terms version in force for
        `interval` (SharedBatteryModule): (0, 0) if none was scheduled."""
        if not self.storage or not self.versions:
            return (0, 0)
        return self.storage[version_index(self.versions, interval)]

    def capacity_of(self, interval: int) -> tuple[int, int] | None:
        """(import, export) Wh the contract enforces for `interval`, if known."""
        for k, imp, exp in self.capacity:
            if k == interval:
                return imp, exp
        if self.clock is not None and self.clock.deployed_at <= self.clock.start(interval) < self.default_changed_at:
            return self.prior_default_capacity
        return self.default_capacity

    def prices_of(self, interval: int) -> IntervalTerms | None:
        """What the contract prices a settlement of `interval` by (None: no terms known)."""
        return prices_of(self.versions, dict((k, (i, e)) for k, i, e in self.interval_prices), self.clock, interval)


def prices_of(
    versions: tuple[tuple[int, Tariffs], ...], overrides: dict[int, tuple[int, int]], clock: Clock | None, interval: int
) -> IntervalTerms | None:
    """The terms version in force for `interval` and its tariffs: the grid operator's
    prices for the interval if set, else the version's time-of-use import price (the
    peak price in the UTC hours of its mask) and its export price."""
    if not versions or clock is None:
        return None
    index = version_index(versions, interval)
    t = versions[index][1]
    if interval in overrides:
        imp, exp = overrides[interval]
    else:
        hour = (clock.start(interval) // 3600) % 24
        imp = t.peak_import_price if (t.peak_hours >> hour) & 1 else t.import_price
        exp = t.export_price
    return IntervalTerms(index, imp, exp, t.p2p_fee, t.pay_as_bid)


def version_index(versions: tuple[tuple[int, Tariffs], ...], interval: int) -> int:
    """The index of the terms version in force for `interval` (the first one before it)."""
    return max(i for i, (start, _) in enumerate(versions) if start <= interval) if versions[0][0] <= interval else 0


@dataclass
class ChainTerms:
    market: Market
    block: int = -1  # last block read
    mandates: dict[int, Mandate] = field(default_factory=dict)  # latest submitted (maybe revoked since)
    nonces: dict[int, int] = field(default_factory=dict)  # latest nonce on chain, revoked or not
    default_capacity: tuple[int, int] | None = None
    prior_default_capacity: tuple[int, int] | None = None
    default_changed_at: int = 0
    capacity: dict[int, tuple[int, int]] = field(default_factory=dict)  # per-interval overrides
    versions: list[tuple[int, Tariffs]] = field(default_factory=list)
    interval_prices: dict[int, tuple[int, int]] = field(default_factory=dict)
    clock: Clock | None = None
    storage: list[tuple[int, int]] = field(default_factory=list)  # per version, as Terms.storage

    def refresh(self) -> None:
        """Reads the market's term events since the last refresh. Only those events,
        filtered by the node: a settlement's entries are never fetched or decoded here."""
        if self.clock is None:
            self.clock = self.market.clock()
        start = max(self.block + 1, self.market.deployment.block)
        for _, high, events in self.market.log_chunks(start, names=_TERM_EVENTS):
            for e in events:
                self._apply(e)
            self.block = high

    def _apply(self, e) -> None:
        a = e.args
        if e.name == "MandateSet":
            # The event carries the signed Mandate's fields under their EIP-712 names.
            self.mandates[a["participant"]] = Mandate.from_values(a)
            self.nonces[a["participant"]] = a["nonce"]
        elif e.name == "MandateRevoked":
            # Every mandate up to the nonce, and any signed up to it later, is revoked.
            m = self.mandates.get(a["participant"])
            if m is not None and m.nonce <= a["nonce"]:
                del self.mandates[a["participant"]]
            self.nonces[a["participant"]] = max(self.nonces.get(a["participant"], 0), a["nonce"])
        elif e.name == "DefaultCapacitySet":
            self.prior_default_capacity = self.default_capacity
            self.default_capacity = (a["importWh"], a["exportWh"])
            self.default_changed_at = int(self.market.chain.w3.eth.get_block(e.block)["timestamp"])
        elif e.name == "CapacitySet":
            self.capacity[a["interval"]] = (a["importWh"], a["exportWh"])
        elif e.name == "TermsScheduled":
            # A version replaces those from its index on (not yet within their notice).
            del self.versions[a["index"]:]
            self.versions.append((a["fromInterval"], tariffs_of_event(a)))
            # A new version carries the storage fee of the one before it (TermsModule).
            del self.storage[a["index"]:]
            self.storage.append(self.storage[-1] if self.storage else (0, 0))
        elif e.name == "StorageFeeScheduled":
            self.storage[a["index"]] = (a["storageFee"], a["storageOperator"])
        elif e.name == "IntervalPricesSet":
            self.interval_prices[a["interval"]] = (a["importPrice"], a["exportPrice"])

    def snapshot(self, interval: int, from_interval: int | None = None) -> Terms:
        """Mandates that cover `interval` (wholly within their validity, on the market's
        clock), capacities of intervals from `from_interval` (default `interval`) on, and
        the tariffs and prices in force from there."""
        clock = self.clock
        start, end = clock.start(interval), clock.end(interval)
        first = interval if from_interval is None else from_interval
        return Terms(
            mandates=tuple(m for _, m in sorted(self.mandates.items()) if m.covers(start, end)),
            default_capacity=self.default_capacity,
            prior_default_capacity=self.prior_default_capacity,
            default_changed_at=self.default_changed_at,
            capacity=tuple((k, *c) for k, c in sorted(self.capacity.items()) if k >= first),
            versions=tuple(self.versions),
            interval_prices=tuple((k, *p) for k, p in sorted(self.interval_prices.items()) if k >= first),
            clock=clock,
            storage=tuple(self.storage),
        )


def tariffs_of_event(a: dict) -> Tariffs:
    """The Tariffs of a TermsScheduled event."""
    return Tariffs(a["importPrice"], a["peakImportPrice"], a["exportPrice"], a["p2pFee"], a["peakHours"], a["payAsBid"])
