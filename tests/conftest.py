"""Shared fixtures: a real embedded chain with a deployed market."""

from __future__ import annotations

import numpy as np
import pytest
from eth_account import Account

from node.chain import Chain
from node.market import Market

BUY, SELL, P2P = 300_000, 60_000, 150_000  # minor units per kWh


@pytest.fixture
def chain() -> Chain:
    return Chain.embedded()


@pytest.fixture
def market(chain: Chain) -> Market:
    """A market with 4 funded homes (ids 1..4) and 10 kWh import / 8 kWh export capacity."""
    market = Market.deploy(chain, import_capacity_wh=10_000, export_capacity_wh=8_000)
    owners = [Account.from_key(f"0x{0xA0 + i:064x}").address for i in range(4)]
    market.register(owners, [0] * 4, [f"home-{i + 1}" for i in range(4)])
    market.fund_wallets({pid: 10_000_000 for pid in range(1, 5)})
    return market


@pytest.fixture
def homes() -> np.ndarray:
    return np.arange(1, 5, dtype=np.int64)
