"""The whole flow on a real node: anvil with the per-transaction gas cap of EIP-7825,
and anvil going away and coming back in the middle of a run.

anvil comes from `npm ci` (package.json pins @foundry-rs/anvil-linux-amd64). These tests do not
skip when it is missing: CI installs it, and a skipped node test proves nothing.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from node.chain.anvil import start_anvil
from node.chain.connection import Chain
from node.errors import ChainError
from node.index.store import Index
from node.chain.market import Deployment, Market
from node.simulation.state import StatePaths
from tests.helpers import settle_community, start_gridledger, write_config

INTERVALS = 48  # one day of 30-minute intervals
COMMUNITY = """
[market]
interval_minutes = 30
horizon_steps = 48

[community]
homes = 6
days = 1
seed = 5
"""


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("config"), COMMUNITY)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, config_file):
    """The reference: the community settled on anvil without interruption."""
    state = tmp_path_factory.mktemp("anvil-run")
    started = time.perf_counter()
    with start_anvil(state / "anvil-state.json", port=0, gas_cap=True) as anvil:
        chain = Chain.connect(anvil.url)
        result = settle_community(chain, config_file, StatePaths(state / "gridledger"))
        balances = {p: result.market.balance(p) for p in range(len(result.participants) + 1)}
        events = result.market.logs(result.market.deployment.block, chain.w3.eth.block_number)
        indexed = result.index.balances()
        result.index.close()
    print(f"anvil: {INTERVALS} intervals settled in {time.perf_counter() - started:.1f} s")
    return balances, indexed, events, result.kpis


def test_a_day_settles_on_anvil_with_the_per_tx_gas_cap(uninterrupted):
    balances, indexed, events, kpis = uninterrupted
    assert kpis["intervals"] == INTERVALS
    assert sorted(e.args["interval"] for e in events if e.name == "IntervalSettled") == list(range(INTERVALS))
    assert indexed == balances
    assert kpis["p2p_kwh"] > 0


def test_anvil_restarted_mid_run_loses_nothing_and_settles_nothing_twice(tmp_path, config_file, uninterrupted):
    """`gridledger simulate --rpc` keeps running while anvil is stopped and started
    again from its state file, and ends exactly where the uninterrupted run ended."""
    state_file, gridledger_state = tmp_path / "anvil-state.json", tmp_path / "gridledger"
    anvil = start_anvil(state_file, port=0, gas_cap=True)
    started = time.perf_counter()
    run = start_gridledger("simulate", "--config", str(config_file), "--rpc", anvil.url, "--state", str(gridledger_state),
                           "--no-progress", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(run.stdout), daemon=True)
    reader.start()
    try:
        _wait_for(lambda: any("interval 10 (" in line for line in output), run, output, "interval 10 to settle")
        anvil.stop()
        _wait_for(lambda: any("not answering" in line for line in output), run, output, "the oracle to notice")
        time.sleep(3)  # long enough for several retries
        anvil = start_anvil(state_file, port=anvil.port, gas_cap=True)
        assert run.wait(timeout=90) == 0, "".join(output)
        reader.join(5)
        seconds = time.perf_counter() - started

        log = "".join(output)
        assert "retrying in" in log and "answers again" in log
        chain = Chain.connect(anvil.url)
        market = Market(chain, Deployment.load(gridledger_state / "deployment.json"))
        balances, _, events, _ = uninterrupted
        settled = [e.args["interval"] for e in market.logs(market.deployment.block, chain.w3.eth.block_number)
                   if e.name == "IntervalSettled"]
        assert sorted(settled) == list(range(INTERVALS))
        assert {p: market.balance(p) for p in balances} == balances
        index = Index(gridledger_state / "index.sqlite")
        assert index.balances() == balances
        assert [r["interval"] for r in index.intervals(limit=1000)] == list(range(INTERVALS))
        index.close()
        print(f"anvil restart run: {INTERVALS} intervals in {seconds:.1f} s including a 3 s outage")
    finally:
        if run.poll() is None:
            run.kill()
        anvil.stop()


def test_a_transaction_the_restarted_node_lost_is_sent_again(tmp_path):
    """With timed mining a sent transaction waits in anvil's mempool, which a restart
    loses: the chain sends the same signed bytes again once the node is back."""
    state_file = tmp_path / "anvil-state.json"
    anvil = start_anvil(state_file, port=0, block_time=2)
    try:
        chain = Chain.connect(anvil.url)
        recipient = "0x" + "42" * 20
        done: dict = {}

        def send() -> None:
            try:
                chain.fund(recipient, 12345)
                done["ok"] = True
            except Exception as exc:  # the assertion below shows it
                done["error"] = exc

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.3)  # sent, not yet mined
        anvil.stop()
        anvil = start_anvil(state_file, port=anvil.port, block_time=2)
        sender.join(60)
        assert done == {"ok": True}
        assert chain.w3.eth.get_balance(recipient) == 12345
        assert chain.w3.eth.get_transaction_count(chain.operators.admin.address) == 1
    finally:
        anvil.stop()


def test_a_node_that_stays_away_is_given_up_on_with_a_clear_error(tmp_path):
    anvil = start_anvil(None, port=0)
    chain = Chain.connect(anvil.url, retry_for=2)
    anvil.stop()
    started = time.perf_counter()
    with pytest.raises(ChainError, match=r"not answering \(ConnectionError\).*giving up"):
        chain.w3.eth.block_number
    assert time.perf_counter() - started < 5


def test_connecting_to_no_node_fails_at_once(tmp_path):
    from node.chain.anvil import free_port

    started = time.perf_counter()
    with pytest.raises(ChainError, match="cannot reach a JSON-RPC node"):
        Chain.connect(f"http://127.0.0.1:{free_port()}")
    assert time.perf_counter() - started < 2


def _wait_for(condition, run: subprocess.Popen, output: list[str], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if run.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}:\n" + "".join(output))
        time.sleep(0.05)
