"""Shared batteries on chain (contracts/src/modules/SharedBatteryModule.sol): share
participants, the storage fee in the terms, and what the settlement paid the operator.

A home's account in a shared battery is a participant of its own, registered as a
*share* of battery ``battery`` holding ``capacity_wh`` of it; on the energy it takes in
it pays the terms' storage fee (units per kWh, whole units per entry rounded half up:
``storage_fee_units``), which the contract credits to the terms' storage operator when
the interval closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.chain.market import Market, Receipt
from node.chain.settlement import storage_fee_units  # noqa: F401 (re-exported)

REGISTER_SHARE_GAS = 250_000
SCHEDULE_GAS = 150_000


@dataclass(frozen=True)
class ShareRegistration:
    """One share participant to register: its owner and meter keys, zone, name, the
    shared battery it is an account in and its share of it (Wh)."""

    owner: str
    meter: str
    zone: int
    name: str
    battery: int
    capacity_wh: int
    stored_wh: int = 0  # what it holds at registration
    charge_ppm: int = 1_000_000  # its battery's efficiencies, millionths
    discharge_ppm: int = 1_000_000


def register_shares(market: Market, shares: list[ShareRegistration]) -> list[Receipt]:
    """The admin registers each share participant (ids in order, after those registered)."""
    admin = market.chain.operators.admin
    return [
        market._send(market.market.functions.registerShare(s.owner, s.meter, s.zone, s.name, s.battery, s.capacity_wh,
                                                           s.stored_wh, s.charge_ppm, s.discharge_ppm),
                     admin, REGISTER_SHARE_GAS)
        for s in shares
    ]


def schedule_storage_fee(market: Market, from_interval: int, fee_per_kwh: int, operator: int) -> Receipt:
    """The grid operator schedules a storage fee and its operator from `from_interval`
    on (with the terms' notice): a new terms version with the tariffs of the one before."""
    call = market.market.functions.scheduleStorageFee(from_interval, fee_per_kwh, operator)
    return market._send(call, market.chain.operators.grid_operator, SCHEDULE_GAS)


def share_of(market: Market, participant: int) -> tuple[int, int] | None:
    """(battery, capacity Wh) of a share participant; None for any other participant."""
    try:
        battery, capacity = market.market.functions.shareOf(participant).call()
    except Exception as exc:  # web3 and eth-tester raise different types for a revert
        if "NotAShare" in market.chain.revert_reason(exc):
            return None
        raise
    return int(battery), int(capacity)


def share_energy_of(market: Market, participant: int) -> tuple[int, int]:
    """(deliverable pWh, capacity pWh) of a share participant's account, as the contract
    keeps it (node.clearing.shares)."""
    deliverable, capacity, _, _ = market.market.functions.shareEnergyOf(participant).call()
    return int(deliverable), int(capacity)


def storage_terms_at(market: Market, interval: int) -> tuple[int, int]:
    """(storage fee per kWh, operator) of the terms in force for `interval`."""
    _, fee, operator = market.market.functions.storageTermsAt(interval).call()
    return int(fee), int(operator)
