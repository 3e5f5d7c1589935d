"""The interval explorer: every settlement, newest first, and one page per interval."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from webui import format as fmt
from webui.context import get_index, get_meta
from webui.params import arg, whole
from webui.auction import auction_view
from webui.flows import p2p_flows
from webui.network import network_svg
from webui.series import participant_link

bp = Blueprint("intervals", __name__, url_prefix="/intervals")


@bp.get("/")
def list_all():
    idx = get_index()
    total = idx.summary()["intervals"]
    per_page = current_app.config["INTERVALS_PER_PAGE"]
    pages = max(1, -(-total // per_page))
    page = arg("page", 1, low=1)
    if page > pages:
        abort(404, f"there is no page {page} (pages 1 to {pages})")
    # Newest first: page 1 ends at the last interval.
    end = total - (page - 1) * per_page
    start = max(0, end - per_page)
    rows = idx.intervals(limit=end - start, offset=start)[::-1] if total else []
    meta = get_meta()
    for r in rows:
        r["when"] = fmt.interval_start(r["interval"], meta, r["start"])
    return render_template("intervals.html", rows=rows, page=page, pages=pages, total=total)


@bp.get("/<k>")
def show(k: str):
    k = whole(k, "interval")
    view = interval_view(k)
    if view is None:
        abort(404, f"interval {k} is not settled")
    return render_template("interval.html", v=view)


def interval_view(k: int) -> dict | None:
    """An interval with what its pages show: flows, the drawing, neighbours, time."""
    idx = get_index()
    interval = idx.interval(k)
    if interval is None:
        return None
    last = idx.last_interval()
    first = idx.intervals(limit=1)[0]["interval"]
    flows = p2p_flows(interval["entries"])
    names = {e["participant"]: e["name"] for e in interval["entries"]}
    return {
        "interval": interval,
        "when": fmt.interval_start(k, get_meta(), interval["start"]),
        "flows": [{"seller": f.seller, "buyer": f.buyer, "wh": f.wh, "seller_name": names.get(f.seller), "buyer_name": names.get(f.buyer)} for f in flows],
        "p2p_wh": sum(e["p2p_wh"] for e in interval["entries"] if e["p2p_wh"] > 0),
        "network": network_svg(interval["entries"], flows, fmt.kwh, participant_link),
        # Settlements are accepted strictly in order, so settled intervals are contiguous.
        "prev": k - 1 if k > first else None,
        "next": k + 1 if last is not None and k < last else None,
        "audit": idx.audit_verdict(k),
        "auction": auction_view(interval),
        "audited": idx.latest_audit() is not None,
    }
