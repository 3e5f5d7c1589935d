"""The interval explorer: every settlement, newest first, and one page per interval."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template, request, url_for

from webui import format as fmt
from webui.cache import cached, cached_page
from webui.context import get_index, get_meta, participant_list
from webui.params import arg, whole
from webui.auction import auction_view
from webui.flowview import flow_svg, flow_view
from webui.lines import interval_loading
from webui.series import participant_link

bp = Blueprint("intervals", __name__, url_prefix="/intervals")


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
    reversals = cached(("reversals",), get_index().reversals)[::-1]
    return render_template("intervals.html", rows=rows, page=page, pages=pages, total=total, reversals=reversals)


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
    view = interval_view(k, request.args.get("group"), "intervals.show")
    if view is None:
        reversed_by = [r for r in cached(("reversals",), get_index().reversals) if r["interval"] == k]
        if reversed_by:
            r = reversed_by[-1]
            state = "reversed" if r["closed"] else f"being reversed ({r['reversed']} of {r['chunks']} chunks so far)"
            abort(404, f"interval {k}'s settlement was {state} by a dispute in transaction {r['tx_hash']} "
                       f"(participant {r['participant']}); it is not settled again yet")
        abort(404, f"interval {k} is not settled")
    idx = get_index()
    # A copy: the view is shared with other requests (webui/cache.py).
    view = view | {"audit": idx.audit_verdict(k), "auction": cached(("auction", k), lambda: auction_view(view["interval"])),
                   "audited": idx.latest_audit() is not None,
                   "loading": cached(("loading", k), lambda: interval_loading(idx, view["interval"]))}
    per_page = current_app.config["INTERVAL_ENTRIES_PER_PAGE"]
    entries = view["interval"]["entries"]
    pages = max(1, -(-len(entries) // per_page))
    page = arg("page", 1, low=1)
    if page > pages:
        abort(404, f"interval {k} has {len(entries)} entries: there is no page {page} (pages 1 to {pages})")
    return render_template("interval.html", v=view, entries=entries[(page - 1) * per_page: page * per_page],
                           page=page, pages=pages)


def interval_view(k: int, zoom: str | None, endpoint: str, **keep) -> dict | None:
    """Interval `k` as its drawing shows it: the settlement, the flow view (zoomed into
    group `zoom`), its neighbours, its time. Links stay on `endpoint` (the dashboard or
    the interval page) with the query arguments `keep`. Computed once per version of
    the index (webui/cache.py); callers must not change it."""
    key = ("interval_view", k, zoom, endpoint, tuple(sorted(keep.items())))
    return cached(key, lambda: _interval_view(k, zoom, endpoint, **keep))


def _interval_view(k: int, zoom: str | None, endpoint: str, **keep) -> dict | None:
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
    entries = interval["entries"]
    return {
        "interval": interval,
        "when": fmt.interval_start(k, get_meta(), interval["start"]),
        "p2p_wh": view.p2p_wh,
        "totals": {c: sum(e[c] for e in entries) for c in ("grid_wh", "p2p_wh", "amount")},
        "flow": view,
        "network": flow_svg(view, fmt.kwh, participant_link, lambda key: link(k, key), price),
        "zoom": view.zoom,
        "link": link,
        # Settlements are accepted strictly in order, so settled intervals are contiguous.
        "prev": k - 1 if k > first else None,
        "next": k + 1 if k < last else None,
    }
