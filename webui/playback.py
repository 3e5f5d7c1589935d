"""Frames for the dashboard's player and its live view: the dashboard's panels at one
interval, rendered by the same templates as the page, and the index's progress.

Both read the index only, so a browser playing a run at 10 frames a second or
polling while an oracle settles costs SQLite queries, never a chain call.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from webui import format as fmt
from webui.context import get_index, get_meta
from webui.dashboard import frame as dashboard_frame

bp = Blueprint("playback", __name__)

PANELS = {"flow-panel": "_flow_panel.html", "wallets-panel": "_wallets_panel.html"}


@bp.get("/frames/<int:k>")
def frame(k: int):
    """The dashboard's panels at interval `k` (?group= zooms the flow view; ?charts=1
    adds the KPIs and the charts, for the live view when new intervals arrive)."""
    charts = request.args.get("charts") == "1"
    context = dashboard_frame(k, request.args.get("group") or None, charts=charts)
    panels = {element: render_template(template, **context) for element, template in PANELS.items()}
    if charts:
        summary = get_index().summary()
        panels["kpi-cards"] = render_template("_kpis.html", summary=summary, **context)
        panels["charts"] = render_template("_charts.html", **context)
    selected = context["selected"]
    return {
        "interval": k,
        "when": fmt.when(selected["when"], get_meta().get("timezone")),
        "url": selected["link"](k, selected["zoom"].key if selected["zoom"] else None),
        "first": context["window"][0],
        "last": context["window"][1],
        "panels": panels,
    }


@bp.get("/api/live")
def live():
    """How far the index is: settled intervals, the latest, the last indexed block and,
    while a run (gridledger simulate / demo) settles, the intervals it will settle."""
    idx = get_index()
    meta = idx.meta()
    settled = idx.settled_range()
    run = None
    if "run_stop_interval" in meta:
        first, stop = int(meta["run_first_interval"]), int(meta["run_stop_interval"])
        done = 0 if settled is None else max(0, min(settled[1] + 1, stop) - first)
        run = {"first_interval": first, "stop_interval": stop, "settled": done, "total": stop - first}
    return {
        "intervals": 0 if settled is None else settled[1] - settled[0] + 1,
        "first_interval": None if settled is None else settled[0],
        "last_interval": None if settled is None else settled[1],
        "last_block": idx.last_block,
        "run": run,
    }
