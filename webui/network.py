"""One interval's energy flows drawn as a network: the grid in the middle, the
homes on a circle around it, arrows for grid imports, exports and P2P trades."""

from __future__ import annotations

import math
from typing import Callable, Mapping, Sequence

from markupsafe import Markup, escape

from webui.flows import Flow

IMPORT, EXPORT, P2P, IDLE = "#d64545", "#2f9e5b", "#7c4dcc", "#9aa5b1"
# Arrow labels are bare kWh numbers (the legend says so): with units they would
# overlap near the centre of a 20-home drawing. A busy interval's pro-rata split
# gives about a hundred P2P arrows, most of them small, so small arrows are faint
# and only the largest carry labels; the table under the drawing lists them all.
_P2P_LABELS = 10


def network_svg(
    entries: Sequence[Mapping],
    flows: Sequence[Flow],
    kwh: Callable[[int], str],
    link: Callable[[int], str],
    size: int = 640,
) -> Markup:
    """SVG of an interval; `entries` as in Index.interval()["entries"]."""
    width, height = size + 160, size
    cx, cy = width / 2, height / 2
    radius = size / 2 - 70
    homes = sorted(entries, key=lambda e: e["participant"])
    out = [
        f'<svg class="network" viewBox="0 0 {width} {height}" role="img" aria-label="Energy flows" '
        'xmlns="http://www.w3.org/2000/svg">',
        "<defs>",
    ]
    for name, color in (("imp", IMPORT), ("exp", EXPORT), ("p2p", P2P)):
        out.append(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" '
            f'markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
        )
    out.append("</defs>")
    if not homes:
        out.append(f'<text x="{cx}" y="{cy}" text-anchor="middle" class="chart-empty">no participants settled</text></svg>')
        return Markup("".join(out))

    pos = {}
    for i, e in enumerate(homes):
        angle = -math.pi / 2 + 2 * math.pi * i / len(homes)
        pos[e["participant"]] = (cx + radius * math.cos(angle), cy + radius * math.sin(angle), angle)
    grid_r, home_r = 30, 13
    biggest = max([abs(e["grid_wh"]) for e in homes] + [f.wh for f in flows] + [1])

    def stroke(wh: int) -> float:
        return 1.2 + 5 * math.sqrt(wh / biggest)

    # Grid arrows: straight, along the radius.
    for e in homes:
        wh = e["grid_wh"]
        if wh == 0:
            continue
        hx, hy, angle = pos[e["participant"]]
        ux, uy = math.cos(angle), math.sin(angle)
        inner = (cx + ux * (grid_r + 3), cy + uy * (grid_r + 3))
        outer = (hx - ux * (home_r + 3), hy - uy * (home_r + 3))
        (x1, y1), (x2, y2), color, marker = (inner, outer, IMPORT, "imp") if wh > 0 else (outer, inner, EXPORT, "exp")
        label_at = 0.74
        lx, ly = cx + ux * radius * label_at, cy + uy * radius * label_at
        out.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{color}" '
            f'stroke-width="{stroke(abs(wh)):.1f}" marker-end="url(#arrow-{marker})"><title>'
            f'{escape(e.get("name", ""))} {"imports" if wh > 0 else "exports"} {escape(kwh(abs(wh)))}</title></line>'
        )
        out.append(f'<text class="flow-label" x="{lx:.1f}" y="{ly + 4:.1f}" fill="{color}">{abs(wh) / 1000:.2f}</text>')

    # P2P arrows: curves bowed towards the centre so they stay clear of each other's ends.
    top = max((f.wh for f in flows), default=1)
    labelled = {id(f) for f in sorted(flows, key=lambda f: -f.wh)[:_P2P_LABELS] if f.wh >= top / 4}
    names = {e["participant"]: e.get("name", str(e["participant"])) for e in homes}
    for f in flows:
        if f.seller not in pos or f.buyer not in pos:
            continue
        (sx, sy, _), (bx, by, _) = pos[f.seller], pos[f.buyer]
        mx, my = (sx + bx) / 2, (sy + by) / 2
        qx, qy = cx + (mx - cx) * 0.5, cy + (my - cy) * 0.5
        # End the curve at the edge of the buyer's circle so the arrowhead shows.
        dx, dy = bx - qx, by - qy
        d = math.hypot(dx, dy) or 1
        ex, ey = bx - dx / d * (home_r + 3), by - dy / d * (home_r + 3)
        dx, dy = qx - sx, qy - sy
        d = math.hypot(dx, dy) or 1
        startx, starty = sx + dx / d * (home_r + 2), sy + dy / d * (home_r + 2)
        out.append(
            f'<path d="M{startx:.1f},{starty:.1f} Q{qx:.1f},{qy:.1f} {ex:.1f},{ey:.1f}" fill="none" stroke="{P2P}" '
            f'stroke-opacity="{0.3 + 0.6 * math.sqrt(f.wh / top):.2f}" stroke-width="{stroke(f.wh):.1f}" marker-end="url(#arrow-p2p)"><title>'
            f"{escape(names[f.seller])} → {escape(names[f.buyer])}: {escape(kwh(f.wh))}</title></path>"
        )
        if id(f) in labelled:
            lx, ly = 0.25 * startx + 0.5 * qx + 0.25 * ex, 0.25 * starty + 0.5 * qy + 0.25 * ey
            out.append(f'<text class="flow-label" x="{lx:.1f}" y="{ly + 4:.1f}" fill="{P2P}">{f.wh / 1000:.2f}</text>')

    # Nodes last, so they sit on top of the arrows' ends.
    out.append(
        f'<circle cx="{cx}" cy="{cy}" r="{grid_r}" class="node-grid"/>'
        f'<text x="{cx}" y="{cy + 5}" text-anchor="middle" class="node-grid-label">Grid</text>'
    )
    for e in homes:
        hx, hy, angle = pos[e["participant"]]
        active = e["grid_wh"] or e["p2p_wh"]
        color = IMPORT if e["grid_wh"] > 0 else EXPORT if e["grid_wh"] < 0 else P2P if e["p2p_wh"] else IDLE
        lx, ly = cx + (radius + home_r + 8) * math.cos(angle), cy + (radius + home_r + 8) * math.sin(angle)
        anchor = "middle" if abs(math.cos(angle)) < 0.3 else "start" if math.cos(angle) > 0 else "end"
        ly += 4 + (8 if math.sin(angle) > 0.9 else -4 if math.sin(angle) < -0.9 else 0)
        dashed = "" if active else ' stroke-dasharray="3 2"'
        tip = f"{names[e['participant']]}: grid {kwh(e['grid_wh'])}, P2P {kwh(e['p2p_wh'])}"
        out.append(
            f'<a href="{escape(link(e["participant"]))}"><title>{escape(tip)}</title>'
            f'<circle cx="{hx:.1f}" cy="{hy:.1f}" r="{home_r}" class="node-home" stroke="{color}"'
            f"{dashed}/>"
            f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" class="node-label">{escape(names[e["participant"]])}</text></a>'
        )
    out.append("</svg>")
    return Markup("".join(out))
