"""An experiment's results: one tidy table, a summary with 95 % intervals, plots, and
the report that reproduces it all.

``results.csv`` / ``results.parquet``: one row per run (scenario values, seed, run id),
one column per KPI of node.metrics.kpis: the market's under its name, the baseline's as
``baseline_<name>``, the comparison's (savings, ...) under theirs. ``summary.csv``: per
scenario and KPI the number of runs, mean, standard deviation and the 95 % confidence
interval of the mean (Student's t over the seeds). ``plots/<kpi>.png``: the means with
those intervals. ``report.json``: the experiment file, seeds, every run's id, market
address and data fingerprint, and the package versions, so the numbers can be
reproduced; it holds no clock times, so a re-run writes the same files.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from node.metrics.kpis import COMPARISON_KPIS, KPIS, RUN_KPIS
from node.research.experiment import Experiment, RunSpec

KPI_COLUMNS = [k.name for k in RUN_KPIS] + [f"baseline_{k.name}" for k in RUN_KPIS] + [k.name for k in COMPARISON_KPIS]
# Plotted by default: what a reader of a comparison asks first.
PLOTTED = ("savings", "savings_percent", "cost_per_home", "self_sufficiency", "p2p_kwh", "peak_import_kw",
           "curtailed_kwh", "unserved_kwh", "savings_gini", "battery_cycles")


def results_table(experiment: Experiment, plan: list[RunSpec], results: list[dict]) -> pd.DataFrame:
    """One row per finished run, in plan order."""
    by_id = {r["run_id"]: r for r in results}
    rows = []
    for run in plan:
        result = by_id.get(run.run_id)
        if result is None:
            continue
        kpis = result["kpis"]
        rows.append({**run.scenario, "seed": run.seed, "run_id": run.run_id,
                     **{name: _float(kpis.get(name)) for name in KPI_COLUMNS}})
    return pd.DataFrame(rows, columns=[*experiment.scenario_keys, "seed", "run_id", *KPI_COLUMNS])


def summary_table(table: pd.DataFrame, scenario_keys: list[str]) -> pd.DataFrame:
    """Per scenario and KPI: n, mean, std, and the 95 % confidence interval of the mean."""
    from scipy.stats import t

    rows = []
    for values, group in table.groupby(scenario_keys, sort=False, dropna=False):
        scenario = dict(zip(scenario_keys, values if isinstance(values, tuple) else (values,)))
        for name in KPI_COLUMNS:
            x = group[name].dropna().to_numpy(dtype=float)
            n = x.size
            mean = float(x.mean()) if n else math.nan
            std = float(x.std(ddof=1)) if n > 1 else math.nan
            half = float(t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else math.nan
            rows.append({**scenario, "kpi": name, "n": n, "mean": mean, "std": std,
                         "ci95_low": mean - half, "ci95_high": mean + half})
    return pd.DataFrame(rows)


def plot_summary(summary: pd.DataFrame, scenario_keys: list[str], directory: Path, currency: str) -> list[Path]:
    """One chart per plotted KPI: each scenario's mean with its 95 % interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    varying = [k for k in scenario_keys if summary[k].nunique(dropna=False) > 1] or scenario_keys[:1]
    written = []
    for name in PLOTTED:
        rows = summary[summary["kpi"] == name]
        if rows.empty or rows["mean"].isna().all():
            continue
        labels = [", ".join(f"{k.split('.')[-1]}={row[k]}" for k in varying) for _, row in rows.iterrows()]
        mean = rows["mean"].to_numpy(dtype=float)
        low, high = rows["ci95_low"].to_numpy(dtype=float), rows["ci95_high"].to_numpy(dtype=float)
        error = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.4))
        y = np.arange(len(rows))
        ax.barh(y, np.nan_to_num(mean), xerr=error, color="#5b8def", ecolor="#1f2933", capsize=3)
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        kpi = KPIS[name]
        unit = currency if kpi.unit == "currency" else kpi.unit
        ax.set_xlabel(f"{kpi.label} ({unit}); mean and 95 % interval over seeds")
        ax.axvline(0, color="#999", linewidth=0.8)
        fig.tight_layout()
        path = directory / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    return written


def write_outputs(experiment: Experiment, plan: list[RunSpec], results: list[dict], out: Path) -> pd.DataFrame:
    """results.csv/.parquet, summary.csv, plots/ and report.json; returns the summary."""
    table = results_table(experiment, plan, results)
    table.to_csv(out / "results.csv", index=False)
    table.to_parquet(out / "results.parquet", index=False)
    summary = summary_table(table, experiment.scenario_keys)
    summary.to_csv(out / "summary.csv", index=False)
    currency = results[0]["record"]["config"]["market"]["currency"] if results else "EUR"
    plot_summary(summary, experiment.scenario_keys, out / "plots", currency)
    (out / "report.json").write_text(json.dumps(report(experiment, plan, results), indent=2, default=str) + "\n")
    return summary


def report(experiment: Experiment, plan: list[RunSpec], results: list[dict]) -> dict:
    """What reproduces the experiment: its file, seeds, runs and the software that ran them."""
    from node.simulation.record import package_versions

    by_id = {r["run_id"]: r for r in results}
    runs = []
    worker_versions = []
    for run in plan:
        result = by_id.get(run.run_id)
        record = result["record"] if result else {}
        runs.append({"run_id": run.run_id, "scenario": run.scenario, "seed": run.seed, "done": result is not None,
                     "market": record.get("market"), "chain": record.get("chain"), "data_sha256": record.get("data_sha256")})
        if record.get("versions") and record["versions"] not in worker_versions:
            worker_versions.append(record["versions"])
    return {
        "experiment": experiment.name,
        "file": str(experiment.path),
        "file_text": experiment.text,
        "seeds": list(experiment.seeds),
        "grid": experiment.grid,
        "base": experiment.base,
        "planned": len(plan),
        "done": sum(r["done"] for r in runs),
        "runs": runs,
        "versions": package_versions(),
        # The versions the runs reported (several, if a cluster's workers differ).
        "run_versions": worker_versions,
        "kpis": {k.name: {"label": k.label, "unit": k.unit, "formula": k.formula} for k in KPIS.values()},
    }


def _float(value) -> float:
    return math.nan if value is None else float(value)
