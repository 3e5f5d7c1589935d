"""Signed orders through the API and the form, and the audit page, against a real index
whose participants are owned by keys the test holds."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
import urllib.request
from datetime import datetime, timezone
from html import unescape
from urllib.parse import urlencode

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from node.audit.verify import Verdict
from node.chain.events import Event
from node.index.store import Index
from node.intent.client import read_headers
from node.intent.signing import (
    Domain,
    Mandate,
    Order,
    ReadRequest,
    sign_mandate,
    sign_order,
    sign_read_request,
)
from tests.conftest import served
from tests.test_webui import START, app, client, settle_events, tx  # noqa: F401  (app, client: fixtures on this index_path)
from webui import create_app

ALICE = Account.from_key("0x" + "a1" * 32)
BOB = Account.from_key("0x" + "b0" * 32)
MALLORY = Account.from_key("0x" + "e7" * 32)
GRID = Account.from_key("0x" + "90" * 32)
MARKET = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = Domain(chain_id=31337, verifying_contract=MARKET)
FAR = 4_000_000_000  # an expiry in 2096
NEXT = 2  # intervals 0 and 1 are settled


def order(**changes) -> Order:
    fields = dict(participant=1, interval=NEXT, side=0, energy_wh=1500, limit_price=250_000, expiry=FAR, nonce=7)
    return Order(**(fields | changes))


def registrations() -> list[Event]:
    return [Event("ParticipantRegistered", {"participant": pid, "owner": key.address, "zone": 1, "name": name}, 1, tx(1), pid)
            for pid, (name, key) in enumerate([("grid", GRID), ("alice", ALICE), ("bob", BOB)])]


@pytest.fixture
def index_path(tmp_path):
    path = tmp_path / "state" / "index.sqlite"
    index = Index(path)
    index.set_meta(chain_id=DOMAIN.chain_id, market=MARKET, description="Key Street", currency="EUR",
                   interval_minutes=15, start=START.isoformat(), first_interval=0)
    index.apply(registrations())
    index.apply(settle_events(index, 0, [(1, -1000, -400), (2, 200, 400)], block=5, homes=2))
    index.apply(settle_events(index, 1, [(1, 300, 0), (2, -300, 0)], block=6, homes=2))
    index.close()
    return path


def as_owner(key, participant: int, issued_at: int | None = None) -> dict[str, str]:
    """Headers with a read request for `participant` signed by `key`, issued now."""
    request = ReadRequest(participant, int(time.time()) if issued_at is None else issued_at)
    return read_headers(sign_read_request(key, DOMAIN, request))


def post(client, signed, url="/api/orders"):
    body = signed if isinstance(signed, (str, bytes)) else json.dumps(signed.to_json())
    return client.post(url, data=body, content_type="application/json")


def stored_orders(index_path) -> int:
    """Rows in the order book file, read as another process would."""
    path = index_path.with_name("orders.sqlite")
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    finally:
        db.close()


def text(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:800]
    return unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)))


# -- API: orders ------------------------------------------------------------------------


def test_signed_order_is_stored_listed_and_survives_a_restart(client, index_path):
    signed = sign_order(ALICE, DOMAIN, order())
    response = post(client, signed)
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer == {"id": answer["id"], "participant": 1, "interval": NEXT, "nonce": 7, "receipt": answer["receipt"]}
    assert response.headers["Location"].endswith(f"/api/orders/{answer['id']}")

    listed = client.get(f"/api/orders?interval={NEXT}", headers=as_owner(ALICE, 1)).get_json()
    assert listed["next_interval"] == NEXT and listed["participant"] == 1
    assert [(o["id"], o["order"], o["signature"], o["expired"]) for o in listed["orders"]] == [
        (answer["id"], signed.order.values(), "0x" + signed.signature.hex(), False)]
    # Without an interval: all of the participant's orders.
    assert client.get("/api/orders", headers=as_owner(ALICE, 1)).get_json()["orders"] == listed["orders"]

    # A new app on the same files, as after a restart, still has it.
    again = create_app({"TESTING": True, "INDEX_PATH": str(index_path)}).test_client()
    assert again.get(f"/api/orders?interval={NEXT}", headers=as_owner(ALICE, 1)).get_json()["orders"] == listed["orders"]
    assert again.get(f"/api/orders/{answer['id']}", headers=as_owner(ALICE, 1)).get_json() == signed.to_json()
    assert stored_orders(index_path) == 1


def test_order_signed_by_another_key_is_refused_and_not_stored(client, index_path):
    forged = sign_order(MALLORY, DOMAIN, order())
    response = post(client, forged)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert MALLORY.address in error and ALICE.address in error and "owner" in error
    assert client.get(f"/api/orders?interval={NEXT}", headers=as_owner(ALICE, 1)).get_json()["orders"] == []
    assert stored_orders(index_path) == 0


def test_order_for_another_participant_is_refused(client, index_path):
    # Bob is registered, but he cannot place an order on Alice's account.
    response = post(client, sign_order(BOB, DOMAIN, order(participant=1)))
    assert response.status_code == 400 and "participant 1 is signed by" in response.get_json()["error"]
    assert stored_orders(index_path) == 0


def test_order_signed_for_another_market_is_refused(client):
    other = Domain(chain_id=1, verifying_contract=MARKET)
    response = post(client, sign_order(ALICE, other, order()))
    assert response.status_code == 400 and "signed by" in response.get_json()["error"]


def test_replayed_nonce_is_refused(client, index_path):
    assert post(client, sign_order(ALICE, DOMAIN, order())).status_code == 201
    again = post(client, sign_order(ALICE, DOMAIN, order(energy_wh=9_000)))
    assert again.status_code == 400
    assert "already used order nonce 7" in again.get_json()["error"]
    assert stored_orders(index_path) == 1


def test_order_for_a_settled_interval_is_refused(client, index_path):
    response = post(client, sign_order(ALICE, DOMAIN, order(interval=1)))
    assert response.status_code == 400
    assert "interval 1, which is closed" in response.get_json()["error"]
    assert f"next open interval is {NEXT}" in response.get_json()["error"]
    assert stored_orders(index_path) == 0


def test_expired_order_is_refused(client, index_path):
    response = post(client, sign_order(ALICE, DOMAIN, order(expiry=1_000)))
    assert response.status_code == 400 and "expired" in response.get_json()["error"]
    assert stored_orders(index_path) == 0


def test_order_of_unregistered_participant_is_refused(client):
    response = post(client, sign_order(ALICE, DOMAIN, order(participant=9)))
    assert response.status_code == 400 and "participant 9 is not registered" in response.get_json()["error"]


GOOD = sign_order(ALICE, DOMAIN, order()).to_json()


@pytest.mark.parametrize("body, names", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    (json.dumps([1, 2]), '"order"'),
    (json.dumps({"order": GOOD["order"]}), '"signature"'),
    (json.dumps(GOOD | {"extra": 1}), "nothing else"),
    (json.dumps(GOOD | {"order": {k: v for k, v in GOOD["order"].items() if k != "nonce"}}), "missing field(s) nonce"),
    (json.dumps(GOOD | {"order": GOOD["order"] | {"side": 2}}), "order.side"),
    (json.dumps(GOOD | {"order": GOOD["order"] | {"energyWh": -5}}), "order.energyWh"),
    (json.dumps(GOOD | {"order": GOOD["order"] | {"limitPrice": "cheap"}}), "order.limitPrice"),
    (json.dumps(GOOD | {"order": GOOD["order"] | {"interval": 2**64}}), "order.interval"),
    (json.dumps(GOOD | {"order": GOOD["order"] | {"colour": "red"}}), "unknown field(s) colour"),
    (json.dumps(GOOD | {"signature": "0x1234"}), "65 bytes"),
    (json.dumps(GOOD | {"signature": "0x" + "zz" * 65}), "not valid hex"),
])
def test_malformed_order_is_refused_naming_what_is_wrong(client, index_path, body, names):
    response = post(client, body)
    assert response.status_code == 400
    assert names in response.get_json()["error"]
    assert stored_orders(index_path) == 0


def test_oversized_body_is_refused(client):
    response = post(client, "x" * 100_000)
    assert response.status_code == 413 and "error" in response.get_json()


def test_orders_need_a_deployed_market(tmp_path):
    index = Index(tmp_path / "index.sqlite")
    index.apply(registrations())
    index.close()
    client = create_app({"INDEX_PATH": str(tmp_path / "index.sqlite")}).test_client()
    response = post(client, sign_order(ALICE, DOMAIN, order()))
    assert response.status_code == 503 and "no market yet" in response.get_json()["error"]
    assert "No market yet" in text(client, "/orders")


# -- API: mandates -----------------------------------------------------------------------


MANDATE = Mandate(participant=2, max_buy_price=280_000, min_sell_price=90_000, min_soc_ppm=100_000,
                  max_soc_ppm=900_000, valid_until=FAR, nonce=1)


def test_signed_mandate_is_stored_and_listed(client):
    signed = sign_mandate(BOB, DOMAIN, MANDATE)
    response = post(client, signed, "/api/mandates")
    assert response.status_code == 201
    assert response.get_json() == {"participant": 2, "nonce": 1, "valid_until": FAR}
    assert client.get("/api/mandates", headers=as_owner(BOB, 2)).get_json()["mandates"] == [signed.to_json()]
    assert client.get("/api/mandates", headers=as_owner(ALICE, 1)).get_json()["mandates"] == []


def test_forged_or_replayed_mandate_is_refused(client):
    forged = post(client, sign_mandate(ALICE, DOMAIN, MANDATE), "/api/mandates")
    assert forged.status_code == 400 and "signed by" in forged.get_json()["error"]
    assert post(client, sign_mandate(BOB, DOMAIN, MANDATE), "/api/mandates").status_code == 201
    replay = post(client, sign_mandate(BOB, DOMAIN, MANDATE), "/api/mandates")
    assert replay.status_code == 400 and "already used mandate nonce 1" in replay.get_json()["error"]
    assert len(client.get("/api/mandates", headers=as_owner(BOB, 2)).get_json()["mandates"]) == 1


# -- the order form ------------------------------------------------------------------------


FORM = {"participant": "1", "side": "sell", "energy_kwh": "2.5", "limit_price": "0.12", "interval": str(NEXT),
        "expiry": "2096-01-01T00:00:00Z", "nonce": "42"}


def prepared(client, **changes) -> tuple[str, dict]:
    response = client.get("/orders", query_string=FORM | changes)
    assert response.status_code == 200, response.get_data(as_text=True)[:800]
    html = response.get_data(as_text=True)
    typed = json.loads(re.search(r'<script id="typed-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    return html, typed


def test_form_builds_the_typed_data_a_wallet_signs(client):
    html, typed = prepared(client)
    assert typed["primaryType"] == "Order"
    assert typed["domain"] == {"name": "GridLedger", "version": "1", "chainId": 31337, "verifyingContract": MARKET}
    assert typed["message"] == {"participant": 1, "interval": NEXT, "side": 1, "energyWh": 2500, "limitPrice": 120_000,
                                "expiry": int(datetime(2096, 1, 1, tzinfo=timezone.utc).timestamp()), "nonce": 42}
    assert "Sign with wallet" in html and "eth_signTypedData_v4" in html
    assert ALICE.address in html  # whose key must sign
    plain = unescape(re.sub(r"<[^>]+>", " ", html))
    assert "gridledger order sign --account " + ALICE.address in plain
    assert "--energy-kwh 2.5 --limit-price 0.12" in plain


def test_form_names_a_bad_value(client):
    response = client.get("/orders", query_string=FORM | {"energy_kwh": "1.0001"})
    assert response.status_code == 400
    assert "not a whole number of Wh" in response.get_data(as_text=True)


def test_form_submits_a_pasted_signature_and_lists_the_order(client, index_path):
    _, typed = prepared(client)
    signature = ALICE.sign_message(encode_typed_data(full_message=typed)).signature.hex()
    form = FORM | {"order": json.dumps(typed["message"]), "signature": "0x" + signature.removeprefix("0x")}
    response = client.post("/orders", data=form)
    assert response.status_code == 303
    page = text(client, response.headers["Location"])
    assert "Order #1 accepted" in page
    assert re.search(r"alice \(#1\) sells up to 2\.50 kWh\s+for at least €0\.1200/kWh", page), page
    # The others see that there is an order, not what it is.
    assert f"1 order received for interval #{NEXT}" in page
    public = text(client, "/orders")
    assert "1 order received" in public and "2.50 kWh" not in public and "0.1200" not in public
    assert stored_orders(index_path) == 1


def test_form_accepts_the_json_printed_by_the_cli(client):
    signed = sign_order(ALICE, DOMAIN, order(nonce=99))
    response = client.post("/orders", data=FORM | {"order": "{}", "signature": json.dumps(signed.to_json())})
    assert response.status_code == 303
    assert client.get("/api/orders", headers=as_owner(ALICE, 1)).get_json()["orders"][0]["order"]["nonce"] == 99


def test_form_shows_why_an_order_signed_by_someone_else_is_refused(client, index_path):
    _, typed = prepared(client)
    signature = MALLORY.sign_message(encode_typed_data(full_message=typed)).signature.hex()
    response = client.post("/orders", data=FORM | {"order": json.dumps(typed["message"]), "signature": "0x" + signature.removeprefix("0x")})
    assert response.status_code == 400
    page = unescape(response.get_data(as_text=True))
    assert "Order refused" in page and f"signed by {MALLORY.address}" in page
    assert stored_orders(index_path) == 0


# -- audit ----------------------------------------------------------------------------------


def test_audit_page_shows_the_latest_run_failures_first(client, index_path):
    index = Index(index_path)
    index.store_audit([Verdict(0, tx(1000)), Verdict(1, tx(1001))], 3, "2026-06-01T10:00:00+00:00")  # older run
    index.store_audit([Verdict(0, tx(1000)), Verdict(1, tx(1001), ["money is not conserved", "P2P price 5 differs"])],
                      chain_head_block=6, audited_at_iso="2026-06-02T09:30:00+00:00")
    index.close()

    page = text(client, "/audit")
    assert "2026-06-02 09:30" in page and "up to block 6" in page
    assert re.search(r"Passed\s+1\b", page) and re.search(r"Failed\s+1\b", page)
    failures = page.index("Failed intervals (1)")
    assert page.index("money is not conserved") > failures and page.index("All verdicts") > failures
    html = client.get("/audit").get_data(as_text=True)
    assert 'href="/intervals/1"' in html and 'href="/intervals/0"' in html

    assert "audited OK" in text(client, "/intervals/0")
    assert "FAILED: money is not conserved; P2P price 5 differs" in text(client, "/intervals/1")

    data = client.get("/api/audit").get_json()
    assert data["audit"] | {"id": None} == {"id": None, "audited_at": "2026-06-02T09:30:00+00:00", "chain_head_block": 6,
                                            "intervals": 2, "passed": 1, "failed": 1, "settled_intervals_not_audited": 0}
    assert data["verdicts"] == [
        {"interval": 0, "tx_hash": tx(1000), "ok": True, "reasons": []},
        {"interval": 1, "tx_hash": tx(1001), "ok": False, "reasons": ["money is not conserved", "P2P price 5 differs"]},
    ]
    assert [v["interval"] for v in client.get("/api/audit?failed=1").get_json()["verdicts"]] == [1]


def test_interval_settled_after_the_audit_is_not_audited_yet(client, index_path):
    index = Index(index_path)
    index.store_audit([Verdict(0, tx(1000)), Verdict(1, tx(1001))], 6)
    index.apply(settle_events(index, 2, [(1, 100, 0), (2, -100, 0)], block=9, homes=2))
    index.close()
    assert "not audited yet" in text(client, "/intervals/2")
    assert "1 settled since, not audited yet" in text(client, "/audit")


def test_audit_of_a_different_transaction_is_a_failure(client, index_path):
    index = Index(index_path)
    index.store_audit([Verdict(0, tx(5555))], 6)
    index.close()
    assert "FAILED: the audit checked transaction" in text(client, "/intervals/0")


def test_audit_verdicts_are_paginated(index_path):
    index = Index(index_path)
    index.store_audit([Verdict(k, tx(k), [] if k % 7 else ["bad"]) for k in range(25)], 99)
    index.close()
    client = create_app({"INDEX_PATH": str(index_path), "AUDIT_VERDICTS_PER_PAGE": 10}).test_client()
    first = client.get("/audit").get_data(as_text=True)
    assert "page 1 of 3" in first and 'href="/audit?page=2"' in first
    last = text(client, "/audit?page=3")
    assert "#24" in last and "#9 " not in last
    assert "Failed intervals (4)" in last  # failures stay on every page
    assert client.get("/audit?page=4").status_code == 404
    assert len(client.get("/api/audit?limit=10&offset=20").get_json()["verdicts"]) == 5


def test_no_audit_yet_says_how_to_run_one(client):
    assert "No audit yet: run gridledger audit --state DIR" in " ".join(text(client, "/audit").split())
    assert client.get("/api/audit").get_json()["audit"] is None
    assert "not audited yet" in text(client, "/intervals/1")


# -- the real browser: the wallet button ---------------------------------------------------


CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def live(index_path):
    """The app on a free port of 127.0.0.1, served from a thread for the test."""
    with served(create_app({"INDEX_PATH": str(index_path)})) as url:
        yield url


@pytest.fixture
def browser(tmp_path):
    """Headless chromium driven over the DevTools protocol (no extra packages)."""
    if not os.path.exists(CHROMIUM):
        # CI installs chromium (.ci/run), so there a missing browser is a failure.
        if os.environ.get("CI"):
            pytest.fail(f"no chromium at {CHROMIUM}: install it with apt-get install chromium")
        pytest.skip("no chromium at " + CHROMIUM)
    profile = tmp_path / "chromium"
    process = subprocess.Popen([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (profile / "DevToolsActivePort").exists():
            assert time.monotonic() < deadline and process.poll() is None, "chromium did not start"
            time.sleep(0.05)
        time.sleep(0.2)
        port = (profile / "DevToolsActivePort").read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            page_ws = next(t["webSocketDebuggerUrl"] for t in json.load(response) if t["type"] == "page")
        yield _Page(page_ws)
    finally:
        process.terminate()
        process.wait(timeout=10)


class _Page:
    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=10)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=15))
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def eval(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 15):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {expression}: page says {self.eval('document.body.innerText')!r}")


def fake_wallet(account: str, signature: str) -> str:
    """A stand-in for MetaMask's window.ethereum that keeps what it was asked to sign."""
    return f"""
      window.ethereum = {{ request: async ({{method, params}}) => {{
        if (method === "eth_requestAccounts") return ["{account.lower()}"];
        if (method === "eth_signTypedData_v4") {{
          sessionStorage.setItem("signed", JSON.stringify(params));
          return "{signature}";
        }}
        throw new Error("unexpected " + method);
      }} }};"""


