"""Sign-In with Ethereum (EIP-4361) and what a signed-in browser may see; the demo's
test wallets; the order form's warnings. Attacks first: forged, replayed, expired,
foreign and tampered sign-ins."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data

from node.chain.events import Event
from node.index.store import Index
from node.intent.siwe import SiweError, SiweMessage
from node.intent.signing import sign_order
from node.simulation.setup import demo_key
from tests.test_webui import START, tx
from tests.test_webui_orders import (  # noqa: F401 (app, client, index_path: fixtures)
    ALICE, BOB, DOMAIN, MALLORY, MARKET, NEXT, FORM, app, client, index_path, order, post,
)
from webui import create_app

NOW = datetime(2026, 6, 1, 12, tzinfo=timezone.utc)
HOST = "localhost"  # the test client's host


def words(html: str) -> str:
    """A page's text: tags out, entities decoded, white space squeezed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def message(account=ALICE, **changes) -> SiweMessage:
    m = SiweMessage.create(HOST, account.address, f"http://{HOST}/", 31337, "Sign in.", NOW, 600, nonce="abcdefgh12")
    return SiweMessage(**(m.__dict__ | changes))


def signature(m: SiweMessage, account=ALICE) -> str:
    return "0x" + account.sign_message(encode_defunct(text=m.to_text())).signature.hex().removeprefix("0x")


def test_a_sign_in_message_survives_its_text_and_verifies():
    m = message()
    assert SiweMessage.parse(m.to_text()) == m
    assert m.to_text().startswith(f"{HOST} wants you to sign in with your Ethereum account:\n{ALICE.address}\n\nSign in.\n\nURI: ")
    assert m.verify(signature(m), domain=HOST, nonce="abcdefgh12", chain_id=31337, now=NOW) == ALICE.address


@pytest.mark.parametrize("attack, why", [
    (dict(signer=MALLORY), "signed by"),
    (dict(domain="evil.example"), "is for evil.example"),
    (dict(nonce="zzzzzzzz99"), "nonce is not the one this server issued"),
    (dict(chain_id=1), "chain 1"),
    (dict(now=NOW + timedelta(minutes=11)), "expired"),
    (dict(signature="0x1234"), "not a valid 65-byte signature"),
])
def test_a_sign_in_that_is_forged_foreign_replayed_or_stale_is_refused(attack, why):
    m = message(domain=attack.get("domain", HOST), chain_id=attack.get("chain_id", 31337))
    sig = attack.get("signature") or signature(m, attack.get("signer", ALICE))
    nonce = attack.get("nonce", "abcdefgh12")
    with pytest.raises(SiweError, match=why):
        m.verify(sig, domain=HOST, nonce=nonce, chain_id=31337, now=attack.get("now", NOW))


def test_a_tampered_or_malformed_message_is_refused():
    text = message().to_text()
    with pytest.raises(SiweError, match="signed by"):  # another address claimed over Alice's signature
        SiweMessage.parse(text.replace(ALICE.address, BOB.address)).verify(signature(message()), domain=HOST,
                                                                             nonce="abcdefgh12", chain_id=31337, now=NOW)
    for broken in (text.replace("Version: 1", "Version: 2"), text.replace(ALICE.address, ALICE.address.lower()),
                   text + "\nUnknown: field", "hello"):
        with pytest.raises(SiweError):
            SiweMessage.parse(broken)


def sign_in(client, account=ALICE):
    issued = client.post("/auth/message", json={"address": account.address})
    assert issued.status_code == 200, issued.get_json()
    text = issued.get_json()["message"]
    sig = "0x" + account.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")
    return client.post("/auth/verify", json={"message": text, "signature": sig}), text, sig


def test_signing_in_shows_your_wallet_and_lets_you_read_your_orders(client):
    assert post(client, sign_order(ALICE, DOMAIN, order())).status_code == 201
    assert client.get("/api/orders").status_code == 401
    verified, _, _ = sign_in(client)
    assert verified.get_json() == {"address": ALICE.address, "participants": [1]}
    assert [o["order"]["nonce"] for o in client.get("/api/orders").get_json()["orders"]] == [7]
    assert client.get("/api/orders?participant=2").status_code == 401  # bob's: not yours
    wallet = client.get("/wallet").get_data(as_text=True)
    assert f"Signed in as {ALICE.address}" in words(wallet) and "alice" in wallet
    assert 'data-order="1"' in wallet  # your order, listed
    assert client.post("/auth/logout").status_code == 200
    assert client.get("/api/orders").status_code == 401


def test_a_sign_in_is_single_use_and_bound_to_its_session(app):
    first = app.test_client()
    verified, text, sig = sign_in(first)
    assert verified.status_code == 200
    again = first.post("/auth/verify", json={"message": text, "signature": sig})
    assert again.status_code == 400 and "no sign-in was started" in again.get_json()["error"]
    other = app.test_client()  # another browser replays the captured signature
    other.post("/auth/message", json={"address": ALICE.address})
    replayed = other.post("/auth/verify", json={"message": text, "signature": sig})
    assert replayed.status_code == 401 and "nonce" in replayed.get_json()["error"]
    forged = app.test_client()
    issued = forged.post("/auth/message", json={"address": ALICE.address}).get_json()["message"]
    by_mallory = "0x" + MALLORY.sign_message(encode_defunct(text=issued)).signature.hex().removeprefix("0x")
    refused = forged.post("/auth/verify", json={"message": issued, "signature": by_mallory})
    assert refused.status_code == 401 and "signed by" in refused.get_json()["error"]
    assert forged.get("/api/orders").status_code == 401


