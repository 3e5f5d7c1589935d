r"""The KPIs of a run and of its comparison with the baseline, one definition each.

A run is its flows (:class:`RunFlows`), per home ``i`` and step ``t`` (kWh unless said)::

    load[i,t], pv[i,t]      metered consumption and PV production
    imp[i,t], exp[i,t]      energy bought from / sold to the grid
    pb[i,t], ps[i,t]        energy bought from / sold to neighbours (P2P)
    ch[i,t], dis[i,t]       battery charge / discharge at the terminals
    cur[i,t]                PV production that served nothing: curtailed (the export capacity
                            bound), or lost charging and discharging a battery at once
    uns[i,t]                consumption not served (shed: the import capacity bound, or
                            energy the market left unsettled)
    paid[i,t]               money the home paid, currency (negative: received)
    E0[i], E1[i]            energy stored in the home's batteries at the start / the end
    cap[i]                  the home's battery capacity
    IMP[t] = Σ_i imp[i,t]   the community's grid import (EXP[t] likewise)
    Δt                      the step length, hours

with, for every home and step, ``load - pv + cur - uns + ch - dis == imp - exp + pb - ps``.

**Stored energy is valued the same way in every run.** Energy left in the batteries
at the end is worth ``v`` per kWh (:func:`storage_value_per_kwh`: the mean feed-in
tariff times the discharge efficiency, which is what the optimiser itself credits it
with, what it fetches when eventually exported). A run is credited ``v (E1 - E0)``:
one that drains its batteries cannot look cheaper than one that keeps them full.

**Percentages state their base.** Savings in percent are of the baseline's *gross*
cost (what the homes pay for energy before any revenue): its net cost can be near
zero or negative when homes export, and a percentage of it means nothing.

Every KPI is in :data:`RUN_KPIS` or :data:`COMPARISON_KPIS` with its formula; the CLI,
the CSV files and the web UI print these labels, units and values, nothing else.
A KPI whose denominator is zero is NaN (``None`` in JSON), never a made-up number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# A step within 1 Wh per home of the capacity counts as at the capacity: the clearing
# keeps that margin below it for the whole-Wh rounding of each home's flow.
CAP_TOLERANCE_KWH_PER_HOME = 0.001


@dataclass(frozen=True)
class Kpi:
    name: str
    label: str
    unit: str  # "currency" is the market's currency
    formula: str


RUN_KPIS: tuple[Kpi, ...] = (
    Kpi("cost", "net cost", "currency", "Σ paid"),
    Kpi("gross_cost", "gross cost", "currency", "Σ max(paid, 0): what homes paid before any revenue"),
    Kpi("storage_start_kwh", "stored energy at the start", "kWh", "Σ_i E0"),
    Kpi("storage_end_kwh", "stored energy at the end", "kWh", "Σ_i E1"),
    Kpi("adjusted_cost", "cost, stored energy valued", "currency", "Σ paid − v Σ_i (E1 − E0)"),
    Kpi("cost_per_home", "cost per home, stored energy valued", "currency", "adjusted_cost / N"),
    Kpi("grid_import_kwh", "grid import", "kWh", "Σ imp"),
    Kpi("grid_export_kwh", "grid export", "kWh", "Σ exp"),
    Kpi("p2p_kwh", "P2P volume", "kWh", "Σ pb (= Σ ps)"),
    Kpi("self_sufficiency", "self-sufficiency", "share", "1 − Σ imp / Σ load"),
    Kpi("self_consumption", "self-consumption", "share", "(Σ pv − Σ cur − Σ exp) / Σ pv"),
    Kpi("local_pv_share", "share of load from local PV", "share",
        "(Σ pv − Σ cur − Σ exp − max(Σ_i (E1 − E0), 0)) / Σ load, PV used in the community and not left in storage"),
    Kpi("peak_import_kw", "peak grid import", "kW", "max_t IMP[t] / Δt"),
    Kpi("peak_to_average", "peak-to-average grid import", "ratio", "max_t IMP[t] / mean_t IMP[t]"),
    Kpi("curtailed_kwh", "PV curtailed", "kWh", "Σ cur"),
    Kpi("unserved_kwh", "load not served", "kWh", "Σ uns"),
    Kpi("import_cap_steps", "steps at the import capacity", "steps", "#{t : IMP[t] ≥ import capacity[t] − N Wh}"),
    Kpi("export_cap_steps", "steps at the export capacity", "steps", "#{t : EXP[t] ≥ export capacity[t] − N Wh}"),
    Kpi("battery_cycles", "battery cycles", "cycles",
        "Σ dis / Σ cap: equivalent full cycles per battery (from the state of charge per step)"),
    Kpi("co2_kg", "CO2 of grid imports", "kg", "Σ_t IMP[t] intensity[t] / 1000, intensity in g/kWh (if given)"),
)

COMPARISON_KPIS: tuple[Kpi, ...] = (
    Kpi("savings", "savings vs. the baseline", "currency", "baseline adjusted_cost − adjusted_cost"),
    Kpi("savings_percent", "savings, % of the baseline's gross cost", "%", "100 savings / baseline gross_cost"),
    Kpi("savings_per_home_mean", "savings per home, mean", "currency",
        "mean_i s_i, s_i = home i's baseline cost − its cost, stored energy valued"),
    Kpi("savings_per_home_std", "savings per home, standard deviation", "currency", "std_i s_i"),
    Kpi("savings_per_home_min", "savings per home, least", "currency", "min_i s_i"),
    Kpi("savings_per_home_max", "savings per home, most", "currency", "max_i s_i"),
    Kpi("homes_worse_off", "homes worse off than in the baseline", "homes", "#{i : s_i < 0}"),
    Kpi("savings_gini", "Gini of savings per home", "index", "Σ_i Σ_j |s_i − s_j| / (2 N² |mean_i s_i|)"),
)

KPIS = {k.name: k for k in RUN_KPIS + COMPARISON_KPIS}


@dataclass(frozen=True)
class RunFlows:
    """A run's energy and money, per home (rows) and step (columns); see the module doc."""

    load_kwh: np.ndarray
    pv_kwh: np.ndarray
    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    p2p_buy_kwh: np.ndarray
    p2p_sell_kwh: np.ndarray
    charge_kwh: np.ndarray
    discharge_kwh: np.ndarray
    curtailed_kwh: np.ndarray
    unserved_kwh: np.ndarray
    paid: np.ndarray  # currency; negative = received
    storage_start_kwh: np.ndarray  # (N,)
    storage_end_kwh: np.ndarray  # (N,)
    battery_capacity_kwh: np.ndarray  # (N,), 0 for a home without a battery
    import_capacity_kwh: np.ndarray  # (S,)
    export_capacity_kwh: np.ndarray  # (S,)
    step_hours: float
    intensity_g_per_kwh: np.ndarray | None = None  # (S,)
    homes: tuple[str, ...] = field(default=())  # names, in row order

    def __post_init__(self) -> None:
        shape = np.shape(self.load_kwh)
        for name in ("pv_kwh", "grid_import_kwh", "grid_export_kwh", "p2p_buy_kwh", "p2p_sell_kwh", "charge_kwh",
                     "discharge_kwh", "curtailed_kwh", "unserved_kwh", "paid"):
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"RunFlows.{name} has shape {np.shape(getattr(self, name))}, load_kwh {shape}")
        for name in ("storage_start_kwh", "storage_end_kwh", "battery_capacity_kwh"):
            if np.shape(getattr(self, name)) != shape[:1]:
                raise ValueError(f"RunFlows.{name} must have one value per home ({shape[0]})")
        for name in ("import_capacity_kwh", "export_capacity_kwh") + (("intensity_g_per_kwh",) if self.intensity_g_per_kwh is not None else ()):
            if np.shape(getattr(self, name)) != shape[1:]:
                raise ValueError(f"RunFlows.{name} must have one value per step ({shape[1]})")

    def balance_residual_kwh(self) -> np.ndarray:
        """(N, S) how far each home and step is from the energy balance (zero when consistent)."""
        physical = self.load_kwh - self.pv_kwh + self.curtailed_kwh - self.unserved_kwh + self.charge_kwh - self.discharge_kwh
        traded = self.grid_import_kwh - self.grid_export_kwh + self.p2p_buy_kwh - self.p2p_sell_kwh
        return physical - traded

    def home_costs(self, storage_value: float) -> np.ndarray:
        """(N,) each home's cost over the run, its stored energy valued at `storage_value`."""
        return self.paid.sum(axis=1) - storage_value * (self.storage_end_kwh - self.storage_start_kwh)


