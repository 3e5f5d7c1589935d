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


def interval_count(index: Index) -> int:
    return index.summary()["intervals"]


def time_series(index: Index, meta: dict[str, str], last: int | None = None) -> dict:
    """The last `last` settled intervals (all if None) as parallel lists."""
    total = interval_count(index)
    count = total if last is None else min(last, total)
    rows = index.intervals(limit=max(count, 1), offset=total - count) if count else []
    ks = [r["interval"] for r in rows]
    first = ks[0] if ks else 0
    soc: dict[int, int] = defaultdict(int)
    cap: dict[int, int] = defaultdict(int)
    per_battery: dict[int, dict[int, tuple[int, int]]] = defaultdict(dict)
    # battery_series has no interval range; filtering here keeps Index unchanged and
    # costs little at the sizes the dashboard window allows.
    for b in index.battery_series():
        if b["interval"] >= first and ks:
            soc[b["interval"]] += b["soc_wh"]
            cap[b["interval"]] += b["capacity_wh"]
            per_battery[b["participant"]][b["interval"]] = (b["soc_wh"], b["capacity_wh"])
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
        "battery_soc_wh": [soc.get(k) for k in ks],
        "battery_capacity_wh": [cap.get(k) for k in ks],
        "batteries": {
            str(pid): {
                "soc_wh": [states[k][0] if k in states else None for k in ks],
                "capacity_wh": [states[k][1] if k in states else None for k in ks],
            }
            for pid, states in sorted(per_battery.items())
        },
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def time_axis(ks: list[int], meta: dict[str, str], starts: list[str | None]):
    """x labels (local time of the market epoch's offset) and ticks on round hours."""
    moments = {k: fmt.interval_start(k, meta, s) for k, s in zip(ks, starts)}
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
        return m.strftime("%d %b %H:%M" if multi_day and m.hour == 0 else "%H:%M")

    return label, ticks


def dashboard_charts(data: dict, meta: dict[str, str], selected: int | None = None) -> dict[str, Markup]:
    ks = data["interval"]
    label, ticks = time_axis(ks, meta, data["start"])
    sym = fmt.symbol(meta.get("currency", "EUR")).strip()
    axis = {"x_format": label, "x_ticks": ticks, "marker": selected}

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
        hover_format=lambda v: f"{sym}{v:.4f}/kWh",
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
            hover_format=lambda v: f"{v:.2f} kWh",
            y_min=0,
            **axis,
        )
    batteries = [
        Series(f"battery {pid}", _percent(b["soc_wh"], b["capacity_wh"]), "#c9ced6", "line", width=1, legend=False)
        for pid, b in data["batteries"].items()
    ]
    total = _percent(data["battery_soc_wh"], data["battery_capacity_wh"])
    soc = line_chart(
        ks,
        batteries + [Series("community batteries", total, SOC, "line", width=2.5)],
        title="Battery state of charge (grey: each battery)",
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


def participant_charts(history: list[dict], balances: list[int], meta: dict[str, str], starts: list[str | None]) -> dict[str, Markup]:
    ks = [h["interval"] for h in history]
    label, ticks = time_axis(ks, meta, starts)
    sym = fmt.symbol(meta.get("currency", "EUR")).strip()
    energy = line_chart(
        ks,
        [
            Series("grid (+ import, − export)", [h["grid_wh"] / 1000 for h in history], IMPORT, "area"),
            Series("P2P (+ bought, − sold)", [h["p2p_wh"] / 1000 for h in history], P2P, "step", width=2),
        ],
        title="Energy per interval",
        y_label="kWh",
        hover_format=lambda v: f"{v:.3f} kWh",
        x_format=label,
        x_ticks=ticks,
    )
    balance = line_chart(
        ks,
        [Series("wallet balance", [b / 1_000_000 for b in balances], "#2563a8", "line", width=2.5)],
        title="Wallet balance after each interval",
        y_label=sym,
        y_format=lambda v: f"{v:g}",
        hover_format=lambda v: f"{sym}{v:.4f}",
        x_format=label,
        x_ticks=ticks,
    )
    return {"energy": energy, "balance": balance}


def participant_link(pid: int) -> str:
    """A participant page's URL; built once per request (a page links a hundred of them)."""
    if "participant_prefix" not in g:
        g.participant_prefix = url_for("participants.show", pid=0)[:-1]
    return f"{g.participant_prefix}{int(pid)}"
