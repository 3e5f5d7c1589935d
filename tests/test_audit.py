"""The auditor re-derives every settlement from the chain and the committed inputs and
catches what the contract alone cannot: numbers that differ from the clearing."""

from __future__ import annotations

import gzip
from dataclasses import replace

import numpy as np
import pytest

from node.audit.verify import IndexInputs, audit, report
from node.chain.connection import Chain
from node.data.community import Community
from node.data.config import default_config
from node.simulation.setup import deploy_community
from node.index.store import Index
from node.oracle.inputs_builder import InputsBuilder
from node.oracle.daemon import Oracle
from node.simulation.meters import SimulatedMeters
from node.data.synthetic import generate_community
from tests.helpers import settle_shifted_p2p

STEPS = 8


@pytest.fixture
def setup(tmp_path):
    config = default_config()
    config = replace(config, community=replace(config.community, homes=8, seed=3), market=replace(config.market, horizon_steps=8))
    full = generate_community(config)
    # Midday, so that there is P2P trade to tamper with.
    window = slice(48, 48 + STEPS)
    community = Community(full.homes, full.timestamps[window], full.consumption_kwh[:, window], full.production_kwh[:, window])
    chain = Chain.embedded()
    index = Index(tmp_path / "index.sqlite")
    market, ids = deploy_community(chain, community, config, index)
    builder = InputsBuilder(community, config, ids)
    return market, index, builder, Oracle(market, index, builder, meters=SimulatedMeters.of(market, community, config, ids))


def test_honest_settlements_all_pass(setup):
    market, index, builder, oracle = setup
    oracle.run(progress=False)
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert len(verdicts) == STEPS
    assert all(v.ok for v in verdicts), report(verdicts)


def test_tampered_inputs_are_caught(setup):
    market, index, builder, oracle = setup
    oracle.run(progress=False)
    row = index.interval(builder.first_interval + 3)
    body = index.inputs(row["inputs_hash"]).replace(b'"p2p_cost":5000', b'"p2p_cost":4000')

    class Mirror:
        """A source that serves whatever it likes (a server the auditor need not trust)."""

        def fetch(self, digest: str) -> bytes:
            return body if digest == row["inputs_hash"] else index.inputs(digest)

        def readings(self, interval: int):
            return index.readings(interval) or None

    verdicts = audit(market, Mirror(), progress=False)
    bad = [v for v in verdicts if not v.ok]
    assert [v.interval for v in bad] == [builder.first_interval + 3]
    assert "do not match the committed hash" in bad[0].reasons[0]

    # The same tampering in the inputs store is caught by the store itself.
    index.inputs_store.path(row["inputs_hash"]).write_bytes(gzip.compress(body))
    bad = [v for v in audit(market, IndexInputs(index), progress=False) if not v.ok]
    assert [v.interval for v in bad] == [builder.first_interval + 3]
    assert "does not hash to its name" in bad[0].reasons[0]


def test_missing_inputs_are_caught(setup):
    market, index, builder, oracle = setup
    oracle.run(progress=False)
    row = index.interval(builder.first_interval)
    index.inputs_store.path(row["inputs_hash"]).unlink()
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert not verdicts[0].ok and "unavailable" in verdicts[0].reasons[0]


def test_settlement_that_passes_the_contract_but_differs_from_the_clearing_is_caught(setup):
    market, index, builder, oracle = setup
    last = builder.intervals.stop - 1
    oracle.run(until=last, progress=False)
    settle_shifted_p2p(market, index, oracle, builder, last)
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert all(v.ok for v in verdicts[:-1])
    assert not verdicts[-1].ok
    assert "differ from the re-run" in " ".join(verdicts[-1].reasons)


def test_an_interval_closed_empty_instead_of_settled_is_caught(setup):
    # The contract accepts an empty settlement (an auction nobody bid in), so a rogue
    # oracle could close a community interval without billing anyone; the re-run shows it.
    from node.clearing.pricing import priced_settlement

    market, index, builder, oracle = setup
    k = builder.first_interval
    inputs = oracle.inputs(k, builder.initial_soc())
    index.store_inputs(inputs)
    none = np.zeros(0, dtype=np.int64)
    empty = priced_settlement(k, inputs.hash(), none, none, none, inputs.buy_price[0], inputs.sell_price[0],
                              inputs.sell_price[0])
    receipt = market.settle(empty)
    assert market.next_interval() == k + 1
    index.apply(receipt.events, {receipt.tx_hash: receipt.gas_used}, up_to_block=receipt.block)
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert not verdicts[0].ok
    assert "differ from the re-run" in " ".join(verdicts[0].reasons)
