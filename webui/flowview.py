"""One interval's energy flows the way the market settles them: homes -> community pool -> grid.

The community market is one pool at one price. A settlement records each home's net
grid and P2P energy, not who sold to whom, so the drawing has one arrow per home
between it and the pool (width by energy, colour and arrowhead by direction: into
the pool or out of it) and the pool's exchange with the grid as settled (import and
export). It draws no arrow between two homes: no bilateral trade exists to draw.

A home's arrow is its net energy, grid_wh + p2p_wh (+ out of the pool); over all homes
these add up to the settled import minus export, because P2P energy sums to zero.

Readable at any size: beyond `MAX_ROWS` homes they are grouped (by zone, then in runs
of consecutive ids) and a group is one row with up to two arrows (what its homes put
into the pool, what they take); its link zooms into it (its homes one by one, the
others as one row). Rows have a fixed height in one column, so labels cannot overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from markupsafe import Markup, escape

SUPPLY, DRAW, IMPORT, EXPORT, IDLE = "#2f9e5b", "#d64545", "#d64545", "#2f9e5b", "#9aa5b1"
MAX_ROWS = 40
ROW = 20  # px per row: 12 px labels never touch
# x of: names (right-aligned), the dot, the "in" and "out" amounts (right-aligned, 56 px
# each), where arrows start, the pool, the grid; then the drawing's width.
_NAME_X, _DOT_X, _IN_X, _OUT_X, _ARROW_X, _POOL_X, _POOL_R, _GRID_X = 132, 142, 206, 262, 276, 474, 32, 638
_WIDTH, _TOP, _MAX_STROKE = 690, 46, 14.0


@dataclass(frozen=True)
class Group:
    """Homes drawn as one row: a key for zoom links, a label, the participant ids."""

    key: str
    label: str
    pids: tuple[int, ...]


@dataclass
class Row:
    """One row of the drawing: a home, a group of homes, or a zone caption."""

    label: str
    homes: int = 0
    supply_wh: int = 0  # into the pool
    draw_wh: int = 0  # out of the pool
    grid_wh: int = 0
    p2p_wh: int = 0
    settled: int = 0  # homes of the row with an entry in this interval
    pid: int | None = None  # a single home
    group: str | None = None  # a group's key (zoom link)
    caption: bool = False
    pids: tuple[int, ...] = ()

    @property
    def net_wh(self) -> int:
        return self.draw_wh - self.supply_wh


@dataclass
class FlowView:
    rows: list[Row]
    groups: list[Group]
    zoom: Group | None
    import_wh: int
    export_wh: int
    p2p_wh: int
    unsettled: int = 0  # registered homes without an entry in this interval


def group_homes(participants: Sequence[Mapping], max_rows: int = MAX_ROWS) -> list[Group]:
    """Groups of at most ceil(N / max_rows) homes, never across zones (unless there are
    more zones than rows), in (zone, id) order; one group per home when N <= max_rows.
    `participants` as Index.participants() gives them; the grid (id 0) is left out."""
    homes = sorted((int(p["zone"]), int(p["id"]), p["name"]) for p in participants if int(p["id"]) != 0)
    if len(homes) <= max_rows:
        return [Group(f"p{pid}", name, (pid,)) for _, pid, name in homes]
    by_zone = len({zone for zone, _, _ in homes}) <= max_rows // 2
    zones: dict[int, list[int]] = {}
    for zone, pid, _ in homes:
        zones.setdefault(zone if by_zone else 0, []).append(pid)
    # sum(ceil(n_z / size)) <= N / size + Z <= max_rows
    size = math.ceil(len(homes) / (max_rows - len(zones)))
    groups = []
    for zone, pids in zones.items():
        count = math.ceil(len(pids) / size)
        for i in range(count):
            part = tuple(pids[i * len(pids) // count:(i + 1) * len(pids) // count])
            where = f"zone {zone} · " if len(zones) > 1 else "homes "
            groups.append(Group(f"g{part[0]}-{part[-1]}", f"{where}{part[0]}–{part[-1]}", part))
    return groups


def flow_view(participants: Sequence[Mapping], interval: Mapping, zoom: str | None = None,
              max_rows: int = MAX_ROWS) -> FlowView:
    """The rows of interval `interval` (Index.interval(k), with its entries), homes grouped
    as group_homes does; `zoom` (a group key) shows that group's homes one by one."""
    groups = group_homes(participants, max_rows)
    entries = {int(e["participant"]): e for e in interval["entries"]}
    names = {int(p["id"]): p["name"] for p in participants}
    zoomed = next((g for g in groups if g.key == zoom and len(g.pids) > 1), None)
    if zoomed is not None:
        others = [pid for g in groups if g is not zoomed for pid in g.pids]
        layout = [Group(f"p{pid}", names[pid], (pid,)) for pid in zoomed.pids]
        layout.append(Group("", f"other {len(others)} homes", tuple(others)))
    else:
        layout = groups
    zones = {int(p["id"]): int(p["zone"]) for p in participants}
    show_zones = len({zones[pid] for g in layout for pid in g.pids}) > 1 and all(len(g.pids) == 1 for g in layout[:-1])
    # Every home or group has its row in every interval, idle or not, so rows keep
    # their places while a run plays.
    rows: list[Row] = []
    unsettled, last_zone = 0, None
    for g in layout:
        row = Row(g.label, homes=len(g.pids), pid=g.pids[0] if len(g.pids) == 1 else None,
                  group=g.key if len(g.pids) > 1 and g.key else None, pids=g.pids)
        for pid in g.pids:
            e = entries.get(pid)
            if e is None:
                unsettled += 1
                continue
            net = int(e["grid_wh"]) + int(e["p2p_wh"])
            row.settled += 1
            row.grid_wh += int(e["grid_wh"])
            row.p2p_wh += int(e["p2p_wh"])
            row.supply_wh += max(-net, 0)
            row.draw_wh += max(net, 0)
        if show_zones and row.pid is not None and zones[row.pid] != last_zone:
            last_zone = zones[row.pid]
            rows.append(Row(f"zone {last_zone}", caption=True))
        rows.append(row)
    p2p = sum(int(e["p2p_wh"]) for e in interval["entries"] if int(e["p2p_wh"]) > 0)
    return FlowView(rows, groups, zoomed, int(interval["grid_import_wh"]), int(interval["grid_export_wh"]), p2p, unsettled)


