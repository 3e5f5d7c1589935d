"""`gridledger dispute` against a rogue oracle, as a participant or an auditor would use
it on a state directory: a dry run says what the settlement and the meter say and whether
the chain would take the dispute; the dispute reverses the interval and pays the sender
from the oracle's bond; a reading that agrees, is forged or is of another interval is
refused before any gas is spent; the index and the web UI then show the dispute."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from node.chain.connection import Chain
from node.chain.market import Deployment, Market
from node.cli.main import main
from node.index.store import Index

DISPUTER = Account.from_key("0x" + "d15e" * 16)
PASSWORD = "correct horse"


@pytest.fixture
def rogue(tmp_path):
    """A 5-home community settled honestly for 4 intervals into a state directory, then a
    fifth interval the oracle settled on inflated meter data (home 1 +5 kWh) while the
    meters signed what happened; the disputer holds ETH for gas and a keystore file."""
    from node.simulation.replay import simulate
    from node.simulation.state import StatePaths
    from tests.test_attacks import five_homes, inflated_interval

    state = tmp_path / "state"
    config, community, honest = five_homes()
    chain = Chain.embedded(state)
    result = simulate(chain, honest, config, StatePaths(state), progress=False)
    k, settlement, readings = inflated_interval(result, community, config, state / "meters.json")
    receipt = result.market.settle(settlement)
    result.index.apply(receipt.events, receipt.gas_by_tx, up_to_block=receipt.block)
    chain.fund(DISPUTER.address, 10**18)
    result.index.close()
    chain.close()
    keystore = tmp_path / "disputer.json"
    keystore.write_text(json.dumps(Account.encrypt(DISPUTER.key, PASSWORD)))
    return state, k, {r.reading.participant: r for r in readings}, keystore


def run(*args: str) -> int:
    return main(["-q", "dispute", *args])


def test_a_reading_the_settlement_contradicts_disputes_it_from_the_command_line(rogue, capsys, monkeypatch):
    from webui import create_app

    state, k, readings, keystore = rogue
    assert run(str(k), "--participant", "1", "--state", str(state), "--dry-run") == 0
    out = capsys.readouterr().out
    read = readings[1].reading
    assert f"participant 1: the meter signed {read.import_wh} Wh in" in out
    assert "the chain would accept this dispute now" in out

    monkeypatch.setenv("GRIDLEDGER_PASSWORD", PASSWORD)
    assert run(str(k), "--participant", "1", "--state", str(state), "--keystore", str(keystore)) == 0
    out, err = capsys.readouterr()
    assert f"interval {k} reversed for participant 1" in out and DISPUTER.address in out, out
    assert "the index learns of it when the oracle next reads the chain" in err
    assert run("--finish", "--state", str(state), "--keystore", str(keystore)) == 0
    assert "no reversal is open" in capsys.readouterr().out

    with Chain.embedded(state) as chain:
        market = Market(chain, Deployment.load(state / "deployment.json"))
        assert market.record(k).reversed
        assert market.token.functions.balanceOf(DISPUTER.address).call() == market.bond()[1]
        index = Index(state / "index.sqlite")
        index.apply(market.events(index.last_block + 1))
    (reversal,) = index.reversals()
    assert (reversal["interval"], reversal["participant"], reversal["disputer"]) == (k, 1, DISPUTER.address.lower())
    assert reversal["closed"] and reversal["reversed"] == reversal["chunks"] == 1
    assert index.open_reversal() is None and index.interval(k) is None
    assert [r["interval"] for r in index.reversed_entries(1)] == [k]
    assert index.reversed_entries(1)[0]["grid_wh"] + index.reversed_entries(1)[0]["p2p_wh"] == 5146  # the inflated entry
    index.close()

    assert main(["status", "--state", str(state)]) == 0
    assert f"disputes:     1 settlement reversed (interval {k})" in capsys.readouterr().out
    client = create_app({"TESTING": True, "INDEX_PATH": str(state / "index.sqlite")}).test_client()
    page = client.get("/intervals/").get_data(as_text=True)
    assert "Disputes" in page and f"#{k}" in page and "its entry contradicts the signed reading" in page
    assert "reversal-open" not in page
    home = client.get("/participants/1").get_data(as_text=True)
    assert 'id="reversed"' in home and f"#{k}" in home
    gone = client.get(f"/intervals/{k}")
    assert gone.status_code == 404 and "reversed by a dispute" in gone.get_data(as_text=True)
    (api,) = client.get("/api/reversals").get_json()
    assert api["interval"] == k and api["proof"] == "contradicted" and not api["open"] and api["chunks_reversed"] == 1


def test_a_reading_that_agrees_is_forged_or_of_another_interval_is_refused_before_any_gas(rogue, capsys, tmp_path,
                                                                                         monkeypatch):
    state, k, _, keystore = rogue
    honest = k - 1  # settled on what the meters read
    index = Index(state / "index.sqlite")
    kept = {r.reading.participant: r for r in index.readings(honest)}
    index.close()
    # Home 2's meter agrees with what was settled: the chain would refuse (NoContradiction).
    agreeing = tmp_path / "agreeing.json"
    agreeing.write_text(json.dumps(kept[2].to_json()))
    assert run(str(honest), "--reading", str(agreeing), "--state", str(state), "--dry-run") == 1
    assert "the chain would refuse it: NoContradiction" in capsys.readouterr().out
    monkeypatch.setenv("GRIDLEDGER_PASSWORD", PASSWORD)  # sent for real: still tried first, and nothing sent
    assert run(str(honest), "--reading", str(agreeing), "--state", str(state), "--keystore", str(keystore)) == 1
    assert "NoContradiction" in capsys.readouterr().out
    with Chain.embedded(state) as chain:
        assert chain.w3.eth.get_balance(DISPUTER.address) == 10**18 and chain.w3.eth.get_transaction_count(DISPUTER.address) == 0
    # One more Wh than the meter signed: the signature is no longer its meter's.
    forged = kept[3].to_json()
    forged["reading"]["importWh"] += 1
    (tmp_path / "forged.json").write_text(json.dumps(forged))
    assert run(str(honest), "--reading", str(tmp_path / "forged.json"), "--state", str(state), "--dry-run") == 1
    refused = capsys.readouterr().out
    assert "the chain would refuse it: BadMeterSignature(participant=3" in refused
    # Of another interval, or no reading at all: a user's mistake (status 2), said at once.
    assert run(str(k), "--reading", str(agreeing), "--state", str(state), "--dry-run") == 2
    assert f"the reading is of interval {honest}, not {k}" in capsys.readouterr().err
    assert run(str(k), "--state", str(state)) == 2
    assert "--reading FILE, or --participant ID" in capsys.readouterr().err
    assert run(str(honest), "--participant", "99", "--state", str(state)) == 2
    assert "no reading of participant 99" in capsys.readouterr().err
    assert run(str(honest), "--participant", "2", "--inputs", str(tmp_path / "typo.sqlite"), "--dry-run") == 2
    assert "no such index file" in capsys.readouterr().err and not (tmp_path / "typo.sqlite").exists()
    assert run("--state", str(state)) == 2
    assert "give the INTERVAL to dispute, or --finish" in capsys.readouterr().err


def test_the_auditor_disputes_what_it_finds_wrong_in_the_same_run(rogue, capsys, monkeypatch):
    state, k, _, keystore = rogue
    monkeypatch.setenv("GRIDLEDGER_PASSWORD", PASSWORD)
    audit = ["-q", "audit", "--state", str(state), "--workers", "1", "--no-progress"]
    assert main([*audit, "--dispute", "--keystore", str(keystore)]) == 1  # it failed: said, then disputed
    err = capsys.readouterr().err
    assert f"interval {k}: disputed with participant 1's reading, reversed" in err
    assert main(audit) == 0  # the reversed settlement moved nothing; the rest stand
    with Chain.embedded(state) as chain:
        market = Market(chain, Deployment.load(state / "deployment.json"))
        assert market.record(k).reversed
        assert market.token.functions.balanceOf(DISPUTER.address).call() == market.bond()[1]
