"""Time-series charts rendered on the server as inline SVG.

The UI runs where there may be no internet and no JS bundle, so charts are plain
SVG strings: axes with "nice" ticks, a legend, a title, and one invisible column
per x value whose <title> gives the exact numbers as a native browser tooltip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from markupsafe import Markup, escape

# Enough columns for a few days of 15-minute intervals; beyond that the tooltip
# columns would outweigh the chart itself.
_MAX_HOVER_COLUMNS = 800


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str
    kind: str = "line"  # "line": points joined; "step": value held over [x, x+1); "area": step, filled to 0
    dashed: bool = False
    width: float = 2.0
    legend: bool = True
    opacity: float = 1.0


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5, 5 x 10^n steps) covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first, last = math.floor(lo / step), math.ceil(hi / step)
    return [round(i * step, 10) for i in range(first, last + 1)]


def line_chart(
    x: Sequence[int],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str = "",
    y_format: Callable[[float], str] = lambda v: f"{v:g}",
    x_format: Callable[[int], str] = str,
    x_ticks: Sequence[int] | None = None,
    y_min: float | None = None,
    y_max: float | None = None,
    width: int = 600,
    height: int = 250,
    hover_format: Callable[[float], str] | None = None,
    marker: int | None = None,
) -> Markup:
    """An SVG line/step/area chart of `series` over the integer positions `x`,
    with a vertical rule at `marker` if given."""
    left, right, top, bottom = 58, 14, 52, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f'<text class="chart-title" x="{left}" y="18">{escape(title)}</text>',
    ]
    out += _legend(series, left, 38)
    values = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if not x or not values:
        out.append(f'<text class="chart-empty" x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle">no data yet</text></svg>')
        return Markup("".join(out))

    stepped = any(s.kind in ("step", "area") for s in series)
    x0, x1 = min(x), max(x) + (1 if stepped else 0)
    if x1 == x0:
        x1 = x0 + 1
    lo = min(values + [0.0] if any(s.kind == "area" for s in series) else values)
    hi = max(values)
    lo = lo if y_min is None else min(y_min, lo)
    hi = hi if y_max is None else max(y_max, hi)
    ticks = nice_ticks(lo, hi)
    lo, hi = min(ticks[0], lo), max(ticks[-1], hi)

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * plot_w

    def sy(v: float) -> float:
        return top + plot_h - (v - lo) / (hi - lo) * plot_h

    # Grid lines and y ticks.
    for t in ticks:
        y = sy(t)
        cls = "axis zero" if t == 0 and lo < 0 < hi else "gridline"
        out.append(f'<line class="{cls}" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_format(t))}</text>')
    if y_label:
        out.append(
            f'<text class="axis-label" transform="translate(13 {top + plot_h / 2:.0f}) rotate(-90)" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
    # X axis.
    base = top + plot_h
    out.append(f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{base}" y2="{base}"/>')
    for t in x_ticks if x_ticks is not None else [int(v) for v in nice_ticks(min(x), max(x), 6) if min(x) <= v <= max(x)]:
        px = sx(t)
        out.append(f'<line class="axis" x1="{px:.1f}" x2="{px:.1f}" y1="{base}" y2="{base + 4}"/>')
        out.append(f'<text class="tick" x="{px:.1f}" y="{base + 17}" text-anchor="middle">{escape(x_format(t))}</text>')

    for s in series:
        out += _draw(s, x, sx, sy, lo, hi)
    if marker is not None and x0 <= marker <= x1:
        # The interval the page is about, so the charts and the drawing line up.
        mx = sx(marker + (0.5 if stepped else 0))
        out.append(f'<line class="marker" x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{base}"/>')

    if len(x) <= _MAX_HOVER_COLUMNS:
        column = plot_w / (x1 - x0)
        fmt = hover_format or y_format
        for i, xv in enumerate(x):
            lines = [x_format(xv)] + [
                f"{s.name}: {fmt(s.values[i])}" for s in series if s.legend and i < len(s.values) and s.values[i] is not None
            ]
            cx = sx(xv) - (0 if stepped else column / 2)
            out.append(
                f'<rect class="hover" x="{cx:.1f}" y="{top}" width="{column:.2f}" height="{plot_h}">'
                f'<title>{escape(chr(10).join(lines))}</title></rect>'
            )
    out.append("</svg>")
    return Markup("".join(out))


def _legend(series: Sequence[Series], x: float, y: float) -> list[str]:
    out = []
    for s in series:
        if not s.legend:
            continue
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(f'<line x1="{x:.0f}" x2="{x + 18:.0f}" y1="{y - 4}" y2="{y - 4}" stroke="{s.color}" stroke-width="3"{dash}/>')
        out.append(f'<text class="legend" x="{x + 23:.0f}" y="{y}">{escape(s.name)}</text>')
        x += 23 + 7.2 * len(s.name) + 16
    return out


def _draw(s: Series, x: Sequence[int], sx, sy, lo: float, hi: float) -> list[str]:
    """One polyline per unbroken run of values (None breaks the line)."""
    out = []
    runs: list[list[tuple[float, float]]] = [[]]
    for xv, v in zip(x, s.values):
        if v is None or not math.isfinite(v):
            if runs[-1]:
                runs.append([])
            continue
        if s.kind == "line":
            runs[-1].append((sx(xv), sy(v)))
        else:
            runs[-1] += [(sx(xv), sy(v)), (sx(xv + 1), sy(v))]
    dash = ' stroke-dasharray="6 4"' if s.dashed else ""
    zero = sy(min(max(0.0, lo), hi))
    for run in runs:
        if not run:
            continue
        points = " ".join(f"{px:.1f},{py:.1f}" for px, py in run)
        if s.kind == "area":
            area = f"{run[0][0]:.1f},{zero:.1f} {points} {run[-1][0]:.1f},{zero:.1f}"
            out.append(f'<polygon points="{area}" fill="{s.color}" fill-opacity="{0.18 * s.opacity:.2f}" stroke="none"/>')
        out.append(
            f'<polyline points="{points}" fill="none" stroke="{s.color}" stroke-width="{s.width}" '
            f'stroke-opacity="{s.opacity}" stroke-linejoin="round"{dash}/>'
        )
    return out
