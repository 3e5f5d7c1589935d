"""A zonal market drawn as a map: zones as circles shaded by their price, lines as
arrows in the direction of their flow, thicker with more MW and red where at the limit.

Zones sit at their coordinates when the case gives them (Mini-ISO's x, y; y grows up
as on a map) and on a circle otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from node.classroom.results import LineRow, ZoneRow

LOW, HIGH = (47, 158, 91), (214, 69, 69)  # cheap zones green, dear ones red
IDLE, BUSY, AT_LIMIT = "#9aa5b1", "#1d4e89", "#d64545"


def zone_map_svg(zones: Sequence[ZoneRow], lines: Sequence[LineRow], positions: dict[str, tuple[float | None, float | None]],
                 price_unit: str = "/MWh", width: int = 760, height: int = 520) -> Markup:
    """SVG of a round; `positions` maps a zone to its (x, y) from the case, or Nones."""
    margin = 70
    pos = _layout([z.name for z in zones], positions, width, height, margin)
    prices = [z.lmp for z in zones]
    low, high = (min(prices), max(prices)) if prices else (0.0, 0.0)
    biggest = max([abs(line.flow_mw) for line in lines] + [1e-9])
    out = [f'<svg class="network zone-map" viewBox="0 0 {width} {height}" role="img" aria-label="Zones, lines, flows and prices" '
           'xmlns="http://www.w3.org/2000/svg"><defs>']
    for name, color in (("busy", BUSY), ("limit", AT_LIMIT), ("idle", IDLE)):
        out.append(f'<marker id="zm-{name}" viewBox="0 0 10 10" refX="5" refY="5" markerWidth="12" markerHeight="12" '
                   f'markerUnits="userSpaceOnUse" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>')
    out.append("</defs>")
    radius = 26
    for line in lines:
        (x1, y1), (x2, y2) = pos[line.zone_from], pos[line.zone_to]
        if line.flow_mw < 0:  # draw in the direction of the flow
            (x1, y1), (x2, y2) = (x2, y2), (x1, y1)
        kind = "limit" if line.binding else "busy" if abs(line.flow_mw) > 1e-9 else "idle"
        color = {"limit": AT_LIMIT, "busy": BUSY, "idle": IDLE}[kind]
        stroke = 1.5 + 6 * math.sqrt(abs(line.flow_mw) / biggest)
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        limit = "no limit" if math.isinf(line.limit_mw) else f"{line.limit_mw:g} MW"
        tip = f"line {line.name}: {abs(line.flow_mw):.1f} MW of {limit}{' (at its limit)' if line.binding else ''}"
        out.append(f'<g class="zm-line{" binding" if line.binding else ""}" data-line="{escape(line.name)}"><title>{escape(tip)}</title>'
                   f'<path d="M{x1:.1f},{y1:.1f} L{mx:.1f},{my:.1f} L{x2:.1f},{y2:.1f}" stroke="{color}" '
                   f'stroke-width="{stroke:.1f}" fill="none" marker-mid="url(#zm-{kind})"/>')
        label = f"{abs(line.flow_mw):.0f}/{'∞' if math.isinf(line.limit_mw) else f'{line.limit_mw:.0f}'}"
        out.append(f'<text class="flow-label" x="{mx:.1f}" y="{my - 9:.1f}" fill="{color}">{label}</text></g>')
    for z in zones:
        x, y = pos[z.name]
        share = 0.0 if high == low else (z.lmp - low) / (high - low)
        fill = "#%02x%02x%02x" % tuple(round(a + (b - a) * share) for a, b in zip(LOW, HIGH))
        tip = f"{z.name}: price {z.lmp:.2f}{price_unit}, load {z.load_mw:g} MW, generation {z.generation_mw:g} MW"
        out.append(f'<g class="zm-zone" data-zone="{escape(z.name)}"><title>{escape(tip)}</title>'
                   f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius}" fill="{fill}" stroke="#fff" stroke-width="3"/>'
                   f'<text x="{x:.1f}" y="{y + 5:.1f}" text-anchor="middle" class="zm-price">{z.lmp:.2f}</text>'
                   f'<text x="{x:.1f}" y="{y + radius + 16:.1f}" text-anchor="middle" class="node-label">{escape(z.name)}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))


def _layout(names: list[str], positions: dict, width: int, height: int, margin: int) -> dict[str, tuple[float, float]]:
    given = {n: positions.get(n, (None, None)) for n in names}
    if names and all(x is not None and y is not None for x, y in given.values()):
        xs, ys = [x for x, _ in given.values()], [y for _, y in given.values()]
        span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
        scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)
        cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
        return {n: (width / 2 + (x - cx) * scale, height / 2 - (y - cy) * scale) for n, (x, y) in given.items()}
    r = min(width, height) / 2 - margin
    return {n: (width / 2 + r * math.cos(-math.pi / 2 + 2 * math.pi * i / len(names)),
                height / 2 + r * math.sin(-math.pi / 2 + 2 * math.pi * i / len(names))) for i, n in enumerate(names)}
