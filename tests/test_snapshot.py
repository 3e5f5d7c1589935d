"""Snapshots of the embedded chain: a state opens from its newest snapshot plus the
journal records after it, and is the very chain a full replay gives; a snapshot that
does not match the journal, or is damaged, is ignored and the journal replayed."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from node.chain import embedded
from node.chain.connection import Chain
from node.chain.market import Deployment, Market
from node.data.community import Community
from node.data.config import default_config
from node.data.synthetic import generate_community
from node.simulation.replay import simulate
from node.simulation.state import StatePaths
from tests.test_persistence import snapshot

HOMES, FIRST, STEPS = 3, 4, 8
SNAPSHOT_NAME = "chain.snapshot"  # node.chain.embedded.SNAPSHOT_NAME


def community(config, steps: int) -> Community:
    full = generate_community(config)
    return Community(full.homes, full.timestamps[:steps], full.consumption_kwh[:, :steps], full.production_kwh[:, :steps])


@pytest.fixture(scope="module")
def config():
    config = default_config()
    return replace(config, community=replace(config.community, homes=HOMES, seed=4),
                   market=replace(config.market, horizon_steps=4))


@pytest.fixture(scope="module")
def settled(tmp_path_factory, config):
    """FIRST intervals settled; the chain closed with a snapshot (taken at any size here)."""
    root = tmp_path_factory.mktemp("snap") / "state"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedded, "SNAPSHOT_AT_CLOSE", 1, raising=False)
        with Chain.embedded(root) as chain:
            simulate(chain, community(config, FIRST), config, StatePaths(root), progress=False).index.close()
    assert (root / SNAPSHOT_NAME).is_file()
    return root


def opened(root: Path) -> dict:
    with Chain.embedded(root) as chain:
        return snapshot(Market(chain, Deployment.load(root / "deployment.json")), HOMES)


@pytest.fixture
def state(settled, tmp_path):
    copy = tmp_path / "state"
    shutil.copytree(settled, copy)
    return copy


def replayed(root: Path) -> dict:
    """The chain of `root` from its journal alone."""
    bare = Path(tempfile.mkdtemp(prefix="bare-", dir=root.parent)) / "state"
    shutil.copytree(root, bare)
    (bare / SNAPSHOT_NAME).unlink(missing_ok=True)
    return opened(bare)


def test_a_state_opens_from_its_snapshot_as_the_chain_a_full_replay_gives(state, caplog):
    with caplog.at_level(logging.INFO, logger="gridledger.chain"):
        from_snapshot = opened(state)
    assert any("loaded the chain snapshot" in r.getMessage() for r in caplog.records)
    assert not any("replayed" in r.getMessage() for r in caplog.records)
    assert from_snapshot == replayed(state)


def test_records_after_the_snapshot_are_replayed_on_top_and_the_chain_carries_on(state, config):
    with Chain.embedded(state) as chain:  # no new snapshot at close: fewer than SNAPSHOT_AT_CLOSE records
        result = simulate(chain, community(config, STEPS), config, StatePaths(state), progress=False)
        assert result.market.next_interval() == STEPS
        result.index.close()
    assert opened(state) == replayed(state)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "another journal", "other versions"])
def test_a_snapshot_that_does_not_fit_is_ignored_and_the_journal_replayed(state, settled, tmp_path, caplog, damage):
    path = state / SNAPSHOT_NAME
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flipped":
        middle = len(data) // 2
        path.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:])
    elif damage == "another journal":
        lines = (state / "chain.journal").read_bytes().splitlines(keepends=True)
        (state / "chain.journal").write_bytes(b"".join(lines[:-1]))  # the snapshot's last record is gone
    else:
        path.write_bytes(data.replace(b"py-evm=", b"py-evm=0.0.0-", 1))
    with caplog.at_level(logging.WARNING, logger="gridledger.chain"):
        chain_now = opened(state)
    assert any("ignoring the chain snapshot" in r.getMessage() for r in caplog.records)
    if damage != "another journal":
        assert chain_now == replayed(settled)


def test_a_snapshot_never_runs_code(state):
    import pickle

    path = state / SNAPSHOT_NAME
    header = path.read_bytes().split(b"\n", 1)[0]
    payload = pickle.dumps(print)  # refers to a global: refused, like anything that is not data
    path.write_bytes(header + b"\n" + payload + b"\nsha256=0\n")
    assert opened(state) == replayed(state)
