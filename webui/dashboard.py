"""The community at a glance: totals against the baseline, wallets, one interval's
flows and the recent history as charts."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from webui.context import get_index, get_meta
from webui.intervals import interval_view
from webui.params import arg
from webui.series import dashboard_charts, time_series

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    idx = get_index()
    summary = idx.summary()
    participants = idx.participants()
    selected = None
    if summary["intervals"]:
        k = arg("interval", summary["last_interval"])
        selected = interval_view(k)
        if selected is None:
            abort(404, f"interval {k} is not settled (settled: up to {summary['last_interval']})")
    data = time_series(idx, get_meta(), last=current_app.config["CHART_INTERVALS"])
    return render_template(
        "dashboard.html",
        summary=summary,
        participants=participants,
        selected=selected,
        charts=dashboard_charts(data, get_meta(), selected["interval"]["interval"]) if selected else None,
    )
