"""Nobody moves a participant's funds without their signature: the contract accepts a
settlement entry only within a valid mandate or order of that participant, even from
a key that holds the oracle role, and names the check that failed."""

from __future__ import annotations

import numpy as np
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.chain.connection import Chain
from node.errors import ChainError, InputError, SettlementError
from node.chain.settlement import pack_order, unpack_order
from node.clearing.pricing import priced_settlement
from node.intent.signing import (
    BUY,
    SELL,
    Order,
    OrderCancellation,
    Revocation,
    sign_cancellation,
    sign_order,
    sign_revocation,
)
from tests.conftest import FAR_FUTURE, P2P, SELL as SELL_TARIFF, BUY as BUY_TARIFF, home_key, standing_mandate

HASH = b"\x22" * 32


def trade(homes, interval=0, p2p_price=P2P, grid=(1000, -500, 0, 0), p2p=(0, -500, 0, 500)):
    """Home 1 imports 1 kWh, home 2 exports 0.5 kWh and sells 0.5 kWh to home 4."""
    return priced_settlement(interval, HASH, homes, np.array(grid), np.array(p2p), BUY_TARIFF, SELL_TARIFF, p2p_price)


def order(market, participant, side, energy_wh, limit_price, interval=0, expiry=FAR_FUTURE, nonce=1, key=None):
    o = Order(participant, interval, side, energy_wh, limit_price, expiry, nonce)
    return sign_order(key or home_key(participant), market.domain(), o)


def now(market) -> int:
    return market.chain.w3.eth.get_block("latest")["timestamp"]


def rogue_oracle(market):
    """A key the admin wrongly granted the oracle role: it can settle, but it holds no
    participant's signature."""
    rogue = Account.create()
    chain = market.chain
    chain.fund(rogue.address, 10**18)
    role = market.market.functions.ORACLE_ROLE().call()
    chain.transact(market.market.functions.grantRole(role, rogue.address), chain.operators.admin, 100_000)
    return rogue


def test_domain_is_the_contracts_eip712_domain(market):
    assert bytes(market.market.functions.domainSeparator().call()) == market.domain().separator()


def test_rogue_oracle_cannot_settle_a_participant_without_mandate(bare_market, homes):
    rogue = rogue_oracle(bare_market)
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (1, 2, 3)])  # not home 4
    s = trade(homes)
    with pytest.raises(ChainError, match=r"NoMandate\(participant=4\)"):
        bare_market.chain.transact(bare_market.market.functions.settle(s.header(), s.entries(), []), rogue, 1_000_000)
    assert bare_market.next_interval() == 0


def test_rogue_oracle_cannot_charge_above_the_mandates_limit(bare_market, homes):
    rogue = rogue_oracle(bare_market)
    bare_market.submit_mandates([standing_mandate(bare_market, pid, max_buy=250_000) for pid in range(1, 5)])
    s = trade(homes)  # home 1 pays the 0.30 tariff, above its 0.25 limit
    with pytest.raises(ChainError, match=r"MandatePriceExceeded\(participant=1, costMilli=300000000, limitMilli=250000000\)"):
        bare_market.chain.transact(bare_market.market.functions.settle(s.header(), s.entries(), []), rogue, 1_000_000)


def test_seller_paid_below_the_mandates_minimum_is_rejected(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, pid, min_sell=100_000) for pid in range(1, 5)])
    # home 2 gets 0.06 for 0.5 kWh to the grid and 0.15 for 0.5 kWh to home 4: 0.105 average, fine
    bare_market.settle(trade(homes))
    # at 0.10 P2P it averages 0.08, below its 0.10 minimum
    with pytest.raises(SettlementError, match=r"MandatePriceBelowMinimum\(participant=2, revenueMilli=80000000, limitMilli=100000000\)"):
        bare_market.settle(trade(homes, interval=1, p2p_price=100_000))


