"""JSON API: the index's data in the chain's integer units, the unit in every key.

Errors are JSON too, {"error": "..."} with 400 for malformed input and 404 for
things that do not exist; see the app's error handler.
"""

from __future__ import annotations

import re

from flask import jsonify, Blueprint, Response, abort, request

from node.errors import InputError
from node.units import UNITS_PER_TOKEN
from webui.cache import cached
from webui.context import get_index, get_meta
from webui.params import FieldError, arg, whole
from webui.auction import auction_view
from webui.flows import p2p_flows
from webui.series import time_series

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_LIMIT = 1000
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


def units(currency: str) -> dict[str, str]:
    return {
        "_wh": "energy in watt-hours (1 kWh = 1000 Wh)",
        "_units": f"money in minor units of the settlement token (1 {currency} = {UNITS_PER_TOKEN} units)",
        "_units_per_kwh": "price in minor units of the settlement token per kWh",
        "grid_wh": "a participant's grid energy: + imported, - exported",
        "p2p_wh": "a participant's P2P energy: + bought from peers, - sold",
        "amount_units": "a wallet's change: + credited, - debited",
        "gas_used": "gas of the settlement transactions",
    }


@bp.get("/summary")
def summary():
    s = cached(("summary",), get_index().summary)
    meta = get_meta()
    out = {
        "meta": meta,
        "intervals": s["intervals"],
        "last_interval": s["last_interval"],
        "participants": s["participants"],
        "grid_import_wh": s["grid_import_wh"],
        "grid_export_wh": s["grid_export_wh"],
        "p2p_wh": s["p2p_wh"],
        "paid_to_grid_units": s["paid_to_grid"],
        "community_cost_units": s["community_cost"],
        "gas_used": s["gas_used"],
    }
    if "baseline_cost" in s:
        out |= {
            "baseline_cost_units": s["baseline_cost"],
            "baseline_import_wh": s["baseline_import_wh"],
            "baseline_export_wh": s["baseline_export_wh"],
            "savings_units": s["savings"],
        }
    # The KPIs of the last evaluated run (node.metrics.kpis), with their definitions and caveats.
    out["kpis"] = get_index().kpis()
    out["units"] = units(meta.get("currency", "EUR"))
    return out


@bp.get("/participants")
def participants():
    return {"participants": [_participant(p) for p in cached(("participants",), get_index().participants)]}


@bp.get("/participants/<pid>")
def participant(pid: str):
    idx = get_index()
    number = whole(pid, "participant id")
    p = idx.participant(number)
    if p is None:
        abort(404, f"there is no participant {number}")
    return _participant(p) | {
        "wallet_events": [
            {"block": e["block"], "tx_hash": e["tx_hash"], "log_index": e["log_index"], "kind": e["kind"],
             "account": e["account"], "amount_units": e["amount"]}
            for e in idx.wallet_events(number)
        ],
        "history": [
            {"interval": h["interval"], "grid_wh": h["grid_wh"], "p2p_wh": h["p2p_wh"], "amount_units": h["amount"],
             "p2p_price_units_per_kwh": h["p2p_price"], "tx_hash": h["tx_hash"], "soc_wh": h["soc_wh"],
             "battery_capacity_wh": h["capacity_wh"]}
            for h in idx.participant_history(number)
        ],
    }


@bp.get("/intervals")
def intervals():
    limit = arg("limit", 100, low=1, high=MAX_LIMIT)
    offset = arg("offset", 0)
    idx = get_index()
    return {
        "total": cached(("summary",), idx.summary)["intervals"],
        "limit": limit,
        "offset": offset,
        "intervals": [_interval(r) for r in idx.intervals(limit=limit, offset=offset)],
    }


