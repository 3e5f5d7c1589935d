"""A market configured with `mechanism = "auction"` clears each interval's signed
orders from the order book with the double auction and settles exactly the fills,
each entry authorised by its order in the settlement's calldata, at a uniform price
or pay-as-bid. The auditor re-runs the auction from the committed inputs."""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import replace

import pytest

from node.audit.verify import IndexInputs, audit, report
from node.chain.connection import Chain
from node.chain.settlement import decode_entry
from node.data.community import Community
from node.data.config import default_config
from node.simulation.setup import demo_key, deploy_community
from node.index.store import Index
from node.clearing.inputs import IntervalInputs
from node.oracle.inputs_builder import InputsBuilder
from node.oracle.daemon import Oracle
from node.intent.orders import OrderBook
from node.intent.signing import BUY, SELL, Order, sign_order
from node.data.synthetic import generate_community
from webui import create_app

STEPS = 3
TARIFF_BUY, TARIFF_SELL = 300_000, 60_000


def _market(tmp_path, pricing: str):
    config = default_config()
    config = replace(
        config,
        community=replace(config.community, homes=5, seed=11),
        market=replace(config.market, horizon_steps=4, mechanism="auction", pricing=pricing),
    )
    full = generate_community(config)
    window = slice(48, 48 + STEPS)
    community = Community(full.homes, full.timestamps[window], full.consumption_kwh[:, window], full.production_kwh[:, window])
    index = Index(tmp_path / "index.sqlite")
    market, ids = deploy_community(Chain.embedded(), community, config, index)
    builder = InputsBuilder(community, config, ids)
    book = OrderBook(tmp_path / "orders.sqlite", market.domain(), lambda pid: (index.participant(pid) or {}).get("owner"))
    oracle = Oracle(market, index, builder, book)
    oracle.catch_up_index()

    nonces = itertools.count(1)  # unique across participants, increasing in signing order

    def order(pid: int, interval: int, side: int, wh: int, limit: int):
        nonce = next(nonces)
        key = demo_key(config.community.seed, community.homes[pid - 1].name)
        signed = sign_order(key, market.domain(), Order(pid, interval, side, wh, limit, int(time.time()) + 3600, nonce))
        book.submit(signed, now=int(time.time()), next_interval=market.next_interval())
        return signed

    return market, index, builder, oracle, order


def _settled(market, k):
    """What interval `k` settled per participant, from the chain's EntriesSettled logs."""
    entries = [decode_entry(w) for e in market.events() if e.name == "EntriesSettled" and e.args["interval"] == k
               for w in e.args["entries"]]
    return {x.participant: {"gridWh": x.grid_wh, "p2pWh": x.p2p_wh, "amount": x.amount}
            for x in entries if not x.excluded}


def _header(market, k):
    return next(e.args for e in market.events() if e.name == "IntervalSettled" and e.args["interval"] == k)


