"""Hypothesis drives the real contract on the embedded chain through random sequences
of deposits, withdrawals and settlements (valid and not; by mandates or by signed orders,
at one P2P price or pay-as-bid; intervals without entries) and checks its invariants
after every step against a model: money conserved and backed by the tokens the market
holds, no interval settled twice or skipped, only the oracle settles, and nobody's
wallet moves without a mandate or an order from its owner."""

from __future__ import annotations

import numpy as np
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from node.chain.connection import Chain
from node.errors import ChainError, SettlementError
from node.chain.market import Market
from node.clearing.pricing import priced_settlement
from node.intent.signing import BUY as BUY_SIDE, SELL as SELL_SIDE, Order, sign_order
from tests.conftest import BUY, FAR_FUTURE, P2P, SELL, home_key, standing_mandate

MANDATED = (1, 2, 3)  # home 4 never signs a mandate
STEPS = {"steps": 0, "accepted": 0, "rejected": 0}


class MarketMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain.embedded()
        self.market = Market.deploy(self.chain, import_capacity_wh=10_000, export_capacity_wh=8_000)
        self.market.register([home_key(p).address for p in range(1, 5)], [0] * 4, [f"home-{p}" for p in range(1, 5)])
        self.market.submit_mandates([standing_mandate(self.market, p) for p in MANDATED])
        for p in range(1, 5):
            self.chain.fund(home_key(p).address, 10**18)
        # The grid's wallet is prepaid (it pays for exports); the oracle's bond covers a dispute.
        self.market.fund_wallets({0: 50_000_000})
        self.market.deposit_bond(self.market.bond()[1])
        self.bond = self.market.bond()[0]
        self.balances = {p: 0 for p in range(5)}
        self.balances[0] = 50_000_000
        self.held = 50_000_000
        self.next_interval = 0
        self.last = None

    # -- rules ------------------------------------------------------------------------

    @rule(participant=st.integers(1, 4), amount=st.integers(1, 5_000_000))
    def deposit(self, participant, amount):
        self.market.fund_wallets({participant: amount})
        self.balances[participant] += amount
        self.held += amount

    @rule(participant=st.integers(1, 4), amount=st.integers(1, 5_000_000))
    def withdraw(self, participant, amount):
        call = self.market.market.functions.withdraw(amount)
        # Only final funds leave: the balance less credits a dispute could still reverse.
        if amount > self.market.withdrawable(participant):
            self._rejected(lambda: self.chain.transact(call, home_key(participant), 200_000), "InsufficientBalance")
        else:
            self.chain.transact(call, home_key(participant), 200_000)
            self.balances[participant] -= amount
            self.held -= amount

    @rule(bought=st.integers(0, 3_000), imported=st.integers(0, 3_000), exported=st.integers(0, 3_000),
          third=st.integers(-2_000, 2_000), price=st.integers(SELL, BUY))
    def settle_valid(self, bought, imported, exported, third, price):
        """Home 1 buys P2P from home 2 (and imports), home 2 also exports, home 3 uses the grid only."""
        s = self._settlement([imported, -exported, third], [bought, -bought, 0], price)
        self._accepted(s)

    @rule(bought=st.integers(1, 3_000), bid=st.integers(P2P, 2 * BUY), ask=st.integers(0, P2P))
    def settle_by_orders(self, bought, bid, ask):
        """Home 4 (which has no mandate) sells to home 1 by signed orders at the P2P
        price (the market's terms price uniformly)."""
        k = self.next_interval
        s = priced_settlement(k, b"\1" * 32, np.array([1, 4]), np.array([0, 0]), np.array([bought, -bought]),
                              BUY, SELL, P2P)
        orders = [sign_order(home_key(pid), self.market.domain(), Order(pid, k, side, bought, limit, FAR_FUTURE, 1))
                  for pid, side, limit in ((1, BUY_SIDE, bid), (4, SELL_SIDE, ask))]
        self._accepted(s, orders)

    @rule()
    def settle_an_interval_without_trades(self):
        self._accepted(self._settlement([], [], P2P, homes=()))

    @rule(energy=st.integers(1, 2_000))
    def settle_a_home_without_mandate(self, energy):
        s = priced_settlement(self.next_interval, b"\1" * 32, np.array([1, 4]), np.array([energy, 0]),
                              np.array([0, 0]), BUY, SELL, P2P)
        self._rejected(lambda: self.market.settle(s), "NoMandate(participant=4)")

    @rule(imbalance=st.integers(1, 1_000))
    def settle_unconserved_energy(self, imbalance):
        s = self._settlement([0, 0, 0], [-imbalance, 0, 0], P2P)  # a sale: no wallet short of funds
        self._rejected(lambda: self.market.settle(s), "P2PEnergyNotConserved")

    @rule(key=st.integers(11, 99))
    def settle_from_a_key_without_the_oracle_role(self, key):
        s = self._settlement([100, 0, 0], [0, 0, 0], P2P)
        call = self.market.market.functions.settle(s.header(), s.entries(), [])
        stranger = Account.from_key(f"0x{key:064x}")
        self.chain.fund(stranger.address, 10**17)
        self._rejected(lambda: self.chain.transact(call, stranger, 600_000), "AccessControlUnauthorizedAccount")

    @precondition(lambda self: self.last is not None)
    @rule()
    def replay_the_last_settlement(self):
        self._rejected(lambda: self.market.settle(self.last), "IntervalOutOfOrder")

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def wallets_equal_the_model(self):
        STEPS["steps"] += 1
        assert {p: self.market.balance(p) for p in range(5)} == self.balances

    @invariant()
    def money_is_conserved_and_backed(self):
        held = self.market.token.functions.balanceOf(self.market.deployment.market).call()
        assert held == self.held + self.bond == sum(self.balances.values()) + self.bond
        # Prepaid wallets: no balance below zero (no credit limits here), so the tokens
        # cover every positive balance.
        assert all(b >= 0 for b in self.balances.values())

    @invariant()
    def intervals_advance_one_at_a_time(self):
        assert self.market.next_interval() == self.next_interval

    # -- helpers ----------------------------------------------------------------------

    def _settlement(self, grid, p2p, price, homes=MANDATED):
        return priced_settlement(self.next_interval, b"\1" * 32, np.array(homes, dtype=np.int64),
                                 np.array(grid, dtype=np.int64), np.array(p2p, dtype=np.int64), BUY, SELL, price)

    def _accepted(self, s, orders=()):
        payers = list(zip(s.participants.tolist(), s.amount.tolist())) + [(0, s.grid_amount)]
        short = [p for p, a in payers if a < 0 and self.market.withdrawable(p) < -a]
        if short:
            # A prepaid wallet that cannot pay: the contract refuses the whole settlement.
            self._rejected(lambda: self.market.settle(s, list(orders)), f"CreditLimitExceeded(participant={short[0]}")
            return
        self.market.settle(s, list(orders))
        STEPS["accepted"] += 1
        for pid, amount in zip(s.participants, s.amount):
            self.balances[int(pid)] += int(amount)
        self.balances[0] += s.grid_amount
        self.next_interval += 1
        self.last = s

    def _rejected(self, action, reason: str = ""):
        try:
            action()
        except (SettlementError, ChainError) as exc:
            assert reason in str(exc)
            STEPS["rejected"] += 1
            return
        raise AssertionError(f"expected a rejection ({reason or 'any'})")


MarketMachine.TestCase.settings = settings(
    max_examples=12, stateful_step_count=10, deadline=None, suppress_health_check=list(HealthCheck)
)
TestMarketInvariants = MarketMachine.TestCase


def teardown_module() -> None:
    print(f"\ncontract state machine: {STEPS['steps']} checked states, {STEPS['accepted']} settlements accepted, "
          f"{STEPS['rejected']} rejected as expected")
