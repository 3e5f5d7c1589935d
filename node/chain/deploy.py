"""Deploying a market: its terms and clock fixed at deployment (``MarketSetup``), the
modules, then the router that names them (see contracts/src/EnergyMarket.sol)."""

from __future__ import annotations

from dataclasses import dataclass, field

from node.chain.build import load_artifact
from node.chain.connection import Chain

# Deploying a contract costs 200 gas per byte of runtime code on top of its constructor;
# every module is under 18,432 bytes (bench/bench_settlement_gas.py prints them).
MODULE_DEPLOY_GAS = 4_500_000
ROUTER_DEPLOY_GAS = 3_000_000
DAY = 86_400


@dataclass(frozen=True)
class Tariffs:
    """One version of the market's terms (EnergyMarket's `Tariffs`): prices in minor units
    per kWh; `peak_hours` bit h means UTC hour h is at the peak import price; the P2P fee
    is paid per kWh bought from peers, to the grid's wallet."""

    import_price: int
    peak_import_price: int
    export_price: int
    p2p_fee: int = 0
    peak_hours: int = 0
    pay_as_bid: bool = False

    def as_tuple(self) -> tuple:
        return (self.import_price, self.peak_import_price, self.export_price, self.p2p_fee, self.peak_hours,
                self.pay_as_bid)

    @staticmethod
    def of_peak_hours(hours: range | list[int]) -> int:
        """The bit mask of these UTC hours."""
        return sum(1 << h for h in set(hours))


@dataclass(frozen=True)
class MarketSetup:
    """What a market fixes at deployment. The clock numbers intervals from `epoch` (unix
    seconds); settlements are disputable for one to two `dispute_window`s; terms need
    `notice_s` of notice; the oracle's bond must cover `dispute_reward` to settle."""

    import_capacity_wh: int
    export_capacity_wh: int
    epoch: int
    tariffs: Tariffs
    interval_s: int = 900
    first_interval: int = 0
    dispute_window: int = 3_600
    notice_s: int = DAY
    dispute_reward: int = 1_000_000
    extra_terms: tuple[tuple[int, Tariffs], ...] = field(default=())  # (from interval, tariffs) to schedule next
    # The first version's storage fee (units per kWh a share participant takes in) and the
    # participant it goes to (contracts/src/modules/SharedBatteryModule.sol).
    storage_fee: int = 0
    storage_operator: int = 0

    def interval_start(self, interval: int) -> int:
        return self.epoch + interval * self.interval_s

    def setup_tuple(self, chain: Chain, token: str) -> tuple:
        ops = chain.operators
        return (
            ops.admin.address,
            ops.oracle.address,
            ops.grid_operator.address,
            token,
            self.import_capacity_wh,
            self.export_capacity_wh,
            self.first_interval,
            self.epoch,
            self.interval_s,
            self.dispute_window,
            self.notice_s,
            self.dispute_reward,
            self.tariffs.as_tuple(),
            self.storage_fee,
            self.storage_operator,
        )


def deploy_contracts(chain: Chain, setup: MarketSetup) -> tuple[str, dict, list[dict]]:
    """Deploys the token, the market's modules and its router; returns the token's
    address, the router's receipt and the other receipts."""
    admin = chain.operators.admin
    artifact = load_artifact("EnergyMarket")
    token_receipt = chain.deploy(load_artifact("GridToken"), admin, admin.address)
    receipts = [token_receipt]
    modules = []
    for module in artifact["modules"]:
        receipt = chain.deploy({"abi": [], "bytecode": module["bytecode"]}, admin, gas=MODULE_DEPLOY_GAS)
        receipts.append(receipt)
        modules.append(receipt["contractAddress"])
    token = token_receipt["contractAddress"]
    router = chain.deploy(artifact, admin, setup.setup_tuple(chain, token), modules, gas=ROUTER_DEPLOY_GAS)
    return token, router, receipts
