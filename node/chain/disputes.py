"""Disputes on chain (DisputeModule): the proof a dispute carries, and the reversal it
opens, finished chunk by chunk.

A dispute names every chunk of the interval by its hash (they chain to the interval's
record) and carries only the chunk(s) that show its point: the chunk holding the
participant's entry (a contradiction) or, for an omission, the chunk the participant
would be in, and the next one too when its id falls between two chunks. The contract
then reverses the interval and opens a reversal of the chunks that moved money; each is
taken back by one `reverseChunk` transaction that anyone may send. An interval of one
chunk is reversed in the dispute's own transaction.

``Market`` (node.chain.market) inherits ``MarketDisputes``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from eth_utils import to_hex

from node.chain.chunks import MAX_TX_GAS, entries_hash
from node.chain.settlement import decode_entry
from node.errors import ChainError, SettlementError
from node.intent.signing import SignedReading

# Gas is set explicitly (eth_estimateGas takes seconds on eth-tester). A dispute pays for
# the record check, the reading's signature and the reward, every chunk hash (calldata,
# hashing, and a stored word for each chunk to reverse), and per proof entry its calldata
# and hash; an interval of one chunk is reversed in the same transaction, at the cost of
# a reverse chunk. A reverse chunk measured ~6.4k gas per entry (a cold wallet read and
# write, its credit unlocked), a share entry ~5k more (its account moved back).
DISPUTE_BASE_GAS = 250_000
DISPUTE_GAS_PER_CHUNK = 30_000
DISPUTE_GAS_PER_PROOF_ENTRY = 1_500
REVERSE_BASE_GAS = 120_000
REVERSE_GAS_PER_ENTRY = 12_000
ZERO_HASH = b"\0" * 32

log = logging.getLogger("gridledger.disputes")


@dataclass(frozen=True)
class Reversal:
    """DisputeModule.reversal(): the reversal a dispute opened, if any."""

    interval: int
    chunks: int  # chunks to reverse: those that moved money
    left: int  # not yet reversed; 0: none open
    closed: bool  # the interval had closed: its grid side goes back with the last chunk
    sum: int  # wallet changes reversed so far

    @property
    def open(self) -> bool:
        return self.left != 0


def dispute_proof(chunks: list[list[int]], participant: int) -> tuple[int, list[list[int]]]:
    """(first chunk, its entry words and the next's if needed) that show `participant`'s
    entry, or that it has none: the chunk holding it; else the chunk whose range holds
    its id, or the two it falls between (entries ascend across chunks)."""
    ids = [[decode_entry(w).participant for w in chunk] for chunk in chunks]
    for c, chunk_ids in enumerate(ids):
        if participant in chunk_ids:
            return c, [chunks[c]]
    # The first chunk starting above the participant: it is before that one.
    after = next((c for c, chunk_ids in enumerate(ids) if chunk_ids and chunk_ids[0] > participant), len(chunks))
    if after == 0:
        return 0, [chunks[0]]
    before = after - 1
    if after == len(chunks) or (ids[before] and ids[before][-1] > participant):
        return before, [chunks[before]]
    return before, [chunks[before], chunks[after]]


def dispute_gas(chunks: int, proof: list[list[int]], reversed_at_once: bool) -> int:
    """The gas limit of a dispute naming `chunks` chunk hashes and carrying `proof`."""
    entries = sum(len(chunk) for chunk in proof)
    gas = DISPUTE_BASE_GAS + DISPUTE_GAS_PER_CHUNK * chunks + DISPUTE_GAS_PER_PROOF_ENTRY * entries
    if reversed_at_once:
        gas += REVERSE_GAS_PER_ENTRY * len(proof[0])
    return min(gas, MAX_TX_GAS)


def reverse_gas(entries: int) -> int:
    """The gas limit of a reverse chunk of this many entries."""
    return min(REVERSE_BASE_GAS + REVERSE_GAS_PER_ENTRY * entries, MAX_TX_GAS)


class MarketDisputes:
    """Mixin of Market: needs self.market, self.chain, self.decoder, self.deployment,
    self._send and Receipt (node.chain.market)."""

    def reversal(self) -> Reversal:
        return Reversal(*self.market.functions.reversal().call())

    def dispute(self, interval: int, chunks: list[list[int]], signed: SignedReading, sender) -> object:
        """Disputes settled `interval` with a meter-signed reading and reverses it to the
        end; `chunks` are the entry words of every chunk of the interval in order (as
        EntriesSettled logged them, or verifyChunk carried those not yet applied);
        `sender` pays the gas and gets the reward. Returns the combined receipt of the
        dispute and its reverse chunks. Resumable: if a reversal of `interval` is already
        open (a crash half way), it only finishes it; one of another interval is finished
        first (anyone may, and the contract refuses a dispute while it is open). A dispute
        the contract refuses raises SettlementError."""
        receipts = []
        state = self.reversal()
        if state.open and state.interval != interval:
            receipts += self.finish_reversal(sender)
            state = self.reversal()
        if not state.open:
            receipts.append(self._send_dispute(interval, chunks, signed, sender))
        receipts += self.finish_reversal(sender, chunks)
        # At least one: the dispute, or a reverse chunk of the open reversal. Combined by
        # their own class (node.chain.market.Receipt: that module imports this one).
        return type(receipts[0]).combined(receipts)

    def dispute_call(self, interval: int, chunks: list[list[int]], signed: SignedReading) -> tuple[object, int]:
        """The `dispute` call of `interval` with `signed`, carrying its proof, and its gas."""
        chunks = [list(chunk) for chunk in chunks] or [[]]
        hashes = [entries_hash(chunk) for chunk in chunks]
        r = signed.reading
        first, proof = dispute_proof(chunks, r.participant)
        call = self.market.functions.dispute(
            interval, hashes, first, proof, (r.participant, r.interval, r.import_wh, r.export_wh), signed.signature
        )
        return call, dispute_gas(len(hashes), proof, reversed_at_once=first == 0)

    def _send_dispute(self, interval: int, chunks: list[list[int]], signed: SignedReading, sender):
        call, gas = self.dispute_call(interval, chunks, signed)
        try:
            return self._send(call, sender, gas)
        except ChainError as exc:
            raise SettlementError(f"dispute of interval {interval} refused: {exc}") from exc

    def finish_reversal(self, sender, chunks: list[list[int]] = ()) -> list:
        """Reverses every chunk of the open reversal not yet reversed (anyone may),
        with the entry words of `chunks` where they match a chunk's hash, else those of
        the chain's EntriesSettled logs; returns the receipts ([] if none was open)."""
        state = self.reversal()
        if not state.open:
            return []
        log.info("interval %d: reversing its %d chunks left of %d after a dispute", state.interval, state.left, state.chunks)
        known = {entries_hash(chunk): list(chunk) for chunk in chunks}
        receipts = []
        for c in range(state.chunks):
            expected = bytes(self.market.functions.reversalChunkHash(c).call())
            if expected == ZERO_HASH:
                continue
            words = known.get(expected)
            if words is None:
                words = self._logged_chunk(state.interval, c, expected)
            call = self.market.functions.reverseChunk(state.interval, c, words)
            try:
                receipts.append(self._send(call, sender, reverse_gas(len(words))))
            except ChainError as exc:
                raise SettlementError(f"reversing chunk {c} of interval {state.interval} failed: {exc}") from exc
        return receipts

    def settled_chunks(self, interval: int, span: int = 2_000) -> list[list[int]]:
        """The entry words of every chunk of `interval`'s settlement in force, in order,
        from the chain's EntriesSettled logs (what a dispute names and carries); [] if it
        is not settled. Logs of a settlement a dispute reversed are left out."""
        topics = [[to_hex(self.decoder.topic(name)) for name in ("EntriesSettled", "IntervalReversed")],
                  to_hex(interval.to_bytes(32, "big"))]
        chunks: dict[int, list[int]] = {}
        low, head = self.deployment.block, self.chain.w3.eth.block_number
        while low <= head:
            high = min(low + span - 1, head)
            query = {"address": self.deployment.market, "fromBlock": low, "toBlock": high, "topics": topics}
            for e in self.decoder.decode(self.chain.w3.eth.get_logs(query)):
                if e.name == "IntervalReversed":
                    chunks.clear()  # only a later settlement counts
                else:
                    chunks[e.args["chunk"]] = list(e.args["entries"])
            low = high + 1
        if sorted(chunks) != list(range(len(chunks))):
            raise SettlementError(f"interval {interval}'s settled chunks {sorted(chunks)} are not 0..{len(chunks) - 1}: "
                                  "it is still being applied; dispute it with the chunks its verify transactions carried")
        return [chunks[c] for c in range(len(chunks))]

    def _logged_chunk(self, interval: int, chunk: int, expected: bytes, span: int = 500) -> list[int]:
        """The entry words of chunk `chunk` of `interval` as EntriesSettled logged them,
        the settlement whose chunk hashes to `expected` (an interval settled again after
        an earlier dispute logged older ones too); searched from the head back, since a
        disputed settlement is recent."""
        topics = [to_hex(self.decoder.topic("EntriesSettled")), to_hex(interval.to_bytes(32, "big"))]
        high = self.chain.w3.eth.block_number
        while high >= self.deployment.block:
            low = max(self.deployment.block, high - span + 1)
            query = {"address": self.deployment.market, "fromBlock": low, "toBlock": high, "topics": topics}
            for e in self.decoder.decode(self.chain.w3.eth.get_logs(query)):
                words = list(e.args["entries"])
                if e.args["chunk"] == chunk and entries_hash(words) == expected:
                    return words
            high = low - 1
        raise SettlementError(
            f"chunk {chunk} of interval {interval} is to be reversed but no EntriesSettled log of the chain "
            f"hashes to {to_hex(expected)}: pass its entries"
        )

    def finish_open_reversal(self) -> None:
        """Before the oracle settles: a reversal a dispute opened blocks every settlement
        until it is finished, which anyone may do, so the oracle does it."""
        state = self.reversal()
        if state.open:
            log.warning(
                "interval %d was reversed by a dispute and %d of its %d chunks are still to reverse; settlements "
                "wait for that: the oracle reverses them", state.interval, state.left, state.chunks)
            self.finish_reversal(self.chain.operators.oracle)