def storage_value_per_kwh(sell_per_kwh: np.ndarray, discharge_efficiency: float) -> float:
    """v: what a kWh left in a battery is worth, in both runs alike: the mean feed-in
    tariff times the discharge efficiency (the optimiser's terminal value)."""
    return max(float(np.mean(sell_per_kwh)), 0.0) * float(discharge_efficiency) if np.size(sell_per_kwh) else 0.0


def run_kpis(flows: RunFlows, storage_value: float) -> dict[str, float]:
    """Every KPI of :data:`RUN_KPIS` for one run (NaN where a denominator is zero)."""
    f = flows
    load, pv = f.load_kwh.sum(), f.pv_kwh.sum()
    imp, exp, cur = f.grid_import_kwh.sum(), f.grid_export_kwh.sum(), f.curtailed_kwh.sum()
    community_import = f.grid_import_kwh.sum(axis=0)
    community_export = f.grid_export_kwh.sum(axis=0)
    stored_change = float((f.storage_end_kwh - f.storage_start_kwh).sum())
    homes = f.load_kwh.shape[0]
    adjusted = float(f.home_costs(storage_value).sum())
    capacity = float(f.battery_capacity_kwh.sum())
    near = CAP_TOLERANCE_KWH_PER_HOME * max(homes, 1)
    values = {
        "cost": float(f.paid.sum()),
        "gross_cost": float(np.maximum(f.paid, 0).sum()),
        "storage_start_kwh": float(f.storage_start_kwh.sum()),
        "storage_end_kwh": float(f.storage_end_kwh.sum()),
        "adjusted_cost": adjusted,
        "cost_per_home": _ratio(adjusted, homes),
        "grid_import_kwh": float(imp),
        "grid_export_kwh": float(exp),
        "p2p_kwh": float(f.p2p_buy_kwh.sum()),
        "self_sufficiency": 1 - _ratio(imp, load),
        "self_consumption": _ratio(pv - cur - exp, pv),
        "local_pv_share": _ratio(pv - cur - exp - max(stored_change, 0.0), load),
        "peak_import_kw": float(community_import.max(initial=0.0)) / f.step_hours,
        "peak_to_average": _ratio(community_import.max(initial=0.0), community_import.mean() if community_import.size else 0.0),
        "curtailed_kwh": float(cur),
        "unserved_kwh": float(f.unserved_kwh.sum()),
        "import_cap_steps": float(np.count_nonzero(community_import >= f.import_capacity_kwh - near)),
        "export_cap_steps": float(np.count_nonzero(community_export >= f.export_capacity_kwh - near)),
        "battery_cycles": _ratio(f.discharge_kwh.sum(), capacity),
        "co2_kg": math.nan if f.intensity_g_per_kwh is None else float(community_import @ f.intensity_g_per_kwh) / 1000,
    }
    return values


