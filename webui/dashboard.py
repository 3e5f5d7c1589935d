"""The community at a glance: totals against the baseline, wallets, one interval's
flows and the recent history as charts."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from webui.context import get_index, get_meta
from webui.intervals import interval_view
from webui.series import dashboard_charts, time_series

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    idx = get_index()
    summary = idx.summary()
    participants = idx.participants()
    selected = None
    if summary["intervals"]:
        k = _interval_arg(summary["last_interval"])
        selected = interval_view(k)
        if selected is None:
            abort(404, f"interval {k} is not settled (settled: up to {summary['last_interval']})")
    data = time_series(idx, get_meta(), last=current_app.config["CHART_INTERVALS"])
    from node.metrics.kpis import COMPARISON_KPIS, RUN_KPIS

    return render_template(
        "dashboard.html",
        summary=summary,
        kpis=idx.kpis(),
        run_kpis=RUN_KPIS,
        comparison_kpis=COMPARISON_KPIS,
        participants=participants,
        selected=selected,
        charts=dashboard_charts(data, get_meta(), selected["interval"]["interval"]) if selected else None,
    )


def _interval_arg(default: int) -> int:
    raw = request.args.get("interval")
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        abort(400, f"interval must be a whole number, got {raw!r}")
