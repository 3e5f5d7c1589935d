"""A home's device bids made into the one order its meter may sign per interval, and
the order's fill shared back among the devices.

Each device states a step: energy (Wh, + to buy, - to sell), a limit price and whether
it must be served (inflexible load, PV the home cannot store) or may stay idle (an
HVAC, a battery). One participant is one meter and signs one order per interval, so:

1. A flexible step takes part only if it is in the money at the price the agent
   expects: a buy step whose limit is at least that price, a sell step whose limit is
   at most it (TESP's "bid accepted" test, made against the expected price because the
   home cannot split its order). Must-run steps always take part.
2. Steps on opposite sides net: the home serves its own consumption from its own
   production first (a meter sees only the net). The order is the net, on its side.
3. The order's limit is the least eager limit among the steps on its side (the lowest
   bid, the highest ask): the order fills only at a price every included step accepts.
4. The energy the home's steps get (its own production, plus the order's fill) goes to
   the steps of the order's side in priority order: must-run first, then the flexible
   ones by eagerness (highest bid, lowest ask). A step of the other side is served in
   full by the netting. What a must-run step does not get is energy the meter still
   reads: the home's supplier settles it outside the community, at the tariff.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.units import BUY, SELL


@dataclass(frozen=True)
class Step:
    device: str
    energy_wh: int  # + buy, - sell; never 0
    limit: int  # minor units per kWh
    must: bool


@dataclass(frozen=True)
class Composed:
    """The order a home signs (side None: nothing to trade) and the steps behind it."""

    side: int | None
    energy_wh: int
    limit: int
    steps: tuple[Step, ...]  # the included steps


def compose(steps: list[Step], expected_price: float) -> Composed:
    """One order from a home's steps (rules 1-3 of the module docstring)."""
    included = tuple(s for s in steps if s.must or (s.limit >= expected_price if s.energy_wh > 0 else s.limit <= expected_price))
    net = sum(s.energy_wh for s in included)
    if net == 0:
        return Composed(None, 0, 0, included)
    side = BUY if net > 0 else SELL
    own = [s.limit for s in included if (s.energy_wh > 0) == (side == BUY)]
    limit = min(own) if side == BUY else max(own)
    return Composed(side, abs(net), limit, included)


def allocate(composed: Composed, filled_wh: int) -> dict[str, int]:
    """Energy each included step gets, by device (signed like the steps; rule 4)."""
    if composed.side is None:
        return {s.device: s.energy_wh for s in composed.steps}
    buying = composed.side == BUY
    mine = [s for s in composed.steps if (s.energy_wh > 0) == buying]
    others = [s for s in composed.steps if (s.energy_wh > 0) != buying]
    served = {s.device: s.energy_wh for s in others}
    available = sum(abs(s.energy_wh) for s in others) + min(max(filled_wh, 0), composed.energy_wh)
    # Must-run first; then the eagerest (highest bid, lowest ask), ties in device order.
    for s in sorted(mine, key=lambda s: (not s.must, -s.limit if buying else s.limit, s.device)):
        take = min(abs(s.energy_wh), available)
        available -= take
        served[s.device] = take if buying else -take
    return served