@bp.get("/intervals/<k>")
def interval(k: str):
    number = whole(k, "interval")
    row = get_index().interval(number)
    if row is None:
        abort(404, f"interval {number} is not settled")
    entries = row["entries"]
    return _interval(row) | {
        "p2p_wh": sum(e["p2p_wh"] for e in entries if e["p2p_wh"] > 0),
        "entries": [
            {"participant": e["participant"], "name": e["name"], "grid_wh": e["grid_wh"], "p2p_wh": e["p2p_wh"],
             "amount_units": e["amount"]}
            for e in entries
        ],
        # Derived, not on chain: the pro-rata split of the P2P pool (webui/flows.py).
        "p2p_flows": [{"seller": f.seller, "buyer": f.buyer, "wh": f.wh} for f in p2p_flows(entries)],
        # Derived from the committed inputs (null for a community interval): webui/auction.py.
        "auction": auction_view(row),
    }


@bp.get("/inputs/<digest>")
def inputs(digest: str):
    if not _HASH.fullmatch(digest):
        raise FieldError("digest", f"an inputs hash is 0x and 64 hex digits, got {digest[:80]!r}")
    store = get_index().inputs_store
    try:
        if "gzip" in request.accept_encodings:
            # The file as stored: gzip of the bytes that were hashed (checked on reading).
            response = Response(store.gzipped(digest.lower()), mimetype="application/json")
            response.headers["Content-Encoding"] = "gzip"
        else:
            # The stored bytes are what was hashed; re-serialising could change them.
            response = Response(store.get(digest.lower()), mimetype="application/json")
    except InputError as exc:
        abort(404, str(exc))
    response.headers["Vary"] = "Accept-Encoding"
    # Content-addressed: what this URL answers never changes.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@bp.get("/readings/<k>")
def readings(k: str):
    """The meter-signed readings of interval `k` the oracle received (what the auditor
    checks every settlement against; node.audit.verify.HttpInputs reads this)."""
    number = whole(k, "interval")
    found = get_index().readings(number)
    if not found:
        abort(404, f"no meter readings of interval {number} are kept here")
    return jsonify([r.to_json() for r in found])


@bp.get("/reversals")
def reversals():
    """Every settlement a dispute reversed, oldest first, and how far its reversal has got
    on chain (`open` while the market refuses settlements and withdrawals for it)."""
    rows = cached(("reversals",), get_index().reversals)
    return jsonify([{
        "interval": r["interval"], "participant": r["participant"],
        "proof": "contradicted" if r["kind"] == 1 else "left_out", "disputer": r["disputer"],
        "reward_units": r["reward"], "tx_hash": r["tx_hash"], "block": r["block"],
        "chunks": r["chunks"], "chunks_reversed": r["reversed"],
        "open": r["chunks"] is not None and not r["closed"], "closed_block": r["closed_block"],
        "grid_amount_units": r["grid_amount"],
    } for r in rows])


@bp.get("/series")
def series():
    return time_series(get_index(), get_meta(), last=arg("last", None))


@bp.route("/<path:rest>")
def unknown(rest: str):
    abort(404, f"no API endpoint /api/{rest}")


def _participant(p: dict) -> dict:
    return {
        "id": p["id"], "name": p["name"], "owner": p["owner"], "zone": p["zone"], "active": bool(p["active"]),
        "battery_capacity_wh": p["battery_wh"], "balance_units": p["balance"],
    }


def _interval(r: dict) -> dict:
    return {
        "interval": r["interval"], "start": r["start"], "block": r["block"], "tx_hash": r["tx_hash"],
        "inputs_hash": r["inputs_hash"], "buy_price_units_per_kwh": r["buy_price"],
        "sell_price_units_per_kwh": r["sell_price"], "p2p_price_units_per_kwh": r["p2p_price"],
        "grid_import_wh": r["grid_import_wh"], "grid_export_wh": r["grid_export_wh"],
        "import_capacity_wh": r["import_capacity_wh"], "export_capacity_wh": r["export_capacity_wh"],
        "grid_amount_units": r["grid_amount"], "p2p_wh": r.get("p2p_wh"), "participants": r["participants"], "gas_used": r["gas_used"],
    }
