"""The oracle killed with SIGKILL at any point ends, after restarts, in exactly the
state of a run that was never interrupted: no interval missing, none settled twice,
the index equal to the chain."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest

from node.chain.connection import Chain
from node.index.store import Index
from node.chain.market import Deployment, Market
from node.simulation.state import StatePaths
from tests.helpers import settle_community, settled_entries, start_gridledger, write_config

CONFIG = """
[market]
horizon_steps = 16
[community]
homes = 6
days = 1
seed = 11
"""
NAMED_POINTS = ["before_inputs", "before_send", "after_send", "after_journal", "before_index", "after_index"]
RANDOM_KILLS = 4


def run_oracle(state: Path, config: Path, crash_at: str | None = None, kill_after: float | None = None) -> int:
    env = dict(os.environ)
    env.pop("GRIDLEDGER_CRASH_AT", None)
    if crash_at:
        env["GRIDLEDGER_CRASH_AT"] = crash_at
    process = start_gridledger("-q", "simulate", "--state", str(state), "--config", str(config), "--no-progress",
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is not None:
        try:
            process.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
    _, err = process.communicate(timeout=300)
    if process.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"oracle failed with {process.returncode}: {err.decode()[-2000:]}")
    return process.returncode


def chain_state(state: Path) -> tuple[int, dict[int, int], list[tuple]]:
    with Chain.embedded(state) as chain:
        market = Market(chain, Deployment.load(state / "deployment.json"))
        count = market.participant_count()
        balances = {p: market.balance(p) for p in range(count)}
        events = market.logs(market.deployment.block, chain.w3.eth.block_number)
        entries = [(k, pid, e["gridWh"], e["p2pWh"], e["amount"])
                   for k, settled in sorted(settled_entries(events).items()) for pid, e in sorted(settled.items())]
        assert entries, "no settled entries to compare"
        return market.next_interval(), balances, entries


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("config"), CONFIG)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, config_file):
    """The same community settled without interruption."""
    state = tmp_path_factory.mktemp("reference")
    with Chain.embedded(state) as chain:
        settle_community(chain, config_file, StatePaths(state))
    return chain_state(state)


def test_oracle_killed_at_every_dangerous_point_and_at_random_ends_like_an_uninterrupted_run(tmp_path, config_file, reference):
    rng = random.Random(20261121)
    state = tmp_path / "state"
    # Killed during the set-up: after deploying, after registering, after the mandates.
    kills = 0
    for n in (2, 3, 4):
        assert run_oracle(state, config_file, crash_at=f"after_journal:{n}") == -signal.SIGKILL
        kills += 1
    assert run_oracle(state, config_file, crash_at="after_index:1") == -signal.SIGKILL
    kills += 1
    for point in NAMED_POINTS:
        assert run_oracle(state, config_file, crash_at=f"{point}:{rng.randint(2, 12)}") == -signal.SIGKILL, point
        kills += 1
    for _ in range(RANDOM_KILLS):
        if run_oracle(state, config_file, kill_after=rng.uniform(2.5, 5.0)) == -signal.SIGKILL:
            kills += 1
    assert run_oracle(state, config_file) == 0
    print(f"\ncrash test: {kills} SIGKILLs ({len(NAMED_POINTS) + 4} at named points, 3 of them during set-up, the rest at random times)")

    next_interval, balances, entries = chain_state(state)
    ref_next, ref_balances, ref_entries = reference
    assert next_interval == ref_next == 96
    assert balances == ref_balances
    assert entries == ref_entries  # same settlements, in the same order: none missing, none twice

    index = Index(state / "index.sqlite")
    assert [r["interval"] for r in index.intervals(limit=1000)] == list(range(96))
    indexed = [
        (k, e["participant"], e["grid_wh"], e["p2p_wh"], e["amount"])
        for k in range(96)
        for e in index.interval(k)["entries"]
    ]
    assert indexed == entries
    assert index.balances() == balances
