"""The interval explorer: every settlement, newest first, and one page per interval."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, url_for

from webui import format as fmt
from webui.context import get_index, get_meta, participant_list
from webui.auction import auction_view
from webui.flowview import flow_svg, flow_view
from webui.series import participant_link

bp = Blueprint("intervals", __name__, url_prefix="/intervals")


@bp.get("/")
def list_all():
    idx = get_index()
    total = idx.summary()["intervals"]
    per_page = current_app.config["INTERVALS_PER_PAGE"]
    pages = max(1, -(-total // per_page))
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= pages:
        abort(404, f"there is no page {page} (pages 1 to {pages})")
    page = int(page)
    # Newest first: page 1 ends at the last interval.
    end = total - (page - 1) * per_page
    start = max(0, end - per_page)
    rows = idx.intervals(limit=end - start, offset=start)[::-1] if total else []
    meta = get_meta()
    for r in rows:
        r["when"] = fmt.interval_start(r["interval"], meta, r["start"])
    return render_template("intervals.html", rows=rows, page=page, pages=pages, total=total)


@bp.get("/<int:k>")
def show(k: int):
    view = interval_view(k, request.args.get("group"), "intervals.show")
    if view is None:
        abort(404, f"interval {k} is not settled")
    view |= {"audit": get_index().audit_verdict(k), "auction": auction_view(view["interval"]),
             "audited": get_index().latest_audit() is not None}
    return render_template("interval.html", v=view)


def interval_view(k: int, zoom: str | None, endpoint: str, **keep) -> dict | None:
    """Interval `k` as its drawing shows it: the settlement, the flow view (zoomed into
    group `zoom`), its neighbours, its time. Links stay on `endpoint` (the dashboard or
    the interval page) with the query arguments `keep`."""
    idx = get_index()
    interval = idx.interval(k)
    if interval is None:
        return None
    first, last = idx.settled_range()
    view = flow_view(participant_list(), interval, zoom)

    def link(to: int | None = None, group: str | None = None) -> str:
        where = {"interval": to} if endpoint == "dashboard.index" else {"k": to}
        return url_for(endpoint, **where, **keep, group=group or None)

    price = fmt.price(interval["p2p_price"], get_meta().get("currency", "EUR"))
    return {
        "interval": interval,
        "when": fmt.interval_start(k, get_meta(), interval["start"]),
        "p2p_wh": view.p2p_wh,
        "flow": view,
        "network": flow_svg(view, fmt.kwh, participant_link, lambda key: link(k, key), price),
        "zoom": view.zoom,
        "link": link,
        # Settlements are accepted strictly in order, so settled intervals are contiguous.
        "prev": k - 1 if k > first else None,
        "next": k + 1 if k < last else None,
    }
