"""The API has a contract and keeps it: an OpenAPI description at /api/openapi.json; a
bounded schemathesis run over loopback (valid and invalid requests for every operation,
against the production server with a chain for /api/admin) gets no server error; the
requests that made the server answer 500 before now get a 400 naming the field; writes
are rate limited; responses carry security headers; role changes are relayed only when
the server was asked to."""

from __future__ import annotations

import json
import os
import re
import threading
from contextlib import contextmanager

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from node.admin.actions import grant_role
from tests.conftest import home_key
from tests.test_admin import index_of, relay, signed
from tests.test_webui_orders import ALICE, DOMAIN, index_path, order  # noqa: F401 (index_path: fixture)
from webui import create_app

# Per operation and generation mode: a bounded run of some 350 requests (bench/bench_serve.py runs more).
EXAMPLES = int(os.environ.get("GRIDLEDGER_FUZZ_EXAMPLES", "12"))


@contextmanager
def waitress(app):
    from webui.server import make_server

    server = make_server(app)

    def run() -> None:
        try:
            server.run()
        except OSError:
            pass  # the listening socket closed under the poll by close() below: the server stopped

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}"
    finally:
        server.close()
        thread.join(timeout=5)


def test_no_request_the_description_allows_or_forbids_makes_a_server_error(bare_market, tmp_path):
    app = create_app({"INDEX_PATH": index_of(bare_market, tmp_path / "index.sqlite"), "CHAIN": bare_market.chain,
                      "WRITE_RATE_LIMIT": None})
    requests_made, errors = 0, []
    with waitress(app) as url:
        schema = schemathesis.openapi.from_url(f"{url}/api/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 18
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck),
                          phases=[Phase.explicit, Phase.generate])
                @given(case=operation.as_strategy(generation_mode=mode))
                def call(case):
                    nonlocal requests_made
                    response = case.call(base_url=url, timeout=30)
                    requests_made += 1
                    if response.status_code >= 500:
                        errors.append(f"{response.status_code} {case.method} {case.formatted_path} query={case.query} "
                                      f"body={str(case.body)[:200]}: {response.text[:300]}")

                try:
                    call()
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (no parameters, no body)
    print(f"schemathesis: {requests_made} requests over {len(operations)} operations, {len(errors)} server errors")
    assert requests_made >= len(operations) * 10
    assert errors == []


FIVE_HUNDREDS = [  # what a fuzzer found answered 500 before (issue 10), and must not
    "/intervals/99999999999999999999", "/participants/99999999999999999999", "/api/orders/99999999999999999999",
    "/orders?accepted=99999999999999999999", "/intervals/?page=" + "9" * 5000, "/intervals/?page=²",
    "/?interval=99999999999999999999", "/?interval=-3", "/intervals/?page=٣",
    "/orders?participant=1&side=buy&energy_kwh=1e999999&limit_price=0.2&interval=2&expiry=2030-01-01T00:00:00Z&nonce=1",
    "/orders?participant=1&side=buy&energy_kwh=1&limit_price=0.2&interval=2&expiry=9999-12-31T23:59:59-14:00&nonce=1",
    "/orders?participant=99999999999999999999&side=buy&energy_kwh=1&limit_price=0.2&interval=2&expiry=2030-01-01T00:00:00Z&nonce=1",
    "/orders?participant=1&side=buy&energy_kwh=1&limit_price=0.2&interval=99999999999999999999999&expiry=2030-01-01T00:00:00Z&nonce=1",
]


@pytest.mark.parametrize("url", FIVE_HUNDREDS)
def test_what_answered_500_before_is_now_a_client_error(index_path, url):
    response = create_app({"INDEX_PATH": str(index_path)}).test_client().get(url)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:500]


def test_a_json_body_with_an_integer_of_five_thousand_digits_is_a_400_naming_the_order(index_path):
    client = create_app({"INDEX_PATH": str(index_path)}).test_client()
    body = json.dumps(signed_order_json()).replace('"nonce": 7', '"nonce": ' + "9" * 5000)
    response = client.post("/api/orders", data=body, content_type="application/json")
    assert response.status_code == 400 and response.get_json()["field"] == "order"


def signed_order_json() -> dict:
    from node.intent.signing import sign_order

    return sign_order(ALICE, DOMAIN, order()).to_json()


def test_writes_beyond_the_limit_get_429_with_retry_after_and_reads_are_not_limited(index_path):
    client = create_app({"INDEX_PATH": str(index_path), "WRITE_RATE_LIMIT": (3, 60)}).test_client()
    statuses = [client.post("/api/orders", data="{}", content_type="application/json").status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    limited = client.post("/api/mandates", data="{}", content_type="application/json")
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 20
    assert "too many write requests" in limited.get_json()["error"]
    assert all(client.get("/api/summary").status_code == 200 for _ in range(10))


def test_pages_and_answers_carry_security_headers_and_scripts_the_csp_nonce(index_path):
    client = create_app({"INDEX_PATH": str(index_path)}).test_client()
    for url in ("/", "/api/summary", "/orders"):
        headers = client.get(url).headers
        assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    page = client.get("/orders")
    nonce = re.search(r"'nonce-([^']+)'", page.headers["Content-Security-Policy"]).group(1)
    scripts = re.findall(r"<script(?![^>]*application/json)([^>]*)>", page.get_data(as_text=True))
    assert scripts and all(f'nonce="{nonce}"' in attrs for attrs in scripts)


def test_the_relay_refuses_role_changes_unless_the_server_was_asked_to(bare_market, tmp_path):
    """The demo serves a dev chain whose admin key is public: anyone could sign grantRole."""
    admin = bare_market.chain.operators.admin
    stranger = home_key(3).address
    path = index_of(bare_market, tmp_path / "index.sqlite")
    client = create_app({"INDEX_PATH": path, "CHAIN": bare_market.chain}).test_client()
    status, answer = relay(client, signed(bare_market, admin, grant_role("oracle", stranger)))
    assert status == 403 and answer["function"] == "grantRole" and "--allow-role-changes" in answer["error"]
    assert not bare_market.market.functions.hasRole(bare_market.market.functions.ORACLE_ROLE().call(), stranger).call()
    prepared = client.get("/api/admin/prepare", query_string={"action": "grant-role", "role": "oracle",
                                                             "account": stranger, "sender": admin.address})
    assert prepared.status_code == 403
    allowed = create_app({"INDEX_PATH": path, "CHAIN": bare_market.chain, "RELAY_ROLE_CHANGES": True}).test_client()
    assert relay(allowed, signed(bare_market, admin, grant_role("oracle", stranger)))[0] == 201


def test_the_production_server_serves_the_ui(index_path):
    with waitress(create_app({"INDEX_PATH": str(index_path)})) as url:
        response = requests.get(f"{url}/api/openapi.json", timeout=10)
        assert response.status_code == 200 and response.headers["Server"] == "GridLedger"
        assert response.json()["openapi"].startswith("3.")