def comparison_kpis(run: RunFlows, baseline: RunFlows, storage_value: float, baseline_kpis: dict[str, float] | None = None) -> dict[str, float]:
    """Every KPI of :data:`COMPARISON_KPIS`: `run` against `baseline` (the same homes in
    the same order, the same steps)."""
    if run.load_kwh.shape != baseline.load_kwh.shape:
        raise ValueError(f"the run has {run.load_kwh.shape} homes x steps, the baseline {baseline.load_kwh.shape}")
    base = baseline_kpis or run_kpis(baseline, storage_value)
    savings = baseline.home_costs(storage_value) - run.home_costs(storage_value)
    total = float(savings.sum())
    return {
        "savings": total,
        "savings_percent": 100 * _ratio(total, base["gross_cost"]),
        "savings_per_home_mean": float(savings.mean()) if savings.size else math.nan,
        "savings_per_home_std": float(savings.std()) if savings.size else math.nan,
        "savings_per_home_min": float(savings.min()) if savings.size else math.nan,
        "savings_per_home_max": float(savings.max()) if savings.size else math.nan,
        "homes_worse_off": float(np.count_nonzero(savings < -1e-9)),
        "savings_gini": gini(savings),
    }


def gini(values: np.ndarray) -> float:
    """Σ_i Σ_j |x_i − x_j| / (2 N² |mean x|): 0 when everyone gets the same; for
    non-negative x at most 1 − 1/N. Savings may be negative (a home worse off), which
    the absolute mean keeps meaningful (the index can then exceed 1). NaN when the mean
    is zero."""
    x = np.sort(np.asarray(values, dtype=float))
    n = x.size
    mean = x.mean() if n else 0.0
    if n == 0 or abs(mean) < 1e-12:
        return math.nan
    # Σ_i Σ_j |x_i − x_j| = 2 Σ_k (2k − n + 1) x_k over the sorted values (k from 0).
    pairs = 2 * float(((2 * np.arange(n) - n + 1) * x).sum())
    return pairs / (2 * n * n * abs(mean))