def test_mandate_signed_by_another_key_is_rejected(bare_market):
    forged = standing_mandate(bare_market, 1, key=home_key(2))
    with pytest.raises(ChainError, match=r"BadMandateSignature\(participant=1, signer=" + home_key(2).address.lower()):
        bare_market.submit_mandates([forged])


def test_old_mandate_nonce_cannot_be_resubmitted(bare_market):
    first, second = standing_mandate(bare_market, 1, nonce=1), standing_mandate(bare_market, 1, nonce=2, max_buy=1)
    bare_market.submit_mandates([first])
    bare_market.submit_mandates([second])
    with pytest.raises(ChainError, match=r"StaleMandateNonce\(participant=1, floor=3, nonce=1\)"):
        bare_market.submit_mandates([first])
    max_buy, min_sell, valid_from, valid_until, max_wh, nonce, _ = bare_market.mandate(1)
    assert (max_buy, min_sell, valid_from, valid_until, nonce) == (1, SELL_TARIFF, 0, min(FAR_FUTURE, 2**40 - 1), 2)
    assert max_wh == 2**32 - 1  # no bound signed: the widest the contract keeps


def test_mandate_events_record_the_signed_bounds(bare_market):
    receipt = bare_market.submit_mandates([standing_mandate(bare_market, 3)])[0]
    (event,) = receipt.events
    assert event.name == "MandateSet"
    assert event.args == {"participant": 3, "nonce": 1, "maxBuyPrice": BUY_TARIFF, "minSellPrice": SELL_TARIFF,
                          "minSocPpm": 0, "maxSocPpm": 1_000_000, "validFrom": 0, "validUntil": FAR_FUTURE,
                          "maxEnergyWh": 2**64 - 1}


def test_revoked_mandate_stops_authorising_and_cannot_come_back(market, homes):
    signed = sign_revocation(home_key(1), market.domain(), Revocation(1, 1))
    receipt = market.revoke_mandate(signed)
    assert [(e.name, e.args) for e in receipt.events] == [("MandateRevoked", {"participant": 1, "nonce": 1})]
    with pytest.raises(SettlementError, match=r"RevokedMandate\(participant=1, nonce=1\)"):
        market.settle(trade(homes))
    with pytest.raises(ChainError, match="StaleMandateNonce"):
        market.submit_mandates([standing_mandate(market, 1, nonce=1)])
    market.submit_mandates([standing_mandate(market, 1, nonce=2)])
    market.settle(trade(homes))


def test_revocation_reaches_a_mandate_signed_but_never_submitted(market, homes):
    unsent = standing_mandate(market, 1, nonce=2)
    market.revoke_mandate(sign_revocation(home_key(1), market.domain(), Revocation(1, 2)))
    with pytest.raises(ChainError, match=r"StaleMandateNonce\(participant=1, floor=3, nonce=2\)"):
        market.submit_mandates([unsent])


def test_owner_revokes_directly_and_nobody_else_can(market, homes):
    chain = market.chain
    owner, stranger = home_key(2), Account.create()
    for account in (owner, stranger):
        chain.fund(account.address, 10**18)
    revoke = market.market.get_function_by_signature("revokeMandate(uint32)")
    with pytest.raises(ChainError, match=r"NotParticipantOwner\(participant=2"):
        chain.transact(revoke(2), stranger, 100_000)
    forged = sign_revocation(stranger, market.domain(), Revocation(2, 1))
    with pytest.raises(ChainError, match=r"BadMandateSignature\(participant=2"):
        market.revoke_mandate(forged)
    chain.transact(revoke(2), owner, 100_000)
    with pytest.raises(SettlementError, match=r"RevokedMandate\(participant=2, nonce=1\)"):
        market.settle(trade(homes))


def test_a_mandate_covers_only_intervals_within_its_validity_by_their_own_time(bare_market, homes):
    # Valid for interval 0 only: interval 1 is refused however soon it is settled.
    clock = bare_market.clock()
    expiry = clock.end(0) - 1
    bare_market.submit_mandates([standing_mandate(bare_market, pid, valid_until=expiry) for pid in range(1, 5)])
    bare_market.settle(trade(homes))
    with pytest.raises(SettlementError, match=rf"MandateNotInForce\(participant=1, interval=1, validFrom=0, validUntil={expiry}\)"):
        bare_market.settle(trade(homes, interval=1))


