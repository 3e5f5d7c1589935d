"""`gridledger order|mandate sign|submit`: keys from a real keystore, a real HTTP server."""

from __future__ import annotations

import argparse
import io
import json
import socket
import sys
from pathlib import Path

import pytest

from node.intent import keys
from node.errors import GridLedgerError, InputError
from node.intent.keys import Keystore
from node.cli.orders import add_commands as add_order_commands
from node.intent.amounts import energy_wh, percent_ppm, price_units, unix_time, until
from node.intent.signing import sign_order
from tests.conftest import KEYSTORE_PASSWORD, served
from tests.test_webui_orders import ALICE, BOB, DOMAIN, MARKET, NEXT, as_owner, index_path, order  # noqa: F401  (fixture)
from webui import create_app

PASSWORD = KEYSTORE_PASSWORD
pytestmark = pytest.mark.usefixtures("keystore_password")


@pytest.fixture
def keystore(tmp_path) -> Path:
    store = Keystore(tmp_path / "keystore")
    store.import_key(ALICE.key.hex(), PASSWORD)
    store.import_key(BOB.key.hex(), PASSWORD)
    return store.directory


@pytest.fixture
def server(index_path):  # noqa: F811
    """The web UI on a free port of 127.0.0.1, in a thread, for as long as the test runs."""
    app = create_app({"INDEX_PATH": str(index_path)})
    with served(app) as url:
        yield url, app


def gridledger(argv: list[str], capsys) -> tuple[int, str, str]:
    """Runs the commands as node/cli.py's main does: a GridLedgerError is one line, status 2."""
    parser = argparse.ArgumentParser(prog="gridledger")
    add_order_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    try:
        status = args.run(args)
    except GridLedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 2
    out, err = capsys.readouterr()
    return status, out, err


def sign_args(keystore: Path, account: str = ALICE.address, participant: int = 1, nonce: int = 5, **extra) -> list[str]:
    argv = ["order", "sign", "--keystore", str(keystore), "--account", account, "--participant", str(participant),
            "--side", "buy", "--energy-kwh", "1.25", "--limit-price", "0.3", "--interval", str(NEXT),
            "--valid-for", "120", "--nonce", str(nonce), "--chain-id", str(DOMAIN.chain_id), "--market", MARKET]
    for flag, value in extra.items():
        argv += [f"--{flag.replace('_', '-')}", value]
    return argv


def test_sign_then_submit_round_trip(keystore, server, tmp_path, capsys):
    url, app = server
    status, out, _ = gridledger(sign_args(keystore), capsys)
    assert status == 0
    signed = json.loads(out)
    assert signed["order"] | {"expiry": 0} == {"participant": 1, "interval": NEXT, "side": 0, "energyWh": 1250,
                                               "limitPrice": 300_000, "expiry": 0, "nonce": 5}
    path = tmp_path / "order.json"
    path.write_text(out)

    status, out, err = gridledger(["order", "submit", str(path), "--url", url], capsys)
    assert status == 0, err
    assert out.strip() == f"order 1 accepted for interval {NEXT}"
    listed = app.test_client().get(f"/api/orders?interval={NEXT}", headers=as_owner(ALICE, 1)).get_json()["orders"]
    assert [(o["order"], o["signature"]) for o in listed] == [(signed["order"], signed["signature"])]

    # The same file again is a replay: the server's reason, and a failing exit status.
    status, out, err = gridledger(["order", "submit", str(path), "--url", url], capsys)
    assert status == 1
    assert "rejected" in err and "already used order nonce 5" in err


def test_submit_reads_standard_input(keystore, server, capsys, monkeypatch):
    url, _ = server
    _, out, _ = gridledger(sign_args(keystore, nonce=6), capsys)
    monkeypatch.setattr(sys, "stdin", io.StringIO(out))
    status, out, err = gridledger(["order", "submit", "-", "--url", url], capsys)
    assert status == 0, err
    assert "accepted" in out


def test_order_signed_with_someone_elses_key_is_rejected_by_the_server(keystore, server, tmp_path, capsys):
    url, _ = server
    _, out, _ = gridledger(sign_args(keystore, account=BOB.address, participant=1), capsys)
    (tmp_path / "forged.json").write_text(out)
    status, _, err = gridledger(["order", "submit", str(tmp_path / "forged.json"), "--url", url], capsys)
    assert status == 1
    assert f"signed by {BOB.address}" in err and ALICE.address in err


def test_mandate_sign_then_submit(keystore, server, tmp_path, capsys):
    url, app = server
    status, out, _ = gridledger(["mandate", "sign", "--keystore", str(keystore), "--account", BOB.address,
                                 "--participant", "2", "--max-buy-price", "0.28", "--min-sell-price", "0.09",
                                 "--min-soc", "10", "--max-soc", "90", "--valid-until", "2096-01-01T00:00:00Z",
                                 "--nonce", "3", "--chain-id", str(DOMAIN.chain_id), "--market", MARKET,
                                 "--valid-from", "2026-01-01T00:00:00Z", "--max-energy", "2.5"], capsys)
    assert status == 0
    mandate = json.loads(out)["mandate"]
    assert mandate == {"participant": 2, "maxBuyPrice": 280_000, "minSellPrice": 90_000, "minSocPpm": 100_000,
                       "maxSocPpm": 900_000, "validFrom": unix_time("2026-01-01T00:00:00Z"),
                       "validUntil": unix_time("2096-01-01T00:00:00Z"), "maxEnergyWh": 2500, "nonce": 3}
    (tmp_path / "mandate.json").write_text(out)
    status, out, err = gridledger(["mandate", "submit", str(tmp_path / "mandate.json"), "--url", url], capsys)
    assert status == 0, err
    assert out.strip() == "mandate 3 of participant 2 accepted"
    assert app.test_client().get("/api/mandates", headers=as_owner(BOB, 2)).get_json()["mandates"][0]["mandate"] == mandate


