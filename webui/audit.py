"""The audit page: the verdicts of the last `gridledger audit`, as it stored them in the index.

The auditor re-runs every clearing against the chain; the UI never does, it only
shows what the last run found, when, and up to which block, so a reader can tell a
fresh clean bill from an old one.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, current_app, render_template, request

from webui.params import arg
from webui.context import get_index

bp = Blueprint("audit", __name__)

MAX_LIMIT = 1000


def audit_summary() -> dict | None:
    """The latest run with what the page and the API both say about it."""
    idx = get_index()
    run = idx.latest_audit()
    if run is None:
        return None
    try:
        when = datetime.fromisoformat(run["audited_at"])
    except ValueError:
        when = None
    return run | {"when": when, "not_audited": idx.intervals_not_audited(run["id"])}


@bp.get("/audit")
def page():
    run = audit_summary()
    if run is None:
        return render_template("audit.html", run=None)
    idx = get_index()
    per_page = current_app.config["AUDIT_VERDICTS_PER_PAGE"]
    pages = max(1, -(-run["verdicts"] // per_page))
    page_no = arg("page", 1, low=1)
    if page_no > pages:
        abort(404, f"there is no page {page_no} (pages 1 to {pages})")
    # Failures first and all of them (up to a screenful): they are what a reader came for.
    failed_shown = current_app.config["AUDIT_FAILURES_SHOWN"]
    return render_template(
        "audit.html", run=run,
        failed=idx.audit_verdicts(run["id"], failed_only=True, limit=failed_shown),
        failed_shown=failed_shown,
        verdicts=idx.audit_verdicts(run["id"], limit=per_page, offset=(page_no - 1) * per_page),
        page=page_no, pages=pages,
    )


@bp.get("/api/audit")
def api():
    run = audit_summary()
    if run is None:
        return {"audit": None, "hint": "no audit yet: run `gridledger audit --state DIR`"}
    failed_only = request.args.get("failed") in ("1", "true")
    limit, offset = arg("limit", 1000, low=1, high=MAX_LIMIT), arg("offset", 0)
    return {
        "audit": {
            "id": run["id"], "audited_at": run["audited_at"], "chain_head_block": run["chain_head_block"],
            "intervals": run["verdicts"], "passed": run["passed"], "failed": run["failed"],
            "settled_intervals_not_audited": run["not_audited"],
        },
        "limit": limit, "offset": offset, "failed_only": failed_only,
        "verdicts": get_index().audit_verdicts(run["id"], failed_only=failed_only, limit=limit, offset=offset),
    }
