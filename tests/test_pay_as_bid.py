"""Pay-as-bid settlements: in a market whose terms say so, each order-authorised entry's
P2P energy is priced at its own order's limit clipped to the tariffs (a buyer pays
min(bid, import tariff), a seller gets max(ask, export tariff)), mandate-authorised
entries at the settlement's P2P price, and the grid operator's wallet takes the spread,
so money is still conserved to the unit, in one transaction or in chunks. The pricing
rule is a term on chain, never the oracle's choice."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import ChainError, InputError, SettlementError
from node.chain.chunks import entries_hash
from node.chain.settlement import pack_order
from node.clearing.pricing import pay_as_bid_price, priced_settlement, round_milli
from node.intent.signing import BUY as BUY_SIDE, SELL as SELL_SIDE, Order, sign_order
from optimizer.auction import AuctionOrder, Side, clear_auction
from tests.conftest import BUY, FAR_FUTURE, P2P, SELL, home_key, homes_market, standing_mandate

HASH = b"\x44" * 32
PROPERTY = settings(max_examples=60, deadline=None)

# Homes 1 and 2 buy 1 and 0.5 kWh from homes 3 and 4, who sell 1 and 0.5 kWh; nobody
# uses the grid. Bids and asks (units per kWh) on both sides of the tariffs.
GRID_WH = [0, 0, 0, 0]
P2P_WH = [1000, 500, -1000, -500]
LIMITS = [(BUY_SIDE, 250_000), (BUY_SIDE, 400_000), (SELL_SIDE, 40_000), (SELL_SIDE, 100_000)]


def signed_order(market, pid: int, side: int, energy_wh: int, limit: int, interval: int = 0):
    return sign_order(home_key(pid), market.domain(), Order(pid, interval, side, energy_wh, limit, FAR_FUTURE, 1))


def book_orders(market, interval: int = 0, pids=(1, 2, 3, 4)):
    return [
        signed_order(market, pid, side, abs(P2P_WH[pid - 1]), limit, interval)
        for pid, (side, limit) in zip((1, 2, 3, 4), LIMITS)
        if pid in pids
    ]


def own_prices() -> np.ndarray:
    return np.array([pay_as_bid_price(side, limit, BUY, SELL) for side, limit in LIMITS])


def pay_as_bid(homes, prices, interval=0, grid=GRID_WH, p2p=P2P_WH):
    return priced_settlement(interval, HASH, homes, np.array(grid), np.array(p2p), BUY, SELL, P2P, np.array(prices))


def balances(market, ids=range(5)) -> list[int]:
    return [market.balance(i) for i in ids]


@pytest.fixture
def pab_market(chain):
    """`bare_market` whose terms price P2P energy pay-as-bid."""
    return homes_market(chain, pay_as_bid=True)


def test_own_price_is_the_limit_clipped_to_the_tariff_of_the_orders_side():
    assert own_prices().tolist() == [250_000, BUY, SELL, 100_000]


def test_each_order_pays_its_own_limit_and_the_grid_keeps_the_spread(pab_market, homes):
    before = balances(pab_market)
    s = pay_as_bid(homes, own_prices())
    receipt = pab_market.settle(s, book_orders(pab_market))
    changes = [a - b for a, b in zip(balances(pab_market), before)]
    # 1 kWh at the bid of 0.25; 0.5 kWh at the import tariff (bid 0.40); 1 kWh at the
    # export tariff (ask 0.04); 0.5 kWh at the ask of 0.10.
    assert changes[1:] == [-250_000, -150_000, 60_000, 50_000]
    assert changes[0] == 250_000 + 150_000 - 60_000 - 50_000 == s.grid_amount
    assert sum(changes) == 0
    header = receipt.events[-1]
    assert header.name == "IntervalSettled" and header.args["gridAmount"] == 290_000
    assert header.args["payAsBid"] is True
    assert (header.args["gridImportWh"], header.args["gridExportWh"]) == (0, 0)


def test_the_markets_terms_decide_how_order_entries_are_priced(bare_market, pab_market, homes):
    uniform = priced_settlement(0, HASH, homes, np.array(GRID_WH), np.array(P2P_WH), BUY, SELL, P2P)
    # Amounts at the settlement's P2P price (which every order allows) in a pay-as-bid market.
    with pytest.raises(SettlementError, match=r"PaymentMismatch\(participant=1, amount=-150000, expectedMilli=-250000000\)"):
        pab_market.settle(uniform, book_orders(pab_market))
    # Pay-as-bid amounts (the spread to the grid's wallet) in a uniform market.
    with pytest.raises(SettlementError, match=r"PaymentMismatch\(participant=1, amount=-250000, expectedMilli=-150000000\)"):
        bare_market.settle(pay_as_bid(homes, own_prices()), book_orders(bare_market))
    assert bare_market.next_interval() == 0 and pab_market.next_interval() == 0


def test_a_bid_matched_below_an_ask_is_refused_as_a_negative_spread(pab_market, homes):
    """Every entry keeps to its own order, but buyers bid less than sellers ask: the grid
    wallet would pay the difference, so the contract refuses the match itself."""
    limits = [(BUY_SIDE, 100_000), (BUY_SIDE, 120_000), (SELL_SIDE, 200_000), (SELL_SIDE, 150_000)]
    orders = [signed_order(pab_market, pid, side, abs(P2P_WH[pid - 1]), limit)
              for pid, (side, limit) in zip((1, 2, 3, 4), limits)]
    s = pay_as_bid(homes, [pay_as_bid_price(side, limit, BUY, SELL) for side, limit in limits])
    assert s.grid_amount == -115_000
    before = balances(pab_market)
    # 1 kWh at 0.10 + 0.5 kWh at 0.12 paid, 1 kWh at 0.20 + 0.5 kWh at 0.15 received.
    with pytest.raises(SettlementError, match=r"NegativeSpread\(interval=0, spreadMilli=-115000000\)"):
        pab_market.settle(s, orders)
    with pytest.raises(ChainError, match=r"NegativeSpread\(interval=0, spreadMilli=-115000000\)"):
        pab_market.settle_chunked(s, orders, budget=420_000)
    assert balances(pab_market) == before


def test_uniform_settlements_say_so_in_their_event(bare_market, homes):
    uniform = priced_settlement(0, HASH, homes, np.array(GRID_WH), np.array(P2P_WH), BUY, SELL, P2P)
    receipt = bare_market.settle(uniform, book_orders(bare_market))
    assert receipt.events[-1].args["payAsBid"] is False


def test_mandate_entries_of_a_pay_as_bid_settlement_pay_the_settlements_p2p_price(pab_market, homes):
    """Homes 1 and 3 trade by orders, homes 2 and 4 by their standing mandates."""
    market = pab_market
    market.submit_mandates([standing_mandate(market, pid) for pid in range(1, 5)])
    orders = book_orders(market, pids=(1, 3))
    before = balances(market)
    s = pay_as_bid(homes, [250_000, P2P, SELL, P2P])
    market.settle(s, orders)
    changes = [a - b for a, b in zip(balances(market), before)]
    assert changes[1:] == [-250_000, -75_000, 60_000, 75_000]
    assert changes[0] == 250_000 + 75_000 - 60_000 - 75_000 and sum(changes) == 0
    # A mandate authorises no order's price: home 2 at 0.16 (within its mandate) is mispriced.
    with pytest.raises(SettlementError, match=r"PaymentMismatch\(participant=2, amount=-80000, expectedMilli=-75000000\)"):
        market.settle(pay_as_bid(homes, [250_000, 160_000, SELL, P2P], interval=1), book_orders(market, 1, (1, 3)))


def test_an_import_above_the_bid_is_not_authorised_at_any_price(pab_market, homes):
    """Home 1 bids 0.25 but also imports at the 0.30 tariff: its order does not cover that."""
    s = pay_as_bid(homes, own_prices(), grid=[100, 0, 0, 0])
    orders = book_orders(pab_market)
    orders[0] = signed_order(pab_market, 1, BUY_SIDE, 1100, 250_000)
    with pytest.raises(SettlementError, match=r"OrderPriceExceeded\(participant=1, costMilli=280000000, limitMilli=275000000\)"):
        pab_market.settle(s, orders)


def test_pay_as_bid_settles_in_chunks_as_in_one_transaction(pab_market, homes):
    bare_market = pab_market
    s = pay_as_bid(homes, own_prices())
    before = balances(bare_market)
    # 420k gas fits the verification of one order entry per chunk: four chunks.
    receipt = bare_market.settle_chunked(s, book_orders(bare_market), budget=420_000)
    verified = [e for e in receipt.events if e.name == "ChunkVerified"]
    assert len(verified) == 4
    changes = [a - b for a, b in zip(balances(bare_market), before)]
    assert changes == [290_000, -250_000, -150_000, 60_000, 50_000]
    assert receipt.events[-1].name == "IntervalSettled" and receipt.events[-1].args["gridAmount"] == 290_000
    assert bare_market.next_interval() == 1 and not bare_market.pending().open


def test_every_chunk_must_carry_the_same_header(pab_market, homes):
    bare_market = pab_market
    s = pay_as_bid(homes, own_prices())
    words = s.entries(by_order={1, 2, 3, 4})
    auths = [pack_order(o) for o in book_orders(bare_market)]
    verify = bare_market.market.functions.verifyChunk
    oracle = bare_market.chain.operators.oracle
    bare_market.chain.transact(verify(s.header(), words[:2], auths[:2], False), oracle, 1_000_000)
    flipped = s.header()[:2] + (s.header()[2] + 1,) + s.header()[3:]
    with pytest.raises(ChainError, match=r"HeaderMismatch\(interval=0"):
        bare_market.chain.transact(verify(flipped, words[2:], auths[2:], True), oracle, 1_000_000)
    assert bare_market.market.functions.chunkHash(0).call() == entries_hash(words[:2])


# -- the Python side: exact conversion at per-entry prices -----------------------------


@st.composite
def priced_entries(draw):
    n = draw(st.integers(0, 30))
    sell = draw(st.integers(0, 200_000))
    buy = sell + draw(st.integers(0, 400_000))
    grid = draw(st.lists(st.integers(-20_000, 20_000), min_size=n, max_size=n))
    p2p = draw(st.lists(st.integers(-20_000, 20_000), min_size=n, max_size=n))
    prices = draw(st.lists(st.integers(sell, buy), min_size=n, max_size=n))
    return np.array(grid, dtype=np.int64), np.array(p2p, dtype=np.int64), np.array(prices, dtype=np.int64), buy, sell


@PROPERTY
@given(priced_entries())
def test_each_amount_is_within_a_unit_of_its_own_price_and_the_grid_takes_the_rest(case):
    grid, p2p, prices, buy, sell = case
    s = priced_settlement(3, HASH, np.arange(1, len(grid) + 1), grid, p2p, buy, sell, sell, prices)
    exact = -grid * np.where(grid > 0, buy, sell) - p2p * prices
    assert np.all(np.abs(s.amount * 1000 - exact) < 1000)
    assert abs(s.grid_amount * 1000 + int(exact.sum())) < 1000
    assert int(s.amount.sum()) + s.grid_amount == 0
    assert s.pay_as_bid


def test_uniform_settlement_says_so_in_its_header(homes):
    s = priced_settlement(0, HASH, homes, np.array(GRID_WH), np.array(P2P_WH), BUY, SELL, P2P)
    assert not s.pay_as_bid


def test_one_p2p_price_per_participant():
    with pytest.raises(InputError, match="3 P2P prices for 4 participants"):
        pay_as_bid(np.arange(1, 5), [P2P, P2P, P2P])


@st.composite
def one_order_each(draw):
    """An auction book with at most one order per participant, as a settlement carries."""
    sell = draw(st.integers(0, 100_000))
    buy = sell + draw(st.integers(0, 400_000))
    n = draw(st.integers(0, 40))
    orders = [
        AuctionOrder(f"o{pid}", pid, draw(st.sampled_from([Side.BUY, Side.SELL])), draw(st.integers(1, 5000)),
                     draw(st.integers(0, buy + 100_000)))
        for pid in range(1, n + 1)
    ]
    return orders, buy, sell


@PROPERTY
@given(one_order_each())
def test_pay_as_bid_auction_settles_to_its_own_payments(book):
    orders, buy, sell = book
    r = clear_auction(orders, buy, sell, "pay_as_bid")
    if not r.participants:
        return
    side = {o.participant: BUY_SIDE if o.side is Side.BUY else SELL_SIDE for o in orders}
    limit = {o.participant: o.limit_price for o in orders}
    ids = [p.participant for p in r.participants]
    s = priced_settlement(
        1, HASH, np.array(ids), np.array([p.grid_wh for p in r.participants]),
        np.array([p.p2p_wh for p in r.participants]), buy, sell, sell,
        np.array([pay_as_bid_price(side[p], limit[p], buy, sell) for p in ids]),
    )
    # The grid's wallet is the grid's counterparty leg plus the operator's spread.
    legs = [p.wallet_milli for p in r.participants] + [r.grid_counterparty_milli + r.operator_surplus_milli]
    units = round_milli(np.array(legs, dtype=np.int64))
    assert s.amount.tolist() == units[:-1].tolist()
    assert s.grid_amount == int(units[-1])