def test_valid_orders_authorise_participants_without_mandates(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, 3)])
    orders = [
        order(bare_market, 1, BUY, 1000, BUY_TARIFF),
        order(bare_market, 2, SELL, 1000, 100_000),
        order(bare_market, 4, BUY, 600, P2P),
    ]
    before = bare_market.balance(4)
    receipt = bare_market.settle(trade(homes), orders)
    assert bare_market.balance(4) == before - 75_000
    (entries,) = [e.args["entries"] for e in receipt.events if e.name == "EntriesSettled"]
    assert [w >> 255 for w in entries] == [1, 1, 0, 1]  # homes 1, 2, 4 by order, 3 by mandate


def test_forged_order_signature_rejected(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (2, 3, 4)])
    forged = order(bare_market, 1, BUY, 1000, BUY_TARIFF, key=home_key(3))
    with pytest.raises(SettlementError, match=r"BadOrderSignature\(participant=1, signer=" + home_key(3).address.lower()):
        bare_market.settle(trade(homes), [forged])


def test_order_for_one_interval_cannot_be_replayed_in_the_next(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (2, 3, 4)])
    signed = order(bare_market, 1, BUY, 2000, BUY_TARIFF, interval=0)
    bare_market.settle(trade(homes), [signed])
    # Same signature, next interval: the digest now binds interval 1, so it recovers to someone else.
    with pytest.raises(SettlementError, match=r"BadOrderSignature\(participant=1"):
        bare_market.settle(trade(homes, interval=1), [signed])


def test_order_cannot_be_used_for_another_participant(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (1, 2, 3, 4)])
    theirs = order(bare_market, 3, BUY, 2000, BUY_TARIFF)
    s = trade(homes)
    call = bare_market.market.functions.settle(s.header(), s.entries(by_order={1}), [pack_order(theirs)])
    with pytest.raises(ChainError, match=r"BadOrderSignature\(participant=1"):
        bare_market.chain.transact(call, bare_market.chain.operators.oracle, 1_000_000)


def test_a_cancelled_order_cannot_be_settled(bare_market, homes):
    # The owner amended its 0.29 order and cancelled the old nonce on chain.
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (2, 3, 4)])
    superseded = order(bare_market, 1, BUY, 1000, BUY_TARIFF, nonce=1)
    bare_market.cancel_orders(sign_cancellation(home_key(1), bare_market.domain(), OrderCancellation(1, 1)))
    with pytest.raises(SettlementError, match=r"OrderCancelled\(participant=1, nonce=1, floor=2\)"):
        bare_market.settle(trade(homes), [superseded])
    bare_market.settle(trade(homes), [order(bare_market, 1, BUY, 1000, BUY_TARIFF, nonce=2)])


def test_expired_order_rejected(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (2, 3, 4)])
    expiry = now(bare_market) - 1
    with pytest.raises(SettlementError, match=rf"OrderExpired\(participant=1, expiry={expiry}"):
        bare_market.settle(trade(homes), [order(bare_market, 1, BUY, 1000, BUY_TARIFF, expiry=expiry)])


def test_quantity_beyond_the_signed_energy_rejected(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (1, 3, 4)])
    with pytest.raises(SettlementError, match=r"OrderQuantityExceeded\(participant=2, energyWh=1000, signedWh=999\)"):
        bare_market.settle(trade(homes), [order(bare_market, 2, SELL, 999, SELL_TARIFF)])


def test_order_on_the_wrong_side_rejected(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (1, 3, 4)])
    with pytest.raises(SettlementError, match=r"OrderSideMismatch\(participant=2, side=0, netWh=-1000\)"):
        bare_market.settle(trade(homes), [order(bare_market, 2, BUY, 5000, BUY_TARIFF)])


