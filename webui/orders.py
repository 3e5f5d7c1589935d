"""Participants' signed orders and mandates: the JSON API and the order form.

The only part of the UI that writes. What it writes goes to the order book
(node/orders.py), a SQLite file of its own beside the index (config ORDERS_PATH),
never to the index, which stays a cache of the chain. The order book checks each
signature against the participant's owner as the index knows it, and has the order
on disk before the API answers 201.

No session, login or CSRF token: the EIP-712 signature is the authorisation. A
request can only store what the participant's own key signed, whoever sends it.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from node.errors import InputError
from node.order_cli import build_order, fresh_nonce, unix_time
from node.orders import OrderBook
from node.settlement import UNITS_PER_TOKEN
from node.signing import BUY, Domain, SignedMandate, SignedOrder, typed_data
from webui import format as fmt
from webui import get_index, get_meta

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
    return {"id": order_id, "participant": o.participant, "interval": o.interval, "nonce": o.nonce}


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
        abort(400, str(exc))
    return accepted, 201, {"Location": url_for("orders.api_order", order_id=accepted["id"])}


@bp.get("/api/orders")
def api_orders():
    k = _whole_arg("interval", next_interval())
    t = now()
    return {
        "interval": k,
        "next_interval": next_interval(),
        "orders": [s.to_json() | {"expired": t > s.order.expiry} for s in get_book().orders_for(k)],
    }


@bp.get("/api/orders/<int:order_id>")
def api_order(order_id: int):
    try:
        return get_book().get(order_id).to_json()
    except InputError as exc:
        abort(404, str(exc))


@bp.post("/api/mandates")
def api_submit_mandate():
    try:
        accepted = accept_mandate(request.get_data(as_text=True))
    except InputError as exc:
        abort(400, str(exc))
    return accepted, 201


@bp.get("/api/mandates")
def api_mandates():
    mandates = get_book().active_mandates(now())
    if "participant" in request.args:
        pid = _whole_arg("participant", 0)
        mandates = [m for m in mandates if m.mandate.participant == pid]
    return {"mandates": [m.to_json() for m in mandates]}


def _whole_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        abort(400, f"{name} must be a non-negative whole number, got {raw!r}")
    return int(raw)


# -- the order form ----------------------------------------------------------------------

FORM_FIELDS = ("participant", "side", "energy_kwh", "limit_price", "interval", "expiry", "nonce")


@bp.get("/orders")
def form():
    """Step 1: the form; with its fields filled in, step 2: the typed data to sign."""
    values, prepared, error, accepted = _defaults(), None, None, None
    if "accepted" in request.args:
        order_id = _whole_arg("accepted", 0)
        try:
            accepted = {"id": order_id, "signed": get_book().get(order_id)}
        except InputError as exc:
            abort(404, str(exc))
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
    return redirect(url_for("orders.form", accepted=accepted["id"]), 303)


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
    except InputError:
        if quiet:
            return None
        raise
    command = ["gridledger", "order", "sign", "--account", p["owner"], "--participant", str(participant),
               "--side", values["side"], "--energy-kwh", values["energy_kwh"], "--limit-price", values["limit_price"],
               "--interval", str(order.interval), "--expiry", values["expiry"], "--nonce", str(order.nonce),
               "--chain-id", str(d.chain_id), "--market", d.verifying_contract]
    return {
        "order": order, "owner": p["owner"], "name": p["name"],
        "typed": typed_data(d, order),
        "when": fmt.interval_start(order.interval, get_meta()),
        "expiry_at": datetime.fromtimestamp(order.expiry, timezone.utc),
        "command": shlex.join(command),
    }


def _int(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit():
        raise InputError(f"{what} must be a whole number, got {raw!r}")
    return int(raw)


def _render(values: dict, prepared: dict | None, status: int, error: str | None = None, accepted: dict | None = None):
    k = next_interval()
    t = now()
    pending = [s for s in get_book().orders_for(k) if t <= s.order.expiry] if _has_market() else []
    participants = get_index().participants()
    names = {p["id"]: p["name"] for p in participants}
    return render_template(
        "orders.html", values=values, prepared=prepared, error=error, accepted=accepted, pending=pending,
        names=names, next_interval=k, next_when=fmt.interval_start(k, get_meta()), has_market=_has_market(),
        participants=[p for p in participants if p["id"] != 0], BUY=BUY,
        expiry_of=lambda s: datetime.fromtimestamp(s.order.expiry, timezone.utc),
    ), status


def _has_market() -> bool:
    meta = get_meta()
    return "chain_id" in meta and "market" in meta
