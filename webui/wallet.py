"""A participant's own wallet in the browser: Sign-In with Ethereum (EIP-4361), the
"your wallet" page, mandates signed through the browser wallet, and the demo's
local test wallets.

Signing in proves which account the browser's wallet holds (a personal_sign of a
message with a nonce this server issued); the session (a signed cookie) then shows
that account's participants, their orders and mandates. It authorises nothing that
moves energy or money: orders and mandates still carry their own EIP-712 signatures.

The demo's homes are owned by keys derived from public data (node.simulation.setup.
demo_key). With DEMO_SEED set (`gridledger demo` sets it), /demo/sign signs, for
whoever runs the demo, with the key of the home they choose to act as: sign-in
messages for this site and typed data for this market only.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from flask import Blueprint, abort, current_app, jsonify, make_response, render_template, request, session

from node.errors import InputError
from node.intent.amounts import build_mandate, fresh_nonce, unix_time
from node.intent.siwe import SiweError, SiweMessage
from node.intent.signing import typed_data
from webui.context import get_index, get_meta
from webui.orders import domain, get_book, next_interval
from webui.session import SESSION_S, owned_by, signed_in

bp = Blueprint("wallet", __name__)

MESSAGE_VALID_S = 600  # a sign-in message must be signed within 10 minutes
STATEMENT = "Sign in to see your GridLedger wallet, orders and mandates. This signs no transaction and moves nothing."


SECRET_FILE = "webui-secret"  # beside the index; node.simulation.state lists it as GridLedger's


@bp.record_once
def _configure(state) -> None:
    app = state.app
    if not app.secret_key:
        app.secret_key = os.environ.get("GRIDLEDGER_SECRET_KEY") or _secret_beside(Path(app.config["INDEX_PATH"]))
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("DEMO_SEED", None)


def _secret_beside(index: Path) -> bytes:
    """The key that signs session cookies, kept beside the index (created once, owner-only),
    so every worker process of a server, and the server after a restart, accept a sign-in."""
    path = index.with_name(SECRET_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(100):  # another process may be writing it this instant
            key = path.read_bytes()
            if len(key) == 32:
                return key
            time.sleep(0.01)
        raise InputError(f"{path} is not a 32-byte session key: remove it, and the server makes a new one")
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
        handle.flush()
        os.fsync(handle.fileno())
    return path.read_bytes()


@bp.app_context_processor
def _wallet_context() -> dict:
    address = signed_in()
    return {"signed_in": address, "you": {p["id"] for p in owned_by(address)},
            "demo_wallets": current_app.config.get("DEMO_SEED") is not None}


def refuse(status: int, message: str):
    """Ends a JSON endpoint's request with {"error": message}, as /api answers."""
    abort(make_response(jsonify(error=message), status))


def _chain_id() -> int:
    meta = get_meta()
    if "chain_id" not in meta or "market" not in meta:
        refuse(503, "this index has no market yet: deploy one with `gridledger demo` or `gridledger simulate` first")
    return int(meta["chain_id"])


@bp.post("/auth/message")
def auth_message():
    """An EIP-4361 message for the wallet to sign, with a fresh nonce kept in the session."""
    body = request.get_json(silent=True) or {}
    try:
        message = SiweMessage.create(request.host, str(body.get("address", "")), request.host_url, _chain_id(),
                                     STATEMENT, datetime.now(timezone.utc), MESSAGE_VALID_S,
                                     scheme=request.scheme if request.scheme != "https" else None)
    except InputError as exc:
        refuse(400, f"{exc}; the wallet gives the address (eth_requestAccounts)")
    session["nonce"] = message.nonce
    return {"message": message.to_text()}


@bp.post("/auth/verify")
def auth_verify():
    """Signs in the signer of the message /auth/message issued to this session."""
    body = request.get_json(silent=True) or {}
    nonce = session.pop("nonce", None)
    if nonce is None:
        refuse(400, "no sign-in was started in this browser session (or it was used): sign in again")
    try:
        message = SiweMessage.parse(str(body.get("message", "")))
        address = message.verify(str(body.get("signature", "")), domain=request.host, nonce=nonce,
                                 chain_id=_chain_id(), now=datetime.now(timezone.utc))
    except SiweError as exc:
        return jsonify(error=str(exc)), 401
    session["address"], session["until"] = address, int(time.time()) + SESSION_S
    return {"address": address, "participants": [p["id"] for p in owned_by(address)]}