def flow_svg(view: FlowView, kwh: Callable[[int], str], home_link: Callable[[int], str],
             zoom_link: Callable[[str], str], price: str = "") -> Markup:
    """The drawing of `view`; `kwh` formats Wh, the links go to a home's page and into a group."""
    rows = view.rows
    height = max(_TOP + len(rows) * ROW + 56, 300)
    pool_y = _TOP + max(len(rows), 6) * ROW / 2
    biggest = max([r.supply_wh for r in rows] + [r.draw_wh for r in rows] + [view.import_wh, view.export_wh, 1])

    def stroke(wh: int) -> float:
        return max(1.2, _MAX_STROKE * wh / biggest)

    label = (f"Energy flows: {sum(r.settled for r in rows)} homes to and from the community pool; "
             f"grid import {kwh(view.import_wh)}, export {kwh(view.export_wh)}, P2P {kwh(view.p2p_wh)}")
    out = [f'<svg class="flowview" viewBox="0 0 {_WIDTH} {height}" role="img" aria-label="{escape(label)}" '
           'xmlns="http://www.w3.org/2000/svg"><defs>']
    for name, color in (("in", SUPPLY), ("out", DRAW)):
        out.append(f'<marker id="fv-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
                   f'markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    out.append(f'<text class="fv-head" x="{_NAME_X}" y="{_TOP - 22}" text-anchor="end">homes</text>'
               f'<text class="fv-head" x="{_IN_X}" y="{_TOP - 22}" text-anchor="end"><title>kWh into the pool</title>in</text>'
               f'<text class="fv-head" x="{_OUT_X}" y="{_TOP - 22}" text-anchor="end"><title>kWh out of the pool</title>out</text>')
    spread = _POOL_R * 0.8 / max(1.0, len(rows) * ROW / 2)
    for i, r in enumerate(rows):
        y = _TOP + i * ROW + ROW / 2
        if r.caption:
            out.append(f'<text class="fv-caption" x="{_NAME_X}" y="{y + 4:.1f}" text-anchor="end">{escape(r.label)}</text>')
            continue
        end_y = pool_y + (y - pool_y) * spread
        both = r.supply_wh and r.draw_wh
        for wh, into, dy in ((r.supply_wh, True, -3 if both else 0), (r.draw_wh, False, 3 if both else 0)):
            if wh:
                out.append(_arrow(y + dy, end_y + dy / 2, into, stroke(wh)))
        out.append(_row(r, y, kwh, home_link, zoom_link))
    out += _pool_and_grid(view, pool_y, stroke, kwh, price)
    if view.unsettled:
        out.append(f'<text class="fv-foot" x="{_NAME_X}" y="{height - 12}" text-anchor="end">{view.unsettled} '
                   f'home{"s" if view.unsettled != 1 else ""} not settled in this interval</text>')
    out.append("</svg>")
    return Markup("".join(out))


def _arrow(y: float, end_y: float, into: bool, width: float) -> str:
    x0, x1 = _ARROW_X, _POOL_X - _POOL_R - 2
    d = (f"M{x0},{y:.1f} C{x0 + 90},{y:.1f} {x1 - 80},{end_y:.1f} {x1},{end_y:.1f}" if into else
         f"M{x1},{end_y:.1f} C{x1 - 80},{end_y:.1f} {x0 + 90},{y:.1f} {x0 - 4},{y:.1f}")
    color, marker = (SUPPLY, "in") if into else (DRAW, "out")
    return (f'<path class="fv-arrow" d="{d}" fill="none" stroke="{color}" stroke-opacity=".8" stroke-width="{width:.1f}" '
            f'marker-end="url(#fv-{marker})"/>')


