"""Shared fixtures: a real embedded chain with a deployed market."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
from eth_account import Account
from hypothesis import settings
from eth_account.signers.local import LocalAccount

from node.intent import keys
from node.chain.connection import Chain
from node.chain.market import Market
from node.intent.signing import Mandate, sign_mandate

# CI draws the same property-test cases on every run (a seed per test), so that whether a
# change lands does not depend on the draw; a local run draws new cases each time and
# keeps any failing one in .hypothesis/ to replay it first next time.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _deepen_property_tests(raw: str) -> None:
    """PROPERTY_DEPTH=N: every property test draws N times its examples (an attack run, not CI's:
    a 40x run found the clearing bug tests/test_clearing_thermal.py now pins). A test's own
    @settings(max_examples=...) outranks any profile, so settings() itself is wrapped."""
    try:
        depth = int(raw)
    except ValueError:
        depth = 0
    if depth < 1:
        raise pytest.UsageError(f"PROPERTY_DEPTH must be a whole number >= 1, got {raw!r}")
    if depth == 1:
        return
    settings.register_profile("deeper", parent=settings.default, max_examples=settings.default.max_examples * depth)
    settings.load_profile("deeper")
    plain_init = settings.__init__

    def deeper_init(self, parent=None, **changes):
        if "max_examples" in changes:
            changes["max_examples"] *= depth
        plain_init(self, parent, **changes)

    settings.__init__ = deeper_init


_deepen_property_tests(os.environ.get("PROPERTY_DEPTH", "1"))

BUY, SELL, P2P = 300_000, 60_000, 150_000  # minor units per kWh
KEYSTORE_PASSWORD = "correct horse"
FAR_FUTURE = 2**40  # unix seconds, some 30,000 years ahead


def home_key(participant: int) -> LocalAccount:
    """The owner key of home `participant` (1..4) of the `market` fixture."""
    return Account.from_key(f"0x{0xA0 + participant - 1:064x}")


def meter_key(participant: int) -> LocalAccount:
    """The meter key of home `participant` of the `market` fixture."""
    return Account.from_key(f"0x{0xE0 + participant - 1:064x}")


def standing_mandate(market: Market, participant: int, nonce: int = 1, max_buy: int = BUY, min_sell: int = SELL,
                     valid_until: int = FAR_FUTURE, key: LocalAccount | None = None):
    """A mandate of `participant` signed by its owner (or `key`) for `market`."""
    mandate = Mandate(participant, max_buy, min_sell, 0, 1_000_000, valid_until, nonce)
    return sign_mandate(key or home_key(participant), market.domain(), mandate)


@pytest.fixture
def chain() -> Chain:
    return Chain.embedded()


def homes_market(chain: Chain, pay_as_bid: bool = False) -> Market:
    """A market (uniform or pay-as-bid terms at BUY/SELL) with 4 funded homes (ids 1..4)
    without mandates; 10 kWh import / 8 kWh export capacity."""
    from dataclasses import replace

    from node.chain.deploy import MarketSetup
    from node.chain.market import DEFAULT_EPOCH_AGO, DEFAULT_TARIFFS

    now = chain.w3.eth.get_block("latest")["timestamp"]
    epoch = now - now % 900 - DEFAULT_EPOCH_AGO
    tariffs = replace(DEFAULT_TARIFFS, pay_as_bid=pay_as_bid)
    market = Market.deploy(chain, 10_000, 8_000, setup=MarketSetup(10_000, 8_000, epoch, tariffs))
    owners = [home_key(pid).address for pid in range(1, 5)]
    market.register(owners, [0] * 4, [f"home-{pid}" for pid in range(1, 5)],
                    [meter_key(pid).address for pid in range(1, 5)])
    # The grid's wallet is prepaid too (it pays for exports), and the oracle's bond must
    # cover a dispute for it to settle.
    market.fund_wallets({pid: 10_000_000 for pid in range(0, 5)})
    market.deposit_bond(market.bond()[1])
    return market


@pytest.fixture
def bare_market(chain: Chain) -> Market:
    """4 funded homes (ids 1..4) without mandates; 10 kWh import / 8 kWh export capacity."""
    return homes_market(chain)


@pytest.fixture
def market(bare_market: Market) -> Market:
    """`bare_market` whose homes signed standing mandates to buy at up to BUY and sell at
    no less than SELL, so any settlement at the tariffs is authorised."""
    bare_market.submit_mandates([standing_mandate(bare_market, pid) for pid in range(1, 5)])
    return bare_market


@pytest.fixture
def homes() -> np.ndarray:
    return np.arange(1, 5, dtype=np.int64)


@contextmanager
def served(app) -> Iterator[str]:
    """`app` on a free port of 127.0.0.1, in a thread, for as long as the block runs;
    yields its base URL."""
    from werkzeug.serving import make_server

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=5)
        httpd.server_close()


@pytest.fixture
def keystore_password(monkeypatch: pytest.MonkeyPatch) -> str:
    """Real scrypt at a tiny cost (see tests/test_keys.py), KEYSTORE_PASSWORD in the
    environment and no default keystore, for the CLIs that unlock keys."""
    monkeypatch.setattr(keys, "KDF", ("scrypt", 2))
    monkeypatch.setenv(keys.PASSWORD_ENV, KEYSTORE_PASSWORD)
    monkeypatch.delenv(keys.KEYSTORE_ENV, raising=False)
    return KEYSTORE_PASSWORD


@pytest.fixture(scope="session")
def dask_cluster():
    """A local Dask cluster of two worker processes (one thread each): the engine that
    `--cluster ADDRESS` hands jobs to. Yields the scheduler's address."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address