@dataclass(frozen=True)
class Evaluation:
    """A run's KPIs, the baseline's, and the comparison, with the value put on storage."""

    market: dict[str, float]
    baseline: dict[str, float]
    comparison: dict[str, float]
    storage_value_per_kwh: float
    currency: str = "EUR"
    per_home: dict[str, list] = field(default_factory=dict)  # home_kpis(run, baseline, ...)
    horizon_hours: float | None = None  # how far the market's optimiser looked ahead

    def to_json(self) -> dict:
        """JSON-safe (NaN as None), with each KPI's definition."""
        return {
            "market": _json_safe(self.market),
            "baseline": _json_safe(self.baseline),
            "comparison": _json_safe(self.comparison),
            "storage_value_per_kwh": self.storage_value_per_kwh,
            "currency": self.currency,
            "definitions": {k.name: {"label": k.label, "unit": k.unit, "formula": k.formula} for k in KPIS.values()},
        }

    def rows(self) -> list[dict]:
        """The tidy table: one row per KPI with its label, unit, both runs' values (a
        comparison KPI has one value) and its formula."""
        rows = [{"kpi": k.name, "label": k.label, "unit": self._unit(k), "market": self.market.get(k.name),
                 "baseline": self.baseline.get(k.name), "formula": k.formula} for k in RUN_KPIS]
        rows += [{"kpi": k.name, "label": k.label, "unit": self._unit(k), "market": self.comparison.get(k.name),
                  "baseline": None, "formula": k.formula} for k in COMPARISON_KPIS]
        return rows

    def flat(self) -> dict[str, float]:
        """One flat record (an experiment's table row): market KPIs by name, the
        baseline's as ``baseline_<name>``, the comparison's by name."""
        return self.market | {f"baseline_{k}": v for k, v in self.baseline.items()} | self.comparison

    def _unit(self, k: Kpi) -> str:
        return self.currency if k.unit == "currency" else k.unit


def evaluate(run: RunFlows, baseline: RunFlows, storage_value: float, currency: str = "EUR",
             horizon_hours: float | None = None) -> Evaluation:
    """The KPIs of `run`, of `baseline`, and of the one against the other."""
    base = run_kpis(baseline, storage_value)
    return Evaluation(run_kpis(run, storage_value), base, comparison_kpis(run, baseline, storage_value, base),
                      storage_value, currency, home_kpis(run, baseline, storage_value), horizon_hours)


