"""Charts of homes: one home's energy, battery and wallet beside its no-trading baseline,
and the community's homes as mean ± one standard deviation per interval."""

from __future__ import annotations

from markupsafe import Markup

from webui import format as fmt
from webui.charts import Series, line_chart
from webui.series import time_axis_options

LOAD, PV, GRID, P2P, BASE, SOC, WALLET = "#52606d", "#e8a317", "#d64545", "#7c4dcc", "#1f2933", "#e8a317", "#2563a8"


def _kwh(values) -> list[float | None]:
    return [None if v is None else v / 1000 for v in values]


def _kwh_hover(v: float) -> str:
    return f"{fmt.number(v, 3)} kWh"


def home_charts(rows: list[dict], meta: dict[str, str], battery: bool, marker: int | None = None) -> dict[str, Markup]:
    """A home's charts from `rows` (webui.participants.home_rows): energy, battery state
    of charge (with a battery) and wallet balance, each with the baseline dashed."""
    ks = [r["interval"] for r in rows]
    axis = time_axis_options(ks, meta, [r["start"] for r in rows], marker)
    sym = fmt.symbol(meta.get("currency", "EUR")).strip()
    col = {name: [r.get(name) for r in rows] for name in rows[0]} if rows else {}
    energy_series = []
    if any(v is not None for v in col.get("load_wh", [])):
        energy_series += [Series("load", _kwh(col["load_wh"]), LOAD, "step", width=1.5),
                          Series("PV", _kwh(col["pv_wh"]), PV, "step", width=1.5)]
    energy_series += [Series("grid (+ import, − export)", _kwh(col.get("grid_wh", [])), GRID, "area")]
    if any(v is not None for v in col.get("baseline_grid_wh", [])):
        energy_series.append(Series("grid, baseline", _kwh(col["baseline_grid_wh"]), BASE, "step", dashed=True, width=1.2))
    if any(col.get("p2p_wh", [])):
        energy_series.append(Series("P2P (+ bought, − sold)", _kwh(col["p2p_wh"]), P2P, "step", width=2))
    charts = {"energy": line_chart(ks, energy_series, title="Energy per interval", y_label="kWh",
                                   hover_format=_kwh_hover, **axis)}
    if battery:
        charts["soc"] = line_chart(
            ks,
            [Series("state of charge", _percent(col["soc_wh"], col["capacity_wh"]), SOC, "line", width=2.5),
             Series("baseline", _percent(col["baseline_soc_wh"], col["capacity_wh"]), BASE, "line", dashed=True, width=1.2)],
            title="Battery state of charge at each interval's start", y_label="% of capacity", y_min=0, y_max=100,
            hover_format=lambda v: f"{v:.1f}%", **axis)
    balance = [Series("wallet balance", [None if v is None else v / 1e6 for v in col.get("balance_units", [])], WALLET, "line", width=2.5)]
    if any(v is not None for v in col.get("baseline_balance_units", [])):
        balance.append(Series("baseline: deposits − baseline cost", [None if v is None else v / 1e6 for v in col["baseline_balance_units"]],
                              BASE, "line", dashed=True, width=1.2))
    charts["balance"] = line_chart(ks, balance, title="Wallet balance after each interval", y_label=sym,
                                   hover_format=lambda v: f"{sym}{fmt.number(v, 4)}", **axis)
    return charts


def _percent(values, capacities) -> list[float | None]:
    return [None if v is None or not c else 100 * v / c for v, c in zip(values, capacities)]


def homes_charts(stats: list[dict], starts: list[str | None], meta: dict[str, str], marker: int | None = None) -> dict[str, Markup]:
    """The community's homes per interval as mean ± one standard deviation (Index.home_stats)."""
    ks = [s["interval"] for s in stats]
    axis = time_axis_options(ks, meta, starts, marker)

    def band(name: str, quantity: str, color: str, toggle: str, dashed: bool = False) -> list[Series]:
        mean = _kwh([s[quantity + "_mean"] for s in stats])
        std = _kwh([s[quantity + "_std"] for s in stats])
        low = [None if m is None else m - d for m, d in zip(mean, std)]
        high = [None if m is None else m + d for m, d in zip(mean, std)]
        return [Series(f"{name} ± std", low, color, "band", upper=high, toggle=toggle, opacity=0.7 if dashed else 1.0),
                Series(f"{name} mean", mean, color, "step", width=2, dashed=dashed, toggle=toggle, legend=False, hover=True)]

    grid = line_chart(ks, band("grid", "grid_wh", GRID, "grid") + band("baseline grid", "baseline_grid_wh", BASE, "base", True),
                      title="Grid energy per home: mean ± std across homes", y_label="kWh per home",
                      hover_format=_kwh_hover, **axis)
    own = line_chart(ks, band("load", "load_wh", LOAD, "load") + band("PV", "pv_wh", PV, "pv") + band("P2P", "p2p_wh", P2P, "p2p"),
                     title="Load, PV and P2P per home: mean ± std", y_label="kWh per home",
                     hover_format=_kwh_hover, **axis)
    return {"homes_grid": grid, "homes_energy": own}
