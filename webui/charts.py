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
    # "line": points joined; "step": value held over [x, x+1); "area": step, filled to 0;
    # "band": the region between `values` (low) and `upper` (high), stepped.
    kind: str = "line"
    dashed: bool = False
    width: float = 2.0
    legend: bool = True
    opacity: float = 1.0
    upper: Sequence[float | None] | None = None
    # Series sharing a toggle key are shown and hidden together (a mean and its band).
    toggle: str | None = None
    hover: bool | None = None  # in the hover titles (default: if in the legend)


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
    x_label: str = "",
    hover_x: Callable[[int], str] | None = None,
) -> Markup:
    """An SVG line/step/area chart of `series` over the integer positions `x`,
    with a vertical rule at `marker` if given."""
    left, right, top, bottom = 58, 14, 52, 34
    legend, rows = _legend(series, _toggle_keys(series), left, 38, width - right)
    # A legend of more rows than one pushes the plot down, and the chart grows to keep it.
    top += 15 * (rows - 1)
    height += 15 * (rows - 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    keys = _toggle_keys(series)
    named = [s.name for s in series if s.legend]
    span = f" from {x_format(x[0])} to {x_format(x[-1])}" if x else ""
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{{id}}-t {{id}}-d" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{{id}}-t">{escape(title)}</title>'
        f'<desc id="{{id}}-d">{escape(", ".join(named))} per interval{escape(span)}; hover a column for the numbers; '
        'the legend entries show and hide their series.</desc>',
        f'<text class="chart-title" x="{left}" y="18">{escape(title)}</text>',
    ]
    out += legend
    values = [v for s in series for vs in (s.values, s.upper or ()) for v in vs if v is not None and math.isfinite(v)]
    if not x or not values:
        out.append(f'<text class="chart-empty" x="{width / 2}" y="{top + plot_h / 2}" text-anchor="middle">no data yet</text></svg>')
        return _with_id(out)

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
    if x_label:
        out.append(f'<text class="axis-label" x="{left + plot_w}" y="{base + 30}" text-anchor="end">{escape(x_label)}</text>')
    for t in x_ticks if x_ticks is not None else [int(v) for v in nice_ticks(min(x), max(x), 6) if min(x) <= v <= max(x)]:
        px = sx(t)
        out.append(f'<line class="axis" x1="{px:.1f}" x2="{px:.1f}" y1="{base}" y2="{base + 4}"/>')
        out.append(f'<text class="tick" x="{px:.1f}" y="{base + 17}" text-anchor="middle">{escape(x_format(t))}</text>')

    for s, key in zip(series, keys):
        out.append(f'<g data-series="{key}">')
        out += _draw(s, x, sx, sy, lo, hi)
        out.append("</g>")
    # The interval the page is about, so the charts and the drawing line up; playback
    # moves it (static/player.js) with the geometry in the data attributes.
    shown = marker is not None and x0 <= marker <= x1
    mx = sx((marker if shown else x0) + (0.5 if stepped else 0))
    hidden = "" if shown else ' visibility="hidden"'
    out.append(f'<line class="marker" x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{base}" data-x0="{x0}" data-x1="{x1}" '
               f'data-left="{left}" data-plot-w="{plot_w}" data-step="{0.5 if stepped else 0}"{hidden}/>')

    if len(x) <= _MAX_HOVER_COLUMNS:
        column = plot_w / (x1 - x0)
        fmt = hover_format or y_format
        for i, xv in enumerate(x):
            lines = [(hover_x or x_format)(xv)] + [_hover_line(s, i, fmt) for s in series
                                      if (s.legend if s.hover is None else s.hover)
                                      and i < len(s.values) and s.values[i] is not None]
            cx = sx(xv) - (0 if stepped else column / 2)
            out.append(
                f'<rect class="hover" x="{cx:.1f}" y="{top}" width="{column:.2f}" height="{plot_h}">'
                f'<title>{escape(chr(10).join(lines))}</title></rect>'
            )
    out.append("</svg>")
    return _with_id(out)


_ids = iter(range(1, 1 << 62))


def _with_id(out: list[str]) -> Markup:
    """The chart with ids unique in the page (for aria-labelledby: only its head has them)."""
    unique = f"chart{next(_ids)}"
    return Markup("".join([part.replace("{id}", unique) for part in out[:2]] + out[2:]))


def _hover_line(s: Series, i: int, fmt) -> str:
    if s.kind == "band" and s.upper is not None and s.upper[i] is not None:
        return f"{s.name}: {fmt(s.values[i])} to {fmt(s.upper[i])}"
    return f"{s.name}: {fmt(s.values[i])}"


def _toggle_keys(series: Sequence[Series]) -> list[str]:
    return [s.toggle or f"s{i}" for i, s in enumerate(series)]


def _legend(series: Sequence[Series], keys: list[str], left: float, y: float, right: float) -> tuple[list[str], int]:
    """One entry per legend series, in rows that fit before `right`; each entry is a
    button that shows or hides its series (static/ui.js), so it is focusable and says
    whether it is pressed. Returns the entries and the number of rows."""
    out, x, rows = [], left, 1
    for s, key in zip(series, keys):
        if not s.legend:
            continue
        if x > left and x + 23 + 6.6 * len(s.name) > right:
            x, y, rows = left, y + 15, rows + 1
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        swatch = (f'<rect x="{x:.0f}" y="{y - 9}" width="18" height="9" fill="{s.color}" fill-opacity=".3"/>' if s.kind == "band" else
                  f'<line x1="{x:.0f}" x2="{x + 18:.0f}" y1="{y - 4}" y2="{y - 4}" stroke="{s.color}" stroke-width="3"{dash}/>')
        out.append(f'<g class="legend-item" data-toggle="{key}" role="button" tabindex="0" aria-pressed="true">'
                   f'<title>show or hide {escape(s.name)}</title>{swatch}'
                   f'<text class="legend" x="{x + 23:.0f}" y="{y}">{escape(s.name)}</text></g>')
        x += 23 + 6.6 * len(s.name) + 14
    return out, rows


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
    if s.kind == "band":
        return _band(s, x, sx, sy)
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


def _band(s: Series, x: Sequence[int], sx, sy) -> list[str]:
    """The stepped region between s.values (low) and s.upper (high), one polygon per run."""
    out, run = [], []
    for xv, low, high in list(zip(x, s.values, s.upper or ())) + [(None, None, None)]:
        if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
            if run:
                top = [(sx(at + dx), sy(high_)) for at, _, high_ in run for dx in (0, 1)]
                bottom = [(sx(at + dx), sy(low_)) for at, low_, _ in reversed(run) for dx in (1, 0)]
                points = " ".join(f"{px:.1f},{py:.1f}" for px, py in top + bottom)
                out.append(f'<polygon points="{points}" fill="{s.color}" fill-opacity="{0.22 * s.opacity:.2f}" stroke="none"/>')
                run = []
            continue
        run.append((xv, low, high))
    return out
