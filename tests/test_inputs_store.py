"""Committed inputs outlive the index: they live in a content-addressed store of their
own, on disk before the settlement that commits to them is sent; the index is derived
data that `index rebuild` recreates; a damaged index is one clear line, not a traceback."""

from __future__ import annotations

import gzip
import shutil
import sqlite3
import zlib
from pathlib import Path

import pytest

from node.chain.market import Market
from node.cli.main import main
from node.errors import InputError
from node.index.store import Index
from tests.helpers import SMALL_CONFIG, meter_rows, write_config, write_csv

HOMES, STEPS = 3, 6
TABLES = {
    "participants": "id", "intervals": "interval", "entries": "interval, participant",
    "wallet_events": "tx_hash, log_index", "capacity_events": "tx_hash, log_index", "role_events": "tx_hash, log_index",
    "settlement_chunks": "tx_hash, log_index", "last_inputs": "interval", "interval_inputs": "interval",
    "battery_states": "interval, participant", "baseline": "interval, participant",
}


def dump(path: Path) -> dict:
    index = Index(path)
    try:
        tables = {t: [tuple(r) for r in index.db.execute(f"SELECT * FROM {t} ORDER BY {o}")] for t, o in TABLES.items()}
        # "chain" describes the chain with its path, which a copy of the state changes.
        return tables | {"meta": {k: v for k, v in index.meta().items() if k not in ("last_block", "chain")}}
    finally:
        index.close()


# -- meter-signed readings ----------------------------------------------------------------


def test_readings_outlive_the_index_and_a_later_reading_replaces_the_earlier_one(tmp_path):
    from eth_account import Account

    from node.intent.signing import Domain, Reading, sign_reading

    meter, domain = Account.create(), Domain(1, "0x" + "11" * 20)
    index = Index(tmp_path / "index.sqlite")
    index.store_readings([sign_reading(meter, domain, Reading(p, 2_001, 100 * p, 0)) for p in (1, 2)])
    index.store_readings([sign_reading(meter, domain, Reading(2, 2_001, 7, 0))])
    index.close()
    (tmp_path / "index.sqlite").unlink()
    again = Index(tmp_path / "index.sqlite")
    assert [(r.reading.participant, r.reading.import_wh) for r in again.readings(2_001)] == [(1, 100), (2, 7)]
    assert all(r.signer(domain) == meter.address for r in again.readings(2_001))
    assert (tmp_path / "readings" / "2" / "2001.json").is_file()


def test_a_damaged_readings_file_is_named(tmp_path):
    index = Index(tmp_path / "index.sqlite")
    path = index.readings_store.path(5)
    path.parent.mkdir(parents=True)
    path.write_text("[{")
    with pytest.raises(InputError, match=str(path)):
        index.readings(5)


# -- the store itself -----------------------------------------------------------------------


def test_the_store_keeps_inputs_by_hash_and_refuses_a_file_that_does_not_hash_to_its_name(tmp_path):
    from node.clearing.store import InputsStore, digest_of

    store = InputsStore(tmp_path / "inputs")
    body = b'{"interval":7}'
    digest = store.put(body)
    assert digest == digest_of(body) and store.get(digest) == body and list(store.digests()) == [digest]
    assert store.put(body) == digest  # idempotent
    with pytest.raises(InputError, match="hash to"):
        store.put(body, "0x" + "00" * 32)
    store.path(digest).write_bytes(gzip.compress(b'{"interval":8}'))
    with pytest.raises(InputError, match="does not hash to its name"):
        store.get(digest)
    store.path(digest).write_bytes(b"not gzip")
    with pytest.raises(InputError, match="damaged"):
        store.get(digest)
    with pytest.raises(InputError, match="no inputs with hash"):
        store.get("0x" + "ab" * 32)


@pytest.mark.parametrize("mirror", ["mirror", "inputs.tar.gz", "inputs.tar"])
def test_export_and_import_round_trip_through_a_mirror(tmp_path, mirror):
    from node.clearing.mirror import Copied, export_mirror, import_mirror
    from node.clearing.readings_store import ReadingsStore
    from node.clearing.store import InputsStore

    store, readings = InputsStore(tmp_path / "inputs"), ReadingsStore(tmp_path / "readings")
    digests = {store.put(f'{{"interval":{k}}}'.encode()) for k in range(5)}
    assert export_mirror(store, readings, tmp_path / mirror) == Copied(5, 0, 0)
    copy = InputsStore(tmp_path / "copy")
    assert import_mirror(copy, readings, tmp_path / mirror) == Copied(5, 0, 0)
    assert import_mirror(copy, readings, tmp_path / mirror) == Copied(0, 5, 0)
    assert set(copy.digests()) == digests and all(copy.get(d) == store.get(d) for d in digests)


