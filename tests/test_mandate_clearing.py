"""The community clearing keeps within what each participant signed: it settles only
participants with a mandate in force, splits each one's energy so the average price
stays within its mandate, leaves out (and names) those it cannot serve instead of
sending a settlement the contract would reject, and keeps batteries in their mandated
state-of-charge band. The oracle relays signed mandates from the order book, and the
grid operator's capacity on chain is what the clearing respects."""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pytest

from node.audit.verify import IndexInputs, audit, report
from node.chain.connection import Chain
from node.clearing.interval import _split_p2p, mandate_soc_bounds
from node.data.community import Community
from node.data.config import default_config
from node.simulation.setup import demo_key, deploy_community
from node.index.store import Index
from node.clearing.inputs import BatteryInputs, IntervalInputs
from node.oracle.inputs_builder import InputsBuilder
from node.chain.settlement import decode_entry
from node.oracle.daemon import Oracle
from node.simulation.meters import SimulatedMeters
from node.clearing.interval import run_clearing
from node.intent.orders import OrderBook
from node.intent.signing import Mandate, Revocation, sign_mandate, sign_revocation
from node.data.synthetic import generate_community

STEPS = 6
BUY, SELL = 300_000, 60_000


def test_tight_buyer_gets_peer_energy_first():
    ids = np.array([1, 2, 3])
    net = np.array([1000, 1000, -1500])
    # Buyer 1 pays at most 200 with P2P at 150 and grid at 300: it needs 2/3 from peers.
    tight = Mandate(1, 200_000, SELL, 0, 10**6, 2**40, 1)
    p2p, refused = _split_p2p(ids, net, 1500.0, 150_000, BUY, SELL, [tight, None, None])
    assert not refused
    assert p2p.tolist() == [667 + 208, 625, -1500]  # 667 needed, the other 833 pro rata to the room left
    cost_milli = (1000 - p2p[0]) * BUY + p2p[0] * 150_000
    assert cost_milli <= 1000 * 200_000


def test_plain_pro_rata_when_no_mandate_binds():
    ids = np.array([1, 2, 3])
    net = np.array([300, 100, -400])
    loose = [Mandate(int(p), BUY, SELL, 0, 10**6, 2**40, 1) for p in ids]
    with_mandates, _ = _split_p2p(ids, net, 200.0, 150_000, BUY, SELL, loose)
    without, _ = _split_p2p(ids, net, 200.0, 150_000, BUY, SELL, [None] * 3)
    assert with_mandates.tolist() == without.tolist() == [150, 50, -200]


def test_mandate_below_the_p2p_price_is_refused_with_the_reason():
    ids = np.array([1, 2])
    net = np.array([500, -500])
    cheap = Mandate(1, 100_000, SELL, 0, 10**6, 2**40, 4)
    _, refused = _split_p2p(ids, net, 500.0, 150_000, BUY, SELL, [cheap, None])
    assert list(refused) == [1]
    assert "mandate 4 pays at most 100000/kWh" in refused[1]


def test_needs_beyond_the_p2p_volume_refuse_the_largest_first():
    ids = np.array([1, 2, 3])
    net = np.array([1000, 400, -600])
    # Both buyers need all their energy from peers (mandate at the P2P price): 1400 > 600.
    at_p2p = [Mandate(p, 150_000, SELL, 0, 10**6, 2**40, 1) for p in (1, 2)] + [None]
    _, refused = _split_p2p(ids, net, 600.0, 150_000, BUY, SELL, at_p2p)
    assert list(refused) == [1]


def test_seller_floor_above_the_feed_in_tariff():
    ids = np.array([1, 2, 3])
    net = np.array([1000, -500, -500])
    floor = Mandate(2, BUY, 120_000, 0, 10**6, 2**40, 1)  # needs (120-60)/(150-60) = 2/3 sold to peers
    p2p, refused = _split_p2p(ids, net, 600.0, 150_000, BUY, SELL, [None, floor, None])
    assert not refused
    revenue_milli = (500 + p2p[1]) * SELL + -p2p[1] * 150_000
    assert -p2p[1] >= 334 and revenue_milli >= 500 * 120_000


def test_soc_bounds_narrow_to_the_mandate_but_keep_the_current_state():
    b = BatteryInputs(1, capacity_wh=10_000, max_charge_wh=1000, max_discharge_wh=1000, charge_efficiency_ppm=950_000,
                      discharge_efficiency_ppm=950_000, soc_wh=5000, min_soc_wh=1000)
    band = Mandate(1, BUY, SELL, 200_000, 800_000, 2**40, 1)
    assert mandate_soc_bounds(b, band, 5000) == (2000, 8000)
    assert mandate_soc_bounds(b, band, 9000) == (2000, 9000)  # above the band: not pushed, not raised
    assert mandate_soc_bounds(b, None, 5000) == (1000, 10_000)


