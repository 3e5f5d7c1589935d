"""Participants' signed orders and mandates: the JSON API and the order form.

The only part of the UI that writes. What it writes goes to the order book
(node/intent/orders.py), a SQLite file of its own beside the index (config ORDERS_PATH),
never to the index, which stays a cache of the chain. The order book checks each
signature against the participant's owner as the index knows it, and has the order
on disk before the API answers 201.

No session, login or CSRF token: the EIP-712 signature is the authorisation. A
request can only store what the participant's own key signed, whoever sends it.

Reading is the same: a participant's pending orders and mandates are shown only to
whoever presents a recent ReadRequest signed by the participant's owner (query
parameters participant, issued_at, signature, or headers X-Read-Participant,
X-Read-Issued-At, X-Read-Signature); in an auction nobody may see the others' bids.
What stays public is how many orders an interval has, which shows no one's bid.
Settled intervals are public anyway: the orders a settlement used are in its calldata
on chain and in its committed inputs (/api/inputs/<hash>), for auditors. Mandates
sent on chain are public chain data (MandateSet events, mandateOf); the server does
not pool them for everyone, so /api/mandates is owner-only like the orders.
"""

from __future__ import annotations

import hmac
import json
import shlex
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from eth_utils import keccak
from flask import Blueprint, abort, current_app, jsonify, make_response, redirect, render_template, request, url_for

from node.errors import InputError
from node.intent.bounds import order_problem
from node.intent.amounts import LATEST_TIME, build_order, fresh_nonce, unix_time
from node.intent.orders import READ_REQUEST_MAX_AGE, NotOwner, OrderBook, StaleReadRequest
from node.units import UNITS_PER_TOKEN
from node.intent.signing import (
    BUY,
    Domain,
    ReadRequest,
    SignedMandate,
    SignedOrder,
    SignedReadRequest,
    typed_data,
)
from webui import format as fmt
from webui.context import get_index, get_meta
from webui.params import SQLITE_MAX, arg, refused, whole
from webui.session import session_reader

bp = Blueprint("orders", __name__)

EXTENSION = "gridledger_orders"
_open_lock = threading.Lock()


def orders_path(app) -> Path:
    return Path(app.config.get("ORDERS_PATH") or Path(app.config["INDEX_PATH"]).with_name("orders.sqlite"))


def get_book() -> OrderBook:
    """The app's order book, opened on first use: a market that has not been deployed
    yet has no EIP-712 domain, and the read-only pages must still work for it."""
    app = current_app._get_current_object()
    book = app.extensions.get(EXTENSION)
    if book is None:
        with _open_lock:
            book = app.extensions.get(EXTENSION)
            if book is None:
                book = OrderBook(orders_path(app), domain(), owner_of)
                app.extensions[EXTENSION] = book
    return book


def domain() -> Domain:
    meta = get_meta()
    if "chain_id" not in meta or "market" not in meta:
        abort(503, "this index has no market yet (no chain id and market address in its meta): "
                   "deploy one with `gridledger demo` or `gridledger simulate` first")
    return Domain(int(meta["chain_id"]), meta["market"])


def owner_of(participant: int) -> str | None:
    # Read at each submission, not cached: an owner change indexed from the chain
    # takes effect for the next order.
    p = get_index().participant(participant)
    return p["owner"] if p else None


def next_interval() -> int:
    """The first interval not settled yet: orders for it or later can still be used."""
    last = get_index().last_interval()
    if last is not None:
        return last + 1
    return int(get_meta().get("first_interval", 0))


def now() -> int:
    return int(time.time())


# -- the one path that accepts signed intent -----------------------------------------


def accept_order(body: str | dict) -> dict:
    """Parses, checks and durably stores a signed order; what the API answers with.
    InputError, with the reason, if it is refused; nothing is stored then."""
    signed = SignedOrder.from_json(body)
    order_id = get_book().submit(signed, now(), next_interval())
    o = signed.order
    return {"id": order_id, "participant": o.participant, "interval": o.interval, "nonce": o.nonce,
            "receipt": receipt_of(signed)}


