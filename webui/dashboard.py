"""The community at a glance: totals against the baseline, one interval's flows and
wallets, and the history as charts; a player steps through any settled range
(static/player.js, with the frames of webui/playback.py)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, send_from_directory

from webui.cache import cached, cached_page
from webui.context import get_index, get_meta, participant_list, whole_arg
from webui.flowview import MAX_ROWS
from webui.homecharts import homes_charts
from webui.intervals import interval_view
from webui.series import chart_window, dashboard_charts, time_series
from webui.lines import loading_series
from webui.zonecharts import loading_chart, zone_charts

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@cached_page
def index():
    idx = get_index()
    summary = cached(("summary",), idx.summary)
    if not summary["intervals"]:
        return render_template("dashboard.html", summary=summary, selected=None)
    from node.metrics.kpis import COMPARISON_KPIS, RUN_KPIS

    return render_template("dashboard.html", summary=summary, run_kpis=RUN_KPIS, comparison_kpis=COMPARISON_KPIS,
                           **frame(whole_arg("interval"), request.args.get("group"), charts=True))


@bp.get("/favicon.ico")
def favicon():
    return send_from_directory(current_app.static_folder, "favicon.svg", mimetype="image/svg+xml", max_age=86400)


def frame(k: int | None, zoom: str | None, charts: bool) -> dict:
    """What the dashboard shows at interval `k` (default: the latest) of the playback
    range ?from= &to=: the flow view zoomed into `zoom`, the wallets after `k` and,
    with `charts`, the charts of the range with `k` marked."""
    idx = get_index()
    first, last = idx.settled_range()
    window = chart_window(idx, whole_arg("from"), whole_arg("to"), current_app.config["CHART_INTERVALS"])
    k = window[1] if k is None else k
    keep = {key: value for key in ("from", "to") if (value := request.args.get(key))}
    selected = interval_view(k, zoom, "dashboard.index", **keep)
    if selected is None:
        abort(404, f"interval {k} is not settled (settled: {first} to {last})")
    out = {"selected": selected, "window": window, "wallets": wallet_rows(selected), "settled": (first, last), "keep": keep}
    if charts:
        out["kpis"] = idx.kpis()
        meta = get_meta()
        # A line per battery reads up to a few dozen; beyond, their spread as a band.
        few = sum(1 for p in participant_list() if p["battery_wh"]) <= MAX_ROWS
        data = cached(("series", window, few), lambda: time_series(idx, meta, window=window, per_battery=few))
        stats = cached(("home_stats", window), lambda: idx.home_stats(*window))
        zones = cached(("zone_prices",), idx.zone_price_series)
        loadings = cached(("line_loading", window), lambda: loading_series(idx, data["interval"])) if zones else {}
        out["charts"] = (dashboard_charts(data, meta, k) | zone_charts(zones, data, meta, k)
                         | loading_chart(loadings, data, meta, k) | homes_charts(stats, data["start"], meta, k))
    return out


def wallet_rows(selected: dict) -> list[dict]:
    """The wallets after the selected interval, row by row as its flow view groups the
    homes (the grid first): balance, and the change its settlement made."""
    idx = get_index()
    interval = selected["interval"]
    balances = idx.balances_after(interval["interval"])
    change = {e["participant"]: e["amount"] for e in interval["entries"]}
    names = {p["id"]: p["name"] for p in participant_list()}
    grid = {"label": names.get(0, "grid"), "pid": 0, "homes": 1, "balance": balances.get(0, 0),
            "change": interval["grid_amount"], "group": None}
    rows = [grid]
    for row in selected["flow"].rows:
        if not row.caption:
            rows.append({"label": row.label, "pid": row.pid, "homes": row.homes, "group": row.group,
                         "balance": sum(balances.get(p, 0) for p in row.pids),
                         "change": sum(change.get(p, 0) for p in row.pids)})
    return rows
