"""Classroom mode's web UI (Mini-ISO's use): the market's map and tables for everyone,
the offer form for each generator, the admin's case, loads and clearing.

A generator or the admin signs in with the key from the state directory's keys.csv;
the session cookie is signed with the classroom's secret and sent only to this site
(SameSite=Strict), and every form carries the session's token as well, so another
site cannot post offers in a student's name. Offers and settings go to the engine
(node/classroom/session.py), which writes them to disk before the page answers.

Run it with ``gridledger classroom --case CASE.json``; build it with
``create_classroom_app(Classroom(...))``.
"""

from __future__ import annotations

import hmac
import math
import secrets
from functools import wraps

from flask import Blueprint, Flask, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for

from node.classroom.session import MAX_TRANCHES, Classroom, Identity
from node.errors import InputError
from webui.zone_map import zone_map_svg

bp = Blueprint("classroom", __name__)
EXTENSION = "gridledger_classroom"
BLANK_ROWS = 3


def create_classroom_app(classroom: Classroom, config: dict | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY=classroom.secret,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    if config:
        app.config.update(config)
    app.extensions[EXTENSION] = classroom
    app.jinja_env.filters["mw"] = lambda v: "∞" if math.isinf(v) else f"{v:,.1f}"
    app.jinja_env.filters["money"] = lambda v: "–" if v is None else f"{v:,.2f}"
    app.jinja_env.filters["pct"] = lambda v: f"{100 * v:.0f}%"
    app.register_blueprint(bp)
    return app


def engine() -> Classroom:
    return current_app.extensions[EXTENSION]


def identity() -> Identity | None:
    who = session.get("who")
    if not who:
        return None
    role, name = who.split("/", 1)
    return Identity(role, name)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(16)
    return session["csrf"]


@bp.app_context_processor
def inject() -> dict:
    return {"me": identity(), "csrf_token": csrf_token, "classroom": engine()}


@bp.before_app_request
def check_csrf() -> None:
    if request.method == "POST" and request.endpoint != "classroom.login":
        sent = request.form.get("csrf", "")
        if not hmac.compare_digest(sent, session.get("csrf", "\0")):
            abort(403, "this form is stale or came from another site; reload the page and try again")


def required(role: str | None):
    """Only for a signed-in generator (role "generator") or the admin ("admin")."""

    def decorate(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            me = identity()
            if me is None:
                return redirect(url_for("classroom.login", next=request.path))
            if role is not None and me.role != role:
                abort(403, f"this page is for the {role}")
            return view(*args, **kwargs)

        return wrapped

    return decorate


# -- everyone -----------------------------------------------------------------------------------


@bp.get("/")
def overview():
    rounds = engine().rounds()
    chosen = request.args.get("round", type=int)
    shown = next((r for r in rounds if r.number == chosen), None) if chosen else (rounds[-1] if rounds else None)
    if chosen and shown is None:
        abort(404, f"no round {chosen}")
    case = engine().case
    drawing = None
    if shown is not None and shown.ok and shown.case == engine().case_name:
        positions = {z.name: (z.x, z.y) for z in case.network.zones}
        drawing = zone_map_svg(shown.zones, shown.lines, positions)
    return render_template("classroom/overview.html", shown=shown, rounds=rounds[-30:][::-1], drawing=drawing,
                           refresh=engine().auto_clear_s)


@bp.get("/api/rounds")
def api_rounds():
    return jsonify(case=engine().case_name, auto_clear_s=engine().auto_clear_s, pending=engine().pending(),
                   rounds=[{"number": r.number, "cleared_at": r.cleared_at, "case": r.case, "ok": r.ok} for r in engine().rounds()])


@bp.get("/api/rounds/latest")
@bp.get("/api/rounds/<int:number>")
def api_round(number: int | None = None):
    rounds = engine().rounds()
    found = rounds[-1] if number is None and rounds else next((r for r in rounds if r.number == number), None)
    if found is None:
        return jsonify(error="no such round" if number is not None else "nothing cleared yet"), 404
    return jsonify(found.to_json())


# -- signing in -----------------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    error = None
    if request.method == "POST":
        me = engine().authenticate(request.form.get("key", "").strip())
        if me is None:
            error = "That key is not known here. Keys are in keys.csv of the classroom's state directory."
        else:
            session.clear()
            session["who"] = f"{me.role}/{me.name}"
            target = request.args.get("next", "")
            if not target.startswith("/") or target.startswith("//"):  # only back to this site
                target = url_for("classroom.admin" if me.is_admin else "classroom.offers")
            return redirect(target)
    return render_template("classroom/login.html", error=error), 400 if error else 200


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("classroom.overview"))


# -- a generator's offers ---------------------------------------------------------------------------


@bp.route("/offers", methods=["GET", "POST"])
@required("generator")
def offers():
    me = identity()
    case = engine().case
    try:
        generator = case.generator(me.name)
    except InputError:
        abort(403, f"{me.name} is not a generator of case {engine().case_name}; ask the admin")
    error, rows = None, None
    if request.method == "POST":
        rows = _form_rows()
        try:
            engine().submit_offers(me.name, _tranches(rows))
            flash("Offers saved; they count from the next clearing.")
            return redirect(url_for("classroom.offers"))
        except InputError as exc:
            error = str(exc)
    current = engine().case.offers_of(me.name)
    if rows is None:
        rows = [(o.tranche, f"{o.quantity_mw:g}", f"{o.price_per_mwh:g}") for o in current]
    rows = list(rows) + [("", "", "")] * max(0, min(BLANK_ROWS, MAX_TRANCHES - len(rows)))
    offered = sum(o.quantity_mw for o in current)
    latest = engine().latest()
    mine = next((g for g in latest.generators if g.name == me.name), None) if latest and latest.ok else None
    return render_template("classroom/offers.html", generator=generator, rows=rows, offered=offered, error=error,
                           latest=latest, mine=mine), 400 if error else 200


def _form_rows() -> list[tuple[str, str, str]]:
    names, quantities, prices = (request.form.getlist(k) for k in ("tranche", "quantity", "price"))
    if not (len(names) == len(quantities) == len(prices)):
        abort(400, "the offer form came back malformed; reload it")
    return [(n.strip(), q.strip(), p.strip()) for n, q, p in zip(names, quantities, prices)]


def _tranches(rows: list[tuple[str, str, str]]) -> list[tuple[str, float, float]]:
    tranches = []
    for k, (name, quantity, price) in enumerate(rows, start=1):
        if not (name or quantity or price):
            continue
        if not (name and quantity and price):
            raise InputError(f"row {k}: give the tranche a name, a quantity in MW and a price per MWh (or leave all three empty)")
        try:
            tranches.append((name, float(quantity), float(price)))
        except ValueError:
            raise InputError(f"row {k}: {quantity!r} MW at {price!r} is not two numbers") from None
    return tranches


# -- the admin --------------------------------------------------------------------------------------


@bp.get("/admin")
@required("admin")
def admin():
    return render_template("classroom/admin.html", submitted=engine().submitted(), pending=engine().pending())


@bp.post("/admin/clear")
@required("admin")
def admin_clear():
    cleared = engine().clear()
    flash(f"Round {cleared.number} cleared." if cleared.ok else f"Round {cleared.number} did not clear: {cleared.error}")
    return redirect(url_for("classroom.overview"))


@bp.post("/admin/case")
@required("admin")
def admin_case():
    return _admin_action(lambda: engine().load_case(request.form.get("case", "")), "Case loaded afresh from its files.")


@bp.post("/admin/loads")
@required("admin")
def admin_loads():
    def apply():
        loads = {}
        for zone in engine().case.loads_mw:
            text = request.form.get(f"load-{zone}", "").strip()
            try:
                loads[zone] = float(text)
            except ValueError:
                raise InputError(f"zone {zone}: {text!r} is not a load in MW") from None
        engine().set_loads(loads)

    return _admin_action(apply, "Loads saved; they count from the next clearing.")


@bp.post("/admin/auto")
@required("admin")
def admin_auto():
    def apply():
        text = request.form.get("seconds", "").strip() or "0"
        try:
            seconds = float(text)
        except ValueError:
            raise InputError(f"{text!r} is not a number of seconds") from None
        engine().set_auto_clear(seconds)

    return _admin_action(apply, "Clearing schedule saved.")


def _admin_action(action, done: str):
    try:
        action()
        flash(done)
    except InputError as exc:
        flash(str(exc), "error")
    return redirect(url_for("classroom.admin"))
