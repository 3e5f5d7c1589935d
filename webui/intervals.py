"""The interval explorer: every settlement, newest first, and one page per interval."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request

from webui import format as fmt
from webui.cache import cached, cached_page
from webui.context import get_index, get_meta
from webui.params import arg, whole
from webui.auction import auction_view
from webui.flows import p2p_flows
from webui.network import network_svg
from webui.series import participant_link

bp = Blueprint("intervals", __name__, url_prefix="/intervals")

FLOWS_LISTED = 100  # rows of the P2P flows table
FLOWS_DRAWN = 60  # P2P arrows in the drawing (grid arrows: every participant)


@bp.get("/")
@cached_page
def list_all():
    total = cached(("summary",), get_index().summary)["intervals"]
    per_page = current_app.config["INTERVALS_PER_PAGE"]
    pages = max(1, -(-total // per_page))
    page = arg("page", 1, low=1)
    if page > pages:
        abort(404, f"there is no page {page} (pages 1 to {pages})")
    rows = cached(("interval_rows", page, per_page), lambda: _rows(total, page, per_page))
    return render_template("intervals.html", rows=rows, page=page, pages=pages, total=total)


def _rows(total: int, page: int, per_page: int) -> list[dict]:
    # Newest first: page 1 ends at the last interval.
    end = total - (page - 1) * per_page
    start = max(0, end - per_page)
    rows = get_index().intervals(limit=end - start, offset=start)[::-1] if total else []
    meta = get_meta()
    return [r | {"when": fmt.interval_start(r["interval"], meta, r["start"])} for r in rows]


@bp.get("/<k>")
@cached_page
def show(k: str):
    k = whole(k, "interval")
    view = interval_view(k)
    if view is None:
        abort(404, f"interval {k} is not settled")
    per_page = current_app.config["INTERVAL_ENTRIES_PER_PAGE"]
    entries = view["interval"]["entries"]
    pages = max(1, -(-len(entries) // per_page))
    page = arg("page", 1, low=1)
    if page > pages:
        abort(404, f"interval {k} has {len(entries)} entries: there is no page {page} (pages 1 to {pages})")
    return render_template("interval.html", v=view, entries=entries[(page - 1) * per_page: page * per_page],
                           page=page, pages=pages)


def interval_view(k: int) -> dict | None:
    """An interval with what its pages show: flows, the drawing, neighbours, time
    (computed once per version of the index: webui/cache.py)."""
    return cached(("interval_view", k), lambda: _interval_view(k))


def _interval_view(k: int) -> dict | None:
    idx = get_index()
    interval = idx.interval(k)
    if interval is None:
        return None
    last = idx.last_interval()
    first = idx.intervals(limit=1)[0]["interval"]
    entries = interval["entries"]
    # The pro-rata split of a busy interval has sellers x buyers flows (2,500 for 100
    # homes): the page shows and draws the largest; /api/intervals/<k> has them all.
    flows = sorted(p2p_flows(entries), key=lambda f: (-f.wh, f.seller, f.buyer))
    names = {e["participant"]: e["name"] for e in entries}
    return {
        "interval": interval,
        "when": fmt.interval_start(k, get_meta(), interval["start"]),
        "flows": [{"seller": f.seller, "buyer": f.buyer, "wh": f.wh, "seller_name": names.get(f.seller),
                   "buyer_name": names.get(f.buyer)} for f in flows[:FLOWS_LISTED]],
        "flows_total": len(flows),
        "p2p_wh": sum(e["p2p_wh"] for e in entries if e["p2p_wh"] > 0),
        "totals": {c: sum(e[c] for e in entries) for c in ("grid_wh", "p2p_wh", "amount")},
        "network": network_svg(entries, flows[:FLOWS_DRAWN], fmt.kwh, participant_link),
        # Settlements are accepted strictly in order, so settled intervals are contiguous.
        "prev": k - 1 if k > first else None,
        "next": k + 1 if last is not None and k < last else None,
        "audit": idx.audit_verdict(k),
        "auction": auction_view(interval),
        "audited": idx.latest_audit() is not None,
    }