@pytest.mark.parametrize("pricing", ["uniform", "pay_as_bid"])
def test_orders_clear_and_settle_as_the_auction_says(tmp_path, pricing, caplog):
    caplog.set_level(logging.INFO, logger="gridledger.oracle")
    market, index, builder, oracle, order = _market(tmp_path, pricing)
    k = builder.first_interval
    order(1, k, BUY, 1000, 250_000)
    order(2, k, SELL, 800, 100_000)
    order(3, k, SELL, 500, 200_000)
    order(4, k, BUY, 300, 50_000)  # below the feed-in tariff: never matched, not settled
    for j in (k + 1, k + 2):
        order(5, j, BUY, 200, TARIFF_BUY)  # imports from the grid at the tariff
    oracle.run(progress=False)

    settled = _settled(market, k)
    assert set(settled) == {1, 2, 3}
    assert settled[1]["p2pWh"] == 1000 and settled[1]["gridWh"] == 0
    assert settled[2]["p2pWh"] == -800 and settled[3]["p2pWh"] == -200
    header = _header(market, k)
    if pricing == "uniform":
        # The marginal seller (3, ask 0.20) is partly filled and sets the price.
        assert header["p2pPrice"] == 200_000
        assert settled[1]["amount"] == -200_000 and settled[2]["amount"] == 160_000 and settled[3]["amount"] == 40_000
        assert header["gridAmount"] == 0
    else:
        # Each pays or gets its own limit; the spread goes to the grid operator's wallet.
        assert settled[1]["amount"] == -250_000 and settled[2]["amount"] == 80_000 and settled[3]["amount"] == 40_000
        assert header["gridAmount"] == 250_000 - 80_000 - 40_000
    later = _settled(market, k + 1)
    assert later == {5: later[5]} and later[5]["gridWh"] == 200 and later[5]["amount"] == -60_000

    inputs = IntervalInputs.from_json(index.inputs(index.interval(k)["inputs_hash"]))
    assert inputs.mechanism == "auction" and inputs.pricing == pricing and len(inputs.orders) == 4
    assert header["payAsBid"] is (pricing == "pay_as_bid")
    assert index.interval(k)["pay_as_bid"] == (pricing == "pay_as_bid")
    client = create_app({"TESTING": True, "INDEX_PATH": str(tmp_path / "index.sqlite")}).test_client()
    page = client.get(f"/intervals/{k}")
    assert page.status_code == 200 and (b"pay-as-bid" in page.data) == (pricing == "pay_as_bid")
    # How the auction cleared, for the operator's log, the interval's page and its API.
    clearing_type, price = ("seller", "0.2000/kWh") if pricing == "uniform" else ("seller", "each order at its own limit")
    assert (f"interval {k}: auction of 4 orders cleared 1.00 kWh P2P, clearing type {clearing_type}, {price}; "
            in caplog.text)
    assert b'id="auction-orders"' in page.data and b"marginal" in page.data
    auction = client.get(f"/api/intervals/{k}").get_json()["auction"]
    assert (auction["pricing"], auction["clearing_type"], auction["volume_wh"]) == (pricing, "seller", 1000)
    fills = {o["participant"]: o for o in auction["orders"]}
    assert fills[4]["unfilled_wh"] == 300 and fills[3]["p2p_wh"] == 200 and fills[3]["unfilled_wh"] == 300
    if pricing == "uniform":  # buyer 1 bid 0.25 and paid 0.20; seller 2 asked 0.10 and got 0.20, for 1 and 0.8 kWh
        assert auction["surplus_units"] == {"buyers": 50_000, "sellers": 80_000, "grid_operator": 0}
    else:
        assert auction["surplus_units"] == {"buyers": 0, "sellers": 0, "grid_operator": 130_000}
    assert client.get(f"/api/intervals/{k + 1}").get_json()["auction"]["clearing_type"] == "null"
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert len(verdicts) == STEPS and all(v.ok for v in verdicts), report(verdicts)


def test_an_interval_without_orders_is_closed_empty(tmp_path):
    market, index, builder, oracle, order = _market(tmp_path, "uniform")
    order(1, builder.first_interval + 1, BUY, 100, TARIFF_BUY)
    oracle.run(progress=False)
    assert market.next_interval() == builder.intervals.stop
    assert _header(market, builder.first_interval)["participants"] == 0
    assert _settled(market, builder.first_interval) == {}
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts), report(verdicts)


def test_a_newer_order_replaces_the_participants_earlier_one(tmp_path):
    market, index, builder, oracle, order = _market(tmp_path, "uniform")
    k = builder.first_interval
    for j in builder.intervals:
        order(2, j, SELL, 500, 100_000)
    order(1, k, BUY, 100, 250_000)
    order(1, k, BUY, 400, 250_000)  # amended (a higher nonce): the settlement carries this one
    order(1, k + 1, BUY, 100, 250_000)
    order(1, k + 2, BUY, 100, 250_000)
    oracle.run(progress=False)
    assert _settled(market, k)[1]["p2pWh"] == 400


def test_grid_legs_stay_within_the_grid_operators_capacity(tmp_path):
    market, index, builder, oracle, order = _market(tmp_path, "uniform")
    k = builder.first_interval
    ops = market.chain.operators
    market.chain.transact(market.market.functions.setCapacity(k, 500, 10_000), ops.grid_operator, 200_000)
    order(1, k, BUY, 400, TARIFF_BUY + 50_000)  # the highest bid imports first
    order(2, k, BUY, 400, TARIFF_BUY)
    for j in (k + 1, k + 2):
        order(3, j, BUY, 100, TARIFF_BUY)
    oracle.run(progress=False)
    settled = _settled(market, k)
    assert settled[1]["gridWh"] == 400 and settled[2]["gridWh"] == 100
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts), report(verdicts)
