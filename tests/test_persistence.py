"""The embedded chain keeps its state in a journal: a chain reopened from its state
directory is the chain that was closed, to the event, and a damaged or foreign
journal is reported instead of silently giving a different chain."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from node.chain.connection import EMBEDDED_KEYS, Chain
from node.data.config import default_config
from node.errors import ChainError
from node.index.store import Index
from node.chain.journal import JOURNAL_NAME, Journal
from node.chain.market import Deployment, Market
from node.oracle.inputs_builder import InputsBuilder
from node.oracle.daemon import Oracle
from node.simulation.meters import SimulatedMeters
from node.units import UNITS_PER_TOKEN
from node.simulation.replay import open_market, simulate
from node.simulation.state import StatePaths
from node.data.synthetic import generate_community

FIRST_PART = 12  # intervals settled before the chain is closed


def snapshot(market: Market, participants: int) -> dict:
    chain = market.chain
    head = chain.w3.eth.block_number
    events = market.logs(market.deployment.block, head)
    receipts = [chain.w3.eth.get_transaction_receipt(e.tx_hash) for e in events[:: max(1, len(events) // 20)]]
    return {
        "head": head,
        "next_interval": market.next_interval(),
        "balances": [market.balance(p) for p in range(participants + 1)],
        "events": events,
        "receipts": [(r["transactionHash"], r["blockNumber"], r["status"], r["gasUsed"]) for r in receipts],
        "timestamps": [chain.w3.eth.get_block(n)["timestamp"] for n in range(head + 1)],
        "nonces": {a.address: chain.w3.eth.get_transaction_count(a.address) for a in vars(chain.operators).values()},
    }


@pytest.fixture(scope="module")
def config():
    config = default_config()
    return replace(config, community=replace(config.community, homes=5, days=1, seed=11))


@pytest.fixture(scope="module")
def half_run(tmp_path_factory, config):
    """A simulation stopped after FIRST_PART intervals, its chain closed."""
    community = generate_community(config)
    paths = StatePaths(tmp_path_factory.mktemp("state"))
    chain = Chain.embedded(paths.root)
    index = Index(paths.index)
    market, ids = open_market(chain, community, config, paths, index)
    builder = InputsBuilder(community, config, ids)
    meters = SimulatedMeters.of(market, community, config, ids, paths.meters)
    Oracle(market, index, builder, meters=meters).run(until=builder.first_interval + FIRST_PART, progress=False)
    before = snapshot(market, len(ids))
    chain.close()
    index.close()
    return paths, community, before


def test_a_reopened_chain_has_every_block_event_and_balance(half_run):
    paths, community, before = half_run
    started = time.perf_counter()
    with Chain.embedded(paths.root) as chain:
        seconds = time.perf_counter() - started
        market = Market(chain, Deployment.load(paths.deployment))
        after = snapshot(market, len(community.homes))
    assert after == before
    assert before["next_interval"] == FIRST_PART
    print(f"reopened {before['head']} transactions in {seconds:.2f} s ({before['head'] / seconds:.0f} tx/s)")


def test_a_reopened_chain_carries_on_and_settles_nothing_twice(half_run, config, tmp_path):
    paths, community, _ = half_run
    state = StatePaths(tmp_path / "copy")
    _copy_state(paths.root, state.root)
    # A fresh Chain object learns its nonces from the replayed chain, so its first
    # transaction after the reopen must be accepted.
    with Chain.embedded(state.root) as chain:
        result = simulate(chain, community, config, state, progress=False)
        assert len(result.reports) == 96 - FIRST_PART
        assert result.market.next_interval() == 96
        assert [r["interval"] for r in result.index.intervals(limit=1000)] == list(range(96))
        balances = {p: result.market.balance(p) for p in range(len(community.homes) + 1)}
        assert result.index.balances() == balances
        deposit = int(config.wallets.initial_deposit * UNITS_PER_TOKEN)
        # The homes' deposits and the grid operator's prefunding of the grid's wallet.
        assert sum(balances.values()) == 2 * deposit * len(community.homes)
        settled = [e for e in result.market.logs(result.market.deployment.block, chain.w3.eth.block_number)
                   if e.name == "IntervalSettled"]
        assert sorted(e.args["interval"] for e in settled) == list(range(96))
        result.index.close()


def test_a_torn_last_record_is_dropped_as_if_never_sent(half_run, tmp_path):
    paths, community, before = half_run
    _copy_state(paths.root, tmp_path)
    journal = tmp_path / JOURNAL_NAME
    lines = journal.read_bytes().splitlines(keepends=True)
    # A crash half-way through appending the last transaction.
    journal.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    with Chain.embedded(tmp_path) as chain:
        assert chain.w3.eth.block_number == before["head"] - 1
        assert journal.read_bytes() == b"".join(lines[:-1])
        # The lost transaction was never acknowledged to anyone, so sending it again works.
        chain.fund(chain.operators.oracle.address, 1)
        assert chain.w3.eth.block_number == before["head"]


def test_a_torn_header_of_a_new_journal_starts_an_empty_chain(tmp_path):
    (tmp_path / JOURNAL_NAME).write_bytes(b"gridledger-chain-jour")
    with Chain.embedded(tmp_path) as chain:
        assert chain.w3.eth.block_number == 0
        chain.fund(chain.operators.oracle.address, 1)
    with Chain.embedded(tmp_path) as chain:
        assert chain.w3.eth.block_number == 1


@pytest.mark.parametrize(
    "why, tx",
    [
        ("sender unfunded in this genesis", dict(key="0x" + "ab" * 32, chainId=None)),
        ("signed for another chain id", dict(key=EMBEDDED_KEYS[0], chainId=31337)),
    ],
)
def test_a_journal_from_another_genesis_fails_naming_the_record(tmp_path, why, tx):
    with Chain.embedded(tmp_path) as chain:
        chain.fund(chain.operators.oracle.address, 10**15)  # record 1 replays fine
        chain_id = chain.chain_id
    # A foreign transaction appended as record 2, as if the journal came from elsewhere.
    journal = Journal.open(tmp_path / JOURNAL_NAME, 0)
    signer = Account.from_key(tx["key"])
    nonce = 1 if tx["key"] == EMBEDDED_KEYS[0] else 0
    raw = signer.sign_transaction(
        {"type": 2, "chainId": tx["chainId"] or chain_id, "nonce": nonce, "gas": 21_000, "maxFeePerGas": 10**10,
         "maxPriorityFeePerGas": 1, "to": signer.address, "value": 1, "data": b""}
    ).raw_transaction
    journal.append(raw, int(time.time()) + 60)
    journal.close()
    with pytest.raises(ChainError, match=r"record 2 does not replay.*another chain"):
        Chain.embedded(tmp_path)
    # The failed open released the journal: a second attempt reports the same, not "in use".
    with pytest.raises(ChainError, match="record 2"):
        Chain.embedded(tmp_path)


def test_a_damaged_record_in_the_middle_is_reported(tmp_path):
    with Chain.embedded(tmp_path) as chain:
        for _ in range(3):
            chain.fund(chain.operators.oracle.address, 1)
    journal = tmp_path / JOURNAL_NAME
    lines = journal.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b" 0x", b" 0xzz")
    journal.write_bytes(b"".join(lines))
    with pytest.raises(ChainError, match="record 2 is damaged"):
        Chain.embedded(tmp_path)


def test_two_processes_cannot_share_a_state_directory(tmp_path):
    with Chain.embedded(tmp_path):
        with pytest.raises(ChainError, match="in use by another GridLedger process"):
            Chain.embedded(tmp_path)
    Chain.embedded(tmp_path).close()


def test_a_rejected_transaction_is_not_journaled(tmp_path):
    with Chain.embedded(tmp_path) as chain:
        chain.fund(chain.operators.oracle.address, 1)
        chain._nonces[chain.operators.admin.address] = 7  # a stale nonce: the node rejects the send
        with pytest.raises(ChainError, match="rejected"):
            chain.fund(chain.operators.oracle.address, 1)
        chain.fund(chain.operators.oracle.address, 1)
    assert len((tmp_path / JOURNAL_NAME).read_bytes().splitlines()) == 1 + 2
    with Chain.embedded(tmp_path) as chain:
        assert chain.w3.eth.block_number == 2


def test_a_reverted_transaction_is_journaled_and_replays_reverted(tmp_path):
    with Chain.embedded(tmp_path) as chain:
        market = Market.deploy(chain, import_capacity_wh=10_000, export_capacity_wh=8_000)
        with pytest.raises(ChainError, match="UnknownParticipant"):
            market._send(market.market.functions.deposit(99, 5), chain.operators.admin, 150_000)
        reverted = chain.w3.eth.get_block("latest")["transactions"][0]
    with Chain.embedded(tmp_path) as chain:
        assert chain.w3.eth.get_transaction_receipt(reverted)["status"] == 0
        # The token, the market's eight modules, its router, and the reverted deposit.
        assert chain.w3.eth.block_number == 11


def _copy_state(source: Path, target: Path) -> None:
    import shutil

    shutil.copytree(source, target, dirs_exist_ok=True)
