r"""Double auction of signed orders for one interval, in exact integers.

Units: energy in Wh, prices in token minor units per kWh (6 decimals), money in
*milli-units* (Wh x units/kWh = 1/1000 of a minor unit). Every product of an
energy and a price is therefore an exact integer; conversion to whole units
happens once, at the settlement boundary, with ``node.clearing.pricing.round_milli``.

The grid as the outside option
------------------------------
The grid is always there: a buyer can import at the buy tariff ``B``, a seller
can export at the sell tariff ``S`` (``S <= B``, else trading with the grid
alone would be a money pump). So, for the peer-to-peer (P2P) market:

* a buy order never pays more than ``B`` and a sell order never receives less
  than ``S``; its *effective limit* is ``b~ = min(b, B)`` resp. ``a~ = max(a, S)``;
* a buy order with ``b < S`` is never matched P2P: every seller can get ``S`` from
  the grid, more than that buyer pays. A sell order with ``a > B`` is never matched
  either. Both are left out of the P2P book;
* what an order does not get P2P goes to the grid *only if its limit allows it*:
  a buyer imports iff ``b >= B``, a seller exports iff ``a <= S``; otherwise the
  remainder is unfilled.

For eligible orders ``b~ >= a~ <=> b >= a``, so matching on effective limits
crosses exactly the same pairs as on the signed ones; it only changes the prices
derived from the marginal pair (a bid of 5 EUR/kWh is worth ``B`` to a buyer who
can import at ``B``).

Formulation
-----------
Buy orders ``i`` sorted by ``(-b~_i, order_id)``, sell orders ``j`` by
``(a~_j, order_id)``. The greedy walk

    while b~[i] >= a~[j]:  q = min(rest_i, rest_j); trade (i, j, q); advance exhausted

maximises the traded volume ``V`` and the gains from trade ``sum q (b~ - a~)``
over all integer flows of the book it is given (it is the crossing of the
stepped demand and supply curves; any crossing pair left unmatched could raise
both). Partial fills are
whole Wh because all quantities are.

Self-trades: a participant's own crossing orders (``b~ >= a~``) are *netted
first*, by the same walk restricted to that participant's orders. One
participant is one meter, and the meter only ever sees the net, so that energy
carries no payment, no grid leg and no market surplus (reported as
``netted_wh``). Afterwards each participant's remaining bids are all below their
remaining asks, and since every bid matched by the market walk is at least every
ask matched by it, nobody can be matched with themselves, nor be a P2P buyer and
a P2P seller in the same interval, nor import and export.

The price of that rule: own orders have priority over the market. If P bids 0.10
and offers at 0.02 while R bids 0.30 and T offers at 0.20, P nets (gain 0.08) and
R buys from T (0.10), where letting R buy P's energy would gain 0.28; at the
resulting price P would rather have sold. The alternative, matching a
participant against others only, needs a walk that skips own orders, which
breaks the single crossing of the two curves that the clearing types (and
TESP's definitions) rest on. The walk below is optimal for the netted book.

Pricing and clearing type (after TESP's ``simple_auction``)
------------------------------------------------------------
Let ``(i*, j*)`` be the last matched pair, ``a = b~[i*]``, ``b = a~[j*]``.

* ``NULL``: nothing traded (best bid below best ask, or one side empty).
* ``BUYER``: the marginal buyer ``i*`` is left partly filled; he sets the price,
  ``p = a``. Every unmatched ask is above ``a``.
* ``SELLER``: the marginal seller ``j*`` is left partly filled; ``p = b``.
* ``EXACT``: both marginal orders are exhausted at the same quantity; ``p`` is the
  midpoint ``floor((a + b) / 2)``, moved into ``[next bid, next ask]`` of the
  unmatched orders when it lies outside, so that no unmatched order would want to
  trade at ``p`` (TESP's "just off such that it does not trigger any other bids").
  TESP calls this case ``EXACT`` when ``a == b`` and ``PRICE`` when they differ;
  here both are ``EXACT`` (the midpoint is ``a`` when ``a == b``).

``p`` then lies in ``[S, B]`` by construction (all effective limits do); it is
clipped there anyway so the bound never rests on the reasoning above alone.
The clearing type describes the curves, so it is reported for both pricings.

* ``uniform`` (pay-as-clear): every P2P trade at ``p``. Individually rational:
  ``a~_j <= p <= b~_i`` for every matched pair, and unmatched remainders have
  ``b~ <= p <= a~`` (an equilibrium price).
* ``pay_as_bid``: buyer ``i`` pays ``b~_i``, seller ``j`` receives ``a~_j``; the
  spread ``sum q (b~_i - a~_j)`` is the market operator's surplus
  (``operator_surplus_milli``). Where that money goes (an operator wallet, a
  community fund, a rebate) is the settlement's decision, not the auction's.

Surpluses, in milli-units, are measured against effective limits, i.e. as the
gain of P2P trading over the grid offer: buyer ``sum q (b~ - buyer price)``, seller
``sum q (seller price - a~)``, operator ``sum q (buyer price - seller price)``.
Their total ``sum q (b~ - a~)`` depends only on the matched quantities, so it is the
same under both pricings.

Money legs, as wallet changes (milli-units): P2P ``-q x buyer price`` for buyers,
``+q x seller price`` for sellers; grid ``-import x B``, ``+export x S``. The
participants' legs, the grid's (``grid_counterparty_milli``) and the operator's
(``operator_surplus_milli``) sum to exactly zero, so rounding them together with
``round_milli`` conserves money to the unit.

The result is a pure function of the *set* of orders: input order does not matter
(orders are reported sorted by id, trades in matching order).
"""

