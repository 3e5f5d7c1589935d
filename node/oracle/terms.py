"""What the chain says an interval's clearing must respect, followed from its events.

The oracle needs, before each clearing, every participant's mandate in force (the
contract rejects a whole settlement over one expired or revoked mandate) and the grid
operator's capacity for the interval. Asking the contract per participant would cost
an RPC call each; instead `ChainTerms.refresh` reads the market's new events since
the last call (one eth_getLogs for a few blocks) and keeps the picture current.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.chain.market import Market
from node.intent.signing import Mandate

# A mandate that expires within this many seconds is treated as expired: the
# settlement may be mined up to a few blocks after the oracle builds it.
EXPIRY_MARGIN_S = 300
_TERM_EVENTS = ("MandateSet", "MandateRevoked", "DefaultCapacitySet", "CapacitySet")


@dataclass(frozen=True)
class Terms:
    """A snapshot of the chain's terms for building inputs (picklable, comparable)."""

    mandates: tuple[Mandate, ...] = ()  # in force, by participant
    default_capacity: tuple[int, int] | None = None  # (import, export) Wh
    capacity: tuple[tuple[int, int, int], ...] = ()  # (interval, import, export) overrides

    def capacity_of(self, interval: int) -> tuple[int, int] | None:
        """(import, export) Wh the contract enforces for `interval`, if known."""
        for k, imp, exp in self.capacity:
            if k == interval:
                return imp, exp
        return self.default_capacity


@dataclass
class ChainTerms:
    market: Market
    block: int = -1  # last block read
    mandates: dict[int, Mandate] = field(default_factory=dict)  # in force (maybe expired)
    nonces: dict[int, int] = field(default_factory=dict)  # latest nonce on chain, revoked or not
    default_capacity: tuple[int, int] | None = None
    capacity: dict[int, tuple[int, int]] = field(default_factory=dict)  # per-interval overrides

    def refresh(self) -> None:
        """Reads the market's term events since the last refresh. Only those events,
        filtered by the node: a settlement's thousands of ParticipantSettled logs are
        never fetched or decoded here."""
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
            self.mandates.pop(a["participant"], None)
        elif e.name == "DefaultCapacitySet":
            self.default_capacity = (a["importWh"], a["exportWh"])
        elif e.name == "CapacitySet":
            self.capacity[a["interval"]] = (a["importWh"], a["exportWh"])

    def snapshot(self, now: int, from_interval: int = 0) -> Terms:
        """Mandates in force that stay valid EXPIRY_MARGIN_S more seconds after `now`,
        and the capacities of intervals from `from_interval` on."""
        return Terms(
            mandates=tuple(m for _, m in sorted(self.mandates.items()) if m.valid_until >= now + EXPIRY_MARGIN_S),
            default_capacity=self.default_capacity,
            capacity=tuple((k, *c) for k, c in sorted(self.capacity.items()) if k >= from_interval),
        )