def test_import_refuses_a_mirror_file_that_does_not_hash_to_its_name(tmp_path):
    from node.clearing.mirror import export_mirror, import_mirror
    from node.clearing.readings_store import ReadingsStore
    from node.clearing.store import InputsStore

    store, readings = InputsStore(tmp_path / "inputs"), ReadingsStore(tmp_path / "readings")
    digest = store.put(b'{"interval":1}')
    export_mirror(store, readings, tmp_path / "mirror")
    InputsStore(tmp_path / "mirror").path(digest).write_bytes(gzip.compress(b'{"interval":2}'))
    with pytest.raises(InputError, match="does not hash to its name"):
        import_mirror(InputsStore(tmp_path / "copy"), readings, tmp_path / "mirror")
    assert not InputsStore(tmp_path / "copy").has(digest)


def test_an_index_from_before_the_store_hands_its_inputs_over(tmp_path):
    from node.clearing.store import InputsStore, digest_of

    path = tmp_path / "index.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE inputs (hash TEXT PRIMARY KEY, body BLOB NOT NULL)")
    body = b'{"interval":3}'
    db.execute("INSERT INTO inputs VALUES (?, ?)", (digest_of(body), zlib.compress(body)))
    db.commit()
    db.close()
    index = Index(path)
    assert index.inputs(digest_of(body)) == body
    assert InputsStore(tmp_path / "inputs").get(digest_of(body)) == body


# -- a settled state ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return (write_csv(folder, meter_rows(HOMES, STEPS // 2), name="half.csv"),
            write_csv(folder, meter_rows(HOMES, STEPS), name="all.csv"), write_config(folder, SMALL_CONFIG))


def simulate(state: Path, data: Path, config: Path) -> int:
    return main(["-q", "simulate", "--data", str(data), "--config", str(config), "--state", str(state), "--no-progress"])


@pytest.fixture(scope="module")
def settled(tmp_path_factory, files):
    """A state that settled all STEPS intervals."""
    _, data, config = files
    state = tmp_path_factory.mktemp("settled") / "state"
    assert simulate(state, data, config) == 0
    return state


def test_each_interval_s_inputs_are_in_the_store_before_its_settlement_is_sent(tmp_path, files, monkeypatch):
    from node.clearing.store import InputsStore

    half, _, config = files
    state = tmp_path / "state"
    sent = []
    settle = Market.settle

    def settle_after_checking_the_store(market, settlement, *args, **kwargs):
        digest = "0x" + settlement.inputs_hash.hex()
        assert InputsStore(state / "inputs").get(digest), "the inputs are not in the store before the settlement is sent"
        sent.append(digest)
        return settle(market, settlement, *args, **kwargs)

    monkeypatch.setattr(Market, "settle", settle_after_checking_the_store)
    assert simulate(state, half, config) == 0
    assert len(sent) == STEPS // 2


@pytest.fixture
def state(settled, tmp_path):
    copy = tmp_path / "state"
    shutil.copytree(settled, copy)
    return copy


def test_a_deleted_index_is_rebuilt_completely_from_the_chain_and_the_store(state, files, capsys):
    original = dump(state / "index.sqlite")
    (state / "index.sqlite").unlink()
    assert main(["-q", "index", "rebuild", "--state", str(state), "--no-progress"]) == 0
    rebuilt = dump(state / "index.sqlite")
    # The baseline comes from the dataset, not the chain, and the run's progress from the
    # run (webui/playback.py): the next simulate writes both again.
    run = {k: v for k, v in original["meta"].items() if not k.startswith("run_")}
    assert rebuilt == original | {"baseline": [], "meta": run}
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 0
    _, data, config = files
    assert simulate(state, data, config) == 0
    assert dump(state / "index.sqlite") == original