@bp.post("/auth/logout")
def auth_logout():
    session.clear()
    return {"signed_out": True}


@bp.get("/wallet")
def page():
    address = signed_in()
    mine = owned_by(address)
    idx = get_index()
    balances = idx.balances()
    book = get_book() if mine else None
    now = int(time.time())
    last = idx.last_interval()
    orders = [(order_id, s) for p in mine for order_id, s in book.orders_of(p["id"])] if book else []
    mandates = [m for m in book.active_mandates(now) if m.mandate.participant in {p["id"] for p in mine}] if book else []
    homes = [p for p in idx.participant_list() if p["id"] != 0] if current_app.config.get("DEMO_SEED") is not None else []
    return render_template("wallet.html", address=address, mine=mine, balances=balances, orders=orders[::-1][:200],
                           mandates=mandates, last_settled=last, next_interval=next_interval(), now=now, demo_homes=homes,
                           valid_until=(datetime.now(timezone.utc) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ"))


@bp.get("/wallet/mandate")
def mandate_typed_data():
    """The EIP-712 typed data of the mandate the page's form describes, for the wallet."""
    a = request.args
    try:
        participant = int(a.get("participant", ""))
        mandate = build_mandate(participant, a.get("max_buy_price", ""), a.get("min_sell_price", ""),
                                a.get("min_soc_percent", ""), a.get("max_soc_percent", ""),
                                unix_time(a.get("valid_until", ""), "valid until"), fresh_nonce())
    except ValueError:
        refuse(400, f"participant must be a whole number, got {a.get('participant')!r}")
    except InputError as exc:
        refuse(400, str(exc))
    owner = get_index().participant(participant)
    if owner is None:
        refuse(404, f"there is no participant {participant}")
    return {"owner": owner["owner"], "typed": typed_data(domain(), mandate)}


# -- the demo's local test wallets ----------------------------------------------------------


@bp.get("/demo/accounts")
def demo_accounts():
    """The demo homes a visitor may act as: participant, name, owner address."""
    _demo_seed()
    return {"accounts": [{"participant": p["id"], "name": p["name"], "address": p["owner"]}
                         for p in get_index().participant_list() if p["id"] != 0]}


@bp.post("/demo/sign")
def demo_sign():
    """Signs as a demo home (EIP-1193 personal_sign or eth_signTypedData_v4 params)."""
    from eth_account.messages import encode_defunct, encode_typed_data

    from node.simulation.setup import demo_key

    seed = _demo_seed()
    body = request.get_json(silent=True) or {}
    raw = str(body.get("participant", ""))
    p = get_index().participant(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
    if p is None or p["id"] == 0:
        refuse(404, "no such demo home")
    key = demo_key(seed, p["name"])
    if key.address.lower() != p["owner"].lower():
        refuse(403, f"{p['name']} is not a demo home (its owner holds its own key)")
    method, params = body.get("method"), body.get("params") or []
    if method == "personal_sign":
        text = bytes.fromhex(str(params[0]).removeprefix("0x")).decode("utf-8", "replace")
        try:
            message = SiweMessage.parse(text)
        except SiweError as exc:
            refuse(400, f"the demo wallet signs only sign-in messages for this site: {exc}")
        if message.domain != request.host:
            refuse(400, f"the demo wallet signs only sign-in messages for {request.host}")
        signed = key.sign_message(encode_defunct(text=text))
    elif method == "eth_signTypedData_v4":
        typed = json.loads(params[1]) if isinstance(params[1], str) else params[1]
        d = typed.get("domain", {})
        meta = get_meta()
        if str(d.get("verifyingContract", "")).lower() != meta.get("market", "").lower() or int(d.get("chainId", -1)) != int(meta.get("chain_id", -2)):
            refuse(400, "the demo wallet signs typed data for this market only")
        signed = key.sign_message(encode_typed_data(full_message=typed))
    else:
        refuse(400, f"the demo wallet does not do {method!r}")
    return {"signature": "0x" + bytes(signed.signature).hex().removeprefix("0x")}


def _demo_seed() -> int:
    seed = current_app.config.get("DEMO_SEED")
    if seed is None:
        refuse(404, "this server has no demo wallets: they come with `gridledger demo`")
    return int(seed)