def home_kpis(run: RunFlows, baseline: RunFlows, storage_value: float) -> dict[str, list]:
    """Per home (in row order, by name): its cost and the baseline's, stored energy
    valued (the same formula as adjusted_cost), the savings s_i, self-sufficiency,
    P2P energy, curtailment and unserved load."""
    cost, base = run.home_costs(storage_value), baseline.home_costs(storage_value)
    load = run.load_kwh.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sufficiency = np.where(load > 0, 1 - run.grid_import_kwh.sum(axis=1) / np.where(load > 0, load, 1), np.nan)
    columns = {
        "cost": cost, "baseline_cost": base, "savings": base - cost, "self_sufficiency": sufficiency,
        "p2p_bought_kwh": run.p2p_buy_kwh.sum(axis=1), "p2p_sold_kwh": run.p2p_sell_kwh.sum(axis=1),
        "curtailed_kwh": run.curtailed_kwh.sum(axis=1), "unserved_kwh": run.unserved_kwh.sum(axis=1),
        "baseline_curtailed_kwh": baseline.curtailed_kwh.sum(axis=1), "baseline_unserved_kwh": baseline.unserved_kwh.sum(axis=1),
    }
    out: dict[str, list] = {"name": list(run.homes) or [str(i) for i in range(run.load_kwh.shape[0])]}
    out |= {name: [None if math.isnan(v) else float(v) for v in values] for name, values in columns.items()}
    return out


SHORT_HORIZON_HOURS = 24  # below a day, the optimiser cannot see the next evening peak


def caveats(e: Evaluation) -> list[str]:
    """What a reader of the savings must know, in words: the CLI and the web UI show
    these same sentences."""
    m, b, c = e.market, e.baseline, e.comparison
    notes = [f"savings value the energy left in batteries at {e.storage_value_per_kwh:.4f} {e.currency}/kWh in both runs "
             f"(stored at the end {m['storage_end_kwh']:.1f} kWh, baseline {b['storage_end_kwh']:.1f} kWh, "
             f"start {m['storage_start_kwh']:.1f} kWh)",
             f"percentages are of the baseline's gross cost {b['gross_cost']:.2f} {e.currency} (its net cost is "
             f"{b['cost']:.2f}); the baseline obeys the same grid capacity"]
    for label, key in (("PV curtailed", "curtailed_kwh"), ("load not served", "unserved_kwh")):
        if m[key] > 0 or b[key] > 0:
            notes.append(f"{label}: {m[key]:.1f} kWh in the market, {b[key]:.1f} kWh in the baseline")
    if c["homes_worse_off"]:
        notes.append(f"{c['homes_worse_off']:.0f} home(s) pay more than in the baseline")
    if (e.horizon_hours is not None and e.horizon_hours < SHORT_HORIZON_HOURS
            and m["unserved_kwh"] > b["unserved_kwh"] + 0.5):
        # Seen on a month at a one-hour horizon: batteries sold at noon were empty at the
        # evening peak, when the grid limit bound; the baseline keeps each battery's energy home.
        notes.append(f"the market left more load unserved than the baseline: its optimiser looks "
                     f"{e.horizon_hours:g} h ahead, too short to keep stored energy for a peak beyond it; "
                     f"set [market] horizon_steps to cover a day")
    return notes


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else math.nan


def _json_safe(values: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}


def job_local_pv_share(job_kwh: np.ndarray, other_load_kwh: np.ndarray, pv_kwh: np.ndarray) -> float:
    r"""PySSMic's KPI: the share of deferrable jobs' energy served by local PV.

    With ``J[t]`` the jobs' energy, ``L[t]`` the other consumption and ``P[t]`` the PV of
    the whole neighbourhood in step ``t`` (arrays are homes x steps)::

        share = Σ_t J[t] min(1, P[t] / (L[t] + J[t])) / Σ_t J[t]

    each step's job energy counts as local in the proportion the neighbourhood's PV
    covered its consumption (jobs included; batteries not counted): PySSMic's
    local-versus-remote split of its contracts. NaN without job energy.
    """
    jobs = np.asarray(job_kwh).sum(axis=0)
    total = float(jobs.sum())
    if total <= 0:
        return math.nan
    consumption = np.asarray(other_load_kwh).sum(axis=0) + jobs
    production = np.asarray(pv_kwh).sum(axis=0)
    covered = np.divide(production, consumption, out=np.ones_like(production, dtype=float), where=consumption > 0)
    return float((jobs * np.minimum(covered, 1.0)).sum() / total)
