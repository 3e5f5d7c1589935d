"""The market contract accepts exactly the settlements that conserve energy and money,
respect capacity, the terms' prices and the wallets' credit, come from the oracle, in
order, once, after the interval ended; and says why not."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.errors import ChainError, SettlementError
from node.clearing.pricing import priced_settlement
from tests.conftest import BUY, P2P, SELL, home_key

HASH = b"\x11" * 32


def settlement(homes, grid_wh, p2p_wh, interval=0, buy=BUY, sell=SELL, p2p=P2P):
    return priced_settlement(interval, HASH, homes, np.array(grid_wh), np.array(p2p_wh), buy, sell, p2p)


def balances(market, ids=range(0, 5)):
    return [market.balance(i) for i in ids]


def test_valid_settlement_moves_wallets_and_conserves_money(market, homes):
    before = balances(market)
    s = settlement(homes, [1200, -300, 0, 500], [400, -600, 200, 0])
    receipt = market.settle(s)
    after = balances(market)
    changes = [a - b for a, b in zip(after, before)]
    assert changes[1:] == list(s.amount)
    assert changes[0] == s.grid_amount
    assert sum(changes) == 0
    assert market.next_interval() == 1
    names = [e.name for e in receipt.events]
    # One log carries every entry (SettlementEntry words), one the interval.
    assert names == ["EntriesSettled", "IntervalSettled"]
    assert list(receipt.events[0].args["entries"]) == s.entries()
    closing = receipt.events[1].args
    assert closing["gridImportWh"] == 1700 and closing["gridExportWh"] == 300
    assert (closing["importPrice"], closing["exportPrice"], closing["p2pFee"]) == (BUY, SELL, 0)


def test_a_dry_run_says_why_a_settlement_would_fail_without_sending_anything(market, homes):
    chain, oracle = market.chain, market.chain.operators.oracle
    good = settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0])
    bad = settlement(homes, [0, 0, 0, 0], [500, -400, 0, 0])
    sent = chain.w3.eth.get_transaction_count(oracle.address)
    settle_good = market.market.functions.settle(good.header(), good.entries(), [])
    assert chain.dry_run(settle_good, oracle, 1_000_000) is None
    assert "out of gas" in chain.dry_run(settle_good, oracle, 30_000).lower()
    settle_bad = market.market.functions.settle(bad.header(), bad.entries(), [])
    assert chain.dry_run(settle_bad, oracle, 1_000_000) == "P2PEnergyNotConserved(interval=0, imbalanceWh=100)"
    assert chain.w3.eth.get_transaction_count(oracle.address) == sent and market.next_interval() == 0


def test_buyer_pays_tariff_for_grid_and_p2p_price_for_peers(market, homes):
    s = settlement(homes, [1000, 0, 0, -1000], [1000, -1000, 0, 0])
    market.settle(s)
    # 1 kWh from the grid at 0.30 and 1 kWh from a peer at 0.15
    assert s.amount[0] == -(300_000 + 150_000)
    assert s.amount[1] == 150_000
    assert s.amount[3] == 60_000
    assert s.grid_amount == 300_000 - 60_000


def test_settlement_rejected_unless_sent_by_oracle(market, homes):
    s = settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0])
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        market.chain.transact(market.market.functions.settle(s.header(), s.entries(), []), market.chain.operators.admin, 500_000)
    assert market.next_interval() == 0


def test_interval_cannot_be_settled_twice(market, homes):
    s = settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0])
    market.settle(s)
    with pytest.raises(SettlementError, match=r"IntervalOutOfOrder\(expected=1, got=0\)"):
        market.settle(s)


def test_intervals_cannot_be_skipped(market, homes):
    with pytest.raises(SettlementError, match=r"IntervalOutOfOrder\(expected=0, got=2\)"):
        market.settle(settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0], interval=2))


def test_settlement_rejects_unconserved_p2p_energy(market, homes):
    with pytest.raises(SettlementError, match=r"P2PEnergyNotConserved\(interval=0, imbalanceWh=100\)"):
        market.settle(settlement(homes, [0, 0, 0, 0], [500, -400, 0, 0]))


def test_the_header_carries_no_tariff_and_no_grid_amount(market, homes):
    # Tariffs come from the chain's terms and the grid's wallet change is minus the
    # entries' sum: a settlement "at" other tariffs is refused entry by entry.
    assert market.settle(settlement(homes, [1000, 0, 0, 0], [0, 0, 0, 0])).events[-1].args["gridAmount"] == 300_000
    # The export tariff x20 (the mandate allows a seller any price above its minimum).
    s = settlement(homes, [0, 0, 0, -1000], [0, 0, 0, 0], interval=1, sell=SELL * 20)
    with pytest.raises(SettlementError, match=r"PaymentMismatch\(participant=4, amount=1200000, expectedMilli=60000000\)"):
        market.settle(s)


def test_settlement_rejects_payment_not_matching_prices(market, homes):
    s = settlement(homes, [0, 0, 0, 0], [1000, -1000, 0, 0])
    amount = s.amount.copy()
    amount[0] -= 5  # overcharge the buyer by 5 units (still within its mandate) ...
    amount[1] += 5  # ... and hand it to the seller: money is still conserved
    with pytest.raises(SettlementError, match=r"PaymentMismatch\(participant=1, amount=-150005, expectedMilli=-150000000\)"):
        market.settle(replace(s, amount=amount))


def test_settlement_rejects_import_over_capacity(market, homes):
    with pytest.raises(SettlementError, match=r"ImportCapacityExceeded\(interval=0, importWh=10001, capacityWh=10000\)"):
        market.settle(settlement(homes, [5000, 5001, 0, 0], [0, 0, 0, 0]))


def test_settlement_rejects_export_over_capacity(market, homes):
    with pytest.raises(SettlementError, match=r"ExportCapacityExceeded\(interval=0, exportWh=8001, capacityWh=8000\)"):
        market.settle(settlement(homes, [0, 0, -4000, -4001], [0, 0, 0, 0]))


def test_capacity_set_by_grid_operator_applies_to_that_interval(market, homes):
    ops = market.chain.operators
    market.chain.transact(market.market.functions.setCapacity(0, 500, 500), ops.grid_operator, 100_000)
    assert market.capacity(0) == (500, 500)
    assert market.capacity(1) == (10_000, 8_000)
    with pytest.raises(SettlementError, match="ImportCapacityExceeded"):
        market.settle(settlement(homes, [501, 0, 0, 0], [0, 0, 0, 0]))
    market.settle(settlement(homes, [500, 0, 0, 0], [0, 0, 0, 0]))


def test_capacity_only_by_grid_operator_and_never_for_settled_intervals(market, homes):
    ops = market.chain.operators
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        market.chain.transact(market.market.functions.setCapacity(3, 1, 1), ops.oracle, 100_000)
    market.settle(settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0]))
    with pytest.raises(ChainError, match=r"CapacityForPastInterval\(interval=0, nextInterval=1\)"):
        market.chain.transact(market.market.functions.setCapacity(0, 1, 1), ops.grid_operator, 100_000)


def test_p2p_price_must_lie_between_tariffs(market, homes):
    with pytest.raises(SettlementError, match=r"PriceOutOfRange\(p2pPrice=400000, exportPrice=60000, maxPrice=300000\)"):
        market.settle(settlement(homes, [0, 0, 0, 0], [100, -100, 0, 0], p2p=400_000))


def test_participants_must_be_ascending_and_unique(market, homes):
    s = settlement(np.array([1, 1, 2, 3]), [100, 100, 0, 0], [0, 0, 0, 0])
    with pytest.raises(SettlementError, match=r"ParticipantsNotAscending\(previous=1, participant=1\)"):
        market.settle(s)


def test_grid_cannot_appear_as_an_entry(market, homes):
    s = settlement(np.array([0, 1, 2, 3]), [100, 0, 0, 0], [0, 0, 0, 0])
    with pytest.raises(SettlementError, match=r"ParticipantsNotAscending\(previous=0, participant=0\)"):
        market.settle(s)


def test_unknown_participant_rejected(market, homes):
    s = settlement(np.array([1, 2, 3, 9]), [100, 0, 0, 0], [0, 0, 0, 0])
    with pytest.raises(SettlementError, match=r"UnknownParticipant\(participant=9\)"):
        market.settle(s)


def test_inactive_participant_cannot_be_settled(market, homes):
    market.chain.transact(market.market.functions.updateParticipant(2, 0, False), market.chain.operators.admin, 100_000)
    with pytest.raises(SettlementError, match=r"InactiveParticipant\(participant=2\)"):
        market.settle(settlement(homes, [100, 0, 0, 0], [0, 0, 0, 0]))


def test_interval_without_entries_is_closed_with_nothing_moved(market):
    before = balances(market)
    s = settlement(np.array([], dtype=np.int64), [], [])
    assert (s.grid_amount, s.grid_import_wh, s.grid_export_wh) == (0, 0, 0)
    receipt = market.settle(s)
    assert market.next_interval() == 1
    assert [(e.name, e.args["interval"]) for e in receipt.events] == [("EntriesSettled", 0), ("IntervalSettled", 0)]
    assert (receipt.events[1].args["participants"], receipt.events[1].args["gridAmount"]) == (0, 0)
    assert balances(market) == before
    market.settle(settlement(np.array([1]), [100], [0], interval=1))  # and the market moves on


def test_an_interval_settles_only_after_it_ended_by_the_chains_clock(chain):
    from node.chain.deploy import MarketSetup
    from node.chain.market import DEFAULT_TARIFFS, Market

    now = chain.w3.eth.get_block("latest")["timestamp"]
    market = Market.deploy(chain, 10_000, 10_000, setup=MarketSetup(10_000, 10_000, now + 3_600, DEFAULT_TARIFFS))
    market.deposit_bond(market.bond()[1])
    with pytest.raises(SettlementError, match=r"IntervalNotEnded\(interval=0, endsAt=" + str(now + 3_600 + 900)):
        market.settle(settlement(np.array([], dtype=np.int64), [], []))


def test_only_admin_registers_and_no_address_twice(market):
    ops = market.chain.operators
    newcomer = Account.create().address
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        market.chain.transact(market.market.functions.register(newcomer, newcomer, 0, "x"), ops.oracle, 200_000)
    existing = market.market.functions.accountOf(1).call()[0]
    with pytest.raises(ChainError, match=r"AlreadyRegistered\(owner=" + existing.lower() + r", participant=1\)"):
        market.chain.transact(market.market.functions.register(existing, newcomer, 0, "again"), ops.admin, 200_000)


def test_owner_withdraws_only_a_positive_balance(market):
    chain = market.chain
    owner = home_key(1)
    chain.fund(owner.address, 10**18)
    with pytest.raises(ChainError, match=r"InsufficientBalance\(participant=1, withdrawable=10000000, needed=10000001\)"):
        chain.transact(market.market.functions.withdraw(10_000_001), owner, 200_000)
    receipt = chain.transact(market.market.functions.withdraw(4_000_000), owner, 200_000)
    assert market.balance(1) == 6_000_000
    assert market.token.functions.balanceOf(owner.address).call() == 4_000_000
    assert receipt["status"] == 1


def test_wallets_are_prepaid_so_positive_balances_stay_backed(market, homes):
    # Home 2 would go 35 tokens into debt buying 300 kWh from home 1: without a credit
    # limit (backed by the reserve) its prepaid wallet cannot pay.
    with pytest.raises(SettlementError, match=r"CreditLimitExceeded\(participant=2, available=10000000, needed=45000000\)"):
        market.settle(settlement(homes, [0, 0, 0, 0], [-300_000, 300_000, 0, 0]))
    market.deposit_reserve(35_000_000)
    market.set_credit_limit(2, 35_000_000)
    market.settle(settlement(homes, [0, 0, 0, 0], [-300_000, 300_000, 0, 0]))
    assert market.balance(1) == 55_000_000 and market.balance(2) == -35_000_000
    held = market.token.functions.balanceOf(market.deployment.market).call()
    positive = sum(max(market.balance(i), 0) for i in range(5))
    assert held >= positive + market.bond()[0]
    # Home 1's credit is withdrawable once final (after the dispute window), not before.
    owner = home_key(1)
    market.chain.fund(owner.address, 10**18)
    with pytest.raises(ChainError, match=r"InsufficientBalance\(participant=1, withdrawable=10000000, needed=55000000\)"):
        market.chain.transact(market.market.functions.withdraw(55_000_000), owner, 200_000)


def test_deposit_of_zero_rejected(market):
    with pytest.raises(ChainError, match="ZeroAmount"):
        market.chain.transact(market.market.functions.deposit(1, 0), market.chain.operators.admin, 200_000)


energies = st.lists(st.tuples(st.integers(-20_000, 20_000), st.integers(-5_000, 5_000)), min_size=4, max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=energies, p2p_price=st.integers(SELL, BUY))
def test_any_conserving_settlement_within_capacity_and_mandates_is_accepted_and_keeps_wallets_backed(market, homes, rows, p2p_price):
    grid = np.array([g for g, _ in rows])
    p2p = np.array([p for _, p in rows])
    p2p[-1] -= p2p.sum()  # make P2P conserve
    s = settlement(homes, grid, p2p, interval=market.next_interval(), p2p=p2p_price)
    within = s.grid_import_wh <= 10_000 and s.grid_export_wh <= 8_000 and abs(p2p[-1]) < 2**47
    # Importing from the grid while selling to peers (or the reverse) can cost more per
    # net kWh than the homes' mandates allow; the contract refuses that too.
    net = s.grid_wh + s.p2p_wh
    authorised = all(
        -a * 1000 <= n * BUY + 999 if n >= 0 else a * 1000 >= -n * SELL - 999 for n, a in zip(net, s.amount)
    )
    # Prepaid wallets: each debit within what is final in the wallet, the grid's too.
    payers = list(zip(range(1, 5), s.amount)) + [(0, s.grid_amount)]
    affordable = all(a >= 0 or market.withdrawable(pid) >= -a for pid, a in payers)
    before = sum(balances(market))
    if within and authorised and affordable:
        market.settle(s)
    else:
        with pytest.raises(SettlementError, match="CapacityExceeded|MandatePrice|CreditLimitExceeded"):
            market.settle(s)
    # Settlements never create or destroy money: wallets stay backed 1:1 by deposited tokens.
    assert sum(balances(market)) == before
    held = market.token.functions.balanceOf(market.deployment.market).call()
    assert held == before + market.bond()[0]
