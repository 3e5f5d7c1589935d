"""The chain finds the market: a lost deployment.json is rebuilt from the chain (never
answered by a second market), a wrong one is refused, and an index of another market
is never mixed into this one's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from node.chain.build import load_artifact
from node.chain.connection import Chain
from node.chain.market import Deployment, Market
from node.cli.main import main
from node.index.rebuild import check_index
from node.index.store import Index
from tests.helpers import SMALL_CONFIG, meter_rows, write_config, write_csv

HOMES, FIRST, MORE = 3, 4, 4


def simulate(state: Path, data: Path, config: Path, *extra: str) -> int:
    return main(["-q", "simulate", "--data", str(data), "--config", str(config), "--state", str(state),
                 "--no-progress", *extra])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    first = write_csv(folder, meter_rows(HOMES, FIRST), name="first.csv")
    both = write_csv(folder, meter_rows(HOMES, FIRST + MORE), name="both.csv")
    return first, both, write_config(folder, SMALL_CONFIG)


@pytest.fixture(scope="module")
def half_settled(tmp_path_factory, files):
    """A state that settled the first FIRST intervals of the data."""
    first, _, config = files
    state = tmp_path_factory.mktemp("half") / "state"
    assert simulate(state, first, config) == 0
    return state


@pytest.fixture
def state(half_settled, tmp_path):
    """A copy of `half_settled` to attack."""
    copy = tmp_path / "state"
    shutil.copytree(half_settled, copy)
    return copy


def markets(state: Path) -> list[str]:
    """Every contract the admin key created that answers `moduleOf()` (a market's router;
    its modules answer their own functions only), found by walking its nonces: checked
    independently of node.chain.discovery."""
    from web3.utils.address import get_create_address

    with Chain.embedded(state) as chain:
        admin = chain.operators.admin.address
        found = []
        for nonce in range(chain.w3.eth.get_transaction_count(admin)):
            address = get_create_address(admin, nonce)
            if chain.w3.eth.get_code(address):
                try:
                    chain.w3.eth.contract(address=address, abi=load_artifact("EnergyMarket")["abi"]).functions.moduleOf(b"\0" * 4).call()
                    found.append(address)
                except Exception:
                    pass
        return found


def test_a_lost_deployment_record_is_rebuilt_from_the_chain_and_nothing_is_settled_twice(state, files, capsys):
    _, both, config = files
    record = json.loads((state / "deployment.json").read_text())
    (state / "deployment.json").unlink()
    assert simulate(state, both, config) == 0
    assert json.loads((state / "deployment.json").read_text()) == record
    assert markets(state) == [record["market"]]  # no second market
    with Chain.embedded(state) as chain:
        market = Market(chain, Deployment.load(state / "deployment.json"))
        assert market.next_interval() == FIRST + MORE
        index = Index(state / "index.sqlite")
        assert check_index(market, index) == []  # one market in the index, equal to the chain
        assert index.summary()["intervals"] == FIRST + MORE


def test_the_chain_lists_the_market_with_the_block_it_was_created_in(state):
    from node.chain.discovery import markets_deployed_by

    record = Deployment.load(state / "deployment.json")
    with Chain.embedded(state) as chain:
        assert markets_deployed_by(chain, chain.operators.admin.address) == [record]


def test_a_record_naming_a_contract_that_is_no_market_is_refused_and_changes_nothing(state, files, capsys):
    _, both, config = files
    record = json.loads((state / "deployment.json").read_text())
    (state / "deployment.json").write_text(json.dumps(record | {"market": record["token"]}))
    journal = (state / "chain.journal").read_bytes()
    assert simulate(state, both, config) == 2
    err = capsys.readouterr().err
    assert "which is not a GridLedger market" in err and "move the file away" in err
    assert (state / "chain.journal").read_bytes() == journal


def test_a_record_naming_no_contract_is_refused(state, files, capsys):
    _, both, config = files
    record = json.loads((state / "deployment.json").read_text())
    (state / "deployment.json").write_text(json.dumps(record | {"market": "0x" + "42" * 20}))
    journal = (state / "chain.journal").read_bytes()
    assert simulate(state, both, config) == 2
    assert "no market contract at" in capsys.readouterr().err
    assert (state / "chain.journal").read_bytes() == journal


def test_an_index_of_another_market_is_refused_not_mixed(state, files, capsys):
    _, both, config = files
    index = Index(state / "index.sqlite")
    index.set_meta(market="0x" + "12" * 20)
    index.close()
    assert simulate(state, both, config) == 2
    assert "index rebuild" in capsys.readouterr().err


def test_audit_and_index_check_find_the_market_without_its_record(state, capsys):
    record = json.loads((state / "deployment.json").read_text())
    (state / "deployment.json").unlink()
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 0
    assert json.loads((state / "deployment.json").read_text()) == record
    (state / "deployment.json").unlink()
    assert main(["-q", "index", "check", "--state", str(state), "--no-progress"]) == 0