def test_wallet_button_signs_the_typed_data_and_posts_it(client, live, browser, index_path):
    _, typed = prepared(client)
    signature = "0x" + ALICE.sign_message(encode_typed_data(full_message=typed)).signature.hex().removeprefix("0x")
    browser.call("Page.enable")
    browser.call("Page.addScriptToEvaluateOnNewDocument", source=fake_wallet(ALICE.address, signature))
    browser.call("Page.navigate", url=f"{live}/orders?{urlencode(FORM)}")
    browser.wait_for("document.readyState === 'complete' && !document.getElementById('wallet').hidden")
    browser.eval("document.getElementById('wallet').click()")
    browser.wait_for("location.search.includes('accepted=')")
    assert "Order #1 accepted" in browser.wait_for("document.readyState === 'complete' && document.body.innerText")
    account, signed_json = json.loads(browser.eval("sessionStorage.getItem('signed')"))
    assert account == ALICE.address.lower() and json.loads(signed_json) == typed
    assert stored_orders(index_path) == 1


def test_wallet_on_the_wrong_account_is_told_before_signing(client, live, browser, index_path):
    browser.call("Page.enable")
    browser.call("Page.addScriptToEvaluateOnNewDocument", source=fake_wallet(MALLORY.address, "0x00"))
    browser.call("Page.navigate", url=f"{live}/orders?{urlencode(FORM)}")
    browser.wait_for("document.readyState === 'complete' && !document.getElementById('wallet').hidden")
    browser.eval("document.getElementById('wallet').click()")
    shown = browser.wait_for("!document.getElementById('result').hidden && document.getElementById('result').innerText")
    assert f"is not {ALICE.address}, the owner of this participant" in shown
    assert browser.eval("sessionStorage.getItem('signed')") is None
    assert stored_orders(index_path) == 0


def test_without_a_wallet_the_button_stays_hidden(live, browser):
    browser.call("Page.navigate", url=f"{live}/orders?{urlencode(FORM)}")
    browser.wait_for("document.readyState === 'complete'")
    assert browser.eval("getComputedStyle(document.getElementById('wallet')).display") == "none"
