"""An interval settles at most MAX_ENTRIES entries (MarketStorage.MAX_ENTRIES, 10,000) in
at most MAX_CHUNKS chunks, chunked or not: a dispute names every chunk and reverses the
interval chunk by chunk. A larger interval or community is refused before anything is
sent, naming the limit, and the contract refuses it too. An interval of exactly the limit
settles in chunks and is disputed and reversed in bench/bench_chunked.py (some 20 minutes
on the embedded chain); tests/test_chunked_disputes.py does it at 2,500."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from node.chain.chunks import MAX_CHUNK_ENTRIES, MAX_CHUNKS, MAX_ENTRIES, MAX_TX_GAS, plan_chunks, verify_gas
from node.chain.market import Market
from node.clearing.pricing import priced_settlement
from node.data.config import default_config
from node.data.synthetic import generate_community
from node.errors import ChainError, InputError, SettlementError
from node.simulation.replay import simulate
from node.simulation.state import StatePaths
from tests.conftest import BUY, SELL

ROOT = Path(__file__).resolve().parents[1]


def test_the_oracles_limits_are_the_contracts() -> None:
    source = (ROOT / "contracts/src/MarketStorage.sol").read_text()
    assert int(re.search(r"MAX_ENTRIES = (\d+);", source).group(1)) == MAX_ENTRIES == 10_000
    assert int(re.search(r"MAX_CHUNKS = (\d+);", source).group(1)) == MAX_CHUNKS
    assert int(re.search(r"MAX_CHUNK_ENTRIES = (\d+);", source).group(1)) == MAX_CHUNK_ENTRIES


def _settlement(market: Market, n: int):
    """An interval of `n` homes (ids 1..n) importing 100 Wh each from the grid."""
    k = market.next_interval()
    return priced_settlement(k, b"\1" * 32, np.arange(1, n + 1), np.full(n, 100), np.zeros(n, dtype=np.int64),
                             BUY, SELL, SELL)


def test_an_interval_over_the_limit_is_refused_before_any_transaction(market: Market) -> None:
    block = market.chain.w3.eth.block_number
    for settle in (market.settle, market.settle_chunked):
        with pytest.raises(SettlementError, match=f"{MAX_ENTRIES + 1:,} entries.*at most {MAX_ENTRIES:,}"):
            settle(_settlement(market, MAX_ENTRIES + 1))
    assert market.chain.w3.eth.block_number == block  # no chunk verified, no gas spent
    assert not market.pending().open


def test_a_community_over_the_limit_is_refused_before_a_contract_is_deployed(chain, tmp_path) -> None:
    config = default_config()
    config = replace(config, community=replace(config.community, homes=MAX_ENTRIES + 1, days=1))
    block = chain.w3.eth.block_number
    with pytest.raises(InputError, match=f"{MAX_ENTRIES + 1:,} homes.*at most {MAX_ENTRIES:,}"):
        simulate(chain, generate_community(config), config, StatePaths(tmp_path), progress=False)
    assert chain.w3.eth.block_number == block  # no contract deployed, no home registered
    assert not StatePaths(tmp_path).index.exists()


def test_the_contract_refuses_an_interval_over_the_limit_before_any_entry(market: Market) -> None:
    s = _settlement(market, MAX_ENTRIES + 1)
    call = market.market.functions.settle(s.header(), s.entries(), [])
    with pytest.raises(ChainError, match=rf"TooManyEntries\(interval=0, entries={MAX_ENTRIES + 1}, max={MAX_ENTRIES}\)"):
        market.chain.transact(call, market.chain.operators.oracle, MAX_TX_GAS)


def test_a_chunk_plan_over_the_contracts_chunks_is_refused_before_any_transaction(market: Market) -> None:
    block = market.chain.w3.eth.block_number
    one_entry_per_chunk = verify_gas(1, 1)
    with pytest.raises(SettlementError, match=rf"would take {MAX_CHUNKS + 1} chunks.*at most {MAX_CHUNKS}"):
        market.settle_chunked(_settlement(market, MAX_CHUNKS + 1), budget=one_entry_per_chunk)
    assert market.chain.w3.eth.block_number == block


def test_no_chunk_holds_more_entries_than_its_reversal_can_take_back_in_one_transaction() -> None:
    words = [pid << 224 for pid in range(1, 3_001)]
    assert [c.end - c.start for c in plan_chunks(words, budget=10**9)] == [MAX_CHUNK_ENTRIES, MAX_CHUNK_ENTRIES, 500]
