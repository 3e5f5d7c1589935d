"""The dashboard's charts of a community on a network (issue 11): each zone's P2P price
over time, one line per zone, the congestion rent each interval paid the grid operator,
and each line's and grid connection's loading against its committed limit. Shown only
when the run settled zone prices (ZonePricesSettled)."""

from __future__ import annotations

from markupsafe import Markup

from webui import format as fmt
from webui.charts import Series, line_chart
from webui.lines import BINDING_SHARE, Loading
from webui.series import time_axis_options

# Distinct hues for up to ten zones; beyond, they repeat (the hover names every zone).
ZONE_COLORS = ("#7c4dcc", "#d64545", "#2f9e5b", "#e8a317", "#1f77b4", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#52606d")


def zone_charts(series: list[dict], data: dict, meta: dict[str, str], selected: int | None = None) -> dict[str, Markup]:
    """{"zone_prices", "congestion_rent"} charts over the dashboard's intervals
    (`data["interval"]`, their starts in `data["start"]`) from `Index.zone_price_series`;
    empty when none of those intervals was settled at zone prices."""
    ks = data["interval"]
    by_k = {row["interval"]: row for row in series}
    if not any(k in by_k for k in ks):
        return {}
    zones = max(len(row["prices"]) for row in series)
    sym = fmt.symbol(meta.get("currency", "EUR")).strip()
    axis = time_axis_options(ks, meta, data["start"], selected)

    def price(k: int, z: int) -> float | None:
        row = by_k.get(k)
        return None if row is None or z >= len(row["prices"]) else row["prices"][z] / 1_000_000

    prices = line_chart(
        ks,
        [Series(f"zone {z}", [price(k, z) for k in ks], ZONE_COLORS[z % len(ZONE_COLORS)], "step", width=2)
         for z in range(zones)],
        title="P2P price per zone", y_label=f"{sym}/kWh", y_format=lambda v: f"{v:.2f}",
        hover_format=lambda v: f"{sym}{fmt.number(v, 4)}/kWh", y_min=0, **axis,
    )
    rent = line_chart(
        ks,
        [Series("congestion rent", [None if k not in by_k else by_k[k]["rent_milli"] / 1e9 for k in ks], "#52606d",
                "area")],
        title="Congestion rent to the grid operator", y_label=f"{sym} per interval", y_format=lambda v: f"{v:g}",
        hover_format=lambda v: f"{sym}{fmt.number(v, 4)}", y_min=0, **axis,
    )
    return {"zone_prices": prices, "congestion_rent": rent}


def loading_chart(loadings: dict[int, list[Loading]], data: dict, meta: dict[str, str],
                  selected: int | None = None) -> dict[str, Markup]:
    """{"line_loading": chart} of each limited line's and grid connection's settled flow as a
    share of its committed limit over the dashboard's intervals (from
    `webui.lines.loading_series`), the limit drawn at 100 %; empty without any limit."""
    ks = data["interval"]
    names = list(dict.fromkeys(r.name for k in ks for r in loadings.get(k, ()) if r.limit_wh is not None))
    if not names:
        return {}
    share = {(k, r.name): r.share for k in ks for r in loadings.get(k, ()) if r.limit_wh is not None}

    def percent(k: int, name: str) -> float | None:
        value = share.get((k, name))
        return None if value is None else 100 * value

    series = [Series(name, [percent(k, name) for k in ks], ZONE_COLORS[i % len(ZONE_COLORS)], "step", width=2)
              for i, name in enumerate(names)]
    series.append(Series("limit", [100.0] * len(ks), "#d64545", "line", dashed=True, width=1, hover=False))
    congested = sum(1 for (k, _), v in share.items() if v is not None and v >= BINDING_SHARE)
    chart = line_chart(
        ks, series,
        title=f"Line and grid connection loading ({congested} congested line-intervals)",
        y_label="% of limit", y_format=lambda v: f"{v:.0f}", hover_format=lambda v: f"{v:.1f} %", y_min=0,
        **time_axis_options(ks, meta, data["start"], selected),
    )
    return {"line_loading": chart}
