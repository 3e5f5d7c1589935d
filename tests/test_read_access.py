"""Owner-only reads: a participant's pending orders and mandates are shown to whoever
presents a fresh ReadRequest signed by the participant's owner, and to nobody else;
in an auction no one may read the others' bids."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from eth_account.messages import encode_typed_data

from node.intent.client import read_headers
from node.intent.signing import Domain, ReadRequest, sign_mandate, sign_order, sign_read_request
from tests.test_webui_orders import (  # noqa: F401  (fixtures)
    ALICE,
    BOB,
    DOMAIN,
    FORM,
    MALLORY,
    MANDATE,
    NEXT,
    app,
    browser,
    client,
    index_path,
    live,
    order,
    post,
)
from webui import orders as web_orders

NOW = 1_900_000_000


@pytest.fixture
def clock(monkeypatch):
    """The server's clock, fixed at NOW."""
    monkeypatch.setattr(web_orders, "now", lambda: NOW)
    return NOW


@pytest.fixture
def book(client, clock):
    """Alice (participant 1) and Bob (2) each placed an order for the next interval."""
    alice = post(client, sign_order(ALICE, DOMAIN, order(participant=1, nonce=1, limit_price=271_828)))
    bob = post(client, sign_order(BOB, DOMAIN, order(participant=2, nonce=2, side=1, limit_price=314_159)))
    assert alice.status_code == bob.status_code == 201
    return {"alice": alice.get_json()["id"], "bob": bob.get_json()["id"]}


def headers(key, participant: int, issued_at: int = NOW, domain: Domain = DOMAIN) -> dict[str, str]:
    return read_headers(sign_read_request(key, domain, ReadRequest(participant, issued_at)))


def test_owner_sees_their_own_orders_and_no_one_elses(client, book):
    mine = client.get(f"/api/orders?interval={NEXT}", headers=headers(ALICE, 1))
    assert mine.status_code == 200
    answer = mine.get_json()
    assert answer["participant"] == 1
    assert [(o["id"], o["order"]["participant"], o["order"]["limitPrice"]) for o in answer["orders"]] == [
        (book["alice"], 1, 271_828)]
    bobs = client.get("/api/orders", headers=headers(BOB, 2)).get_json()["orders"]
    assert [(o["id"], o["order"]["limitPrice"]) for o in bobs] == [(book["bob"], 314_159)]


def test_a_read_request_in_query_parameters_works_too(client, book):
    h = headers(ALICE, 1)
    query = {"participant": h["X-Read-Participant"], "issued_at": h["X-Read-Issued-At"], "signature": h["X-Read-Signature"]}
    response = client.get("/api/orders", query_string=query)
    assert response.status_code == 200 and len(response.get_json()["orders"]) == 1


def test_without_a_read_request_orders_are_401_and_the_answer_says_how_to_sign_one(client, book):
    for url in ("/api/orders", f"/api/orders?interval={NEXT}", "/api/orders?participant=1", f"/api/orders/{book['bob']}",
                "/api/mandates", "/api/mandates?participant=2"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.headers["WWW-Authenticate"].startswith("GridLedger-ReadRequest")
        error = response.get_json()["error"]
        assert "ReadRequest(uint32 participant,uint64 issuedAt)" in error and f"chain {DOMAIN.chain_id}" in error
        assert "X-Read-Signature" in error and "gridledger order list" in error
        assert "314159" not in response.get_data(as_text=True)


@pytest.mark.parametrize("signer, participant, problem", [
    (BOB, 1, f"signed by {BOB.address}, but the participant's owner is {ALICE.address}"),
    (MALLORY, 2, f"signed by {MALLORY.address}"),
    (ALICE, 9, "participant 9 is not registered"),
], ids=["another-participant", "a-stranger", "unregistered"])
def test_someone_elses_read_request_is_403(client, book, signer, participant, problem):
    response = client.get("/api/orders", headers=headers(signer, participant))
    assert response.status_code == 403
    assert problem in response.get_json()["error"] and "to its owner only" in response.get_json()["error"]


def test_a_read_request_signed_for_another_market_is_403(client, book):
    other = Domain(chain_id=1, verifying_contract=DOMAIN.verifying_contract)
    response = client.get("/api/orders", headers=headers(ALICE, 1, domain=other))
    assert response.status_code == 403 and "signed by" in response.get_json()["error"]


@pytest.mark.parametrize("issued_at, status", [
    (NOW - 300, 200), (NOW - 301, 401), (NOW + 60, 200), (NOW + 61, 401), (0, 401),
], ids=["5-minutes-old", "stale", "a-minute-ahead", "too-far-ahead", "epoch"])
def test_a_read_request_is_valid_for_five_minutes(client, book, issued_at, status):
    response = client.get("/api/orders", headers=headers(ALICE, 1, issued_at))
    assert response.status_code == status, response.get_json()
    if status == 401:
        assert "sign a new one" in response.get_json()["error"]


@pytest.mark.parametrize("changes, problem", [
    ({"X-Read-Signature": "0x1234"}, "65 bytes"),
    ({"X-Read-Issued-At": "soon"}, "readrequest.issuedAt"),
    ({"X-Read-Participant": ""}, "lacks participant"),
    ({"X-Read-Participant": str(2**32)}, "readrequest.participant"),
])
def test_a_malformed_read_request_is_400_naming_the_field(client, book, changes, problem):
    response = client.get("/api/orders", headers=headers(ALICE, 1) | changes)
    assert response.status_code == 400 and problem in response.get_json()["error"]


def test_a_single_order_is_shown_to_its_owner_only(client, book):
    url = f"/api/orders/{book['bob']}"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=headers(BOB, 2)).get_json()["order"]["limitPrice"] == 314_159
    # Alice's valid request does not show Bob's order, nor that it exists.
    response = client.get(url, headers=headers(ALICE, 1))
    assert response.status_code == 404 and response.get_json()["error"] == f"participant 1 has no order {book['bob']}"
    assert client.get("/api/orders/999", headers=headers(ALICE, 1)).get_json()["error"] == "participant 1 has no order 999"