from __future__ import annotations

import enum
import numbers
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal, Sequence

from node.errors import InputError

Pricing = Literal["uniform", "pay_as_bid"]
PRICINGS: tuple[str, ...] = ("uniform", "pay_as_bid")


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"


class ClearingType(str, enum.Enum):
    """How the price was set; names as in TESP's auction."""

    NULL = "null"  # no P2P trade
    EXACT = "exact"  # marginal buyer and seller exhausted together: midpoint
    BUYER = "buyer"  # marginal buyer partly filled: his effective bid
    SELLER = "seller"  # marginal seller partly filled: her effective ask


@dataclass(frozen=True, slots=True)
class AuctionOrder:
    """A participant's signed intent for one interval."""

    order_id: str
    participant: int  # > 0; 0 is the grid in settlements
    side: Side
    energy_wh: int  # > 0
    limit_price: int  # units per kWh: highest a buyer pays, lowest a seller accepts

    def __post_init__(self) -> None:
        # Exactness is the point of this module, so a float or a bool slipping in
        # is an error here rather than a silently truncated price downstream.
        if not isinstance(self.order_id, str) or not self.order_id:
            raise InputError(f"order id must be a non-empty string, got {self.order_id!r}")
        for name in ("participant", "energy_wh", "limit_price"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise InputError(f"order {self.order_id}: {name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        try:
            object.__setattr__(self, "side", Side(self.side))
        except ValueError:
            raise InputError(f"order {self.order_id}: side must be 'buy' or 'sell', got {self.side!r}") from None
        if self.participant <= 0:
            raise InputError(f"order {self.order_id}: participant id must be > 0, got {self.participant}")
        if self.energy_wh <= 0:
            raise InputError(f"order {self.order_id}: energy must be > 0 Wh, got {self.energy_wh}")


@dataclass(frozen=True, slots=True)
class Trade:
    """One bilateral P2P match; under uniform pricing both prices are equal."""

    buyer_order: str
    seller_order: str
    buyer: int
    seller: int
    energy_wh: int
    buyer_price: int  # units per kWh the buyer pays
    seller_price: int  # units per kWh the seller receives


@dataclass(frozen=True, slots=True)
class OrderFill:
    """What became of one order; ``netted + p2p + grid + unfilled == energy``."""

    order_id: str
    participant: int
    side: Side
    energy_wh: int
    effective_limit: int  # limit clipped to the grid tariffs, see the module docstring
    netted_wh: int  # met by the same participant's opposite order
    p2p_wh: int
    grid_wh: int  # imported (buy) or exported (sell)
    unfilled_wh: int
    p2p_price: int | None  # units per kWh of the P2P fill; None when nothing filled P2P
    p2p_milli: int  # wallet change from the P2P fill
    grid_milli: int  # wallet change from the grid leg


@dataclass(frozen=True, slots=True)
class ParticipantPosition:
    """A participant's net result; energies signed + into the participant."""

    participant: int
    p2p_wh: int  # + bought from peers, - sold
    grid_wh: int  # + imported, - exported
    netted_wh: int  # own consumption met by own offer (not a flow)
    p2p_milli: int
    grid_milli: int

    @property
    def wallet_milli(self) -> int:
        return self.p2p_milli + self.grid_milli


@dataclass(frozen=True, slots=True)
class AuctionResult:
    pricing: Pricing
    clearing_type: ClearingType
    clearing_price: int | None  # uniform only, units per kWh; None for pay-as-bid or NULL
    buy_tariff: int
    sell_tariff: int
    volume_wh: int  # P2P energy traded (netting excluded)
    trades: tuple[Trade, ...]  # in matching order: best bids with best asks first
    orders: tuple[OrderFill, ...]  # by order id
    participants: tuple[ParticipantPosition, ...]  # by participant id
    marginal_buy_order: str | None  # the last matched pair, which sets the price
    marginal_sell_order: str | None
    buyer_surplus_milli: int
    seller_surplus_milli: int
    operator_surplus_milli: int  # pay-as-bid spread; 0 under uniform pricing
    grid_counterparty_milli: int  # the grid's wallet change

    @property
    def total_surplus_milli(self) -> int:
        return self.buyer_surplus_milli + self.seller_surplus_milli + self.operator_surplus_milli

    def fill(self, order_id: str) -> OrderFill:
        for fill in self.orders:
            if fill.order_id == order_id:
                return fill
        raise KeyError(order_id)

    def position(self, participant: int) -> ParticipantPosition:
        for position in self.participants:
            if position.participant == participant:
                return position
        raise KeyError(participant)


def clear_auction(
    orders: Sequence[AuctionOrder],
    buy_tariff: int,
    sell_tariff: int,
    pricing: Pricing,
) -> AuctionResult:
    """Clear one interval's order book against each other and the grid.

    ``buy_tariff``/``sell_tariff`` are the grid's import/export prices in units per
    kWh. Raises ``InputError`` for duplicate order ids, ``buy_tariff < sell_tariff``
    or an unknown ``pricing``.
    """
    B, S = _check_market(orders, buy_tariff, sell_tariff, pricing)
    n = len(orders)
    limit = [effective_limit(o.side, o.limit_price, B, S) for o in orders]
    rest = [o.energy_wh for o in orders]
    netted = [0] * n

    buys = sorted(
        (i for i, o in enumerate(orders) if o.side is Side.BUY and o.limit_price >= S),
        key=lambda i: (-limit[i], orders[i].order_id),
    )
    sells = sorted(
        (i for i, o in enumerate(orders) if o.side is Side.SELL and o.limit_price <= B),
        key=lambda i: (limit[i], orders[i].order_id),
    )

    # Net each participant's own crossing orders before the market sees them (see
    # "Self-trades" above). Filtering the sorted lists keeps the priority order.
    own_buys: dict[int, list[int]] = defaultdict(list)
    own_sells: dict[int, list[int]] = defaultdict(list)
    for i in buys:
        own_buys[orders[i].participant].append(i)
    for j in sells:
        own_sells[orders[j].participant].append(j)
    for participant in sorted(own_buys.keys() & own_sells.keys()):
        for i, j, wh in _walk(own_buys[participant], own_sells[participant], limit, rest):
            netted[i] += wh
            netted[j] += wh
    buys = [i for i in buys if rest[i]]
    sells = [j for j in sells if rest[j]]

    pairs = _walk(buys, sells, limit, rest)
    clearing_type, price = _uniform_price(pairs, buys, sells, limit, rest, B, S)

    trades = []
    p2p_wh = [0] * n
    p2p_milli = [0] * n
    buyer_surplus = seller_surplus = operator_surplus = 0
    for i, j, wh in pairs:
        if pricing == "uniform":
            buyer_price = seller_price = price
        else:
            buyer_price, seller_price = limit[i], limit[j]
        trades.append(
            Trade(
                buyer_order=orders[i].order_id,
                seller_order=orders[j].order_id,
                buyer=orders[i].participant,
                seller=orders[j].participant,
                energy_wh=wh,
                buyer_price=buyer_price,
                seller_price=seller_price,
            )
        )
        p2p_wh[i] += wh
        p2p_wh[j] += wh
        p2p_milli[i] -= wh * buyer_price
        p2p_milli[j] += wh * seller_price
        buyer_surplus += wh * (limit[i] - buyer_price)
        seller_surplus += wh * (seller_price - limit[j])
        operator_surplus += wh * (buyer_price - seller_price)

    fills = [_fill(o, limit[k], netted[k], p2p_wh[k], p2p_milli[k], pricing, price, B, S) for k, o in enumerate(orders)]
    fills.sort(key=lambda f: f.order_id)
    positions = _positions(fills)
    last = pairs[-1] if pairs else None
    return AuctionResult(
        pricing=pricing,
        clearing_type=clearing_type,
        clearing_price=price if pricing == "uniform" else None,
        buy_tariff=B,
        sell_tariff=S,
        volume_wh=sum(wh for _, _, wh in pairs),
        trades=tuple(trades),
        orders=tuple(fills),
        participants=positions,
        marginal_buy_order=orders[last[0]].order_id if last else None,
        marginal_sell_order=orders[last[1]].order_id if last else None,
        buyer_surplus_milli=buyer_surplus,
        seller_surplus_milli=seller_surplus,
        operator_surplus_milli=operator_surplus,
        grid_counterparty_milli=-sum(p.grid_milli for p in positions),
    )


# ---------------------------------------------------------------- matching
def _walk(buys: list[int], sells: list[int], limit: list[int], rest: list[int]) -> list[tuple[int, int, int]]:
    """Greedy crossing of sorted bids and asks; consumes ``rest`` in place."""
    pairs = []
    ib = js = 0
    while ib < len(buys) and js < len(sells):
        i, j = buys[ib], sells[js]
        if limit[i] < limit[j]:
            break
        wh = min(rest[i], rest[j])
        rest[i] -= wh
        rest[j] -= wh
        pairs.append((i, j, wh))
        if rest[i] == 0:
            ib += 1
        if rest[j] == 0:
            js += 1
    return pairs


def _uniform_price(
    pairs: list[tuple[int, int, int]],
    buys: list[int],
    sells: list[int],
    limit: list[int],
    rest: list[int],
    B: int,
    S: int,
) -> tuple[ClearingType, int | None]:
    """Clearing type and uniform price from the marginal pair (after the walk)."""
    if not pairs:
        return ClearingType.NULL, None
    i, j, _ = pairs[-1]
    if rest[i]:
        kind, price = ClearingType.BUYER, limit[i]
    elif rest[j]:
        kind, price = ClearingType.SELLER, limit[j]
    else:
        kind, price = ClearingType.EXACT, (limit[i] + limit[j]) // 2
        # The walk stopped, so the best unmatched bid is below the best unmatched
        # ask; a price between them leaves both without a reason to trade.
        next_bid = max((limit[k] for k in buys if rest[k]), default=None)
        next_ask = min((limit[k] for k in sells if rest[k]), default=None)
        if next_bid is not None:
            price = max(price, next_bid)
        if next_ask is not None:
            price = min(price, next_ask)
    return kind, min(max(price, S), B)


def effective_limit(side: Side, limit_price: int, buy_tariff: int, sell_tariff: int) -> int:
    """An order's limit clipped to the grid's offer (see "The grid as the outside
    option"): a buyer's at most the import tariff, a seller's at least the export tariff.
    Pay-as-bid settles an order's P2P energy at this price (node.clearing.pricing)."""
    if side is Side.BUY:
        return min(limit_price, buy_tariff)
    return max(limit_price, sell_tariff)


# ---------------------------------------------------------------- reporting
def _fill(
    order: AuctionOrder,
    limit: int,
    netted: int,
    p2p: int,
    p2p_milli: int,
    pricing: str,
    price: int | None,
    B: int,
    S: int,
) -> OrderFill:
    left = order.energy_wh - netted - p2p
    if order.side is Side.BUY:
        grid = left if order.limit_price >= B else 0
        grid_milli = -grid * B
    else:
        grid = left if order.limit_price <= S else 0
        grid_milli = grid * S
    p2p_price = None
    if p2p:
        p2p_price = price if pricing == "uniform" else limit
    return OrderFill(
        order_id=order.order_id,
        participant=order.participant,
        side=order.side,
        energy_wh=order.energy_wh,
        effective_limit=limit,
        netted_wh=netted,
        p2p_wh=p2p,
        grid_wh=grid,
        unfilled_wh=left - grid,
        p2p_price=p2p_price,
        p2p_milli=p2p_milli,
        grid_milli=grid_milli,
    )


def _positions(fills: list[OrderFill]) -> tuple[ParticipantPosition, ...]:
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    for f in fills:
        sign = 1 if f.side is Side.BUY else -1
        t = totals[f.participant]
        t[0] += sign * f.p2p_wh
        t[1] += sign * f.grid_wh
        # Both of a netted pair count it; report the consumption side once.
        t[2] += f.netted_wh if f.side is Side.BUY else 0
        t[3] += f.p2p_milli
        t[4] += f.grid_milli
    return tuple(ParticipantPosition(pid, *totals[pid]) for pid in sorted(totals))


def _check_market(orders: Sequence[AuctionOrder], buy_tariff: int, sell_tariff: int, pricing: str) -> tuple[int, int]:
    for name, value in (("buy_tariff", buy_tariff), ("sell_tariff", sell_tariff)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(f"{name} must be an integer (units per kWh), got {value!r}")
    if buy_tariff < sell_tariff:
        raise InputError(
            f"buy tariff {buy_tariff} is below sell tariff {sell_tariff}: anyone could import and "
            "re-export at a profit; check the market config"
        )
    if pricing not in PRICINGS:
        raise InputError(f"pricing must be one of {', '.join(PRICINGS)}, got {pricing!r}")
    seen: set[str] = set()
    for order in orders:
        if not isinstance(order, AuctionOrder):
            raise InputError(f"expected AuctionOrder, got {type(order).__name__}")
        if order.order_id in seen:
            raise InputError(f"order id {order.order_id} appears twice; order ids must be unique per interval")
        seen.add(order.order_id)
    return int(buy_tariff), int(sell_tariff)
