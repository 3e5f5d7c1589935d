"""The GridLedger web UI: a view of the event index, and the door for signed orders
and signed admin transactions.

Every page and API answer is computed from the index (node/index/store.py), never from
the chain directly, so a page costs a few SQLite queries however busy the chain is.
What it writes is participants' signed orders and mandates, into an order book file
of their own (webui/orders.py), never into the index. The one exception to "never
the chain" is /admin (webui/admin.py): with a chain configured (CHAIN, CHAIN_RPC or
CHAIN_STATE) it relays transactions that role holders signed with their own keys,
and reads the few values it needs to prepare them; the index learns of their events
from the chain, as of every other transaction.
Run it with ``flask --app webui run`` and ``GRIDLEDGER_INDEX=path/to/index.sqlite``,
or build it with ``create_app({"INDEX_PATH": ...})``.
"""

from __future__ import annotations

import logging
import os
import sqlite3

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, ServiceUnavailable

from node.errors import InputError
from node.index.store import Index
from webui import format as fmt
from webui.cache import cached
from webui.context import EXTENSION, currency, get_index, get_meta
from webui.protect import protect

log = logging.getLogger("gridledger.webui")



def create_app(config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        INDEX_PATH=os.environ.get("GRIDLEDGER_INDEX"),
        # Dashboard charts show the most recent intervals only: a year of 15-minute
        # intervals would make an unreadable chart and a megabyte of SVG.
        CHART_INTERVALS=288,
        INTERVALS_PER_PAGE=50,
        AUDIT_VERDICTS_PER_PAGE=100,
        AUDIT_FAILURES_SHOWN=200,
        # Default: orders.sqlite beside the index.
        ORDERS_PATH=os.environ.get("GRIDLEDGER_ORDERS"),
        # A signed order is a few hundred bytes; nothing posted here needs more.
        MAX_CONTENT_LENGTH=64 * 1024,
        # Write requests (orders, mandates, relayed transactions) per client address:
        # (count, seconds), a token bucket; None for no limit (webui/protect.py).
        WRITE_RATE_LIMIT=(30, 60),
        # Relay grantRole/revokeRole? Off unless asked for (`serve --allow-role-changes`):
        # on a dev chain whose admin key is public, anyone could grant themselves a role.
        RELAY_ROLE_CHANGES=False,
        # Settlement entries listed per page of an interval (webui/intervals.py).
        INTERVAL_ENTRIES_PER_PAGE=100,
        # The chain admin transactions are relayed to (webui/admin.py); none by default.
        CHAIN=None,  # a node.chain.Chain, for tests and embedding
        CHAIN_RPC=os.environ.get("GRIDLEDGER_RPC"),  # a JSON-RPC node
        CHAIN_STATE=os.environ.get("GRIDLEDGER_CHAIN_STATE"),  # a state dir whose embedded chain to open here
    )
    if config:
        app.config.update(config)
    if not app.config["INDEX_PATH"]:
        raise InputError("no index to show: set INDEX_PATH in the config or the GRIDLEDGER_INDEX environment variable")

    # One connection for the app's lifetime. Index opens it with
    # check_same_thread=False, and SQLite as Python ships it is serialised
    # (sqlite3.threadsafety == 3), so the threads of the server can share it for
    # these read-only queries; the node writes through its own connection (WAL).
    app.extensions[EXTENSION] = Index(app.config["INDEX_PATH"])

    from webui import admin, api, audit, dashboard, export, intervals, openapi, orders, participants, playback, runs, wallet
    from webui.params import BoundedInt

    # <int:...> in a route stops at SQLite's INTEGER: a larger number is a 404, never a 500.
    app.url_map.converters["int"] = BoundedInt

    chain = app.config["CHAIN"]
    if chain is None and (app.config["CHAIN_RPC"] or app.config["CHAIN_STATE"]):
        from node.admin.relay import open_chain

        # Opened now, so a chain that cannot be had (a node that is down, a journal
        # another process holds) is said at start, not at the first admin action.
        chain = open_chain(rpc=app.config["CHAIN_RPC"], state=app.config["CHAIN_STATE"])
    app.extensions[admin.CHAIN_EXTENSION] = chain

    _register_filters(app)
    protect(app)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(sqlite3.DatabaseError, _damaged_index)

    app.register_blueprint(dashboard.bp)
    app.register_blueprint(participants.bp)
    app.register_blueprint(intervals.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(api.bp)
    # The workbench: playback and live frames, CSV downloads, sign-in and the wallet, runs.
    for blueprint in (playback.bp, export.bp, wallet.bp, runs.bp):
        app.register_blueprint(blueprint)
    return app


def _register_filters(app: Flask) -> None:
    from webui.series import participant_link

    fmt.register(app)
    app.add_template_global(participant_link)
    # Money filters take the currency from the index, so templates just write |money.
    app.jinja_env.filters["money"] = lambda units, digits=2: fmt.money(units, currency(), digits)
    app.jinja_env.filters["price"] = lambda units_per_kwh: fmt.price(units_per_kwh, currency())

    @app.context_processor
    def inject_meta() -> dict:
        meta = get_meta()
        return {
            "meta": meta,
            # meta["market"] is the market contract's address; the name is the description.
            "market_name": meta.get("description") or "Energy community",
            "currency_symbol": fmt.symbol(currency()).strip(),
            "open_reversal": cached(("open_reversal",), get_index().open_reversal),
        }


def _http_error(error: HTTPException):
    headers = {"Retry-After": f"{error.retry_after:.0f}"} if getattr(error, "retry_after", None) else {}
    if request.path.startswith("/api/"):
        field = getattr(error, "field", None)
        return jsonify(error=error.description, **({"field": field} if field else {})), error.code, headers
    return render_template("error.html", error=error), error.code, headers


def _damaged_index(error: sqlite3.DatabaseError):
    """An index damaged while the server runs: one line saying what to do, never a 500."""
    from flask import current_app

    path = current_app.config["INDEX_PATH"]
    log.error("a database of the server (the index %s, or the order book beside it) is damaged: %s", path, error)
    return _http_error(ServiceUnavailable(f"a database of this server is damaged ({error}): if it is the index, stop the "
                                          "server and rebuild it with `gridledger index rebuild --state STATE`"))
