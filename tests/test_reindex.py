"""Rebuilding the index from the chain alone, resuming it, and checking it row by row."""

from __future__ import annotations

import gzip
import sqlite3
from dataclasses import replace

import pytest

from node.chain.connection import Chain
from node.data.community import Community
from node.data.config import default_config
from node.errors import InputError
from node.index.store import Index
from node.index.rebuild import check_index, rebuild_index
from node.simulation.replay import simulate
from node.simulation.state import StatePaths
from node.data.synthetic import generate_community

STEPS = 12
TABLES = {
    "participants": "id",
    "intervals": "interval",
    "entries": "interval, participant",
    "wallet_events": "tx_hash, log_index",
    "capacity_events": "tx_hash, log_index",
    "last_inputs": "interval",
    "interval_inputs": "interval",
    "battery_states": "interval, participant",
    "baseline": "interval, participant",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Four homes, three hours of intervals, settled on the embedded chain."""
    config = default_config()
    config = replace(
        config,
        community=replace(config.community, homes=4, seed=3),
        market=replace(config.market, horizon_steps=8),
    )
    full = generate_community(config)
    community = Community(full.homes, full.timestamps[:STEPS], full.consumption_kwh[:, :STEPS], full.production_kwh[:, :STEPS])
    paths = StatePaths(tmp_path_factory.mktemp("state"))
    result = simulate(Chain.embedded(), community, config, paths, progress=False)
    assert result.market.next_interval() == STEPS
    return result


def dump(index: Index) -> dict[str, list[tuple]]:
    return {table: [tuple(r) for r in index.db.execute(f"SELECT * FROM {table} ORDER BY {order}")] for table, order in TABLES.items()}


def test_the_oracles_index_equals_the_chain(run):
    assert check_index(run.market, run.index) == []


def test_rebuild_from_the_chain_reproduces_the_index_row_for_row(run, tmp_path):
    rebuilt = rebuild_index(run.market, tmp_path / "rebuilt.sqlite", inputs_from=run.index, progress=False, chunk_blocks=7)
    assert check_index(run.market, rebuilt) == []
    assert dump(rebuilt) == dump(run.index)
    assert rebuilt.last_block == run.market.chain.w3.eth.block_number
    assert rebuilt.meta()["currency"] == run.index.meta()["currency"]


def test_interrupted_rebuild_resumes_where_it_stopped(run, tmp_path, monkeypatch):
    market = run.market
    path = tmp_path / "rebuilt.sqlite"
    first = rebuild_index(market, path, inputs_from=run.index, progress=False, chunk_blocks=5, max_chunks=2)
    assert first.last_block == market.deployment.block + 9
    assert check_index(market, first)  # half done: differences remain
    first.close()

    ranges = []
    logs = market.logs
    monkeypatch.setattr(market, "logs", lambda low, high, *names: ranges.append((low, high)) or logs(low, high, *names))
    resumed = rebuild_index(market, path, inputs_from=run.index, progress=False, chunk_blocks=5)
    assert ranges[0][0] == market.deployment.block + 10  # nothing read twice
    assert check_index(market, resumed) == []
    assert dump(resumed) == dump(run.index)


def test_rebuild_without_the_inputs_store_reports_the_inputs_the_chain_cannot_hold(run, tmp_path):
    rebuilt = rebuild_index(run.market, tmp_path / "bare.sqlite", progress=False)  # tmp_path/inputs: an empty store
    differences = check_index(run.market, rebuilt)
    assert len(differences) == STEPS
    assert all(d.startswith("inputs: interval ") and "are not in the inputs store" in d for d in differences)
    assert check_index(run.market, rebuilt, inputs=False) == []


def test_rebuild_refuses_an_index_of_another_market(run, tmp_path):
    other = Index(tmp_path / "other.sqlite")
    other.set_meta(market="0x" + "12" * 20)
    other.close()
    with pytest.raises(InputError, match="rebuild into a new file"):
        rebuild_index(run.market, tmp_path / "other.sqlite", progress=False)


@pytest.fixture
def copy(run, tmp_path):
    return rebuild_index(run.market, tmp_path / "copy.sqlite", inputs_from=run.index, progress=False)


def test_check_names_a_tampered_settlement_entry(run, copy):
    row = copy.db.execute("SELECT amount FROM entries WHERE interval = 5 AND participant = 2").fetchone()
    copy.db.execute("UPDATE entries SET amount = amount + 1 WHERE interval = 5 AND participant = 2")
    differences = check_index(run.market, copy)
    assert differences == [
        f"entries: interval 5, participant 2: amount is {row['amount'] + 1} in the index, {row['amount']} on chain",
        f"balances: participant 2 sums to {run.market.balance(2) + 1} in the index, the chain's balance is {run.market.balance(2)}",
    ]


def test_check_names_missing_and_invented_rows(run, copy):
    deposit = copy.db.execute("SELECT tx_hash, log_index, participant, amount FROM wallet_events WHERE participant = 3").fetchone()
    copy.db.execute("DELETE FROM wallet_events WHERE participant = 3")
    copy.db.execute("INSERT INTO entries VALUES (99, 1, 0, 0, 0)")
    differences = check_index(run.market, copy)
    assert f"wallet_events: tx_hash {deposit['tx_hash']}, log_index {deposit['log_index']} is on chain but missing from the index" in differences
    assert "entries: interval 99, participant 1 is in the index but not on chain" in differences
    assert f"balances: participant 3 sums to {run.market.balance(3) - deposit['amount']} in the index, the chain's balance is {run.market.balance(3)}" in differences
    assert len(differences) == 3


def test_check_names_tampered_participant_and_interval_header(run, copy):
    copy.db.execute("UPDATE participants SET name = 'mallory' WHERE id = 1")
    copy.db.execute("UPDATE intervals SET p2p_price = p2p_price + 7 WHERE interval = 2")
    differences = check_index(run.market, copy)
    name = run.index.participant(1)["name"]
    price = run.index.interval(2)["p2p_price"]
    assert differences == [
        f"participants: id 1: name is 'mallory' in the index, '{name}' on chain",
        f"intervals: interval 2: p2p_price is {price + 7} in the index, {price} on chain",
    ]


def test_check_names_inputs_that_do_not_hash_to_the_commitment(run, copy):
    digest = copy.interval(4)["inputs_hash"]
    body = copy.inputs(digest).replace(b'"interval":4', b'"interval":40')
    copy.inputs_store.path(digest).write_bytes(gzip.compress(body))
    (difference,) = check_index(run.market, copy)
    assert difference.startswith(f"inputs: interval 4: {copy.inputs_store.path(digest)} does not hash to its name")


def test_check_names_a_forged_role_grant(run, copy):
    """The index's role history is checked against the chain's RoleGranted/RoleRevoked
    too: /admin's list of role holders is only as good as it."""
    grant = copy.db.execute("SELECT tx_hash, log_index, account FROM role_events WHERE kind = 'grant'").fetchone()
    copy.db.execute("UPDATE role_events SET account = ? WHERE tx_hash = ? AND log_index = ?",
                    ("0x" + "66" * 20, grant["tx_hash"], grant["log_index"]))
    assert check_index(run.market, copy) == [
        f"role_events: tx_hash {grant['tx_hash']}, log_index {grant['log_index']}: account is '0x{'66' * 20}' in the index, "
        f"'{grant['account']}' on chain"
    ]


def test_an_index_from_before_the_pricing_column_opens_and_says_uniform(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.execute("""CREATE TABLE intervals (
        interval INTEGER PRIMARY KEY, block INTEGER NOT NULL, tx_hash TEXT NOT NULL,
        inputs_hash TEXT NOT NULL, buy_price INTEGER NOT NULL, sell_price INTEGER NOT NULL,
        p2p_price INTEGER NOT NULL, grid_import_wh INTEGER NOT NULL, grid_export_wh INTEGER NOT NULL,
        grid_amount INTEGER NOT NULL, participants INTEGER NOT NULL, gas_used INTEGER)""")
    db.execute("INSERT INTO intervals VALUES (7, 1, '0x01', '0x02', 3, 1, 2, 0, 0, 0, 0, NULL)")
    db.commit()
    db.close()
    index = Index(path)
    assert dict(index.db.execute("SELECT interval, pay_as_bid FROM intervals").fetchone()) == {"interval": 7, "pay_as_bid": 0}
