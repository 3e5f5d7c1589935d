"""Who traded with whom in an interval, as far as the chain can tell.

A settlement records each participant's net P2P energy (+ bought, - sold), not
pairwise trades: the market is one pool at one price. To draw it as a network we
split the pool pro rata: every seller supplies every buyer in proportion to what
the buyer took, so seller i sends sold_i * bought_j / total to buyer j. The split is
in whole Wh and exact: each seller's arrows add up to what it sold, each buyer's to
what it bought, and all arrows to the interval's P2P volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping


@dataclass(frozen=True)
class Flow:
    seller: int
    buyer: int
    wh: int


def p2p_flows(entries: Iterable[Mapping]) -> list[Flow]:
    """Pro-rata seller-to-buyer flows from settlement entries (`participant`, `p2p_wh`).

    Sellers are served in ascending id order, each split over the buyers' remaining
    demand. Splitting over what remains (rather than over the original demand) is
    what makes the integer rounding exact, and because the remaining demand stays
    proportional to the original one, the split is still pro rata. If the entries do
    not balance (they always do on chain), min(sold, bought) is matched.
    """
    sellers = sorted((int(e["participant"]), -int(e["p2p_wh"])) for e in entries if int(e["p2p_wh"]) < 0)
    demand = {int(e["participant"]): int(e["p2p_wh"]) for e in entries if int(e["p2p_wh"]) > 0}
    buyers = sorted(demand)
    flows: list[Flow] = []
    for seller, sold in sellers:
        remaining = sum(demand.values())
        supply = min(sold, remaining)
        if supply == 0:
            continue
        shares = _split(supply, [demand[b] for b in buyers], remaining)
        for buyer, wh in zip(buyers, shares):
            if wh:
                flows.append(Flow(seller, buyer, wh))
                demand[buyer] -= wh
    return flows


def _split(amount: int, weights: list[int], total: int) -> list[int]:
    """`amount` split over `weights` (summing to `total` >= amount) by largest
    remainder, in exact integer arithmetic; ties go to the earlier weight.

    No share exceeds its weight: a share is floor(amount * w / total) <= w, and a
    rounded-up share had a nonzero remainder, so its exact value was below w.
    """
    floors = [amount * w // total for w in weights]
    remainders = [amount * w % total for w in weights]
    short = amount - sum(floors)
    for i in sorted(range(len(weights)), key=lambda i: (-remainders[i], i))[:short]:
        floors[i] += 1
    return floors
