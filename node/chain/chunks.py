"""How much gas a settlement takes, and how an interval too big for one transaction is
cut into chunks (EnergyMarket.verifyChunk / applyChunk)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_abi import encode as abi_encode
from eth_utils import keccak

from node.errors import SettlementError

if TYPE_CHECKING:
    from node.chain.settlement import Settlement

# MarketStorage.MAX_ENTRIES and MAX_CHUNKS: the entries and chunks an interval may have
# (tests/test_market_size.py holds them equal to the contract's). A dispute reverses an
# interval one chunk per transaction (node.chain.disputes), so the entries are limited by
# the chunks a dispute can name, not by one transaction.
MAX_ENTRIES = 10_000
MAX_CHUNKS = 64
MAX_CHUNK_ENTRIES = 1_250  # so that every chunk's reversal fits one transaction

# Gas is set explicitly (eth_estimateGas takes seconds on eth-tester). A settlement
# measured ~11.9k gas per mandate-authorised participant and ~14.9k per signed order
# (bench/bench_settlement_gas.py); the static bound below is some twice that, so that it
# holds whatever the entries are.
SETTLE_BASE_GAS = 120_000
SETTLE_GAS_PER_ENTRY = 30_000
SETTLE_GAS_PER_ORDER = 10_000
MAX_TX_GAS = 16_777_216  # per-transaction cap of EIP-7825 (Osaka)

# A settlement whose static bound exceeds the budget may still fit one transaction, which
# costs ~3k gas per entry less than chunks (a chunked entry's wallet is read cold twice,
# its word sent twice). If its typical gas fits (a little under what 1,000 entries
# measured in one transaction: 11.4k per mandate entry, 14.4k per order entry), the
# single `settle` is dry-run with one eth_call at SINGLE_TX_GAS - SINGLE_TX_MARGIN gas
# and, if that succeeds, sent with SINGLE_TX_GAS; the margin covers what may change
# between the call and the transaction. A dry run or a transaction that fails (out of
# gas) leaves the interval as it was, and it settles in chunks.
SINGLE_TX_GAS = MAX_TX_GAS
SINGLE_TX_MARGIN = 200_000
SETTLE_TYPICAL_BASE_GAS = 60_000
SETTLE_TYPICAL_GAS_PER_ENTRY = 11_000
SETTLE_TYPICAL_GAS_PER_ORDER = 2_500

# Intervals whose settlement would need more than TX_GAS_BUDGET by the static bound, and
# that do not fit one transaction by a dry run either, settle in chunks
# (EnergyMarket.verifyChunk / applyChunk). Every chunk's gas limit is at most the
# budget, which leaves a quarter of the per-transaction cap as margin. The per-entry
# figures are measured (bench/bench_chunked.py: verify ~5.8k per mandate entry, ~9.4k
# per order entry; apply ~8.4k per entry) plus 20-30% margin: a verify chunk reads each
# account and mandate (or recovers an order's signer), an apply chunk writes each
# wallet and emits its event.
TX_GAS_BUDGET = 12_000_000
VERIFY_BASE_GAS = 400_000  # the first chunk stores the header and opens the totals
VERIFY_GAS_PER_ENTRY = 7_500
VERIFY_GAS_PER_ORDER = 5_000
# A zonal verify chunk (verifyChunkZonal) also keeps, per zone, its price (a quarter of
# a stored word), its running grid energy (a new slot, read back by the next chunk) and
# reads its capacity (two cold slots); each entry looks its zone up and adds to its sum.
# Without these a zonal chunk of a few hundred entries over 20 zones ran out of gas.
VERIFY_GAS_PER_ZONE = 35_000
VERIFY_GAS_PER_ZONAL_ENTRY = 2_500
APPLY_BASE_GAS = 150_000
APPLY_GAS_PER_ENTRY = 10_500
SETTLEMENT_HEADER_TYPE = "(uint64,bytes32,uint64,uint32)"  # MarketStorage.Header
ZONE_PRICES_TYPE = "uint64[]"  # ZonalSettlementModule's zonePrices


@dataclass(frozen=True)
class Chunk:
    """Entries [start, end) and orders [order_start, order_end) of a chunked settlement."""

    start: int
    end: int
    order_start: int
    order_end: int


def header_hash(header: tuple, zone_prices: tuple[int, ...] = ()) -> bytes:
    """keccak256(abi.encode(Header)), or of a zonal settlement abi.encode(Header,
    zonePrices): what every verify chunk must match."""
    if zone_prices:
        return keccak(abi_encode([SETTLEMENT_HEADER_TYPE, ZONE_PRICES_TYPE], [header, list(zone_prices)]))
    return keccak(abi_encode([SETTLEMENT_HEADER_TYPE], [header]))


def entries_hash(words: list[int]) -> bytes:
    """keccak256 of packed SettlementEntry words, as the contract hashes a chunk."""
    return keccak(b"".join(w.to_bytes(32, "big") for w in words))


def single_settle_gas(entries: int, orders: int) -> int:
    """The gas limit `settle` is sent with for this many entries and orders."""
    return SETTLE_BASE_GAS + SETTLE_GAS_PER_ENTRY * entries + SETTLE_GAS_PER_ORDER * orders


def typical_settle_gas(entries: int, orders: int) -> int:
    """What `settle` typically uses for this many entries and orders (a little under the
    measured figures): whether a dry run of one transaction is worth trying."""
    return SETTLE_TYPICAL_BASE_GAS + SETTLE_TYPICAL_GAS_PER_ENTRY * entries + SETTLE_TYPICAL_GAS_PER_ORDER * orders


def verify_gas(entries: int, orders: int, zones: int = 0) -> int:
    """The gas limit of a verify chunk of this many entries and orders (`zones`: the zone
    prices of a zonal settlement, 0 for a uniform one)."""
    zonal = VERIFY_GAS_PER_ZONE * zones + (VERIFY_GAS_PER_ZONAL_ENTRY * entries if zones else 0)
    return VERIFY_BASE_GAS + VERIFY_GAS_PER_ENTRY * entries + VERIFY_GAS_PER_ORDER * orders + zonal


def apply_gas(entries: int) -> int:
    return APPLY_BASE_GAS + APPLY_GAS_PER_ENTRY * entries


def plan_chunks(words: list[int], budget: int | None = None, zones: int = 0) -> list[Chunk]:
    """Splits entry words greedily into chunks of at most MAX_CHUNK_ENTRIES whose verify
    and apply gas limits both stay within `budget` (default TX_GAS_BUDGET); `zones`: a zonal settlement's zone
    prices (verify_gas). Greedy from the front, so the plan of
    a suffix starting at a chunk boundary is the same as the suffix of the plan: an
    oracle resuming after a crash finds the chain's chunk boundaries again."""
    budget = TX_GAS_BUDGET if budget is None else budget
    if verify_gas(1, 1, zones) > budget or apply_gas(1) > budget:
        raise ValueError(f"a gas budget of {budget} does not fit one entry")
    chunks, start, order_start = [], 0, 0
    entries = orders = 0
    for i, word in enumerate(words):
        by_order = word >> 255
        if (verify_gas(entries + 1, orders + by_order, zones) > budget or apply_gas(entries + 1) > budget
                or entries + 1 > MAX_CHUNK_ENTRIES):
            chunks.append(Chunk(start, i, order_start, order_start + orders))
            start, order_start, entries, orders = i, order_start + orders, 0, 0
        entries += 1
        orders += by_order
    if entries:
        chunks.append(Chunk(start, len(words), order_start, order_start + orders))
    return chunks