# -- on chain ---------------------------------------------------------------------------


@pytest.fixture
def setup(tmp_path):
    return _setup(tmp_path, 48)  # midday: P2P trade, the community exports


@pytest.fixture
def evening(tmp_path):
    return _setup(tmp_path, 76)  # the community imports: P2P just below the import tariff


def _setup(tmp_path, start: int):
    config = default_config()
    config = replace(config, community=replace(config.community, homes=8, seed=3), market=replace(config.market, horizon_steps=8))
    full = generate_community(config)
    window = slice(start, start + STEPS)
    community = Community(full.homes, full.timestamps[window], full.consumption_kwh[:, window], full.production_kwh[:, window])
    chain = Chain.embedded()
    index = Index(tmp_path / "index.sqlite")
    market, ids = deploy_community(chain, community, config, index)
    builder = InputsBuilder(community, config, ids)
    book = OrderBook(tmp_path / "orders.sqlite", market.domain(), lambda pid: (index.participant(pid) or {}).get("owner"))
    meters = SimulatedMeters.of(market, community, config, ids)
    return market, index, builder, Oracle(market, index, builder, book, meters), book, config, community


def _sign(config, community, pid: int, **changes) -> object:
    fields = dict(participant=pid, max_buy_price=BUY * 2, min_sell_price=SELL, min_soc_ppm=0, max_soc_ppm=10**6,
                  valid_until=2**40, nonce=2)
    fields.update(changes)
    return Mandate(**fields), demo_key(config.community.seed, community.homes[pid - 1].name)


def _first_clearing(oracle, builder):
    k = builder.first_interval
    inputs = oracle.inputs(k, builder.initial_soc())
    return inputs, run_clearing(inputs)


def _settled(market, k):
    """What interval `k` settled per participant, from the chain's EntriesSettled logs."""
    entries = [decode_entry(w) for e in market.events() if e.name == "EntriesSettled" and e.args["interval"] == k
               for w in e.args["entries"]]
    return {x.participant: {"gridWh": x.grid_wh, "p2pWh": x.p2p_wh, "amount": x.amount}
            for x in entries if not x.excluded}


def test_a_tight_mandate_is_honoured_not_rejected(evening):
    market, index, builder, oracle, book, config, community = evening
    inputs, result = _first_clearing(oracle, builder)
    buy = inputs.buy_price[0]
    buyers = [int(p) for p, g, q in zip(result.participants, result.grid_wh, result.p2p_wh) if g > 0 and q > 0]
    assert buyers and result.p2p_price < buy, "the window must have a buyer importing and trading P2P"
    pid = buyers[0]
    limit = (result.p2p_price + buy) // 2
    mandate, key = _sign(config, community, pid, max_buy_price=limit)
    market.submit_mandates([sign_mandate(key, market.domain(), mandate)])

    oracle.run(progress=False)
    mine = _settled(market, builder.first_interval)[pid]
    net = mine["gridWh"] + mine["p2pWh"]
    assert net > 0 and -mine["amount"] * 1000 <= net * limit + 999
    assert mine["p2pWh"] > 0
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts), report(verdicts)


def test_a_mandate_the_price_cannot_meet_leaves_the_home_out_and_says_why(setup, caplog):
    market, index, builder, oracle, book, config, community = setup
    inputs, result = _first_clearing(oracle, builder)
    buyer = next(int(p) for p, g, q in zip(result.participants, result.grid_wh, result.p2p_wh) if g + q > 0)
    mandate, key = _sign(config, community, buyer, max_buy_price=SELL - 1)  # below the P2P price, 60000
    market.submit_mandates([sign_mandate(key, market.domain(), mandate)])

    with caplog.at_level(logging.INFO, logger="gridledger.oracle"):
        reports = oracle.run(progress=False)
    assert len(reports) == STEPS  # every interval settled; none rejected
    assert buyer not in _settled(market, builder.first_interval)
    assert f"participant {buyer}: mandate 2 pays at most {SELL - 1}/kWh" in caplog.text
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts), report(verdicts)


