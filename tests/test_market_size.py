"""An interval settles at most MAX_ENTRIES entries (MarketStorage.MAX_ENTRIES), chunked or
not: a dispute must be able to reverse an interval in one transaction. A larger interval
or community is refused before anything is sent, naming the limit; one of exactly that
size settles in chunks."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from node.chain.chunks import MAX_ENTRIES
from node.chain.market import Market
from node.clearing.pricing import priced_settlement
from node.data.config import default_config
from node.data.synthetic import generate_community
from node.errors import InputError, SettlementError
from node.simulation.replay import simulate
from node.simulation.state import StatePaths
from tests.conftest import BUY, SELL

ROOT = Path(__file__).resolve().parents[1]


def test_the_oracles_limit_is_the_contracts() -> None:
    source = (ROOT / "contracts/src/MarketStorage.sol").read_text()
    assert int(re.search(r"MAX_ENTRIES = (\d+);", source).group(1)) == MAX_ENTRIES


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


def test_an_interval_of_exactly_the_limit_settles_in_chunks(chain) -> None:
    import sys

    sys.path.insert(0, str(ROOT / "bench"))
    from bench_settlement_gas import _community, _energies, _interval, _market

    market = _market(chain, pay_as_bid=False)
    _, _, ids = _community(market, MAX_ENTRIES)
    settlement = _interval(market, ids, _energies(MAX_ENTRIES, np.random.default_rng(3)), pay_as_bid=False)
    receipt = market.settle(settlement)
    assert len(receipt.parts) >= 2  # over one transaction's gas: verified and applied in chunks
    assert market.next_interval() == settlement.interval + 1
    assert not market.pending().open