def test_buyer_above_limit_and_seller_below_limit_rejected(bare_market, homes):
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in (2, 3, 4)])
    with pytest.raises(SettlementError, match=r"OrderPriceExceeded\(participant=1, costMilli=300000000, limitMilli=299999000\)"):
        bare_market.settle(trade(homes), [order(bare_market, 1, BUY, 1000, 299_999)])
    bare_market.submit_mandates([standing_mandate(bare_market, 1)])
    bare_market.revoke_mandate(sign_revocation(home_key(2), bare_market.domain(), Revocation(2, 1)))  # an order only
    with pytest.raises(SettlementError, match=r"OrderPriceBelowLimit\(participant=2, revenueMilli=105000000, limitMilli=106000000\)"):
        bare_market.settle(trade(homes), [order(bare_market, 2, SELL, 1000, 106_000)])


def test_every_order_must_be_used_and_flagged_entries_need_one(market, homes):
    s = trade(homes)
    extra = pack_order(order(market, 1, BUY, 1000, BUY_TARIFF))
    call = market.market.functions.settle(s.header(), s.entries(), [extra])
    with pytest.raises(ChainError, match=r"UnusedOrders\(count=1\)"):
        market.chain.transact(call, market.chain.operators.oracle, 1_000_000)
    call = market.market.functions.settle(s.header(), s.entries(by_order={2}), [])
    with pytest.raises(ChainError, match=r"MissingOrder\(participant=2\)"):
        market.chain.transact(call, market.chain.operators.oracle, 1_000_000)


def test_packed_order_round_trips_and_rejects_wide_nonces(market):
    signed = order(market, 3, SELL, 1234, 56_789, interval=7, expiry=1_900_000_000, nonce=2**56 - 1)
    packed, r, vs = pack_order(signed)
    assert unpack_order(3, 7, packed, r, vs) == signed
    with pytest.raises(InputError, match="nonce"):
        pack_order(order(market, 3, SELL, 1234, 56_789, nonce=2**56))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limit=st.integers(0, 2 * BUY_TARIFF),
    energy=st.integers(1, 3000),
    signed_energy=st.integers(1, 3000),
    by_order=st.booleans(),
)
def test_buyer_is_settled_iff_within_its_signed_limits(bare_market, homes, limit, energy, signed_energy, by_order):
    """Home 1 buys `energy` Wh from home 2 over P2P at the P2P price; it signed either
    an order (limit, signed energy) or a mandate (limit); homes 2-4 hold mandates."""
    market = bare_market
    if market.mandate(2)[5] == 0:
        market.submit_mandates([standing_mandate(market, pid) for pid in (2, 3, 4)])
    k = market.next_interval()
    s = trade(homes, interval=k, grid=(0, 0, 0, 0), p2p=(energy, -energy, 0, 0))
    cost_milli = -int(s.amount[0]) * 1000
    if by_order:
        orders = [order(market, 1, BUY, signed_energy, limit, interval=k)]
        ok = energy <= signed_energy and cost_milli <= energy * limit + 999
    else:
        orders = []
        market.submit_mandates([standing_mandate(market, 1, nonce=market.mandate(1)[5] + 1, max_buy=limit)])
        ok = cost_milli <= energy * limit + 999
    before = market.balance(1)
    if ok:
        market.settle(s, orders)
        assert market.balance(1) == before + s.amount[0]
    else:
        with pytest.raises(SettlementError, match="OrderQuantityExceeded|OrderPriceExceeded|MandatePriceExceeded"):
            market.settle(s, orders)
        assert market.balance(1) == before


# -- the auditor re-verifies every authorisation from the chain ------------------------