def test_a_run_whose_index_was_deleted_half_way_resumes_from_the_store(tmp_path, files):
    half, data, config = files
    state = tmp_path / "state"
    assert simulate(state, half, config) == 0
    (state / "index.sqlite").unlink()
    assert simulate(state, data, config) == 0
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 0
    index = Index(state / "index.sqlite")
    assert index.summary()["intervals"] == STEPS


@pytest.mark.parametrize("command", [["status"], ["balances"], ["trades"], ["index", "check"], ["serve", "--port", "1"]])
def test_a_truncated_index_is_one_clear_line_saying_to_rebuild_it(state, capsys, command):
    path = state / "index.sqlite"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert main(["-q", *command, "--state", str(state)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is damaged" in err and f"gridledger index rebuild --state {state}" in err


def test_index_rebuild_replaces_a_truncated_index(state, capsys):
    original = dump(state / "index.sqlite")
    path = state / "index.sqlite"
    path.write_bytes(path.read_bytes()[:4096])
    assert main(["-q", "index", "rebuild", "--state", str(state), "--no-progress"]) == 0
    assert "rebuilding without it" in capsys.readouterr().err
    run = {k: v for k, v in original["meta"].items() if not k.startswith("run_")}
    assert dump(path) == original | {"baseline": [], "meta": run}


def test_inputs_export_import_and_check_from_the_command_line(state, tmp_path, capsys):
    assert main(["-q", "inputs", "export", "--state", str(state), str(tmp_path / "mirror.tar.gz")]) == 0
    shutil.rmtree(state / "inputs")
    assert main(["-q", "inputs", "check", "--state", str(state)]) == 1
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 1
    assert main(["-q", "inputs", "import", "--state", str(state), str(tmp_path / "mirror.tar.gz")]) == 0
    assert f"imported {STEPS} committed inputs" in capsys.readouterr().out
    assert main(["-q", "inputs", "check", "--state", str(state)]) == 0
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 0


def test_an_audit_from_an_exported_mirror_gets_the_meter_readings_too(state, tmp_path):
    mirror = tmp_path / "mirror"
    assert main(["-q", "inputs", "export", "--state", str(state), str(mirror)]) == 0
    assert main(["-q", "audit", "--state", str(state), "--inputs", str(mirror), "--no-progress"]) == 0


def test_readings_lost_from_the_state_come_back_from_an_archive(state, tmp_path, capsys):
    archive = tmp_path / "mirror.tar.gz"
    assert main(["-q", "inputs", "export", "--state", str(state), str(archive)]) == 0
    assert f"and the meter readings of {STEPS} intervals" in capsys.readouterr().out
    shutil.rmtree(state / "readings")
    Index(state / "index.sqlite").db.execute("DELETE FROM readings")  # an index rebuilt without them
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 1
    assert main(["-q", "inputs", "import", "--state", str(state), str(archive)]) == 0
    assert f"and the meter readings of {STEPS} intervals" in capsys.readouterr().out
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 0


def test_a_mirror_whose_readings_file_claims_another_interval_is_refused(state, tmp_path, capsys):
    mirror = tmp_path / "mirror"
    assert main(["-q", "inputs", "export", "--state", str(state), str(mirror)]) == 0
    first = sorted((mirror / "readings").rglob("*.json"))[0]
    first.rename(first.with_name("999.json"))
    shutil.rmtree(state / "readings")
    assert main(["-q", "inputs", "import", "--state", str(state), str(mirror)]) == 2
    err = capsys.readouterr().err
    assert "999.json" in err and "interval" in err
    assert not (state / "readings" / "0" / "999.json").exists()


def test_an_import_never_replaces_a_reading_the_state_holds(state, tmp_path):
    import json

    mirror = tmp_path / "mirror"
    assert main(["-q", "inputs", "export", "--state", str(state), str(mirror)]) == 0
    forged = sorted((mirror / "readings").rglob("*.json"))[0]
    rows = json.loads(forged.read_text())
    rows[0]["reading"]["importWh"] += 1_000  # a forged meter value, the signature left as it was
    forged.write_text(json.dumps(rows))
    kept = (state / "readings" / forged.relative_to(mirror / "readings")).read_bytes()
    assert main(["-q", "inputs", "import", "--state", str(state), str(mirror)]) == 0
    assert (state / "readings" / forged.relative_to(mirror / "readings")).read_bytes() == kept
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 0
