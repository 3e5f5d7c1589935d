"""A deployed GridLedger market: deploy it, register participants, fund wallets,
submit settlements and read its state, with every receipt's events decoded."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Sequence

from eth_account.signers.local import LocalAccount
from eth_utils import to_hex

from node.chain.build import load_artifact
from node.chain.connection import Chain
from node.errors import ChainError, InputError, SettlementError
from node.chain.events import Event, EventDecoder
from node.chain.chunks import (
    MAX_ENTRIES,
    MAX_TX_GAS,
    SINGLE_TX_GAS,
    SINGLE_TX_MARGIN,
    TX_GAS_BUDGET,
    Chunk,
    PendingSettlement,
    check_chunk_count,
    check_entry_count,
    apply_gas,
    entries_hash,
    header_hash,
    plan_chunks,
    single_settle_gas,
    typical_settle_gas,
    verify_gas,
)
from node.faults import crash_point
from node.chain.deploy import MarketSetup, Tariffs, deploy_contracts
from node.chain.settlement import Settlement, pack_order
from node.chain.disputes import MarketDisputes
from node.chain.trust import MarketTrust
from node.intent.signing import Domain, SignedMandate, SignedOrder, SignedRevocation

MANDATE_GAS = 60_000
REGISTER_GAS_PER_PARTICIPANT = 160_000
# Tariffs of a market deployed without a setup (tests, benches): 0.30 import, 0.06 export.
DEFAULT_TARIFFS = Tariffs(import_price=300_000, peak_import_price=300_000, export_price=60_000)
# ... and its epoch: a day before the chain's clock, so that 96 intervals have ended.
DEFAULT_EPOCH_AGO = 86_400
# Public nodes cap eth_getLogs ranges; 500 blocks is under every common cap.
LOG_CHUNK_BLOCKS = 500
PHASES = ("none", "verifying", "applying")

log = logging.getLogger("gridledger.market")


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
    """A transaction's receipt with its market events decoded. A chunked settlement's
    receipt stands for all its transactions (`parts`): the hash and block are the
    closing transaction's, gas and events the sum of all."""

    tx_hash: str
    block: int
    gas_used: int
    events: list[Event]
    parts: tuple["Receipt", ...] = ()

    @property
    def gas_by_tx(self) -> dict[str, int]:
        """Gas used by each transaction, for Index.apply."""
        if not self.parts:
            return {self.tx_hash: self.gas_used}
        return {r.tx_hash: r.gas_used for r in self.parts}

    @staticmethod
    def combined(parts: list["Receipt"]) -> "Receipt":
        last = parts[-1]
        events = [e for r in parts for e in r.events]
        return Receipt(last.tx_hash, last.block, sum(r.gas_used for r in parts), events, tuple(parts))