@pytest.fixture
def community_market(tmp_path):
    from dataclasses import replace

    from node.data.community import Community
    from node.data.config import default_config
    from node.simulation.setup import deploy_community
    from node.index.store import Index
    from node.oracle.inputs_builder import InputsBuilder
    from node.oracle.daemon import Oracle
    from node.data.synthetic import generate_community

    config = default_config()
    config = replace(config, community=replace(config.community, homes=6, seed=5),
                     market=replace(config.market, horizon_steps=4))
    full = generate_community(config)
    window = slice(48, 52)
    community = Community(full.homes, full.timestamps[window], full.consumption_kwh[:, window],
                          full.production_kwh[:, window])
    index = Index(tmp_path / "index.sqlite")
    market, ids = deploy_community(Chain.embedded(), community, config, index)
    return market, index, InputsBuilder(community, config, ids), config, community


def test_auditor_accepts_mandated_and_order_authorised_settlements(community_market):
    from node.audit.verify import IndexInputs, audit, report
    from node.simulation.setup import demo_key
    from node.clearing.interval import run_clearing, settlement_for

    market, index, builder, config, community = community_market
    k = builder.first_interval
    inputs = builder.inputs(k, builder.initial_soc())
    index.store_inputs(inputs)
    s = settlement_for(inputs, run_clearing(inputs))
    row = int(np.flatnonzero(s.grid_wh + s.p2p_wh != 0)[0])
    pid, net = int(s.participants[row]), int(s.grid_wh[row] + s.p2p_wh[row])
    side, limit = (BUY, 10**6) if net > 0 else (SELL, 0)
    key = demo_key(config.community.seed, community.homes[pid - 1].name)
    signed = sign_order(key, market.domain(), Order(pid, k, side, abs(net), limit, FAR_FUTURE, 1))
    index.store_readings(community_meters(community_market).readings(inputs, s))
    receipt = market.settle(s, [signed])
    index.apply(receipt.events, {receipt.tx_hash: receipt.gas_used}, up_to_block=receipt.block)
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert len(verdicts) == 1 and verdicts[0].ok, report(verdicts)


def community_meters(community_market):
    from node.simulation.meters import SimulatedMeters

    market, _, builder, config, community = community_market
    return SimulatedMeters.of(market, community, config, builder.participants)


def _battery_owner_narrows_the_band(community_market):
    """The first battery's owner signs a mandate allowing only 90-100 % (it starts at 50 %)."""
    from node.simulation.setup import demo_key
    from node.intent.signing import Mandate, sign_mandate

    market, index, builder, config, community = community_market
    battery = builder.battery_rows[0]
    pid = int(builder.participants[battery])
    key = demo_key(config.community.seed, community.homes[battery].name)
    market.submit_mandates([sign_mandate(key, market.domain(), Mandate(pid, 10**6, 0, 900_000, 1_000_000, FAR_FUTURE, 2))])
    return market, index, builder, pid


def test_auditor_catches_batteries_outside_the_mandated_state_of_charge(community_market):
    from node.audit.verify import IndexInputs, audit
    from node.oracle.daemon import Oracle

    market, index, builder, pid = _battery_owner_narrows_the_band(community_market)

    class Careless(Oracle):
        """Ignores the chain's mandates (terms=None): schedules down to the physical 10 %."""

        def inputs(self, interval, soc):
            return self.builder.inputs(interval, soc)

    Careless(market, index, builder, meters=community_meters(community_market)).run(
        until=builder.first_interval + 1, progress=False)
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert not verdicts[0].ok
    assert f"participant {pid}: inputs let the battery range over" in " ".join(verdicts[0].reasons)


def test_the_oracle_keeps_batteries_in_the_mandated_band(community_market):
    from node.audit.verify import IndexInputs, audit
    from node.oracle.daemon import Oracle

    market, index, builder, pid = _battery_owner_narrows_the_band(community_market)
    oracle = Oracle(market, index, builder, meters=community_meters(community_market))
    start = builder.initial_soc()[pid]
    oracle.run(progress=False)
    assert oracle.soc[pid] >= start  # below the new band: never taken further down
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts), [v.reasons for v in verdicts if not v.ok]