def _row(r: Row, y: float, kwh, home_link, zoom_link) -> str:
    if r.pid is not None:
        what = (f"puts {kwh(r.supply_wh)} into the pool" if r.supply_wh else f"takes {kwh(r.draw_wh)} from the pool"
                if r.draw_wh else "no net energy")
        tip = f"{r.label}: {what} (grid {kwh(r.grid_wh)}, P2P {kwh(r.p2p_wh)})" if r.settled else f"{r.label}: not settled"
        href = home_link(r.pid)
    else:
        tip = (f"{r.label}: {r.settled} of {r.homes} homes settled; {kwh(r.supply_wh)} into the pool, "
               f"{kwh(r.draw_wh)} out of it (grid {kwh(r.grid_wh)}, P2P bought − sold {kwh(r.p2p_wh)})")
        href = zoom_link(r.group) if r.group else zoom_link("")
        tip += "; open to see its homes" if r.group else "; back to all homes"
    amounts = ("—", "") if not r.settled else (_number(r.supply_wh) if r.supply_wh else "", _number(r.draw_wh) if r.draw_wh else "")
    if r.settled and not (r.supply_wh or r.draw_wh):
        amounts = ("0", "")
    color = SUPPLY if r.supply_wh >= r.draw_wh and r.supply_wh else DRAW if r.draw_wh else IDLE
    shape = (f'<circle cx="{_DOT_X}" cy="{y:.1f}" r="5" fill="{color}"/>' if r.pid is not None else
             f'<rect x="{_DOT_X - 5}" y="{y - 5:.1f}" width="10" height="10" rx="2" fill="{color}"/>')
    # 12 px text in the 120 px before the dot: names are cut to what fits.
    name = r.label if len(r.label) <= 18 else r.label[:17] + "…"
    texts = "".join(f'<text class="fv-amount" x="{x}" y="{y + 4:.1f}" text-anchor="end">{escape(text)}</text>'
                    for x, text in zip((_IN_X, _OUT_X), amounts) if text)
    return (f'<a class="fv-row" href="{escape(href)}"><title>{escape(tip)}</title>{shape}'
            f'<text class="fv-name" x="{_NAME_X - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(name)}</text>{texts}</a>')


def _pool_and_grid(view: FlowView, y: float, stroke, kwh, price: str) -> list[str]:
    out = []
    gx0, gx1 = _POOL_X + _POOL_R + 2, _GRID_X - 40
    for wh, dy, into_pool, text in ((view.import_wh, -9, True, "import"), (view.export_wh, 9, False, "export")):
        if not wh:
            continue
        x1, x2 = (gx1, gx0) if into_pool else (gx0, gx1)
        color, marker = (IMPORT, "out") if into_pool else (EXPORT, "in")
        out.append(f'<line x1="{x1}" y1="{y + dy:.1f}" x2="{x2}" y2="{y + dy:.1f}" stroke="{color}" '
                   f'stroke-width="{stroke(wh):.1f}" marker-end="url(#fv-{marker})"><title>grid {text} {escape(kwh(wh))}</title></line>')
        ty = y + dy + (-(stroke(wh) / 2) - 6 if dy < 0 else stroke(wh) / 2 + 15)
        out.append(f'<text class="fv-grid-flow" x="{(gx0 + gx1) / 2:.0f}" y="{ty:.1f}" text-anchor="middle" fill="{color}">'
                   f'{text} {escape(_number(wh))}</text>')
    out.append(f'<circle class="fv-pool" cx="{_POOL_X}" cy="{y:.1f}" r="{_POOL_R}"><title>The community pool: P2P '
               f'{escape(kwh(view.p2p_wh))} traded at one price{escape(" (" + price + ")") if price else ""}</title></circle>'
               f'<text class="fv-pool-label" x="{_POOL_X}" y="{y + 4:.1f}" text-anchor="middle">pool</text>'
               f'<text class="fv-sub" x="{_POOL_X}" y="{y + _POOL_R + 16:.1f}" text-anchor="middle">P2P {escape(_number(view.p2p_wh))}</text>')
    out.append(f'<rect class="fv-grid" x="{_GRID_X - 38}" y="{y - 20:.1f}" width="76" height="40" rx="6"/>'
               f'<text class="fv-grid-label" x="{_GRID_X}" y="{y + 5:.1f}" text-anchor="middle">Grid</text>')
    return out


def _number(wh: int) -> str:
    """kWh in at most 7 characters (the amount columns' width): 0.004, 12.35, 1,234, 123,456."""
    kwh = wh / 1000
    return f"{kwh:,.0f}" if kwh >= 1000 else f"{kwh:.3f}" if 0 < kwh < 0.01 else f"{kwh:,.2f}"
