"""A deployed GridLedger market: deploy it, register participants, fund wallets,
submit settlements and read its state, with every receipt's events decoded."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from eth_utils import to_hex

from node.build import load_artifact
from node.chain import Chain
from node.errors import ChainError, InputError, SettlementError
from node.events import Event, EventDecoder
from node.settlement import Settlement, pack_order
from node.signing import Domain, SignedMandate, SignedOrder, SignedRevocation

# Gas is set explicitly (eth_estimateGas takes seconds on eth-tester). A settlement
# measured ~11.9k gas per mandate-authorised participant and ~14.9k per signed order
# (bench/bench_authorization_gas.py); the margin covers the first write to a wallet.
SETTLE_BASE_GAS = 120_000
SETTLE_GAS_PER_ENTRY = 30_000
SETTLE_GAS_PER_ORDER = 10_000
MANDATE_GAS = 60_000
REGISTER_GAS_PER_PARTICIPANT = 120_000
MAX_TX_GAS = 16_777_216  # per-transaction cap of EIP-7825 (Osaka)


@dataclass(frozen=True)
class Deployment:
    """Where a market lives; saved beside the index so every command finds it."""

    chain_id: int
    token: str
    market: str
    block: int

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @staticmethod
    def load(path: Path) -> "Deployment":
        if not path.exists():
            raise InputError(f"{path} not found: deploy a market first (`gridledger demo` or `gridledger simulate`)")
        return Deployment(**json.loads(path.read_text()))


@dataclass(frozen=True)
class Receipt:
    tx_hash: str
    block: int
    gas_used: int
    events: list[Event]


class Market:
    """Typed access to the GridToken and EnergyMarket contracts of one deployment."""

    def __init__(self, chain: Chain, deployment: Deployment) -> None:
        if deployment.chain_id != chain.chain_id:
            raise ChainError(
                f"the market was deployed on chain {deployment.chain_id} but {chain.description} is chain "
                f"{chain.chain_id}: point --rpc at the right node or use a fresh --state directory"
            )
        self.chain = chain
        self.deployment = deployment
        self.abi = load_artifact("EnergyMarket")["abi"]
        self.market = chain.contract(deployment.market, load_artifact("EnergyMarket"))
        self.token = chain.contract(deployment.token, load_artifact("GridToken"))
        self.decoder = EventDecoder(self.abi, deployment.market)
        self.creation: Receipt | None = None  # set when this object deployed the market
        if not chain.w3.eth.get_code(deployment.market):
            raise ChainError(
                f"no market contract at {deployment.market} on {chain.description}: the chain this state "
                "belongs to is gone; start over with a fresh --state directory"
            )

    @classmethod
    def deploy(cls, chain: Chain, import_capacity_wh: int, export_capacity_wh: int, first_interval: int = 0) -> "Market":
        ops = chain.operators
        token = chain.deploy(load_artifact("GridToken"), ops.admin, ops.admin.address)["contractAddress"]
        receipt = chain.deploy(
            load_artifact("EnergyMarket"),
            ops.admin,
            ops.admin.address,
            ops.oracle.address,
            ops.grid_operator.address,
            token,
            import_capacity_wh,
            export_capacity_wh,
            first_interval,
        )
        deployment = Deployment(chain.chain_id, token, receipt["contractAddress"], receipt["blockNumber"])
        market = cls(chain, deployment)
        market.creation = market._receipt(receipt)
        return market

    # -- transactions -------------------------------------------------------------

    def _send(self, call, sender: LocalAccount, gas: int) -> Receipt:
        receipt = self.chain.transact(call, sender, gas)
        return self._receipt(receipt)

    def _receipt(self, receipt: dict) -> Receipt:
        return Receipt(
            tx_hash=to_hex(receipt["transactionHash"]),
            block=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
            events=self.decoder.decode(receipt["logs"]),
        )

    def register(self, owners: list[str], zones: list[int], names: list[str], batch: int = 100) -> list[Receipt]:
        """Registers participants (ids in order of `owners`), `batch` per transaction."""
        receipts = []
        for i in range(0, len(owners), batch):
            call = self.market.functions.registerBatch(owners[i : i + batch], zones[i : i + batch], names[i : i + batch])
            gas = min(MAX_TX_GAS, 60_000 + REGISTER_GAS_PER_PARTICIPANT * len(owners[i : i + batch]))
            receipts.append(self._send(call, self.chain.operators.admin, gas))
        return receipts

    def fund_wallets(self, amounts: dict[int, int]) -> list[Receipt]:
        """The admin mints `amount` tokens per participant and deposits them into its wallet."""
        admin = self.chain.operators.admin
        total = sum(amounts.values())
        receipts = [
            self._send(self.token.functions.mint(admin.address, total), admin, 100_000),
            self._send(self.token.functions.approve(self.deployment.market, total), admin, 100_000),
        ]
        for participant, amount in sorted(amounts.items()):
            receipts.append(self._send(self.market.functions.deposit(participant, amount), admin, 150_000))
        return receipts

    def submit_mandates(self, signed: list[SignedMandate], batch: int = 100) -> list[Receipt]:
        """Relays participants' signed mandates to the chain, `batch` per transaction (the
        admin pays the gas; the contract checks each owner's signature)."""
        receipts = []
        for i in range(0, len(signed), batch):
            part = signed[i : i + batch]
            call = self.market.functions.submitMandates(
                [tuple(m.mandate.values().values()) for m in part], [m.signature for m in part]
            )
            receipts.append(self._send(call, self.chain.operators.admin, min(MAX_TX_GAS, 30_000 + MANDATE_GAS * len(part))))
        return receipts

    def revoke_mandate(self, signed: SignedRevocation) -> Receipt:
        """Relays an owner's signed revocation of the mandate in force."""
        r = signed.revocation
        call = self.market.functions.revokeMandate(r.participant, r.nonce, signed.signature)
        return self._send(call, self.chain.operators.admin, 100_000)

    def settle(self, settlement: Settlement, orders: list[SignedOrder] = ()) -> Receipt:
        """Submits one interval's settlement, the entries of participants with one of the
        signed `orders` (for this interval, at most one each) authorised by it, the
        others by their mandates.
        A contract rejection raises SettlementError."""
        orders = sorted(orders, key=lambda o: o.order.participant)
        entries = settlement.entries(by_order={o.order.participant for o in orders})
        auths = [pack_order(o) for o in orders]
        gas = min(MAX_TX_GAS, SETTLE_BASE_GAS + SETTLE_GAS_PER_ENTRY * len(entries) + SETTLE_GAS_PER_ORDER * len(auths))
        call = self.market.functions.settle(settlement.header(), entries, auths)
        try:
            return self._send(call, self.chain.operators.oracle, gas)
        except ChainError as exc:
            raise SettlementError(f"interval {settlement.interval} rejected: {exc}") from exc

    # -- reading ------------------------------------------------------------------

    def domain(self) -> Domain:
        """The EIP-712 domain participants sign orders and mandates for."""
        return Domain(self.chain_id, self.deployment.market)

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    def mandate(self, participant: int) -> tuple[int, int, int, int]:
        """(maxBuyPrice, minSellPrice, validUntil, nonce) of the mandate in force."""
        return tuple(self.market.functions.mandateOf(participant).call())

    def next_interval(self) -> int:
        return self.market.functions.nextInterval().call()

    def participant_count(self) -> int:
        return self.market.functions.participantCount().call()

    def balance(self, participant: int) -> int:
        return self.market.functions.balanceOf(participant).call()

    def capacity(self, interval: int) -> tuple[int, int]:
        return tuple(self.market.functions.capacityOf(interval).call())

    def logs(self, from_block: int, to_block: int) -> list[Event]:
        """Market events in a block range (one eth_getLogs call; keep ranges narrow)."""
        raw = self.chain.w3.eth.get_logs({"address": self.deployment.market, "fromBlock": from_block, "toBlock": to_block})
        return self.decoder.decode(raw)
