"""The dashboard's charts of a community on a network (issue 11): each zone's P2P price
over time, one line per zone, and the congestion rent each interval paid the grid
operator. Shown only when the run settled zone prices (ZonePricesSettled)."""

from __future__ import annotations

from markupsafe import Markup

from webui import format as fmt
from webui.charts import Series, line_chart
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
