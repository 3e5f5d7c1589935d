"""Bounded inputs: what the contract cannot encode never gets in. An order no settlement
can carry (nonce of 2**56 or more, energy beyond the int48 of an entry, an interval
centuries ahead) is refused by the order book and the API with a 400 naming the field,
and one an older book still holds is skipped by the oracle, by name, while the market
settles everyone else."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import replace

import numpy as np
import pytest

from node.chain.settlement import PACKED_NONCE_BITS, Settlement, pack_order
from node.errors import InputError
from node.intent.amounts import energy_wh, unix_time
from node.intent.orders import OrderBook
from node.intent.signing import BUY, SELL, Order, sign_order
from node.simulation.setup import demo_key
from tests.test_auction_market import _market, _settled
from tests.test_webui_orders import ALICE, DOMAIN, NEXT, index_path, order, post  # noqa: F401 (index_path: fixture)
from webui import create_app

ABSURD = [
    ("order.nonce", {"nonce": 1 << 56}),
    ("order.energyWh", {"energy_wh": 1 << 50}),
    ("order.interval", {"interval": (1 << 64) - 1}),
]


def test_the_bounds_are_what_the_settlement_encoding_carries():
    from node.intent.bounds import MAX_ENTRY_WH, ORDER_NONCE_BITS

    assert ORDER_NONCE_BITS == PACKED_NONCE_BITS
    pack_order(sign_order(ALICE, DOMAIN, order(nonce=(1 << ORDER_NONCE_BITS) - 1)))
    with pytest.raises(InputError):
        pack_order(sign_order(ALICE, DOMAIN, order(nonce=1 << ORDER_NONCE_BITS)))
    for wh in (MAX_ENTRY_WH, -MAX_ENTRY_WH, MAX_ENTRY_WH + 1):
        entry = Settlement(0, b"\0" * 32, 1, 1, 1, np.array([1]), np.array([wh]), np.array([-wh]), np.array([0]), 0)
        (word,) = entry.entries()

        def int48(shift: int) -> int:  # SettlementEntry.decode: int48(uint48(word >> shift))
            raw = (word >> shift) & ((1 << 48) - 1)
            return raw - (1 << 48) if raw >> 47 else raw

        assert ((int48(176), int48(128)) == (wh, -wh)) == (abs(wh) <= MAX_ENTRY_WH)


@pytest.mark.parametrize("field, change", ABSURD)
def test_the_order_book_refuses_what_no_settlement_can_carry(tmp_path, field, change):
    book = OrderBook(tmp_path / "orders.sqlite", DOMAIN, lambda pid: ALICE.address)
    with pytest.raises(InputError) as refused:
        book.submit(sign_order(ALICE, DOMAIN, order(**change)), int(time.time()), NEXT)
    assert refused.value.field == field and str(refused.value).startswith(field)
    assert book.orders_for(order(**change).interval) == []


def test_an_order_a_year_ahead_is_taken_and_one_later_is_not():
    from node.intent.bounds import MAX_INTERVALS_AHEAD, order_problem

    assert order_problem(order(interval=NEXT + MAX_INTERVALS_AHEAD), NEXT) is None
    assert order_problem(order(interval=NEXT + MAX_INTERVALS_AHEAD + 1), NEXT).field == "order.interval"


@pytest.mark.parametrize("field, change", ABSURD)
def test_the_api_answers_400_naming_the_field(index_path, field, change):
    client = create_app({"INDEX_PATH": str(index_path)}).test_client()
    response = post(client, sign_order(ALICE, DOMAIN, order(**change)))
    assert response.status_code == 400
    assert response.get_json()["field"] == field and field in response.get_json()["error"]


@pytest.mark.parametrize("text, field", [("1e999999", "energy"), ("-1", "energy"), ("NaN", "energy")])
def test_absurd_amounts_are_refused_not_overflowed(text, field):
    with pytest.raises(InputError) as refused:
        energy_wh(text)
    assert refused.value.field == field


def test_times_beyond_the_year_9999_are_refused():
    with pytest.raises(InputError, match="9999-12-31"):
        unix_time("9999-12-31T23:59:59-14:00")


def test_the_oracle_skips_and_names_an_order_it_cannot_settle_and_settles_the_rest(tmp_path, caplog):
    """An order book from before the bounds may hold such orders: each is skipped with a
    warning naming it, never halting the market, and the others clear."""
    market, index, builder, oracle, order_for = _market(tmp_path, "uniform")
    k = builder.first_interval
    order_for(1, k, BUY, 1000, 250_000)
    order_for(2, k, SELL, 1000, 100_000)
    config = builder.config
    expiry = int(time.time()) + 3600
    for pid, change in ((3, {"nonce": 1 << 60}), (4, {"energy_wh": 1 << 50})):
        key = demo_key(config.community.seed, builder.community.homes[pid - 1].name)
        bad = sign_order(key, market.domain(), replace(Order(pid, k, SELL, 10, 1, expiry, 5), **change))
        db = sqlite3.connect(tmp_path / "orders.sqlite")  # as an older book stored it, unchecked
        db.execute("INSERT INTO orders (participant, nonce, interval, expiry, signed, received_at) VALUES (?, ?, ?, ?, ?, ?)",
                   (pid, f"{bad.order.nonce:020d}", f"{k:020d}", f"{expiry:020d}", json.dumps(bad.to_json()), 0))
        db.commit()
        db.close()
    with caplog.at_level(logging.WARNING, logger="gridledger.oracle"):
        oracle.run(progress=False)
    assert market.next_interval() == builder.intervals.stop
    assert set(_settled(market, k)) == {1, 2}
    skipped = [r.getMessage() for r in caplog.records if "skipping participant" in r.getMessage()]
    assert any("participant 3's order" in m and "order.nonce" in m for m in skipped)
    assert any("participant 4's order" in m and "order.energyWh" in m for m in skipped)


def test_the_oracle_refuses_a_meter_reading_no_settlement_entry_can_carry():
    from node.data.community import Community
    from node.data.config import default_config
    from node.data.synthetic import generate_community
    from node.oracle.inputs_builder import InputsBuilder

    config = default_config()
    config = replace(config, community=replace(config.community, homes=2, days=1))
    full = generate_community(config)
    consumption = full.consumption_kwh.copy()
    consumption[1, 5] = 2.0**48 / 1000  # kWh: 2**48 Wh
    absurd = Community(full.homes, full.timestamps, consumption, full.production_kwh)
    with pytest.raises(InputError, match="consumption_kwh .* is not a reading a settlement can carry") as refused:
        InputsBuilder(absurd, config, np.array([1, 2]))
    assert refused.value.field == "consumption_kwh" and full.homes[1].name in str(refused.value)
