"""What the auditor reads from the node for each settled interval besides the logs: the
calldata and time of the transactions that authorised its entries, and the chain's terms
for it. Only blocks, transactions and state at the head: a pruned node serves them all.

On a JSON-RPC node these reads are round trips, not work: they are fetched a few
intervals ahead of the checks over a few threads (`prefetch`). Calldata is decoded with
eth_abi once per ABI function (web3's decode_function_input costs ~13 ms a call).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_names, get_abi_input_types
from web3 import HTTPProvider

from node.audit.history import SettledInterval
from node.chain.market import Market
from node.chain.trust import IntervalTerms

SETTLING_FUNCTIONS = ("settle", "verifyChunk", "settleZonal", "verifyChunkZonal")
THREADS = 4  # round trips in flight; the node, not this process, does the work
AHEAD = 32  # intervals fetched ahead of the checks

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class SettlementCall:
    """One transaction that authorised entries: a `settle` or a `verifyChunk`, with the
    point of the chain (block, log index, timestamp) where its mandates were in force."""

    tx_input: bytes
    timestamp: int
    block: int
    log_index: int


@dataclass
class ChainReads:
    """An interval's transactions that carry its entries and orders, and its terms."""

    calls: list[SettlementCall]
    terms: IntervalTerms


class SettlementCalldata:
    """Decodes the calldata of `settle` and `verifyChunk` by the market's ABI."""

    def __init__(self, abi: list[dict]) -> None:
        self.functions = {
            function_abi_to_4byte_selector(f): (get_abi_input_types(f), get_abi_input_names(f))
            for f in abi if f.get("type") == "function" and f["name"] in SETTLING_FUNCTIONS
        }

    def decode(self, data: bytes) -> dict[str, Any]:
        """The call's arguments by name (structs as tuples); ValueError if `data` is no
        settling call of this ABI."""
        known = self.functions.get(bytes(data[:4]))
        if known is None:
            raise ValueError(f"selector 0x{bytes(data[:4]).hex()} is not {' or '.join(SETTLING_FUNCTIONS)} of this ABI")
        types, names = known
        try:
            return dict(zip(names, abi_decode(types, bytes(data[4:]))))
        except DecodingError as exc:
            raise ValueError(f"calldata does not decode: {exc}") from exc


def read_interval(market: Market, settled: SettledInterval) -> ChainReads:
    """The transactions whose calldata carries the interval's entries and orders, and
    the terms the contract prices the interval by (immutable once the interval starts:
    terms need notice, so the head's answer is the one at settlement)."""
    w3 = market.chain.w3
    points = settled.verify_chunks or [settled.header]
    calls = [SettlementCall(bytes(w3.eth.get_transaction(e.tx_hash)["input"]), w3.eth.get_block(e.block)["timestamp"],
                            e.block, e.log_index)
             for e in points]
    return ChainReads(calls, market.terms_at(settled.header.args["interval"]))


def prefetch(market: Market, settled: list[SettledInterval]) -> Iterator[ChainReads]:
    """read_interval for each interval, in order; ahead over threads on a JSON-RPC node
    (an in-process chain is read inline: its reads are CPU work in this process)."""
    read = lambda s: read_interval(market, s)  # noqa: E731
    if not isinstance(market.chain.w3.provider, HTTPProvider):
        return map(read, settled)
    return _ahead(read, settled, THREADS, AHEAD)


def _ahead(fn: Callable[[T], R], items: Iterable[T], threads: int, ahead: int) -> Iterator[R]:
    """fn over items in order, at most `ahead` in flight on `threads` threads."""
    with ThreadPoolExecutor(threads, thread_name_prefix="audit-read") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