def test_mandates_are_shown_to_their_owner_only(client, clock):
    assert post(client, sign_mandate(BOB, DOMAIN, MANDATE), "/api/mandates").status_code == 201
    assert client.get("/api/mandates", headers=headers(BOB, 2)).get_json()["mandates"][0]["mandate"]["nonce"] == 1
    assert client.get("/api/mandates", headers=headers(ALICE, 1)).get_json() == {"participant": 1, "mandates": []}
    assert client.get("/api/mandates?participant=2").status_code == 401
    assert client.get("/api/mandates", headers=headers(ALICE, 2)).status_code == 403


def test_the_order_count_is_public_and_shows_no_bid(client, book):
    answer = client.get(f"/api/orders/summary?interval={NEXT}").get_json()
    assert answer == {"interval": NEXT, "next_interval": NEXT, "order_count": 2}
    assert client.get("/api/orders/summary").get_json()["order_count"] == 2  # the next interval by default
    assert client.get(f"/api/orders/summary?interval={NEXT + 1}").get_json()["order_count"] == 0


def test_the_orders_page_shows_how_many_orders_but_not_whose_or_what(client, book):
    html = client.get("/orders").get_data(as_text=True)
    text = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    assert f"2 orders received for interval #{NEXT}" in text
    assert "0.2718" not in text and "0.3142" not in text and "314159" not in html and "271828" not in html
    assert "gridledger order list --keystore DIR --account 0xYOU --server http://localhost" in text


def test_the_accepted_page_needs_the_submitters_receipt(client, clock):
    form = FORM | {"order": "{}", "signature": json.dumps(sign_order(ALICE, DOMAIN, order(nonce=77)).to_json())}
    response = client.post("/orders", data=form)
    assert response.status_code == 303 and "receipt=" in response.headers["Location"]
    assert "Order #1 accepted" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert client.get("/orders?accepted=1").status_code == 404
    wrong = client.get("/orders?accepted=1&receipt=00ff")
    assert wrong.status_code == 404 and "shown to whoever submitted it" in wrong.get_data(as_text=True)


def test_an_order_signed_by_someone_else_is_still_refused_on_submission(client, clock):
    # Reading is owner-only; writing always was: the signer must own the participant.
    response = post(client, sign_order(BOB, DOMAIN, order(participant=1)))
    assert response.status_code == 400 and f"signed by {BOB.address}" in response.get_json()["error"]
    forged = post(client, sign_mandate(ALICE, DOMAIN, MANDATE), "/api/mandates")
    assert forged.status_code == 400 and "signed by" in forged.get_json()["error"]


# -- the real browser: the wallet signs a read request ---------------------------------------


DEFERRED_WALLET = """
  window.ethereum = { request: async ({method, params}) => {
    if (method === "eth_requestAccounts") return ["%s"];
    if (method === "eth_signTypedData_v4") {
      window.signRequest = params;
      return await new Promise((resolve) => { window.resolveSignature = resolve; });
    }
    throw new Error("unexpected " + method);
  } };"""


def test_the_wallet_signs_a_read_request_and_the_page_lists_the_owners_orders(client, live, browser):
    # Bob's order is in the book too; the page must show Alice hers only.
    assert post(client, sign_order(ALICE, DOMAIN, order(participant=1, nonce=1, limit_price=271_828))).status_code == 201
    assert post(client, sign_order(BOB, DOMAIN, order(participant=2, nonce=2, limit_price=314_159))).status_code == 201
    browser.call("Page.enable")
    browser.call("Page.addScriptToEvaluateOnNewDocument", source=DEFERRED_WALLET % ALICE.address.lower())
    browser.call("Page.navigate", url=f"{live}/orders")
    browser.wait_for("document.readyState === 'complete' && !document.getElementById('show-mine').hidden")
    browser.eval("document.getElementById('show-mine').click()")
    account, typed_json = browser.wait_for("window.signRequest")
    typed = json.loads(typed_json)
    assert account == ALICE.address.lower() and typed["primaryType"] == "ReadRequest"
    assert typed["message"]["participant"] == 1 and typed["domain"]["chainId"] == DOMAIN.chain_id
    signature = ALICE.sign_message(encode_typed_data(full_message=typed)).signature.hex()
    browser.eval(f"window.resolveSignature('0x{signature.removeprefix('0x')}')")
    shown = browser.wait_for("!document.getElementById('mine-table').hidden && document.getElementById('mine').innerText")
    assert "1 order(s) of participant #1" in shown and "0.2718/kWh" in shown
    assert "0.3142" not in shown


def test_a_wallet_that_owns_no_participant_is_told_so(live, browser):
    browser.call("Page.enable")
    browser.call("Page.addScriptToEvaluateOnNewDocument", source=DEFERRED_WALLET % MALLORY.address.lower())
    browser.call("Page.navigate", url=f"{live}/orders")
    browser.wait_for("document.readyState === 'complete' && !document.getElementById('show-mine').hidden")
    browser.eval("document.getElementById('show-mine').click()")
    shown = browser.wait_for("!document.getElementById('mine-result').hidden && document.getElementById('mine-result').innerText")
    assert "owns no participant of this market" in shown
    assert browser.eval("window.signRequest === undefined")