def test_a_sign_in_holds_across_the_servers_worker_processes_and_restarts(index_path):
    first = create_app({"INDEX_PATH": str(index_path)})
    browser = first.test_client()
    assert sign_in(browser)[0].status_code == 200
    cookie = browser.get_cookie("session")
    other = create_app({"INDEX_PATH": str(index_path)}).test_client()  # another worker, or after a restart
    other.set_cookie("session", cookie.value)
    assert "Signed in as" in words(other.get("/wallet").get_data(as_text=True))
    assert (index_path.with_name("webui-secret").stat().st_mode & 0o777) == 0o600


def test_the_mandate_form_prepares_what_the_wallet_signs(client):
    prepared = client.get("/wallet/mandate", query_string={"participant": 1, "max_buy_price": "0.35", "min_sell_price": "0.07",
                                                           "min_soc_percent": "20", "max_soc_percent": "90",
                                                           "valid_until": "2096-01-01T00:00:00Z"}).get_json()
    assert prepared["owner"] == ALICE.address and prepared["typed"]["primaryType"] == "Mandate"
    typed = prepared["typed"]
    sig = "0x" + ALICE.sign_message(encode_typed_data(full_message=typed)).signature.hex().removeprefix("0x")
    stored = client.post("/api/mandates", json={"mandate": typed["message"], "signature": sig})
    assert stored.status_code == 201 and stored.get_json()["participant"] == 1
    bad = client.get("/wallet/mandate", query_string={"participant": 1, "max_buy_price": "x"})
    assert bad.status_code == 400


# -- the order form's warnings ---------------------------------------------------------------


def test_the_form_will_not_prepare_an_order_for_a_settled_interval(client):
    response = client.get("/orders", query_string=FORM | {"interval": "1"})
    assert response.status_code == 400
    assert "interval #1 is settled already (settled up to #1)" in unescape(response.get_data(as_text=True))


def test_the_form_warns_of_more_energy_than_the_grid_connection_carries(client, index_path):
    idx = Index(index_path)
    idx.apply([Event("DefaultCapacitySet", {"importWh": 15_000, "exportWh": 10_000}, 7, tx(7), 0)])
    idx.close()
    fresh = create_app({"INDEX_PATH": str(index_path)}).test_client()
    html = unescape(fresh.get("/orders", query_string=FORM | {"energy_kwh": "1000000"}).get_data(as_text=True))
    assert "1,000,000.00 kWh is more than the community's whole grid connection carries in one interval (10.00 kWh export" in html
    assert 'data-export-limit-wh="10000"' in html and 'data-last-settled="1"' in html
    assert 'class="notice warn" role="alert"' in html
    ok = fresh.get("/orders", query_string=FORM).get_data(as_text=True)
    assert 'class="notice warn" role="alert"' not in ok


# -- the demo's wallets ----------------------------------------------------------------------


@pytest.fixture
def demo_index(tmp_path):
    """Two demo homes owned by their demo keys (seed 42) and one home with its own key."""
    path = tmp_path / "index.sqlite"
    idx = Index(path)
    idx.set_meta(chain_id=31337, market=MARKET, currency="EUR", interval_minutes=15, start=START.isoformat())
    owners = [("grid", Account.create().address), ("home-01", demo_key(42, "home-01").address),
              ("home-02", demo_key(42, "home-02").address), ("mine", ALICE.address)]
    idx.apply([Event("ParticipantRegistered", {"participant": i, "owner": o, "zone": 0, "name": n}, 1, tx(1), i)
               for i, (n, o) in enumerate(owners)])
    idx.close()
    return path


def demo_sign(client, participant, method, params):
    return client.post("/demo/sign", json={"participant": participant, "method": method, "params": params})


def test_a_demo_wallet_signs_in_as_its_home(demo_index):
    client = create_app({"INDEX_PATH": str(demo_index), "DEMO_SEED": 42}).test_client()
    key = demo_key(42, "home-02")
    text = client.post("/auth/message", json={"address": key.address}).get_json()["message"]
    signed = demo_sign(client, 2, "personal_sign", ["0x" + text.encode().hex(), key.address])
    assert signed.status_code == 200
    verified = client.post("/auth/verify", json={"message": text, "signature": signed.get_json()["signature"]})
    assert verified.get_json() == {"address": key.address, "participants": [2]}
    assert "act as a home" in client.get("/wallet").get_data(as_text=True)


def test_a_demo_wallet_signs_nothing_else(demo_index):
    client = create_app({"INDEX_PATH": str(demo_index), "DEMO_SEED": 42}).test_client()
    other_site = message(demo_key(42, "home-01"), domain="evil.example").to_text()
    assert demo_sign(client, 1, "personal_sign", ["0x" + other_site.encode().hex()]).status_code == 400
    assert demo_sign(client, 1, "personal_sign", ["0x" + b"send me your money".hex()]).status_code == 400
    foreign = {"domain": {"chainId": 1, "verifyingContract": MARKET}, "types": {}, "primaryType": "Order", "message": {}}
    assert demo_sign(client, 1, "eth_signTypedData_v4", [demo_key(42, "home-01").address, json.dumps(foreign)]).status_code == 400
    assert demo_sign(client, 3, "personal_sign", ["0x00"]).status_code == 403  # a home with its own key
    assert demo_sign(client, 1, "eth_sendTransaction", [{}]).status_code == 400
    without = create_app({"INDEX_PATH": str(demo_index)}).test_client()
    assert demo_sign(without, 1, "personal_sign", ["0x00"]).status_code == 404
    assert "act as a home" not in without.get("/wallet").get_data(as_text=True)

