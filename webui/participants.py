"""Participant pages: the wallet, its events, and every settlement it took part in,
beside the no-trading baseline."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from node.index.store import Index
from webui.cache import cached, cached_page
from webui.context import get_index, get_meta, whole_arg
from webui.homecharts import home_charts
from webui.params import FieldError, whole

bp = Blueprint("participants", __name__, url_prefix="/participants")

# The participants table's columns beyond id and name: (key, heading, unit) in the
# order shown; the CSV download has the same columns under the same keys.
TOTALS = ("load_wh", "pv_wh", "grid_import_wh", "grid_export_wh", "p2p_bought_wh", "p2p_sold_wh", "cost_units",
          "baseline_cost_units", "savings_units")


# Sortable columns of the participants table: ?sort=KEY (&desc=1).
SORTS = ("id", "name", "zone", "battery_wh", "p2p_net_wh", "balance") + TOTALS


@bp.get("/")
@cached_page
def list_all():
    """The participants table, sorted on the server (?sort=, ?desc=1) and shown a page at
    a time, so it stays quick at a thousand homes; the CSV has every row."""
    rows = list(cached(("participant_table",), lambda: participant_table(get_index())))
    key = request.args.get("sort", "id")
    if key not in SORTS:
        raise FieldError("sort", f"sort must be one of {', '.join(SORTS)}, got {key[:40]!r}")
    descending = request.args.get("desc") == "1"
    # Rows without a value (the grid has no savings) go last either way.
    present = sorted((r for r in rows if r[key] is not None), key=lambda r: r[key], reverse=descending)
    rows = present + [r for r in rows if r[key] is None]
    per_page = current_app.config.get("PARTICIPANTS_PER_PAGE", 100)
    pages = max(1, -(-len(rows) // per_page))
    page = whole_arg("page") or 1
    if not 1 <= page <= pages:
        abort(404, f"there is no page {page} (pages 1 to {pages})")
    return render_template("participants.html", participants=rows[(page - 1) * per_page:page * per_page],
                           sort=key, desc=descending, page=page, pages=pages, total=len(rows))


def participant_table(idx: Index) -> list[dict]:
    """Every participant with its wallet and, for homes, its totals over the settled
    intervals (Index.home_totals) and its savings against the baseline."""
    totals = idx.home_totals()
    out = []
    for p in idx.participants():
        t = totals.get(p["id"], {}) if p["id"] != 0 else {}
        row = dict(p) | {key: t.get(key) for key in TOTALS}
        if row["baseline_cost_units"] is not None and row["cost_units"] is not None:
            row["savings_units"] = row["baseline_cost_units"] - row["cost_units"]
        if row["p2p_bought_wh"] is not None:
            row["p2p_net_wh"] = row["p2p_bought_wh"] - row["p2p_sold_wh"]
        row.setdefault("p2p_net_wh", None)
        out.append(row)
    return out


@bp.get("/<pid>")
@cached_page
def show(pid: str):
    pid = whole(pid, "participant id")
    view = cached(("participant_view", pid), lambda: _participant_view(pid))
    if view is None:
        abort(404, f"there is no participant {pid}")
    return render_template("participant.html", **view)


def _participant_view(pid: int) -> dict | None:
    idx = get_index()
    participant = idx.participant(pid)
    if participant is None:
        return None
    wallet_events = idx.wallet_events(pid)
    rows = home_rows(idx, pid, wallet_events)
    charts = home_charts(rows, get_meta(), battery=bool(participant["battery_wh"])) if rows else None
    own = idx.share_account(pid)
    accounts = [own | {"name": participant["name"]}] if own is not None else idx.share_accounts_of(pid)
    return {"p": participant, "history": rows, "wallet_events": wallet_events, "charts": charts,
            "totals": idx.home_totals().get(pid), "share_accounts": accounts, "reversed": idx.reversed_entries(pid)}


def home_rows(idx: Index, pid: int, wallet_events: list[dict] | None = None) -> list[dict]:
    """Participant `pid`'s settled intervals in order (Index.home_series), each with its
    wallet balance after the interval and the baseline's: the same deposits and
    withdrawals, minus the baseline's cost so far (None without a baseline)."""
    if pid == 0:
        # The grid has no settlement entries: its side of each interval is the
        # settlement's grid flows and grid amount. Its energy is signed as every
        # home's is, from the community's side: + imported into the community.
        rows = [{"interval": r["interval"], "start": r["start"], "grid_wh": r["grid_import_wh"] - r["grid_export_wh"],
                 "p2p_wh": 0, "amount": r["grid_amount"], "p2p_price": r["p2p_price"], "tx_hash": r["tx_hash"],
                 "block": r["block"], "load_wh": None, "pv_wh": None, "soc_wh": None, "capacity_wh": None,
                 "baseline_grid_wh": None, "baseline_cost": None, "baseline_soc_wh": None}
                for r in idx.intervals(limit=max(idx.summary()["intervals"], 1))]
    else:
        rows = idx.home_series(pid)
    events = sorted((e["block"], e["amount"] if e["kind"] == "deposit" else -e["amount"])
                    for e in (idx.wallet_events(pid) if wallet_events is None else wallet_events))
    balance, funded, baseline, i = 0, 0, 0, 0
    with_baseline = bool(rows) and all(r["baseline_cost"] is not None for r in rows)
    for r in rows:
        while i < len(events) and events[i][0] <= r["block"]:
            balance += events[i][1]
            funded += events[i][1]
            i += 1
        balance += r["amount"]
        if with_baseline:
            baseline -= r["baseline_cost"]
        r["balance_units"] = balance
        r["baseline_balance_units"] = funded + baseline if with_baseline else None
    return rows