def test_wrong_password_is_one_line_and_status_2(keystore, capsys, monkeypatch):
    monkeypatch.setenv(keys.PASSWORD_ENV, "wrong")
    status, out, err = gridledger(sign_args(keystore), capsys)
    assert status == 2 and out == ""
    assert err.startswith("error: wrong password") and err.count("\n") == 1


def test_unknown_account_is_reported_before_the_password(keystore, capsys, monkeypatch):
    monkeypatch.delenv(keys.PASSWORD_ENV)  # a prompt would read stdin and fail differently
    status, _, err = gridledger(sign_args(keystore, account="0x" + "12" * 20), capsys)
    assert status == 2 and "no key for" in err


def test_submit_to_a_closed_port_says_so(keystore, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, out, _ = gridledger(sign_args(keystore), capsys)
    (tmp_path / "order.json").write_text(out)
    status, _, err = gridledger(["order", "submit", str(tmp_path / "order.json"), "--url", f"http://127.0.0.1:{port}"], capsys)
    assert status == 2 and "cannot reach" in err


def test_submit_refuses_a_damaged_file_before_sending(tmp_path, capsys):
    (tmp_path / "order.json").write_text('{"order": {"participant": 1}, "signature": "0x00"}')
    status, _, err = gridledger(["order", "submit", str(tmp_path / "order.json"), "--url", "http://127.0.0.1:9"], capsys)
    assert status == 2 and "missing field(s)" in err


@pytest.mark.parametrize("kwh, wh", [("1", 1000), ("1.25", 1250), ("0.001", 1), (" 2.500 ", 2500)])
def test_energy_in_kwh_converts_exactly(kwh, wh):
    assert energy_wh(kwh) == wh


@pytest.mark.parametrize("kwh, problem", [("1.0005", "whole number of Wh"), ("0", "more than 0"), ("-1", "at least 0"),
                                          ("nan", "finite"), ("lots", "must be a number")])
def test_energy_that_would_need_rounding_is_refused(kwh, problem):
    with pytest.raises(InputError, match=problem):
        energy_wh(kwh)


def test_prices_percentages_and_times_convert_exactly():
    assert price_units("0.25") == 250_000 and price_units("0") == 0
    with pytest.raises(InputError, match="decimals"):
        price_units("0.0000001")
    assert percent_ppm("12.5", "soc") == 125_000
    with pytest.raises(InputError):
        percent_ppm("101", "soc")
    assert unix_time("2026-06-01T00:00:00Z") == unix_time("2026-06-01T00:00:00") == unix_time("2026-06-01T02:00:00+02:00")
    assert until(None, 30, now=1_000) == 2_800 and until(None, None, now=0) == 3_600
    with pytest.raises(InputError, match="not both"):
        until("2026-06-01T00:00:00Z", 5, now=0)


# -- order list: the owner's orders only ------------------------------------------------------


@pytest.fixture
def placed(server):
    """An order of Alice (participant 1) and one of Bob (2) in the server's book."""
    url, app = server
    client = app.test_client()
    for key, participant, nonce in ((ALICE, 1, 31), (BOB, 2, 32)):
        response = client.post("/api/orders", json=sign_order(key, DOMAIN, order(participant=participant, nonce=nonce,
                                                                                  energy_wh=1000 * participant)).to_json())
        assert response.status_code == 201
    return url


def test_order_list_shows_the_accounts_own_orders_only(keystore, placed, capsys):
    status, out, err = gridledger(["order", "list", "--keystore", str(keystore), "--account", ALICE.address,
                                   "--server", placed], capsys)
    assert status == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:3] == ["id", "interval", "side"]
    assert lines[1].split()[:5] == ["1", str(NEXT), "buy", "1.000", "0.25"] and lines[1].endswith("open")
    assert lines[-1] == f"1 order(s) of participant 1; next open interval {NEXT}"
    assert "32" not in out.split()  # Bob's nonce


def test_order_list_with_a_single_keystore_file_and_json(keystore, placed, capsys):
    bobs_file = next(path for path in keystore.iterdir() if BOB.address[2:].lower() in path.name)
    status, out, err = gridledger(["order", "list", "--keystore", str(bobs_file), "--server", placed, "--json"], capsys)
    assert status == 0, err
    answer = json.loads(out)
    assert answer["participant"] == 2 and [o["order"]["nonce"] for o in answer["orders"]] == [32]


def test_order_list_for_someone_elses_participant_is_refused(keystore, placed, capsys):
    status, out, err = gridledger(["order", "list", "--keystore", str(keystore), "--account", BOB.address,
                                   "--participant", "1", "--server", placed], capsys)
    assert status == 1 and out == ""
    assert "refused" in err and f"signed by {BOB.address}" in err and "owner only" in err


def test_order_list_for_an_account_that_owns_nothing_says_so(tmp_path, placed, capsys):
    from tests.test_webui_orders import MALLORY

    store = Keystore(tmp_path / "other")
    store.import_key(MALLORY.key.hex(), PASSWORD)
    status, _, err = gridledger(["order", "list", "--keystore", str(store.directory), "--account", MALLORY.address,
                                 "--server", placed], capsys)
    assert status == 2 and "owns no participant" in err
