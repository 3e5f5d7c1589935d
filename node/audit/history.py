"""The market's past as the auditor needs it, rebuilt from the market's events alone.

A node that is not an archive node (most are; a restarted anvil is one) serves every
block, transaction and log but contract state only at recent blocks. So the auditor
never asks the contract what held at an old block: which mandate was in force, which
capacity an interval had and who owned a participant all follow from the events, each
asked for at a point of the chain (block, log index). Meter keys come from events too
(a key is set for later intervals only, so the history is the same at any block).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from node.audit.shares import SharesHistory
from node.audit.trust import SettledEnergy, covering
from node.chain.events import Event
from node.chain.market import Market
from node.chain.settlement import Entry, decode_entry
from node.chain.trust import Clock
from node.intent.signing import Domain, Mandate

Point = tuple[int, int]  # (block, log index): a position in the chain's history
ZERO_ADDRESS = "0x" + "00" * 20
WH_MAX = (1 << 48) - 1  # capacities above this mean no limit; the contract stores this (TermsWord.WH_MAX)


def point(event: Event) -> Point:
    return event.block, event.log_index


class _Timeline:
    """Values set at points of the chain, in chain order; what held just before a point."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.values: list[Any] = []

    def add(self, at: Point, value: Any) -> None:
        self.points.append(at)
        self.values.append(value)

    def before(self, at: Point) -> Any:
        i = bisect.bisect_left(self.points, at)
        return self.values[i - 1] if i else None

    def set_before(self, at: Point) -> Point | None:
        """Where the value that held just before `at` was set."""
        i = bisect.bisect_left(self.points, at)
        return self.points[i - 1] if i else None


@dataclass
class MandateHistory:
    """Every MandateSet and MandateRevoked of each participant, in chain order, to ask
    which mandate was in force at any point (block, log index)."""

    timelines: dict[int, _Timeline] = field(default_factory=lambda: defaultdict(_Timeline))
    _parsed: dict[int, Mandate] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        self.timelines[event.args["participant"]].add(point(event), event.args if event.name == "MandateSet" else None)

    def parsed(self, args: dict[str, Any]) -> Mandate:
        """The Mandate of MandateSet arguments `in_force` returned (parsed once each)."""
        mandate = self._parsed.get(id(args))
        if mandate is None:
            mandate = self._parsed[id(args)] = Mandate.from_values(args)
        return mandate

    def in_force(self, participant: int, block: int, log_index: int) -> dict[str, Any] | None:
        """The MandateSet arguments in force just before (block, log_index), or None if
        the participant had none or had revoked it."""
        timeline = self.timelines.get(participant)
        return None if timeline is None else timeline.before((block, log_index))


@dataclass
class CapacityHistory:
    """The grid's import and export limits (Wh) the contract checked an interval against,
    the community's (zone None) and each zone's: the interval's own (CapacitySet,
    ZoneCapacitySet) if the grid operator set one before the check, else the default in
    force when the interval started (DefaultCapacitySet, first emitted at deployment;
    DefaultZoneCapacitySet): as the contract keeps it (DefaultCapacityWord), the latest
    default set before the check if it was set by the interval's start, else the one
    before it; the latest for an interval that started before the deployment."""

    block_time: Callable[[int], int]
    deployed_at: int
    default: dict[int | None, _Timeline] = field(default_factory=lambda: defaultdict(_Timeline))
    own: dict[int, dict[int | None, _Timeline]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(_Timeline)))

    EVENTS = ("CapacitySet", "DefaultCapacitySet", "ZoneCapacitySet", "DefaultZoneCapacitySet")

    def add(self, event: Event) -> None:
        limits = (min(event.args["importWh"], WH_MAX), min(event.args["exportWh"], WH_MAX))
        zone = event.args.get("zone")
        if event.name.startswith("Default"):
            self.default[zone].add(point(event), limits)
        else:
            self.own[event.args["interval"]][zone].add(point(event), limits)

    def at(self, interval: int, at: Point, start: int) -> tuple[int, int]:
        """The community's limits for `interval` (starting at `start`) as the contract
        read them at `at`."""
        return self._in_force(interval, None, at, start)[1] or (0, 0)

    def set_points(self, interval: int, at: Point, start: int) -> dict[int | None, Point]:
        """Where each limit that held for `interval` at `at` (the community's, key None,
        and each zone's) was set."""
        own = self.own.get(interval, {})
        points = {zone: self._in_force(interval, zone, at, start)[0] for zone in self.default.keys() | own.keys()}
        return {zone: where for zone, where in points.items() if where is not None}

    def _in_force(self, interval: int, zone: int | None, at: Point, start: int) -> tuple[Point | None, Any]:
        """(where it was set, (import, export)) of the limit in force, or (None, None)."""
        own = self.own.get(interval, {}).get(zone)
        if own is not None and (where := own.set_before(at)) is not None:
            return where, own.before(at)
        default = self.default.get(zone)
        i = 0 if default is None else bisect.bisect_left(default.points, at)
        if i and self.deployed_at <= start < self.block_time(default.points[i - 1][0]):
            i -= 1  # set after the interval started: it kept the default before
        return (default.points[i - 1], default.values[i - 1]) if i else (None, None)