@dataclass(frozen=True)
class PendingSettlement:
    """EnergyMarket.pending(): the chunked settlement the chain has open, if any."""

    interval: int
    phase: str  # "none", "verifying" or "applying"
    verified_chunks: int
    applied_chunks: int
    total_chunks: int  # known once verification completed, else 0
    last_participant: int
    header_hash: bytes

    @property
    def open(self) -> bool:
        return self.phase != "none"


def check_entry_count(settlement: Settlement) -> None:
    """SettlementError, before any transaction, for an interval with more entries than
    the contract settles (it would take verify chunks' gas, then refuse the chunk that
    passes MAX_ENTRIES with TooManyEntries and abandon the interval)."""
    n = len(settlement.participants)
    if n > MAX_ENTRIES:
        raise SettlementError(
            f"interval {settlement.interval} has {n:,} entries; the market contract settles at most {MAX_ENTRIES:,} "
            "an interval (a dispute reverses it chunk by chunk, and names every chunk): run communities of at most "
            f"{MAX_ENTRIES:,} participants per market")


def check_chunk_count(interval: int, chunks: list[Chunk]) -> None:
    """SettlementError, before any transaction, for a chunk plan the contract would refuse
    at its chunk MAX_CHUNKS + 1 (TooManyChunks): a gas budget too small for the interval."""
    if len(chunks) > MAX_CHUNKS:
        raise SettlementError(
            f"interval {interval} would take {len(chunks)} chunks at this gas budget; the market contract takes at "
            f"most {MAX_CHUNKS} (a dispute names every chunk): settle it with a larger budget")
