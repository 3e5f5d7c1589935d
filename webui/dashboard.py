"""The community at a glance: totals against the baseline, wallets, one interval's
flows and the recent history as charts."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from webui.cache import cached, cached_page
from webui.context import get_index, get_meta
from webui.intervals import interval_view
from webui.params import arg
from webui.series import dashboard_charts, time_series

bp = Blueprint("dashboard", __name__)


@bp.get("/")
@cached_page
def index():
    idx = get_index()
    summary = cached(("summary",), idx.summary)
    selected = None
    if summary["intervals"]:
        k = arg("interval", summary["last_interval"])
        selected = interval_view(k)
        if selected is None:
            abort(404, f"interval {k} is not settled (settled: up to {summary['last_interval']})")
    charts = None
    if selected:
        last = current_app.config["CHART_INTERVALS"]
        data = cached(("series", last), lambda: time_series(idx, get_meta(), last=last))
        charts = cached(("charts", last, k), lambda: dashboard_charts(data, get_meta(), k))
    return render_template("dashboard.html", summary=summary, participants=cached(("participants",), idx.participants),
                           selected=selected, charts=charts)
