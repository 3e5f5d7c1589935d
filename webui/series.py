"""Per-interval time series (prices, grid flows, capacities, battery state) in chain
units, shared by the dashboard charts and /api/series."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from flask import g, url_for
from markupsafe import Markup

from node.index.store import Index
from webui import format as fmt
from webui.charts import Series, line_chart

BUY, SELL, P2P, IMPORT, EXPORT, CAPACITY, SOC = "#d64545", "#2f9e5b", "#7c4dcc", "#d64545", "#2f9e5b", "#52606d", "#e8a317"


def chart_window(index: Index, first: int | None, last: int | None, limit: int) -> tuple[int, int] | None:
    """The settled intervals a chart shows: [first, last] clipped to what is settled, at
    most `limit` of them ending at `last`; by default the latest `limit`."""
    settled = index.settled_range()
    if settled is None:
        return None
    hi = settled[1] if last is None else min(max(last, settled[0]), settled[1])
    lo = max(hi - limit + 1, settled[0]) if first is None else min(max(first, settled[0]), hi)
    return max(lo, hi - limit + 1), hi


def time_series(index: Index, meta: dict[str, str], last: int | None = None, window: tuple[int, int] | None = None,
                per_battery: bool = True) -> dict:
    """The settled intervals of `window` (first, last), or else the last `last` (all if
    None), as parallel lists. Without `per_battery`, "batteries" is left empty and the
    batteries' state of charge is summarised as mean and std across them instead."""
    settled = index.settled_range()
    if window is None and settled is not None:
        total = settled[1] - settled[0] + 1
        window = (settled[1] - (total if last is None else min(last, total)) + 1, settled[1])
    count = 0 if window is None or settled is None else window[1] - window[0] + 1
    rows = index.intervals(limit=count, offset=window[0] - settled[0]) if count > 0 else []
    ks = [r["interval"] for r in rows]
    stats = {b["interval"]: b for b in index.battery_stats(ks[0], ks[-1])} if ks else {}
    baseline = index.baseline_battery_totals(ks[0], ks[-1]) if ks else {}
    batteries: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    for b in index.battery_states(ks[0], ks[-1]) if ks and per_battery else ():
        batteries[b["participant"]][b["interval"]] = (b["soc_wh"], b["capacity_wh"])
    return {
        "interval": ks,
        "start": [_iso(fmt.interval_start(r["interval"], meta, r["start"])) for r in rows],
        "buy_price_units_per_kwh": [r["buy_price"] for r in rows],
        "sell_price_units_per_kwh": [r["sell_price"] for r in rows],
        "p2p_price_units_per_kwh": [r["p2p_price"] for r in rows],
        "grid_import_wh": [r["grid_import_wh"] for r in rows],
        "grid_export_wh": [r["grid_export_wh"] for r in rows],
        "import_capacity_wh": [r["import_capacity_wh"] for r in rows],
        "export_capacity_wh": [r["export_capacity_wh"] for r in rows],
        "p2p_wh": [r["p2p_wh"] for r in rows],
        "battery_soc_wh": [stats[k]["soc_wh"] if k in stats else None for k in ks],
        "battery_capacity_wh": [stats[k]["capacity_wh"] if k in stats else None for k in ks],
        "battery_percent_mean": [stats[k]["percent_mean"] if k in stats else None for k in ks],
        "battery_percent_std": [stats[k]["percent_std"] if k in stats else None for k in ks],
        "baseline_battery_soc_wh": [baseline.get(k) for k in ks],
        "batteries": {
            str(pid): {
                "soc_wh": [states[k][0] if k in states else None for k in ks],
                "capacity_wh": [states[k][1] if k in states else None for k in ks],
            }
            for pid, states in sorted(batteries.items())
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def time_axis(ks: list[int], meta: dict[str, str], starts: list[str | None]):
    """x labels in the market's time zone (index meta "timezone") and ticks on round hours."""
    tz = fmt.zone(meta.get("timezone"))
    moments = {k: m.astimezone(tz) if (m := fmt.interval_start(k, meta, s)) else None for k, s in zip(ks, starts)}
    if not ks or any(m is None for m in moments.values()):
        return (lambda k: f"#{k}"), None
    span_h = (moments[ks[-1]] - moments[ks[0]]).total_seconds() / 3600 or 1
    step = next((h for h in (1, 2, 3, 4, 6, 12, 24, 48, 96, 168) if span_h / h <= 8), 336)
    ticks = [k for k in ks if moments[k].minute == 0 and (moments[k].hour + 24 * moments[k].toordinal()) % step == 0]
    multi_day = moments[ks[0]].date() != moments[ks[-1]].date()

    def label(k: int) -> str:
        m = moments.get(k) or fmt.interval_start(k, meta)
        if m is None:
            return f"#{k}"
        m = m.astimezone(tz)
        return m.strftime("%d %b %H:%M" if multi_day and m.hour == 0 else "%H:%M")

    return label, ticks


def time_axis_options(ks: list[int], meta: dict[str, str], starts: list[str | None], marker: int | None = None) -> dict:
    """line_chart's x-axis arguments for intervals `ks`: ticks, labels and hover titles in
    the market's time zone, and the zone named under the axis."""
    label, ticks = time_axis(ks, meta, starts)
    by_k = dict(zip(ks, starts))

    def hover(k: int) -> str:
        return f"#{k} · {fmt.when(fmt.interval_start(k, meta, by_k.get(k)), meta.get('timezone'))}"

    return {"x_format": label, "x_ticks": ticks, "marker": marker, "hover_x": hover,
            "x_label": f"time ({meta.get('timezone') or 'UTC'})"}


def dashboard_charts(data: dict, meta: dict[str, str], selected: int | None = None) -> dict[str, Markup]:
    ks = data["interval"]
    sym = fmt.symbol(meta.get("currency", "EUR")).strip()
    axis = time_axis_options(ks, meta, data["start"], selected)

    def per_kwh(values):
        return [None if v is None else v / 1_000_000 for v in values]

    def kwh(values):
        return [None if v is None else v / 1000 for v in values]

    prices = line_chart(
        ks,
        [
            Series("grid buy", per_kwh(data["buy_price_units_per_kwh"]), BUY, "step", dashed=True, width=1.5),
            Series("grid sell", per_kwh(data["sell_price_units_per_kwh"]), SELL, "step", dashed=True, width=1.5),
            Series("P2P price", per_kwh(data["p2p_price_units_per_kwh"]), P2P, "step", width=2.5),
        ],
        title="P2P price and grid tariffs",
        y_label=f"{sym}/kWh",
        y_format=lambda v: f"{v:.2f}",
        hover_format=lambda v: f"{sym}{fmt.number(v, 4)}/kWh",
        y_min=0,
        **axis,
    )
    energy = {}
    for side, color in (("import", IMPORT), ("export", EXPORT)):
        energy[side] = line_chart(
            ks,
            [
                Series(f"grid {side}", kwh(data[f"grid_{side}_wh"]), color, "area"),
                Series(f"{side} capacity", kwh(data[f"{side}_capacity_wh"]), CAPACITY, "step", dashed=True, width=1.5),
            ],
            title=f"Community grid {side} vs capacity",
            y_label="kWh per interval",
            y_format=lambda v: f"{v:g}",
            hover_format=lambda v: f"{fmt.number(v)} kWh",
            y_min=0,
            **axis,
        )
    if data["batteries"]:
        batteries = [
            Series(f"battery {pid}", _percent(b["soc_wh"], b["capacity_wh"]), "#c9ced6", "line", width=1, legend=False)
            for pid, b in data["batteries"].items()
        ]
        caption = "Battery state of charge (grey: each battery)"
    else:  # many batteries: their spread as a band, not a line each
        mean, std = data["battery_percent_mean"], data["battery_percent_std"]
        batteries = [Series("batteries ± std", [None if m is None else m - d for m, d in zip(mean, std)], "#c9ced6", "band",
                            upper=[None if m is None else m + d for m, d in zip(mean, std)])]
        caption = "Battery state of charge (band: mean ± std across batteries)"
    total = _percent(data["battery_soc_wh"], data["battery_capacity_wh"])
    baseline = _percent(data.get("baseline_battery_soc_wh", [None] * len(ks)), data["battery_capacity_wh"])
    soc = line_chart(
        ks,
        batteries + [Series("community batteries", total, SOC, "line", width=2.5),
                     Series("baseline", baseline, "#1f2933", "line", dashed=True, width=1.2,
                            legend=any(v is not None for v in baseline))],
        title=caption,
        y_label="% of capacity",
        y_format=lambda v: f"{v:g}",
        hover_format=lambda v: f"{v:.1f}%",
        y_min=0,
        y_max=100,
        **axis,
    )
    return {"prices": prices, "import": energy["import"], "export": energy["export"], "soc": soc}


def _percent(values, capacities) -> list[float | None]:
    return [None if v is None or not c else 100 * v / c for v, c in zip(values, capacities)]


def participant_link(pid: int) -> str:
    """A participant page's URL; built once per request (a page links a hundred of them)."""
    if "participant_prefix" not in g:
        g.participant_prefix = url_for("participants.show", pid=0)[:-1]
    return f"{g.participant_prefix}{int(pid)}"