def receipt_of(signed: SignedOrder) -> str:
    """A token only whoever holds the signed order can know (a hash of its signature):
    it lets the form's result page show the order to its submitter and nobody else."""
    return keccak(signed.signature)[:12].hex()


# -- who may read -------------------------------------------------------------------------

READ_HEADERS = {"participant": "X-Read-Participant", "issued_at": "X-Read-Issued-At", "signature": "X-Read-Signature"}


def read_request() -> SignedReadRequest | None:
    """The signed read request of this request (headers first, else query parameters);
    None if there is none. A malformed one is a 400."""
    headers = {name: request.headers.get(header) for name, header in READ_HEADERS.items()}
    given = headers if any(headers.values()) else {name: request.args.get(name) for name in READ_HEADERS}
    if not given["signature"]:
        return None
    missing = [name for name, value in given.items() if not value]
    if missing:
        abort(400, f"the read request lacks {', '.join(missing)}; {how_to_read()}")
    try:
        return SignedReadRequest.from_json({"readRequest": {"participant": given["participant"].strip(),
                                                            "issuedAt": given["issued_at"].strip()},
                                            "signature": given["signature"].strip()})
    except InputError as exc:
        abort(400, f"{exc}; {how_to_read()}")


def reader() -> int:
    """The participant whose orders this request may read: 401 without a (fresh) read
    request, 403 if its signer does not own the participant."""
    signed = read_request()
    if signed is None:
        participant = session_reader(request.args.get("participant"))
        if participant is not None:
            return participant
        _unauthorized(f"orders and mandates are shown to their participant's owner only: {how_to_read()}")
    try:
        return get_book().authorize_read(signed, now())
    except StaleReadRequest as exc:
        _unauthorized(str(exc))
    except NotOwner as exc:
        abort(403, f"{exc}; a read request shows a participant's orders to its owner only")
    except InputError as exc:
        raise refused(exc) from exc


def how_to_read() -> str:
    d = domain()
    return (f"sign an EIP-712 ReadRequest(uint32 participant,uint64 issuedAt) with the participant's owner key, in "
            f"the orders' domain (GridLedger, version 1, chain {d.chain_id}, market {d.verifying_contract}), issuedAt "
            f"within the last {READ_REQUEST_MAX_AGE} s, and send it as query parameters participant, issued_at, "
            f"signature or headers X-Read-Participant, X-Read-Issued-At, X-Read-Signature; "
            "`gridledger order list --keystore DIR --account 0xOWNER --server URL` does it for you")


def _unauthorized(message: str):
    response = make_response(jsonify(error=message), 401)
    response.headers["WWW-Authenticate"] = 'GridLedger-ReadRequest realm="orders"'
    abort(response)


def accept_mandate(body: str | dict) -> dict:
    signed = SignedMandate.from_json(body)
    get_book().submit_mandate(signed, now())
    m = signed.mandate
    return {"participant": m.participant, "nonce": m.nonce, "valid_until": m.valid_until}


# -- JSON API --------------------------------------------------------------------------


@bp.post("/api/orders")
def api_submit_order():
    try:
        accepted = accept_order(request.get_data(as_text=True))
    except InputError as exc:
        raise refused(exc) from exc
    return accepted, 201, {"Location": url_for("orders.api_order", order_id=accepted["id"])}


@bp.get("/api/orders")
def api_orders():
    """The reader's own orders, of one interval (`interval`) or all."""
    participant = reader()
    k = arg("interval", None)
    t = now()
    return {
        "participant": participant,
        "interval": k,
        "next_interval": next_interval(),
        "orders": [{"id": order_id} | s.to_json() | {"expired": t > s.order.expiry}
                   for order_id, s in get_book().orders_of(participant, k)],
    }


@bp.get("/api/orders/summary")
def api_orders_summary():
    """Public: how many unexpired orders an interval has (default: the next), no one's bid."""
    k = arg("interval", next_interval())
    return {"interval": k, "next_interval": next_interval(), "order_count": get_book().count_for(k, now())}


