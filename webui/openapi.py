"""The JSON API's contract: an OpenAPI 3.1 description, served at /api/openapi.json.

Built from the same tables the server judges requests by: the signed messages' fields
and widths (node.intent.signing), what a settlement can carry (node.intent.bounds) and
the request parameters' bounds (webui.params, the API's MAX_LIMIT), so the description
cannot drift from what the server accepts. ``tests/test_api_contract.py`` fuzzes the
server against it (schemathesis) and requires no server error.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from node.intent.bounds import MAX_ENTRY_WH, ORDER_NONCE_BITS
from node.intent.signing import Mandate, Order
from webui.params import SQLITE_MAX

bp = Blueprint("openapi", __name__)

MAX_LIMIT = 1000  # webui.api.MAX_LIMIT and webui.audit's
_HASH = {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$"}
_SIGNATURE = {"type": "string", "pattern": "^0x[0-9a-fA-F]{130}$", "description": "65 bytes r || s || v, low s"}
# Tighter than the uint64 a participant may sign: what a settlement can carry.
_SETTLABLE = {"Order": {"nonce": (1 << ORDER_NONCE_BITS) - 1, "energyWh": MAX_ENTRY_WH}}


def _uint(bits: int, maximum: int | None = None, minimum: int = 0) -> dict:
    top = (1 << bits) - 1 if maximum is None else maximum
    # Above 2**53 a JavaScript client loses precision: such integers may also come as decimal strings.
    return {"oneOf": [{"type": "integer", "minimum": minimum, "maximum": top},
                      {"type": "string", "pattern": "^[0-9]{1,20}$"}]}


def _message(cls) -> dict:
    limits = _SETTLABLE.get(cls.TYPE_NAME, {})
    props = {f.name: _uint(f.bits, limits.get(f.name)) for f in cls.FIELDS}
    if cls is Order:
        props["side"] = {"type": "integer", "enum": [0, 1], "description": "0 buy, 1 sell"}
        props["energyWh"] = _uint(64, MAX_ENTRY_WH, minimum=1)
    return {"type": "object", "additionalProperties": False, "required": [f.name for f in cls.FIELDS],
            "properties": props}


def _param(name: str, where: str = "query", schema: dict | None = None, required: bool = False,
           description: str = "") -> dict:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema or {"type": "integer", "minimum": 0, "maximum": SQLITE_MAX}, "description": description}


def _responses(ok: int = 200, *codes: int) -> dict:
    text = {200: "OK", 201: "Created", 400: "Malformed request; `field` names the parameter when known",
            401: "No (fresh) signed read request", 403: "Forbidden", 404: "Not found",
            429: "Too many write requests (see Retry-After)", 502: "The chain failed",
            503: "No market, no chain, or a damaged index"}
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    out = {str(ok): {"description": text[ok], "content": {"application/json": {"schema": {"type": "object"}}}}}
    for code in codes:
        out[str(code)] = {"description": text[code]} | error
    return out


READ_HEADERS = [
    _param("X-Read-Participant", "header", {"type": "string"}, description="signed ReadRequest: participant"),
    _param("X-Read-Issued-At", "header", {"type": "string"}, description="signed ReadRequest: issuedAt"),
    _param("X-Read-Signature", "header", {"type": "string"}, description="signed ReadRequest: signature"),
]
PAGE = [_param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}), _param("offset")]


def document() -> dict:
    def body(schema: str) -> dict:
        return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}

    paths = {
        "/api/summary": {"get": {"summary": "Community totals and the baseline", "responses": _responses(200, 503)}},
        "/api/participants": {"get": {"summary": "Every participant with its balance", "responses": _responses(200, 503)}},
        "/api/participants/{pid}": {"get": {"summary": "A participant, its wallet events and settlements",
                                            "parameters": [_param("pid", "path")], "responses": _responses(200, 400, 404, 503)}},
        "/api/intervals": {"get": {"summary": "Settled intervals, oldest first", "parameters": PAGE,
                                   "responses": _responses(200, 400, 503)}},
        "/api/intervals/{k}": {"get": {"summary": "One settled interval with its entries and P2P flows",
                                       "parameters": [_param("k", "path")], "responses": _responses(200, 400, 404, 503)}},
        "/api/inputs/{digest}": {"get": {"summary": "Committed clearing inputs by their keccak hash (the bytes hashed)",
                                         "parameters": [_param("digest", "path", {"type": "string"})],
                                         "responses": _responses(200, 400, 404, 503)}},
        "/api/series": {"get": {"summary": "Per-interval time series", "parameters": [_param("last")],
                                "responses": _responses(200, 400, 503)}},
        "/api/readings/{k}": {"get": {"summary": "The meter-signed readings of interval k the oracle received",
                                      "parameters": [_param("k", "path")],
                                      "responses": _responses(200, 400, 404, 503) | {"200": {
                                          "description": "OK", "content": {"application/json": {"schema": {
                                              "type": "array", "items": {"type": "object"}}}}}}}},
        "/api/reversals": {"get": {"summary": "Settlements disputes reversed, and how far each reversal has got on chain",
                                   "responses": _responses(200, 503) | {"200": {
                                       "description": "OK", "content": {"application/json": {"schema": {
                                           "type": "array", "items": {"type": "object"}}}}}}}},
        "/api/live": {"get": {"summary": "How far the index is, and the run settling it", "responses": _responses(200, 503)}},
        "/api/runs/{name}": {"get": {"summary": "A run started from the browser: status, progress, KPIs",
                                     "parameters": [_param("name", "path", {"type": "string"})],
                                     "responses": _responses(200, 404, 503)}},
        "/api/audit": {"get": {"summary": "The latest audit run's verdicts",
                               "parameters": PAGE + [_param("failed", schema={"type": "string", "enum": ["1", "true", "0"]})],
                               "responses": _responses(200, 400, 503)}},
        "/api/orders": {
            "post": {"summary": "Submit a signed order", "requestBody": body("SignedOrder"),
                     "responses": _responses(201, 400, 429, 503)},
            "get": {"summary": "The reader's own orders", "parameters": [_param("interval")] + READ_HEADERS,
                    "responses": _responses(200, 400, 401, 403, 503)},
        },
        "/api/orders/summary": {"get": {"summary": "How many orders an interval has", "parameters": [_param("interval")],
                                        "responses": _responses(200, 400, 503)}},
        "/api/orders/{order_id}": {"get": {"summary": "One of the reader's orders",
                                           "parameters": [_param("order_id", "path")] + READ_HEADERS,
                                           "responses": _responses(200, 400, 401, 403, 404, 503)}},
        "/api/mandates": {
            "post": {"summary": "Submit a signed mandate", "requestBody": body("SignedMandate"),
                     "responses": _responses(201, 400, 429, 503)},
            "get": {"summary": "The reader's own mandates", "parameters": READ_HEADERS,
                    "responses": _responses(200, 400, 401, 403, 503)},
        },
        "/api/admin": {"get": {"summary": "The market's chain status for role holders", "responses": _responses(200, 502, 503)}},
        "/api/admin/roles": {"get": {"summary": "Role holders, or the roles of ?address",
                                     "parameters": [_param("address", schema={"type": "string"})],
                                     "responses": _responses(200, 400, 502, 503)}},
        "/api/admin/prepare": {"get": {"summary": "The unsigned transaction of an admin action",
                                       "parameters": [_param(n, schema={"type": "string"}) for n in
                                                      ("action", "sender", "interval", "import_kwh", "export_kwh", "import_price",
                                                       "export_price", "owner",
                                                       "zone", "name", "role", "account")],
                                       "responses": _responses(200, 400, 403, 502, 503)}},
        "/api/admin/transactions": {"post": {"summary": "Relay a role holder's signed transaction",
                                             "requestBody": body("RawTransaction"),
                                             "responses": _responses(201, 400, 403, 429, 502, 503)}},
        "/api/openapi.json": {"get": {"summary": "This description", "responses": _responses(200)}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "GridLedger API", "version": "1",
                 "description": "The index's data in the chain's integer units (energy Wh, money minor units); "
                                "signed orders and mandates in; role holders' signed transactions relayed."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"],
                      "properties": {"error": {"type": "string"}, "field": {"type": "string"}}},
            "SignedOrder": {"type": "object", "additionalProperties": False, "required": ["order", "signature"],
                            "properties": {"order": _message(Order), "signature": _SIGNATURE}},
            "SignedMandate": {"type": "object", "additionalProperties": False, "required": ["mandate", "signature"],
                              "properties": {"mandate": _message(Mandate), "signature": _SIGNATURE}},
            "RawTransaction": {"type": "object", "additionalProperties": False, "required": ["raw"],
                               "properties": {"raw": {"type": "string", "pattern": "^0x[0-9a-fA-F]+$"}}},
            "Hash": _HASH,
        }},
    }


@bp.get("/api/openapi.json")
def openapi():
    app = current_app._get_current_object()
    if "openapi" not in app.extensions:
        app.extensions["openapi"] = document()
    return jsonify(app.extensions["openapi"])
