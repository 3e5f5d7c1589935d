"""Double auction: textbook clearings, grid fallback, self-netting and invariants."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import InputError
from node.clearing.pricing import priced_settlement, round_milli
from optimizer.auction import (
    AuctionOrder,
    AuctionResult,
    ClearingType,
    Side,
    clear_auction,
)

B, S = 300_000, 50_000  # grid buy / sell tariff, units per kWh (0.30 / 0.05 EUR)
PROPERTY = settings(max_examples=60, deadline=None)


def buy(order_id: str, participant: int, wh: int, price: int) -> AuctionOrder:
    return AuctionOrder(order_id, participant, Side.BUY, wh, price)


def sell(order_id: str, participant: int, wh: int, price: int) -> AuctionOrder:
    return AuctionOrder(order_id, participant, Side.SELL, wh, price)


# ---------------------------------------------------------------- textbook examples
def test_partly_filled_marginal_buyer_sets_the_price() -> None:
    orders = [
        buy("b1", 1, 300, 200_000),
        sell("s1", 2, 100, 100_000),
        sell("s2", 3, 100, 150_000),
        sell("s3", 4, 100, 250_000),
    ]
    r = clear_auction(orders, B, S, "uniform")
    assert r.clearing_type is ClearingType.BUYER
    assert r.clearing_price == 200_000
    assert r.volume_wh == 200
    assert (r.marginal_buy_order, r.marginal_sell_order) == ("b1", "s2")
    assert [(t.buyer_order, t.seller_order, t.energy_wh) for t in r.trades] == [("b1", "s1", 100), ("b1", "s2", 100)]
    # b1's last 100 Wh: limit 0.20 < tariff 0.30, so the grid cannot serve it either.
    assert r.fill("b1").unfilled_wh == 100 and r.fill("b1").grid_wh == 0
    assert r.fill("s3").unfilled_wh == 100  # 0.25 ask, grid only pays 0.05
    assert r.buyer_surplus_milli == 0
    assert r.seller_surplus_milli == 100 * 100_000 + 100 * 50_000


def test_partly_filled_marginal_seller_sets_the_price() -> None:
    orders = [
        sell("s1", 1, 300, 100_000),
        buy("b1", 2, 100, 250_000),
        buy("b2", 3, 100, 200_000),
        buy("b3", 4, 100, 80_000),
    ]
    r = clear_auction(orders, B, S, "uniform")
    assert r.clearing_type is ClearingType.SELLER
    assert r.clearing_price == 100_000
    assert r.volume_wh == 200
    assert r.fill("s1").p2p_wh == 200 and r.fill("s1").unfilled_wh == 100
    assert r.fill("b3").unfilled_wh == 100
    assert r.buyer_surplus_milli == 100 * 150_000 + 100 * 100_000
    assert r.seller_surplus_milli == 0


def test_exhausted_marginal_pair_clears_at_the_midpoint_rounded_down() -> None:
    r = clear_auction([buy("b1", 1, 100, 200_001), sell("s1", 2, 100, 100_000)], B, S, "uniform")
    assert r.clearing_type is ClearingType.EXACT
    assert r.clearing_price == 150_000
    assert r.buyer_surplus_milli == 100 * 50_001
    assert r.seller_surplus_milli == 100 * 50_000


def test_exact_midpoint_moves_up_to_the_best_unmatched_bid() -> None:
    orders = [
        buy("b1", 1, 100, 200_000),
        sell("s1", 2, 100, 100_000),
        buy("b2", 3, 100, 180_000),
        sell("s2", 4, 100, 190_000),
    ]
    r = clear_auction(orders, B, S, "uniform")
    assert r.clearing_type is ClearingType.EXACT
    # Midpoint 150_000 would leave b2 (bid 180_000) wanting to buy at the price.
    assert r.clearing_price == 180_000


def test_exact_midpoint_moves_down_to_the_best_unmatched_ask() -> None:
    orders = [
        buy("b1", 1, 100, 200_000),
        sell("s1", 2, 100, 100_000),
        buy("b2", 3, 100, 60_000),
        sell("s2", 4, 100, 120_000),
    ]
    r = clear_auction(orders, B, S, "uniform")
    assert (r.clearing_type, r.clearing_price) == (ClearingType.EXACT, 120_000)


def test_no_trade_when_best_bid_is_below_best_ask() -> None:
    r = clear_auction([buy("b1", 1, 100, 100_000), sell("s1", 2, 100, 120_000)], B, S, "uniform")
    assert r.clearing_type is ClearingType.NULL
    assert r.clearing_price is None and r.trades == () and r.volume_wh == 0
    assert r.total_surplus_milli == 0


def test_empty_book_clears_to_nothing() -> None:
    r = clear_auction([], B, S, "pay_as_bid")
    assert r.clearing_type is ClearingType.NULL and r.orders == () and r.participants == ()


def test_pay_as_bid_charges_each_side_its_own_limit_and_reports_the_spread() -> None:
    orders = [buy("b1", 1, 100, 200_000), sell("s1", 2, 100, 100_000)]
    r = clear_auction(orders, B, S, "pay_as_bid")
    assert r.clearing_price is None
    assert r.clearing_type is ClearingType.EXACT  # describes the curves, whatever the pricing
    (trade,) = r.trades
    assert (trade.buyer_price, trade.seller_price) == (200_000, 100_000)
    assert r.position(1).p2p_milli == -20_000_000  # 100 Wh x 0.20 EUR/kWh = 0.02 EUR
    assert r.position(2).p2p_milli == 10_000_000
    assert r.operator_surplus_milli == 10_000_000
    assert r.buyer_surplus_milli == r.seller_surplus_milli == 0


# ---------------------------------------------------------------- grid as outside option
def test_bid_above_the_buy_tariff_counts_as_the_tariff() -> None:
    r = clear_auction([buy("b1", 1, 100, 500_000), sell("s1", 2, 100, 100_000)], B, S, "uniform")
    assert r.clearing_price == (B + 100_000) // 2
    assert r.fill("b1").effective_limit == B
    pab = clear_auction([buy("b1", 1, 100, 500_000), sell("s1", 2, 100, 100_000)], B, S, "pay_as_bid")
    assert pab.trades[0].buyer_price == B  # never more than importing would cost


def test_buyer_below_the_sell_tariff_is_never_matched_and_seller_exports_instead() -> None:
    r = clear_auction([buy("b1", 1, 100, 40_000), sell("s1", 2, 100, 30_000)], B, S, "uniform")
    assert r.trades == ()
    assert r.fill("b1").unfilled_wh == 100
    assert r.fill("s1").grid_wh == 100
    assert r.position(2).grid_wh == -100 and r.position(2).grid_milli == 100 * S


def test_seller_above_the_buy_tariff_is_never_matched_and_buyer_imports_instead() -> None:
    r = clear_auction([buy("b1", 1, 100, 400_000), sell("s1", 2, 100, 350_000)], B, S, "uniform")
    assert r.trades == ()
    assert r.fill("s1").unfilled_wh == 100
    assert r.position(1).grid_wh == 100 and r.position(1).grid_milli == -100 * B
    assert r.grid_counterparty_milli == 100 * B


def test_grid_serves_remainders_only_within_their_limits() -> None:
    buyers = clear_auction([buy("at", 1, 100, B), buy("below", 2, 100, B - 1)], B, S, "uniform")
    assert (buyers.fill("at").grid_wh, buyers.fill("at").unfilled_wh) == (100, 0)
    assert (buyers.fill("below").grid_wh, buyers.fill("below").unfilled_wh) == (0, 100)
    sellers = clear_auction([sell("at", 3, 100, S), sell("above", 4, 100, S + 1)], B, S, "uniform")
    assert (sellers.fill("at").grid_wh, sellers.fill("at").unfilled_wh) == (100, 0)
    assert (sellers.fill("above").grid_wh, sellers.fill("above").unfilled_wh) == (0, 100)


# ---------------------------------------------------------------- self-trades
def test_participant_on_both_sides_is_netted_first_and_never_trades_with_itself() -> None:
    orders = [
        buy("p1-buy", 1, 100, 200_000),
        sell("p1-sell", 1, 60, 100_000),
        sell("p2-sell", 2, 100, 120_000),
    ]
    r = clear_auction(orders, B, S, "uniform")
    assert r.fill("p1-buy").netted_wh == 60 and r.fill("p1-sell").netted_wh == 60
    assert [(t.buyer, t.seller, t.energy_wh) for t in r.trades] == [(1, 2, 40)]
    assert r.position(1).p2p_wh == 40 and r.position(1).netted_wh == 60
    assert r.position(1).p2p_milli == -40 * r.clearing_price


def test_netting_does_not_cross_an_order_the_grid_outbids() -> None:
    # Consuming his own energy is worth 0.04 to him; exporting pays 0.05.
    r = clear_auction([buy("p1-buy", 1, 100, 40_000), sell("p1-sell", 1, 100, 30_000)], B, S, "uniform")
    assert r.fill("p1-buy").netted_wh == 0
    assert r.fill("p1-sell").grid_wh == 100 and r.fill("p1-buy").unfilled_wh == 100


def test_netting_gives_own_orders_priority_over_a_higher_peer_bid() -> None:
    # The documented trade-off of netting first (see optimizer.auction).
    orders = [
        buy("p-buy", 1, 100, 100_000),
        sell("p-sell", 1, 100, 20_000 + S),
        buy("r-buy", 2, 100, B),
        sell("t-sell", 3, 100, 200_000),
    ]
    r = clear_auction(orders, B, S, "uniform")
    assert r.fill("p-sell").netted_wh == 100
    assert [(t.buyer, t.seller) for t in r.trades] == [(2, 3)]


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "make",
    [
        lambda: AuctionOrder("x", 1, Side.BUY, 1.5, 100),
        lambda: AuctionOrder("x", 1, Side.BUY, 100, 100.0),
        lambda: AuctionOrder("x", 1, Side.BUY, True, 100),
        lambda: AuctionOrder("x", 1, Side.BUY, 0, 100),
        lambda: AuctionOrder("x", 0, Side.BUY, 10, 100),
        lambda: AuctionOrder("x", 1, "hold", 10, 100),
        lambda: AuctionOrder("", 1, Side.BUY, 10, 100),
    ],
)
def test_malformed_order_is_rejected(make) -> None:
    with pytest.raises(InputError):
        make()


def test_order_accepts_numpy_integers_and_side_strings() -> None:
    order = AuctionOrder("x", np.int64(3), "sell", np.int32(10), np.int64(-5))
    assert order.side is Side.SELL and type(order.energy_wh) is int and order.limit_price == -5


def test_duplicate_order_ids_are_rejected() -> None:
    with pytest.raises(InputError, match="twice"):
        clear_auction([buy("a", 1, 1, 1), sell("a", 2, 1, 1)], B, S, "uniform")


def test_buy_tariff_below_sell_tariff_is_rejected() -> None:
    with pytest.raises(InputError, match="below sell tariff"):
        clear_auction([], S, B, "uniform")


def test_unknown_pricing_is_rejected() -> None:
    with pytest.raises(InputError, match="pricing"):
        clear_auction([], B, S, "vickrey")  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties
@st.composite
def order_books(draw: st.DrawFn, max_orders: int = 400) -> tuple[list[AuctionOrder], int, int]:
    sell_tariff = draw(st.integers(-20_000, 100_000))
    buy_tariff = sell_tariff + draw(st.integers(0, 400_000))
    n = draw(st.integers(0, max_orders))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = random.Random(seed)
    participants = rng.randint(1, max(1, n // 2) + 1)
    low, high = sell_tariff - 50_000, buy_tariff + 50_000
    # Coarse prices make ties common, round energies make EXACT clearings common.
    step = draw(st.sampled_from([1, 1000, 25_000]))
    sizes = draw(st.sampled_from([(100,), (100, 200, 300), tuple(range(1, 5001))]))
    orders = [
        AuctionOrder(
            order_id=f"o{k:04d}",
            participant=rng.randint(1, participants),
            side=rng.choice((Side.BUY, Side.SELL)),
            energy_wh=rng.choice(sizes),
            limit_price=low + step * ((rng.randint(0, high - low)) // step),
        )
        for k in range(n)
    ]
    return orders, buy_tariff, sell_tariff


def effective(order: AuctionOrder, buy_tariff: int, sell_tariff: int) -> int:
    return min(order.limit_price, buy_tariff) if order.side is Side.BUY else max(order.limit_price, sell_tariff)


@PROPERTY
@given(order_books(), st.sampled_from(["uniform", "pay_as_bid"]))
def test_energy_is_conserved_exactly(book, pricing) -> None:
    orders, buy_tariff, sell_tariff = book
    r = clear_auction(orders, buy_tariff, sell_tariff, pricing)
    assert sum(p.p2p_wh for p in r.participants) == 0
    assert sum(p.p2p_wh for p in r.participants if p.p2p_wh > 0) == r.volume_wh == sum(t.energy_wh for t in r.trades)
    for f in r.orders:
        assert f.netted_wh + f.p2p_wh + f.grid_wh + f.unfilled_wh == f.energy_wh
        assert min(f.netted_wh, f.p2p_wh, f.grid_wh, f.unfilled_wh) >= 0
    for side in Side:
        assert sum(f.p2p_wh for f in r.orders if f.side is side) == r.volume_wh
        assert sum(f.netted_wh for f in r.orders if f.side is side) == sum(p.netted_wh for p in r.participants)


@PROPERTY
@given(order_books(), st.sampled_from(["uniform", "pay_as_bid"]))
def test_money_legs_sum_to_zero_and_round_to_whole_units_exactly(book, pricing) -> None:
    orders, buy_tariff, sell_tariff = book
    r = clear_auction(orders, buy_tariff, sell_tariff, pricing)
    legs = [p.wallet_milli for p in r.participants] + [r.grid_counterparty_milli, r.operator_surplus_milli]
    assert sum(legs) == 0
    units = round_milli(np.array(legs, dtype=np.int64))
    assert int(units.sum()) == 0
    assert all(abs(1000 * u - m) < 1000 for u, m in zip(units.tolist(), legs))


@PROPERTY
@given(order_books())
def test_uniform_price_is_individually_rational_and_within_the_tariffs(book) -> None:
    orders, buy_tariff, sell_tariff = book
    r = clear_auction(orders, buy_tariff, sell_tariff, "uniform")
    by_id = {o.order_id: o for o in orders}
    if r.clearing_type is ClearingType.NULL:
        assert r.trades == () and r.clearing_price is None
        return
    p = r.clearing_price
    assert sell_tariff <= p <= buy_tariff
    for t in r.trades:
        assert t.buyer_price == t.seller_price == p
        assert p <= by_id[t.buyer_order].limit_price
        assert p >= by_id[t.seller_order].limit_price


@PROPERTY
@given(order_books())
def test_uniform_price_leaves_no_unmatched_order_wanting_to_trade(book) -> None:
    orders, buy_tariff, sell_tariff = book
    r = clear_auction(orders, buy_tariff, sell_tariff, "uniform")
    eligible_left = [
        (f, effective(o, buy_tariff, sell_tariff))
        for o, f in ((o, r.fill(o.order_id)) for o in orders)
        if f.grid_wh + f.unfilled_wh > 0
        and (o.limit_price >= sell_tariff if o.side is Side.BUY else o.limit_price <= buy_tariff)
    ]
    bids = [lim for f, lim in eligible_left if f.side is Side.BUY]
    asks = [lim for f, lim in eligible_left if f.side is Side.SELL]
    if bids and asks:
        assert max(bids) < min(asks)  # the walk used up every crossing pair
    if r.clearing_price is not None:
        assert all(b <= r.clearing_price for b in bids)
        assert all(a >= r.clearing_price for a in asks)


@PROPERTY
@given(order_books())
def test_uniform_total_surplus_equals_pay_as_bid_buyer_seller_and_operator_surplus(book) -> None:
    orders, buy_tariff, sell_tariff = book
    uniform = clear_auction(orders, buy_tariff, sell_tariff, "uniform")
    pab = clear_auction(orders, buy_tariff, sell_tariff, "pay_as_bid")
    strip = lambda r: [(t.buyer_order, t.seller_order, t.energy_wh) for t in r.trades]  # noqa: E731
    assert strip(uniform) == strip(pab)
    assert uniform.operator_surplus_milli == 0
    assert uniform.total_surplus_milli == (
        pab.buyer_surplus_milli + pab.seller_surplus_milli + pab.operator_surplus_milli
    )
    assert min(pab.buyer_surplus_milli, pab.seller_surplus_milli, pab.operator_surplus_milli) >= 0
    assert min(uniform.buyer_surplus_milli, uniform.seller_surplus_milli) >= 0
    assert uniform.clearing_type is pab.clearing_type


@PROPERTY
@given(order_books(max_orders=150), st.randoms(use_true_random=False), st.sampled_from(["uniform", "pay_as_bid"]))
def test_clearing_is_independent_of_input_order(book, shuffler, pricing) -> None:
    orders, buy_tariff, sell_tariff = book
    shuffled = list(orders)
    shuffler.shuffle(shuffled)
    assert clear_auction(shuffled, buy_tariff, sell_tariff, pricing) == clear_auction(
        orders, buy_tariff, sell_tariff, pricing
    )


@PROPERTY
@given(order_books())
def test_grid_fallback_only_within_limits(book) -> None:
    orders, buy_tariff, sell_tariff = book
    r = clear_auction(orders, buy_tariff, sell_tariff, "uniform")
    for f in r.orders:
        limit = next(o.limit_price for o in orders if o.order_id == f.order_id)
        if f.side is Side.BUY:
            assert f.grid_wh == 0 or limit >= buy_tariff
            assert f.unfilled_wh == 0 or limit < buy_tariff
        else:
            assert f.grid_wh == 0 or limit <= sell_tariff
            assert f.unfilled_wh == 0 or limit > sell_tariff
    for p in r.participants:
        expected = sum(f.grid_milli for f in r.orders if f.participant == p.participant)
        assert p.grid_milli == expected
        assert p.grid_milli == (-p.grid_wh * buy_tariff if p.grid_wh > 0 else -p.grid_wh * sell_tariff)


@PROPERTY
@given(order_books())
def test_nobody_trades_with_themselves_or_trades_both_ways(book) -> None:
    orders, buy_tariff, sell_tariff = book
    r = clear_auction(orders, buy_tariff, sell_tariff, "pay_as_bid")
    assert all(t.buyer != t.seller for t in r.trades)
    buyers = {t.buyer for t in r.trades}
    sellers = {t.seller for t in r.trades}
    assert not buyers & sellers
    importers = {f.participant for f in r.orders if f.side is Side.BUY and f.grid_wh}
    exporters = {f.participant for f in r.orders if f.side is Side.SELL and f.grid_wh}
    assert not importers & exporters


@PROPERTY
@given(order_books(max_orders=120))
def test_uniform_result_settles_to_the_same_amounts_as_priced_settlement(book) -> None:
    orders, buy_tariff, sell_tariff = book
    r = clear_auction(orders, buy_tariff, sell_tariff, "uniform")
    if not r.participants:
        return
    price = r.clearing_price if r.clearing_price is not None else sell_tariff
    settlement = priced_settlement(
        1,
        b"\0" * 32,
        np.array([p.participant for p in r.participants]),
        np.array([p.grid_wh for p in r.participants]),
        np.array([p.p2p_wh for p in r.participants]),
        buy_tariff,
        sell_tariff,
        price,
    )
    legs = [p.wallet_milli for p in r.participants] + [r.grid_counterparty_milli]
    units = round_milli(np.array(legs, dtype=np.int64))
    assert units[:-1].tolist() == settlement.amount.tolist()
    assert int(units[-1]) == settlement.grid_amount


def test_result_is_a_frozen_value() -> None:
    r = clear_auction([buy("b1", 1, 100, 200_000), sell("s1", 2, 100, 100_000)], B, S, "uniform")
    assert isinstance(r, AuctionResult)
    with pytest.raises(AttributeError):
        r.volume_wh = 0  # type: ignore[misc]
