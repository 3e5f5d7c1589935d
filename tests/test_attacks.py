"""Issue 9's attacks, end to end, by someone holding only the oracle key, on the 4-home
market of tests/conftest.py (standing mandates: buy at most 0.30/kWh, sell at least
0.06/kWh; 10 tokens in each wallet) and on a small simulated community with meters.

Each attack is refused by the contract, or, where the contract accepts it (energy
within every limit), is caught by the auditor against the meter-signed readings and
reversed on chain by a dispute that pays the disputer from the oracle's bond. Against
the market before issue 9 (b3e4149) every one of them went through unnoticed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from eth_account import Account

from node.audit.verify import IndexInputs, audit
from node.chain.connection import Chain
from node.chain.deploy import MarketSetup
from node.chain.market import DEFAULT_TARIFFS, Market
from node.clearing.interval import run_clearing, settlement_for
from node.clearing.pricing import priced_settlement
from node.errors import ChainError, SettlementError
from node.intent.signing import (
    BUY,
    Mandate,
    Order,
    OrderCancellation,
    Reading,
    Revocation,
    sign_cancellation,
    sign_mandate,
    sign_order,
    sign_reading,
    sign_revocation,
)
from tests.conftest import BUY as IMPORT, P2P, SELL as EXPORT, home_key, meter_key, standing_mandate

HASH = b"\x99" * 32
TEN = 10_000_000
AUDITOR = Account.from_key("0x" + "a0d1" * 16)


def settlement(homes, grid, p2p, interval=0, buy=IMPORT, sell=EXPORT, p2p_price=P2P):
    return priced_settlement(interval, HASH, np.asarray(homes), np.array(grid), np.array(p2p), buy, sell, p2p_price)


def reading(pid: int, interval: int, net_wh: int, market: Market):
    return sign_reading(meter_key(pid), market.domain(), Reading.of_net(pid, interval, net_wh))


def funded_auditor(market: Market) -> Account:
    market.chain.fund(AUDITOR.address, 10**18)
    return AUDITOR


def token_balance(market: Market, address: str) -> int:
    return market.token.functions.balanceOf(address).call()


# -- 1. tariffs are free -------------------------------------------------------------


def test_tariffs_of_the_oracles_choosing_are_refused(market):
    # Home 4 exports 1 Wh at "3e10 units/kWh": 30 tokens for nothing, out of the grid's wallet.
    rogue = settlement([4], [-1], [0], buy=30_000_000_000, sell=30_000_000_000)
    with pytest.raises(SettlementError, match=r"PaymentMismatch\(participant=4, amount=30000000, expectedMilli=60000\)"):
        market.settle(rogue)
    # The export tariff x20, within what home 4's mandate allows a seller.
    with pytest.raises(SettlementError, match=r"PaymentMismatch\(participant=4"):
        market.settle(settlement([4], [-1000], [0], sell=EXPORT * 20))
    assert market.balance(0) == TEN and market.next_interval() == 0


def test_tariffs_change_only_by_the_grid_operator_with_notice(market):
    from node.chain.deploy import Tariffs

    costly = Tariffs(IMPORT * 2, IMPORT * 2, EXPORT)
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        market.chain.transact(market.market.functions.scheduleTerms(1, costly.as_tuple()), market.chain.operators.oracle,
                              200_000)
    with pytest.raises(ChainError, match=r"NoticeTooShort\(interval=1"):
        market.schedule_terms(1, costly)
    clock = market.clock()
    later = (market.chain.w3.eth.get_block("latest")["timestamp"] + clock.notice_s - clock.epoch) // clock.interval_s + 1
    market.schedule_terms(later, costly)
    assert market.terms_at(later - 1).import_price == IMPORT and market.terms_at(later).import_price == 2 * IMPORT


# -- 2. quantities are free ----------------------------------------------------------


def test_a_gigawatt_hour_between_two_homes_is_refused_by_the_buyers_wallet(market):
    with pytest.raises(SettlementError, match=r"CreditLimitExceeded\(participant=1, available=10000000"):
        market.settle(settlement([1, 4], [0, 0], [10**9, -10**9]))


def test_import_a_home_never_used_is_reversed_by_its_meter_reading(market):
    # 9 kWh charged to home 1 (2.70 tokens, within its wallet): the contract accepts it.
    s = settlement([1], [9_000], [0])
    words = s.entries()
    market.settle(s)
    assert market.balance(1) == TEN - 2_700_000
    auditor = funded_auditor(market)
    # Home 1's meter read nothing: the interval is reversed and the auditor paid.
    receipt = market.dispute(0, [words], reading(1, 0, 0, market), auditor)
    (reversal,) = [e.args for e in receipt.events if e.name == "IntervalReversed"]
    assert (reversal["participant"], reversal["kind"], reversal["reward"]) == (1, 1, 1_000_000)
    assert market.balance(1) == TEN and market.balance(0) == TEN
    assert token_balance(market, auditor.address) == 1_000_000
    # The oracle tops its bond up and settles the interval again, honestly; no reading
    # contradicts that.
    with pytest.raises(SettlementError, match=r"BondTooLow\(bond=0, required=1000000\)"):
        market.settle(settlement(np.array([], dtype=np.int64), [], []))
    market.deposit_bond(market.bond()[1])
    market.settle(settlement(np.array([], dtype=np.int64), [], []))
    with pytest.raises(SettlementError, match=r"NotEligible\(participant=1, interval=0\)"):
        market.dispute(0, [[]], reading(1, 0, 0, market), auditor)


# -- 4. intervals are not tied to time ----------------------------------------------


def test_an_interval_settles_only_after_it_ended_and_mandates_cover_only_their_time(chain):
    now = chain.w3.eth.get_block("latest")["timestamp"]
    epoch = now - now % 900 - 3_600  # 4 intervals have ended
    market = Market.deploy(chain, 10**6, 10**6, setup=MarketSetup(10**6, 10**6, epoch, DEFAULT_TARIFFS))
    market.register([home_key(1).address], [0], ["home-1"], [meter_key(1).address])
    market.fund_wallets({0: TEN, 1: TEN})
    market.deposit_bond(market.bond()[1])
    one_hour = Mandate(1, IMPORT, EXPORT, 0, 1_000_000, epoch + 3_600 - 1, 1, valid_from=epoch)
    market.submit_mandates([sign_mandate(home_key(1), market.domain(), one_hour)])
    for k in range(4):
        market.settle(settlement([1], [100], [0], interval=k))
    with pytest.raises(SettlementError, match=rf"IntervalNotEnded\(interval=4, endsAt={epoch + 5 * 900}"):
        market.settle(settlement([1], [100], [0], interval=4))
    market.chain.advance_time(epoch + 5 * 900)
    with pytest.raises(SettlementError, match=r"MandateNotInForce\(participant=1, interval=4"):
        market.settle(settlement([1], [100], [0], interval=4))


def test_an_interval_closed_empty_while_a_mandated_home_metered_energy_is_reversed(market):
    market.settle(settlement(np.array([], dtype=np.int64), [], []))
    receipt = market.dispute(0, [[]], reading(4, 0, -3_000, market), funded_auditor(market))
    assert [e.args["kind"] for e in receipt.events if e.name == "IntervalReversed"] == [2]  # an omission
    assert market.record(0).reversed


# -- 5. no cancellation --------------------------------------------------------------


def test_a_superseded_order_cannot_be_settled_once_cancelled(bare_market):
    bare_market.submit_mandates([standing_mandate(bare_market, 4)])
    domain = bare_market.domain()
    superseded = sign_order(home_key(1), domain, Order(1, 0, BUY, 5_000, 290_000, 2**40, 1))
    bare_market.cancel_orders(sign_cancellation(home_key(1), domain, OrderCancellation(1, 1)))
    with pytest.raises(SettlementError, match=r"OrderCancelled\(participant=1, nonce=1, floor=2\)"):
        bare_market.settle(settlement([1, 4], [0, 0], [5_000, -5_000]), [superseded])


def test_a_revocation_reaches_a_mandate_signed_but_not_submitted(market):
    unsent = standing_mandate(market, 1, nonce=2)
    market.revoke_mandate(sign_revocation(home_key(1), market.domain(), Revocation(1, 2)))
    with pytest.raises(ChainError, match=r"StaleMandateNonce\(participant=1, floor=3, nonce=2\)"):
        market.submit_mandates([unsent])


# -- 6. unbacked balances ------------------------------------------------------------


def test_no_wallet_goes_negative_without_a_credit_limit_the_reserve_backs(market):
    with pytest.raises(SettlementError, match=r"CreditLimitExceeded\(participant=1"):
        market.settle(settlement([1], [500_000], [0]))  # 150 tokens of import on a 10-token wallet
    with pytest.raises(ChainError, match=r"ReserveTooSmall"):
        market.set_credit_limit(1, 150_000_000)
    held = token_balance(market, market.deployment.market)
    assert held >= sum(max(market.balance(p), 0) for p in range(5)) + market.bond()[0]


def test_a_credit_is_withdrawable_only_once_final(market):
    market.settle(settlement([1, 4], [0, 0], [5_000, -5_000]))
    owner = home_key(4)
    market.chain.fund(owner.address, 10**18)
    with pytest.raises(ChainError, match=r"InsufficientBalance\(participant=4, withdrawable=10000000, needed=10750000\)"):
        market.chain.transact(market.market.functions.withdraw(10_750_000), owner, 200_000)
    final = market.record(0).final_at
    market.chain.advance_time(final)
    market.chain.transact(market.market.functions.withdraw(10_750_000), owner, 200_000)


# -- 7. pricing rule, freezing, keys -------------------------------------------------


def test_a_frozen_participant_cannot_withdraw_and_an_owner_rotates_its_key(market):
    owner, new = home_key(2), Account.create()
    for account in (owner, new):
        market.chain.fund(account.address, 10**18)
    market.set_frozen(2, True)
    with pytest.raises(ChainError, match=r"FrozenParticipant\(participant=2\)"):
        market.chain.transact(market.market.functions.withdraw(1), owner, 200_000)
    market.set_frozen(2, False)
    market.chain.transact(market.market.functions.rotateOwner(2, new.address), owner, 200_000)
    with pytest.raises(ChainError, match=r"UnknownAccount"):
        market.chain.transact(market.market.functions.withdraw(1), owner, 200_000)
    market.chain.transact(market.market.functions.withdraw(1), new, 200_000)


# -- 3. meter data is the oracle's word: on a simulated community with meters -------


def five_homes():
    """(config, five intervals of a 5-home synthetic community, its first four)."""
    from node.data.community import Community
    from node.data.config import default_config
    from node.data.synthetic import generate_community

    config = default_config()
    config = replace(config, community=replace(config.community, homes=5, seed=3),
                     market=replace(config.market, horizon_steps=4))
    full = generate_community(config)
    window = slice(44, 49)
    community = Community(full.homes, full.timestamps[window], full.consumption_kwh[:, window],
                          full.production_kwh[:, window])
    honest = Community(community.homes, community.timestamps[:4], community.consumption_kwh[:, :4],
                       community.production_kwh[:, :4])
    return config, community, honest


def inflated_interval(result, community, config, meters_path):
    """The oracle adds 5 kWh to home 1's consumption in the inputs of the interval after
    `result`'s, while the meters read the real data: (interval, the settlement it built,
    the meters' readings), inputs and readings stored in the index, nothing settled yet."""
    from node.oracle.daemon import Oracle
    from node.oracle.inputs_builder import InputsBuilder
    from node.simulation.meters import SimulatedMeters, meter_keys

    market, index = result.market, result.index
    consumption = np.array(community.consumption_kwh, copy=True)
    consumption[0, 4] += 5.0
    builder = InputsBuilder(replace(community, consumption_kwh=consumption), config, result.participants)
    k = builder.first_interval + 4
    oracle = Oracle(market, index, builder)
    inputs = oracle.inputs(k, oracle.resume()[1])
    rogue = settlement_for(inputs, run_clearing(inputs))
    index.store_inputs(inputs)
    meters = SimulatedMeters(meter_keys(meters_path, community, result.participants, config.community.seed),
                             community, result.participants, builder.first_interval, market.domain())
    readings = meters.readings(inputs, rogue)
    index.store_readings(readings)
    return k, rogue, readings


@pytest.fixture
def metered(tmp_path):
    """A 5-home synthetic community settled for 4 intervals by the honest oracle, its
    meters signing every reading."""
    from node.simulation.replay import simulate
    from node.simulation.state import StatePaths

    config, community, honest = five_homes()
    result = simulate(Chain.embedded(), honest, config, StatePaths(tmp_path), progress=False)
    return result, community, config


def test_inflated_meter_data_in_the_inputs_fails_the_audit_and_is_reversed(metered, tmp_path):
    result, community, config = metered
    market, index = result.market, result.index
    assert all(v.ok for v in audit(market, IndexInputs(index), progress=False))
    k, rogue, readings = inflated_interval(result, community, config, tmp_path / "meters.json")
    receipt = market.settle(rogue)
    index.apply(receipt.events, receipt.gas_by_tx, up_to_block=receipt.block)
    (verdict,) = [v for v in audit(market, IndexInputs(index), progress=False) if v.interval == k]
    assert not verdict.ok and any("participant 1: settled" in r and "its meter read" in r for r in verdict.reasons)
    home1 = next(r for r in readings if r.reading.participant == 1)
    market.dispute(k, [rogue.entries()], home1, market.chain.operators.admin)
    assert market.record(k).reversed