@bp.get("/api/orders/<order_id>")
def api_order(order_id: str):
    order_id = whole(order_id, "order id")
    participant = reader()
    try:
        signed = get_book().get(order_id)
    except InputError:
        signed = None
    # The same answer whether the order is someone else's or does not exist.
    if signed is None or signed.order.participant != participant:
        abort(404, f"participant {participant} has no order {order_id}")
    return signed.to_json()


@bp.post("/api/mandates")
def api_submit_mandate():
    try:
        accepted = accept_mandate(request.get_data(as_text=True))
    except InputError as exc:
        raise refused(exc) from exc
    return accepted, 201


@bp.get("/api/mandates")
def api_mandates():
    """The reader's own active mandates in the book."""
    participant = reader()
    mandates = [m for m in get_book().active_mandates(now()) if m.mandate.participant == participant]
    return {"participant": participant, "mandates": [m.to_json() for m in mandates]}


# -- the order form ----------------------------------------------------------------------

FORM_FIELDS = ("participant", "side", "energy_kwh", "limit_price", "interval", "expiry", "nonce")


@bp.get("/orders")
def form():
    """Step 1: the form; with its fields filled in, step 2: the typed data to sign."""
    values, prepared, error, accepted = _defaults(), None, None, None
    mine = session_reader(None)  # signed in with the owner of one participant: that one
    if mine is not None:
        values["participant"] = str(mine)
    if "accepted" in request.args:
        order_id = arg("accepted", 0)
        try:
            signed = get_book().get(order_id)
        except InputError:
            signed = None
        # Only the submitter, who holds the signature, knows the receipt: an order id
        # alone shows nothing of anyone's bid.
        if signed is None or not hmac.compare_digest(request.args.get("receipt", ""), receipt_of(signed)):
            abort(404, f"no order {order_id} with this receipt: an order is shown to whoever submitted it, and "
                       "listed for its owner with `gridledger order list`")
        accepted = {"id": order_id, "signed": signed}
    elif set(request.args) == {"participant"}:
        values["participant"] = request.args["participant"].strip()  # "place an order" from a wallet page
    elif "participant" in request.args:
        values |= {k: request.args.get(k, "").strip() for k in FORM_FIELDS}
        try:
            prepared = _prepare(values)
        except InputError as exc:
            error = str(exc)
    return _render(values, prepared, error=error, accepted=accepted, status=400 if error else 200)


@bp.post("/orders")
def submit_form():
    """Step 3 without JavaScript: the signature pasted into the form, submitted by the
    same function as the API's."""
    signature = request.form.get("signature", "").strip()
    try:
        message = json.loads(request.form.get("order", ""))
        # `gridledger order sign` prints the whole signed order; take it as it is.
        body = signature if signature.startswith("{") else {"order": message, "signature": signature}
        accepted = accept_order(body)
    except (InputError, ValueError) as exc:
        values = _defaults() | {k: request.form.get(k, "") for k in FORM_FIELDS}
        prepared = _prepare(values, quiet=True)
        return _render(values, prepared, error=f"Order refused: {exc}", status=400)
    # Post/redirect/get: reloading the result page must not post the order again.
    return redirect(url_for("orders.form", accepted=accepted["id"], receipt=accepted["receipt"]), 303)


def _defaults() -> dict[str, str]:
    k = next_interval()
    meta = get_meta()
    start = fmt.interval_start(k, meta)
    minutes = int(meta.get("interval_minutes", 15))
    # Valid until an hour after the interval ends, so the oracle can still settle it
    # late; never in the past, for markets replaying old data.
    end = (start + timedelta(minutes=minutes)) if start else None
    expiry = max(datetime.now(timezone.utc), end or datetime.min.replace(tzinfo=timezone.utc)) + timedelta(hours=1)
    last = get_index().last_interval()
    price = get_index().interval(last)["p2p_price"] if last is not None else None
    return {
        "participant": "", "side": "buy", "energy_kwh": "1",
        # The last clearing price is a sensible first guess at a limit.
        "limit_price": f"{(Decimal(price) / UNITS_PER_TOKEN).normalize():f}" if price else "0.25",
        "interval": str(k), "expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"), "nonce": str(fresh_nonce()),
    }