@dataclass
class MeterKeys:
    """Which key signs each participant's readings of each interval (MeterKeySet): a key
    set from interval f replaces one set from the same f, else applies from f on."""

    keys: dict[int, dict[int, str]] = field(default_factory=lambda: defaultdict(dict))
    _sorted: dict[int, list[int]] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        self.keys[event.args["participant"]][event.args["fromInterval"]] = event.args["meter"]
        self._sorted.pop(event.args["participant"], None)

    def of(self, participant: int, interval: int) -> str:
        """The meter key for `participant`'s reading of `interval` (the zero address if none)."""
        keys = self.keys.get(participant, {})
        froms = self._sorted.get(participant)
        if froms is None:
            froms = self._sorted[participant] = sorted(keys)
        i = bisect.bisect_right(froms, interval)
        return keys[froms[i - 1]] if i else ZERO_ADDRESS


@dataclass
class Owners:
    """Each participant's owner key over time (ParticipantRegistered, OwnerRotated)."""

    timelines: dict[int, _Timeline] = field(default_factory=lambda: defaultdict(_Timeline))
    current: dict[int, str] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        owner = event.args["owner"] if event.name == "ParticipantRegistered" else event.args["newOwner"]
        self.timelines[event.args["participant"]].add(point(event), owner)
        self.current[event.args["participant"]] = owner

    def at(self, participant: int, at: Point) -> str | None:
        timeline = self.timelines.get(participant)
        return None if timeline is None else timeline.before(at)


@dataclass
class SettledInterval:
    """One interval as the chain recorded it (the settlement in force: one a dispute
    reversed is replaced by the interval's next settlement). An interval settled in
    chunks has the ChunkVerified events of the attempt that closed it; its entries
    span several transactions and its IntervalSettled comes last."""

    header: Event
    words: list[int]  # every SettlementEntry word, in order
    verify_chunks: list[Event] = field(default_factory=list)
    zones: Event | None = None  # ZonePricesSettled of a zonal settlement

    @property
    def checked_at(self) -> Point:
        """Where the contract checked the interval's totals and capacity: the settlement,
        or the verify chunk marked last."""
        return point(self.verify_chunks[-1] if self.verify_chunks else self.header)

    @property
    def entries(self) -> list[Entry]:
        """The settled entries (declared exclusions left out)."""
        return [e for e in map(decode_entry, self.words) if not e.excluded]

    @property
    def energy(self) -> SettledEnergy:
        decoded = list(map(decode_entry, self.words))
        return SettledEnergy({e.participant: e for e in decoded if not e.excluded},
                             {e.participant: e.grid_wh for e in decoded if e.excluded})