class Market(MarketTrust, MarketDisputes):
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
    def deploy(
        cls,
        chain: Chain,
        import_capacity_wh: int,
        export_capacity_wh: int,
        first_interval: int = 0,
        setup: MarketSetup | None = None,
    ) -> "Market":
        """Deploys a market with `setup` (default: 15-minute intervals from a day before
        the chain's clock, DEFAULT_TARIFFS), the capacities and first interval given."""
        if setup is None:
            epoch = chain.w3.eth.get_block("latest")["timestamp"] - DEFAULT_EPOCH_AGO
            setup = MarketSetup(import_capacity_wh, export_capacity_wh, epoch - epoch % 900, DEFAULT_TARIFFS,
                                first_interval=first_interval)
        token, receipt, _ = deploy_contracts(chain, setup)
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

    def register(
        self, owners: list[str], zones: list[int], names: list[str], meters: list[str] | None = None, batch: int = 100
    ) -> list[Receipt]:
        """Registers participants (ids in order of `owners`) whose meters sign with
        `meters` (default: the owner's key, for tests), `batch` per transaction."""
        meters = list(owners) if meters is None else meters
        receipts = []
        for i in range(0, len(owners), batch):
            call = self.market.functions.registerBatch(
                owners[i : i + batch], meters[i : i + batch], zones[i : i + batch], names[i : i + batch]
            )
            gas = min(MAX_TX_GAS, 60_000 + REGISTER_GAS_PER_PARTICIPANT * len(owners[i : i + batch]))
            receipts.append(self._send(call, self.chain.operators.admin, gas))
        return receipts

    def fund_wallets(self, amounts: dict[int, int], batch: int = 200) -> list[Receipt]:
        """The admin mints `amount` tokens per participant and deposits them into its
        wallet, `batch` wallets per transaction."""
        admin = self.chain.operators.admin
        total = sum(amounts.values())
        receipts = [
            self._send(self.token.functions.mint(admin.address, total), admin, 100_000),
            self._send(self.token.functions.approve(self.deployment.market, total), admin, 100_000),
        ]
        items = sorted(amounts.items())
        for i in range(0, len(items), batch):
            part = items[i : i + batch]
            call = self.market.functions.depositBatch([p for p, _ in part], [a for _, a in part])
            receipts.append(self._send(call, admin, 100_000 + 30_000 * len(part)))
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
        """Relays an owner's signed revocation of its mandates up to a nonce."""
        r = signed.revocation
        call = self.market.functions.revokeMandate(r.participant, r.nonce, signed.signature)
        return self._send(call, self.chain.operators.admin, 100_000)

    def settle(self, settlement: Settlement, orders: list[SignedOrder] = (), budget: int | None = None) -> Receipt:
        """Submits one interval's settlement, the entries of participants with one of the
        signed `orders` (for this interval, at most one each) authorised by it, the
        others by their mandates, in one transaction if it fits: by the static bound
        within `budget` (default TX_GAS_BUDGET), or else by a dry run within the
        per-transaction cap (`_fits_one_transaction`). Otherwise, or if that transaction
        fails after all, or if the chain holds the interval half-settled in chunks (a
        crash), it settles in chunks of at most `budget` gas (`settle_chunked`). A
        contract rejection raises SettlementError."""
        budget = TX_GAS_BUDGET if budget is None else budget
        check_entry_count(settlement)
        self.finish_open_reversal()
        orders = sorted(orders, key=lambda o: o.order.participant)
        entries = settlement.entries(by_order={o.order.participant for o in orders})
        auths = [pack_order(o) for o in orders]
        k = settlement.interval
        if settlement.zonal:
            call = self.market.functions.settleZonal(settlement.header(), list(settlement.zone_prices), entries, auths)
        else:
            call = self.market.functions.settle(settlement.header(), entries, auths)
        gas = single_settle_gas(len(entries), len(auths))
        if gas <= budget:
            try:
                return self._send(call, self.chain.operators.oracle, gas)
            except ChainError as exc:
                raise SettlementError(f"interval {k} rejected: {exc}") from exc
        if not self._fits_one_transaction(settlement, call, len(entries), len(auths)):
            return self._settle_chunked(settlement, entries, auths, budget)
        try:
            receipt = self._send(call, self.chain.operators.oracle, SINGLE_TX_GAS)
        except ChainError as exc:
            # A failed transaction left nothing on chain; the chunks check the settlement
            # again and say why if the contract rejects it. One that got no receipt in
            # time and lands after all makes the first chunk fail (IntervalOutOfOrder):
            # the contract settles an interval once either way.
            log.warning("interval %d: its one transaction failed (%s): settling it in chunks", k, exc)
            return self._settle_chunked(settlement, entries, auths, budget)
        log.debug("interval %d settled in one transaction (dry run), %d gas", k, receipt.gas_used)
        return receipt

    def _fits_one_transaction(self, settlement: Settlement, call, entries: int, orders: int) -> bool:
        """Whether `call` (the single `settle`) succeeds within SINGLE_TX_GAS -
        SINGLE_TX_MARGIN gas: tried when its typical gas fits and no chunked interval is
        pending (a half-settled interval continues in its chunks)."""
        limit = SINGLE_TX_GAS - SINGLE_TX_MARGIN
        if typical_settle_gas(entries, orders) > limit or self.pending().open:
            return False
        failure = self.chain.dry_run(call, self.chain.operators.oracle, limit)
        if failure is not None:
            log.debug("interval %d does not settle in one transaction of %d gas (%s): chunks", settlement.interval, limit, failure)
        return failure is None

    def settle_chunked(self, settlement: Settlement, orders: list[SignedOrder] = (), budget: int | None = None) -> Receipt:
        """Settles one interval in chunks of at most `budget` gas each (default
        TX_GAS_BUDGET): first every chunk is verified (no money moves), then every
        verified chunk is applied; the last one closes the interval.

        Resumes whatever the chain has pending for this interval (after a crash between
        chunks): the same settlement gives the same chunks, so it continues from the
        chain's counters. A pending interval with another header or other verified
        chunks (checked by their hashes), or whose verification fails, is abandoned (nothing was applied yet) and SettlementError raised for
        the failure."""
        budget = TX_GAS_BUDGET if budget is None else budget
        check_entry_count(settlement)
        self.finish_open_reversal()
        orders = sorted(orders, key=lambda o: o.order.participant)
        entries = settlement.entries(by_order={o.order.participant for o in orders})
        return self._settle_chunked(settlement, entries, [pack_order(o) for o in orders], budget)

    def _settle_chunked(self, settlement: Settlement, words: list[int], auths: list, budget: int) -> Receipt:
        k = settlement.interval
        header = settlement.header()
        zones = len(settlement.zone_prices) if settlement.zonal else 0
        chunks = plan_chunks(words, budget, zones)
        check_chunk_count(k, chunks)
        oracle = self.chain.operators.oracle
        receipts: list[Receipt] = []
        state = self._resumable(settlement, words, chunks, receipts)
        first_verify = state.verified_chunks if state.phase == "verifying" else 0
        if state.phase != "applying":
            for c in range(first_verify, len(chunks)):
                chunk = chunks[c]
                last = c == len(chunks) - 1
                chunk_words, chunk_auths = words[chunk.start : chunk.end], auths[chunk.order_start : chunk.order_end]
                if settlement.zonal:
                    call = self.market.functions.verifyChunkZonal(
                        header, list(settlement.zone_prices), chunk_words, chunk_auths, last
                    )
                else:
                    call = self.market.functions.verifyChunk(header, chunk_words, chunk_auths, last)
                gas = verify_gas(chunk.end - chunk.start, chunk.order_end - chunk.order_start, zones)
                try:
                    receipts.append(self._send(call, oracle, gas))
                except ChainError as exc:
                    if self.pending().open:
                        receipts.append(self.abandon_pending())
                    raise SettlementError(
                        f"interval {k} rejected at verify chunk {c + 1} of {len(chunks)} "
                        f"(the pending interval was abandoned, no money moved): {exc}"
                    ) from exc
                crash_point("between_chunks")
        first_apply = state.applied_chunks if state.phase == "applying" else 0
        for c in range(first_apply, len(chunks)):
            chunk = chunks[c]
            call = self.market.functions.applyChunk(k, c, words[chunk.start : chunk.end])
            try:
                receipts.append(self._send(call, oracle, apply_gas(chunk.end - chunk.start)))
            except ChainError as exc:
                raise SettlementError(f"interval {k}: apply chunk {c + 1} of {len(chunks)} failed: {exc}") from exc
            if c < len(chunks) - 1:
                crash_point("between_chunks")
        log.debug("interval %d settled in %d chunks, %d transactions", k, len(chunks), len(receipts))
        return Receipt.combined(receipts)

    def _resumable(self, settlement: Settlement, words: list[int], chunks: list[Chunk], receipts: list[Receipt]) -> PendingSettlement:
        """The chain's pending state if this settlement can continue from it; a pending
        interval it cannot continue is abandoned (its receipt added to `receipts`)."""
        state = self.pending()
        if not state.open:
            return state
        k = settlement.interval
        if state.interval != k:
            raise SettlementError(f"interval {state.interval} is pending on chain, not {k}: settle it first")
        # The header holds the interval's inputs, P2P price and terms, not its entries:
        # another settlement of the same inputs has the same header. So the chunks the
        # chain holds (verified, not yet applied) must each hash to this settlement's.
        same = state.header_hash == header_hash(settlement.header(), settlement.zone_prices)
        if state.phase == "verifying":
            held = range(state.verified_chunks)
            same = same and state.verified_chunks < len(chunks)
        else:
            held = range(state.applied_chunks, len(chunks))
            same = same and state.total_chunks == len(chunks)
        same = same and all(
            self.market.functions.chunkHash(c).call() == entries_hash(words[chunks[c].start : chunks[c].end])
            for c in held
        )
        if same:
            log.info(
                "interval %d is pending on chain (%s, %d of %d chunks verified, %d applied): resuming",
                k, state.phase, state.verified_chunks, len(chunks), state.applied_chunks,
            )
            return state
        if state.applied_chunks:
            raise SettlementError(
                f"interval {k} is partly applied on chain with other entries than the oracle's settlement: "
                "its inputs changed since; restore the inputs it was verified with to finish it"
            )
        log.warning("interval %d is pending on chain with another settlement or chunking: abandoning it", k)
        receipts.append(self.abandon_pending())
        return self.pending()

    def abandon_pending(self) -> Receipt:
        """Discards the chain's pending chunked interval (only before any chunk applied)."""
        try:
            return self._send(self.market.functions.abandonPending(), self.chain.operators.oracle, 150_000)
        except ChainError as exc:
            raise SettlementError(f"cannot abandon the pending interval: {exc}") from exc

    def pending(self) -> PendingSettlement:
        """The chunked settlement the chain has open (phase "none" if there is none)."""
        interval, phase, verified, applied, total, last, digest = self.market.functions.pending().call()
        return PendingSettlement(interval, PHASES[phase], verified, applied, total, last, bytes(digest))

    # -- reading ------------------------------------------------------------------

    def domain(self) -> Domain:
        """The EIP-712 domain participants sign orders and mandates for."""
        return Domain(self.chain_id, self.deployment.market)

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    def mandate(self, participant: int) -> tuple[int, ...]:
        """(maxBuyPrice, minSellPrice, validFrom, validUntil, maxEnergyWh, nonce, since) of
        the mandate in force (validFrom > validUntil: revoked; all 0: none)."""
        return tuple(self.market.functions.mandateOf(participant).call())

    def next_interval(self) -> int:
        return self.market.functions.nextInterval().call()

    def participant_count(self) -> int:
        return self.market.functions.participantCount().call()

    def balance(self, participant: int) -> int:
        return self.market.functions.balanceOf(participant).call()

    def capacity(self, interval: int) -> tuple[int, int]:
        return tuple(self.market.functions.capacityOf(interval).call())

    def set_zone_capacity(self, zone: int, import_wh: int, export_wh: int, interval: int | None = None) -> Receipt:
        """The grid operator sets zone `zone`'s grid import/export limit (Wh per
        interval): its default, or with `interval` that interval's own. A zonal
        settlement keeps each zone within it."""
        if interval is None:
            call = self.market.functions.setDefaultZoneCapacity(zone, import_wh, export_wh)
        else:
            call = self.market.functions.setZoneCapacity(interval, zone, import_wh, export_wh)
        return self._send(call, self.chain.operators.grid_operator, 100_000)

    def zone_capacity(self, interval: int, zone: int) -> tuple[int, int]:
        """Zone `zone`'s (import, export) limit in force for `interval`, Wh (2^48 - 1: none)."""
        return tuple(self.market.functions.zoneCapacityOf(interval, zone).call())

    def logs(self, from_block: int, to_block: int, names: Sequence[str] = ()) -> list[Event]:
        """Market events in a block range (one eth_getLogs call; keep ranges narrow);
        with `names`, only those events, filtered by the node."""
        query = {"address": self.deployment.market, "fromBlock": from_block, "toBlock": to_block}
        if names:
            query["topics"] = [[to_hex(self.decoder.topic(name)) for name in names]]
        return self.decoder.decode(self.chain.w3.eth.get_logs(query))

    def log_chunks(
        self,
        from_block: int | None = None,
        to_block: int | None = None,
        chunk_blocks: int = LOG_CHUNK_BLOCKS,
        names: Sequence[str] = (),
    ) -> Iterator[tuple[int, int, list[Event]]]:
        """(low, high, events) for consecutive narrow block ranges from `from_block`
        (default: the deployment block) to `to_block` (default: the head now); with
        `names`, only those events."""
        if chunk_blocks < 1:
            raise InputError(f"chunk_blocks must be at least 1, got {chunk_blocks}")
        start = self.deployment.block if from_block is None else from_block
        end = self.chain.w3.eth.block_number if to_block is None else to_block
        for low in range(start, end + 1, chunk_blocks):
            high = min(end, low + chunk_blocks - 1)
            yield low, high, self.logs(low, high, names)

    def events(self, from_block: int | None = None, chunk_blocks: int = LOG_CHUNK_BLOCKS) -> list[Event]:
        """Every market event from `from_block` (default: the deployment block) to the head."""
        return [e for _, _, events in self.log_chunks(from_block, chunk_blocks=chunk_blocks) for e in events]