def _prepare(values: dict[str, str], quiet: bool = False) -> dict | None:
    """The Order the form's values mean, its EIP-712 typed data and the equivalent
    command line. With `quiet`, None instead of InputError."""
    try:
        d = domain()
        participant = _int(values["participant"], "participant")
        p = get_index().participant(participant)
        if p is None:
            raise InputError(f"there is no participant {participant} to place an order for")
        order = build_order(participant, values["side"], values["energy_kwh"], values["limit_price"],
                            _int(values["interval"], "interval"), unix_time(values["expiry"]),
                            _int(values["nonce"], "nonce"))
        last = get_index().last_interval()
        if last is not None and order.interval <= last:
            raise InputError(f"interval #{order.interval} is settled already (settled up to #{last}): an order for it "
                             f"can no longer be used; the next open interval is #{last + 1}", field="order.interval")
        if (problem := order_problem(order, next_interval())) is not None:
            raise InputError(problem.reason, field=problem.field)
    except InputError:
        if quiet:
            return None
        raise
    warnings = []
    limit = connection_limit(order.interval, "import" if order.side == BUY else "export")
    if limit is not None and order.energy_wh > limit:
        warnings.append(f"{fmt.kwh(order.energy_wh)} is more than the community's whole grid connection carries in one "
                        f"interval ({fmt.kwh(limit)} {'import' if order.side == BUY else 'export'} capacity): the clearing "
                        "can never fill it; check the amount before you sign")
    command = ["gridledger", "order", "sign", "--account", p["owner"], "--participant", str(participant),
               "--side", values["side"], "--energy-kwh", values["energy_kwh"], "--limit-price", values["limit_price"],
               "--interval", str(order.interval), "--expiry", values["expiry"], "--nonce", str(order.nonce),
               "--chain-id", str(d.chain_id), "--market", d.verifying_contract]
    return {
        "order": order, "owner": p["owner"], "name": p["name"],
        "typed": typed_data(d, order),
        "when": fmt.interval_start(order.interval, get_meta()),
        "expiry_at": datetime.fromtimestamp(min(order.expiry, LATEST_TIME), timezone.utc),
        "command": shlex.join(command),
        "warnings": warnings,
    }


def connection_limit(k: int, direction: str) -> int | None:
    """The community's grid capacity (Wh, "import" or "export") for interval `k` as the
    index knows it: the grid operator's setting for `k`, else the latest default. No
    participant can be given more than that in one interval."""
    column = 1 if direction == "import" else 2
    default, override = None, None
    for row in get_index().capacity_events():
        values = (row["interval"], row["import_wh"], row["export_wh"])
        if row["interval"] is None:
            default = values[column]
        elif row["interval"] == k:
            override = values[column]
    return override if override is not None else default


def _int(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or int(raw) > SQLITE_MAX:
        raise InputError(f"{what} must be a whole number from 0 to {SQLITE_MAX}, got {raw[:40]!r}", field=what)
    return int(raw)


def _render(values: dict, prepared: dict | None, status: int, error: str | None = None, accepted: dict | None = None):
    k = next_interval()
    t = now()
    has_market = _has_market()
    participants = get_index().participants()
    names = {p["id"]: p["name"] for p in participants}
    return render_template(
        "orders.html", values=values, prepared=prepared, error=error, accepted=accepted,
        pending_count=get_book().count_for(k, t) if has_market else 0,
        names=names, next_interval=k, next_when=fmt.interval_start(k, get_meta()), has_market=has_market,
        participants=[p for p in participants if p["id"] != 0], BUY=BUY,
        # For the "your orders" script: what a wallet signs, and whose participant it is.
        read_typed=typed_data(domain(), ReadRequest(0, 0)) if has_market else None,
        owners={p["owner"].lower(): p["id"] for p in participants if p["id"] != 0}, server_now=t,
        units_per_token=UNITS_PER_TOKEN, last_settled=get_index().last_interval(),
        limits={"import": connection_limit(k, "import"), "export": connection_limit(k, "export")},
    ), status


def _has_market() -> bool:
    meta = get_meta()
    return "chain_id" in meta and "market" in meta