@dataclass(frozen=True)
class IntervalChain:
    """What held on chain for one settled interval, as its checks in a worker need it."""

    capacity: tuple[int, int]  # (import, export) Wh the contract checked it against
    domain: Domain
    meter_keys: MeterKeys  # the whole history, shared by every interval's IntervalChain
    covered: frozenset[int]  # participants whose mandate in force at the settlement covers it
    storage_fees: int = 0  # what the interval's share participants paid the storage operator

    def meter_key(self, participant: int, interval: int) -> str:
        return self.meter_keys.of(participant, interval)


@dataclass
class ChainHistory:
    """Every settled interval and what the auditor asks of the chain's past."""

    settled: list[SettledInterval]
    capacities: CapacityHistory
    owners: Owners = field(default_factory=Owners)
    mandates: MandateHistory = field(default_factory=MandateHistory)
    meter_keys: MeterKeys = field(default_factory=MeterKeys)
    shares: SharesHistory = field(default_factory=SharesHistory)
    _covered: dict[frozenset[int], frozenset[int]] = field(default_factory=dict)

    def at(self, settled: SettledInterval, clock: Clock, domain: Domain) -> IntervalChain:
        """What held for `settled`: its capacity where the contract checked it, its
        participants' meter keys, and whose mandate in force at its first settling
        transaction covered it."""
        k = settled.header.args["interval"]
        first = point((settled.verify_chunks or [settled.header])[0])
        in_force = {pid: self.mandates.parsed(m) for pid in self.owners.current
                    if pid and (m := self.mandates.in_force(pid, *first)) is not None}
        covered = frozenset(covering(in_force, clock, k))
        # One set for all intervals with the same participants covered: a month of 1,000
        # homes would otherwise hold millions of ids.
        covered = self._covered.setdefault(covered, covered)
        return IntervalChain(self.capacities.at(k, settled.checked_at, clock.start(k)), domain, self.meter_keys, covered,
                             self.shares.fees_paid(k))


def block_times(market: Market) -> Callable[[int], int]:
    """A block's timestamp, each block asked for once (headers: a pruned node has them)."""
    times: dict[int, int] = {}

    def block_time(block: int) -> int:
        if block not in times:
            times[block] = int(market.chain.w3.eth.get_block(block)["timestamp"])
        return times[block]

    return block_time


def read_history(market: Market, from_block: int | None = None) -> ChainHistory:
    """The chain's history from the market's logs (eth_getLogs in block ranges)."""
    block_time = block_times(market)
    history = ChainHistory([], CapacityHistory(block_time, market.clock().deployed_at))
    adders = {"ParticipantRegistered": history.owners.add, "OwnerRotated": history.owners.add,
              "MandateSet": history.mandates.add, "MandateRevoked": history.mandates.add,
              **{name: history.capacities.add for name in CapacityHistory.EVENTS},
              "MeterKeySet": history.meter_keys.add,
              **{name: history.shares.add for name in SharesHistory.EVENTS}}
    # Grouped by interval, not by transaction: a chunked interval's entries come in
    # several apply transactions and its IntervalSettled in the last one. Verify chunks
    # count from the last abandonment of the interval on.
    headers: dict[int, Event] = {}
    words: dict[int, list[int]] = defaultdict(list)
    chunks: dict[int, list[Event]] = defaultdict(list)
    zones: dict[int, Event] = {}
    for e in market.events(from_block):
        if (add := adders.get(e.name)) is not None:
            add(e)
            continue
        k = e.args.get("interval")
        if e.name == "IntervalSettled":
            headers[k] = e
        elif e.name == "EntriesSettled":
            words[k] += list(e.args["entries"])
        elif e.name == "ChunkVerified":
            chunks[k].append(e)
        elif e.name == "ZonePricesSettled":
            zones[k] = e
        elif e.name == "PendingAbandoned":
            chunks[k].clear()
        elif e.name == "IntervalReversed":
            # Undone on chain: only the interval's next settlement counts.
            headers.pop(k, None)
            words.pop(k, None)
            chunks.pop(k, None)
            zones.pop(k, None)
    history.settled = sorted((SettledInterval(header, words[k], chunks[k], zones.get(k)) for k, header in headers.items()),
                             key=lambda s: s.header.args["interval"])
    return history
