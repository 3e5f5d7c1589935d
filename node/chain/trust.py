"""What keeps the oracle a relay, as transactions and reads of the market: the terms
every settlement is priced by, the market's clock, credit limits and their reserve, the
oracle's bond and the records disputes are checked against (the disputes themselves:
node.chain.disputes), cancellation floors, freezes and keys. ``Market``
(node.chain.market) inherits these."""

from __future__ import annotations

from dataclasses import dataclass

from node.chain.deploy import Tariffs
from node.chain.settlement import decode_entry
from node.intent.signing import SignedCancellation


@dataclass(frozen=True)
class IntervalTerms:
    """What a settlement of one interval is priced by, as the contract resolves it."""

    index: int  # terms version, goes into the settlement's header
    import_price: int
    export_price: int
    p2p_fee: int
    pay_as_bid: bool


@dataclass(frozen=True)
class Clock:
    """The market's clock: interval k spans [epoch + k * interval_s, epoch + (k+1) * interval_s)."""

    epoch: int
    interval_s: int
    dispute_window: int
    notice_s: int
    deployed_at: int = 0  # the market's deployment (unix s): intervals that started before are history

    def start(self, interval: int) -> int:
        return self.epoch + interval * self.interval_s

    def end(self, interval: int) -> int:
        return self.start(interval + 1)


@dataclass(frozen=True)
class Record:
    """A settled interval's record on chain (DisputeModule.recordOf)."""

    root_prefix: bytes  # top 216 bits of the entries' hash chain
    settled_at: int
    final_at: int
    reversed: bool


class MarketTrust:
    """Mixin of Market: needs self.market, self.token, self.chain, self._send."""

    # -- terms and time ------------------------------------------------------------

    def terms_at(self, interval: int) -> IntervalTerms:
        return IntervalTerms(*self.market.functions.termsAt(interval).call())

    def clock(self) -> Clock:
        return Clock(*self.market.functions.timing().call())

    def schedule_terms(self, from_interval: int, tariffs: Tariffs):
        """The grid operator schedules terms from `from_interval` on (with notice)."""
        call = self.market.functions.scheduleTerms(from_interval, tariffs.as_tuple())
        return self._send(call, self.chain.operators.grid_operator, 150_000)

    def set_interval_prices(self, interval: int, import_price: int, export_price: int):
        """The grid operator fixes one interval's import and export tariffs (price units
        per kWh), at least the notice period before the interval starts."""
        call = self.market.functions.setIntervalPrices(interval, import_price, export_price)
        return self._send(call, self.chain.operators.grid_operator, 80_000)

    # -- solvency ------------------------------------------------------------------

    def deposit_reserve(self, amount: int):
        """The grid operator mints nothing: the admin mints `amount` to it, and it pays
        them into the reserve that backs credit limits."""
        ops = self.chain.operators
        self._send(self.token.functions.mint(ops.grid_operator.address, amount), ops.admin, 100_000)
        self._send(self.token.functions.approve(self.market.address, amount), ops.grid_operator, 100_000)
        return self._send(self.market.functions.depositReserve(amount), ops.grid_operator, 150_000)

    def set_credit_limit(self, participant: int, limit: int):
        return self._send(self.market.functions.setCreditLimit(participant, limit), self.chain.operators.admin, 100_000)

    def withdrawable(self, participant: int) -> int:
        """Balance less credits not yet final (negative: owing)."""
        return self.market.functions.withdrawable(participant).call()

    # -- the oracle's bond and disputes -------------------------------------------

    def deposit_bond(self, amount: int):
        """The admin mints `amount` to the oracle, which pays it into its bond."""
        ops = self.chain.operators
        self._send(self.token.functions.mint(ops.oracle.address, amount), ops.admin, 100_000)
        self._send(self.token.functions.approve(self.market.address, amount), ops.oracle, 100_000)
        return self._send(self.market.functions.depositBond(amount), ops.oracle, 150_000)

    def bond(self) -> tuple[int, int, int]:
        """(amount, dispute reward, withdrawable from) of the oracle's bond."""
        return tuple(self.market.functions.bond().call())

    def record(self, interval: int) -> Record:
        prefix, settled_at, final_at, reversed_ = self.market.functions.recordOf(interval).call()
        return Record(bytes(prefix), settled_at, final_at, reversed_)

    # -- participants --------------------------------------------------------------

    def cancel_orders(self, signed: SignedCancellation):
        """Relays an owner's signed cancellation of its orders up to a nonce."""
        c = signed.cancellation
        call = self.market.functions.cancelOrders(c.participant, c.nonce, signed.signature)
        return self._send(call, self.chain.operators.admin, 100_000)

    def set_frozen(self, participant: int, frozen: bool):
        return self._send(self.market.functions.setFrozen(participant, frozen), self.chain.operators.admin, 100_000)

    def meter_key(self, participant: int, interval: int) -> str:
        """The key that signs `participant`'s reading of `interval`."""
        return self.market.functions.meterKeyOf(participant, interval).call()


def entry_nets(words: list[int]) -> dict[int, int]:
    """Net energy (grid + P2P, Wh) of each participant in a settlement's entry words."""
    return {e.participant: e.net_wh for e in map(decode_entry, words)}
