"""A client of a GridLedger server's JSON API: submit signed intent, read one's own orders.

Submitting is a plain HTTP POST of the signed JSON (``/api/orders``, ``/api/mandates``);
the server checks the signature again before it stores anything. Reading one's orders
sends a short-lived signed ReadRequest in headers: a server shows a participant's
pending orders to its owner only.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

from typing import TYPE_CHECKING

from node.errors import InputError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from node.intent.signing import Domain, SignedReadRequest

DEFAULT_URL = "http://127.0.0.1:5000"
SUBMIT_TIMEOUT_SECONDS = 30
# eth-account (signing) is imported where a message is signed: the CLI's parser reads
# this module's defaults and must not wait the second it takes to load.


class Rejected(InputError):
    """The server refused the signed message; the message is the server's reason."""

    status: int = 400


def post_signed(url: str, kind: str, body: bytes) -> dict:
    """POSTs a signed order or mandate to a GridLedger server; the server's JSON answer.

    Raises Rejected with the server's reason on a 4xx answer, InputError if the server
    cannot be reached or answers something that is not GridLedger's API."""
    return call_api(url, f"/api/{kind}s", kind, body=body)


def call_api(url: str, path: str, what: str, body: bytes | None = None, headers: dict[str, str] | None = None,
             timeout: float = SUBMIT_TIMEOUT_SECONDS) -> dict:
    """GETs (or with `body`, POSTs JSON to) `path` of the GridLedger server at `url`.

    Rejected with the server's reason on a 4xx answer (its HTTP status in `.status`),
    InputError if the server cannot be reached or does not answer GridLedger's JSON."""
    endpoint = f"{url.rstrip('/')}{path}"
    request = urllib.request.Request(endpoint, data=body, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"}
                                     | (headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return _json_answer(response.read(), endpoint)
    except urllib.error.HTTPError as exc:
        answer = _json_answer(exc.read(), endpoint, exc.code)
        if 400 <= exc.code < 500:
            rejected = Rejected(f"{what} rejected by {url}: {answer.get('error', answer)}")
            rejected.status = exc.code
            raise rejected from exc
        raise InputError(f"{endpoint} failed ({exc.code}): {answer.get('error', answer)}; try again later") from exc
    except urllib.error.URLError as exc:
        raise InputError(f"cannot reach {endpoint}: {exc.reason}; is `gridledger serve` running there?") from exc


def _json_answer(raw: bytes, endpoint: str, status: int = 200) -> dict:
    try:
        answer = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        answer = None
    if not isinstance(answer, dict):
        raise InputError(f"{endpoint} answered {status} with something that is not GridLedger's JSON API; check --url")
    return answer


def read_headers(signed: SignedReadRequest) -> dict[str, str]:
    """The HTTP headers that carry a signed read request (see webui/orders.py)."""
    r = signed.read_request
    return {"X-Read-Participant": str(r.participant), "X-Read-Issued-At": str(r.issued_at),
            "X-Read-Signature": "0x" + signed.signature.hex()}


def server_domain(url: str) -> Domain:
    """The EIP-712 domain of the market a server serves (its public summary)."""
    from node.intent.signing import Domain

    meta = call_api(url, "/api/summary", "summary").get("meta", {})
    if "chain_id" not in meta or "market" not in meta:
        raise InputError(f"{url} serves no deployed market yet (no chain id and market address)")
    return Domain(int(meta["chain_id"]), meta["market"])


def owned_participant(url: str, owner: str) -> int:
    """The participant id `owner` owns, from the server's public participant list."""
    for p in call_api(url, "/api/participants", "participants").get("participants", []):
        if str(p.get("owner", "")).lower() == owner.lower():
            return int(p["id"])
    raise InputError(f"{owner} owns no participant of the market at {url}; give --participant, or check --account")


def list_orders(url: str, account: LocalAccount, participant: int | None = None, interval: int | None = None,
                now: int | None = None) -> dict:
    """The server's answer to GET /api/orders with a read request signed by `account`."""
    from node.intent.signing import ReadRequest, sign_read_request

    domain = server_domain(url)
    if participant is None:
        participant = owned_participant(url, account.address)
    signed = sign_read_request(account, domain, ReadRequest(participant, int(time.time()) if now is None else now))
    query = "" if interval is None else "?" + urlencode({"interval": interval})
    return call_api(url, "/api/orders" + query, "read request", headers=read_headers(signed))