def test_a_revoked_mandate_takes_the_home_out_of_later_intervals(setup):
    market, index, builder, oracle, book, config, community = setup
    oracle.run(until=builder.first_interval + 2, progress=False)
    key = demo_key(config.community.seed, community.homes[0].name)
    # Revoked through the order book, as the web UI does; the oracle relays it.
    revocation = sign_revocation(key, market.domain(), Revocation(1, 1))
    book.revoke_mandate(1, 1, revocation.signature, now=0)
    oracle.run(progress=False)
    max_buy, min_sell, valid_from, valid_until, *_ = market.mandate(1)
    assert valid_from > valid_until  # revoked on chain: valid for no interval
    assert 1 in _settled(market, builder.first_interval + 1)
    for k in range(builder.first_interval + 2, builder.intervals.stop):
        assert 1 not in _settled(market, k)
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts), report(verdicts)


def test_a_mandate_signed_into_the_book_is_relayed_and_used(setup):
    market, index, builder, oracle, book, config, community = setup
    pid = int(builder.participants[builder.battery_rows[0]])
    mandate, key = _sign(config, community, pid, min_soc_ppm=400_000, max_soc_ppm=600_000, nonce=7)
    oracle.catch_up_index()  # the book checks signers against the owners the index knows
    book.submit_mandate(sign_mandate(key, market.domain(), mandate), now=0)
    oracle.run(progress=False)
    assert market.mandate(pid)[5] == 7  # the nonce
    spec = builder.battery_specs[builder.battery_rows[0]]
    capacity = spec["capacity_wh"]
    for k in builder.intervals:
        inputs_body = index.inputs(index.interval(k)["inputs_hash"])
        b = next(b for b in IntervalInputs.from_json(inputs_body).batteries if b.participant == pid)
        start = b.soc_wh
        assert b.min_soc_wh == min(max(spec["min_soc_wh"], capacity * 4 // 10), start)
        assert b.max_soc_wh == max(capacity * 6 // 10, start)
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts), report(verdicts)


def test_the_grid_operators_capacity_on_chain_is_what_the_clearing_respects(setup):
    market, index, builder, oracle, book, config, community = setup
    k = builder.first_interval + 1
    ops = market.chain.operators
    market.chain.transact(market.market.functions.setCapacity(k, 1_500, 1_000), ops.grid_operator, 200_000)
    oracle.run(progress=False)
    inputs = IntervalInputs.from_json(index.inputs(index.interval(k)["inputs_hash"]))
    assert (inputs.import_capacity_wh[0], inputs.export_capacity_wh[0]) == (1_500, 1_000)
    settled = _settled(market, k)
    assert sum(a["gridWh"] for a in settled.values() if a["gridWh"] > 0) <= 1_500
    assert -sum(a["gridWh"] for a in settled.values() if a["gridWh"] < 0) <= 1_000
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts), report(verdicts)


def test_the_audit_catches_inputs_that_claim_a_mandate_the_chain_did_not_hold(setup):
    market, index, builder, oracle, book, config, community = setup
    from node.audit.verify import MandateHistory, terms_reasons
    oracle.run(progress=False)
    inputs = IntervalInputs.from_json(index.inputs(index.interval(builder.first_interval)["inputs_hash"]))
    forged = replace(inputs, mandates=[dict(m, nonce=9) if m["participant"] == 2 else m for m in inputs.mandates])
    history = MandateHistory()
    for e in market.events():
        if e.name in ("MandateSet", "MandateRevoked"):
            history.add(e)
    head = market.chain.w3.eth.block_number
    reasons = terms_reasons(forged, {2}, history, head + 1, 0)
    assert reasons == ["participant 2: inputs use mandate nonce 9, the chain had nonce 1 in force"]


def test_version_1_inputs_still_load_and_hash_as_committed():
    from node.clearing.inputs import IntervalInputs

    v1 = (b'{"batteries":[{"capacity_wh":10000,"charge_efficiency_ppm":950000,"discharge_efficiency_ppm":950000,'
          b'"max_charge_wh":1000,"max_discharge_wh":1000,"min_soc_wh":1000,"participant":1,"soc_wh":5000}],'
          b'"buy_price":[300000],"export_capacity_wh":[8000],"import_capacity_wh":[10000],"interval":0,'
          b'"load_wh":[[500]],"p2p_cost":5000,"participants":[1],"pv_wh":[[0]],"sell_price":[60000],'
          b'"start":"2026-06-01T00:00:00+00:00","version":1}')
    inputs = IntervalInputs.from_json(v1)
    assert inputs.canonical_json() == v1
    assert inputs.mandates is None and inputs.mechanism == "community"  # cleared as before: everyone, no limits
