"""``gridledger experiment FILE``: a grid of scenarios x seeds through the real pipeline,
in parallel worker processes (local, or a Dask cluster), resumable."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("gridledger")


def add_commands(commands: argparse._SubParsersAction) -> None:
    experiment = commands.add_parser(
        "experiment",
        help="run a grid of scenarios x seeds (an experiment file) and tabulate their KPIs",
        description="Runs every scenario of the experiment FILE (TOML: [experiment] seeds, [base] config values, "
        "[grid] lists of values to combine; see examples/experiment.toml) once per seed, each through the real "
        "pipeline on its own embedded chain, in parallel worker processes. Writes OUT/results.csv and "
        ".parquet (one row per run, one column per KPI), OUT/summary.csv (mean and 95%% interval per scenario), "
        "OUT/plots/ and OUT/report.json (file, seeds, versions, markets). Run it again to resume: runs with a "
        "result in OUT/runs/ are not run again.",
    )
    experiment.add_argument("file", type=Path, help="experiment file (TOML)")
    experiment.add_argument("--out", type=Path, help="output directory (default: experiments/NAME)")
    experiment.add_argument("--workers", type=int, metavar="N",
                            help="local worker processes (default: one per CPU; 1 runs in this process)")
    experiment.add_argument("--cluster", metavar="ADDRESS",
                            help="run on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.5:8786) "
                            "instead of local workers; its workers need GridLedger installed")
    experiment.set_defaults(run=cmd_experiment,
                            interrupted="interrupted: finished runs are kept in OUT/runs; run the same command to resume")


def cmd_experiment(args: argparse.Namespace) -> int:
    from node.errors import InputError
    from node.research.experiment import load_experiment

    if args.workers is not None and args.cluster:
        raise InputError("give --workers or --cluster, not both")
    experiment = load_experiment(args.file)
    out = args.out or Path("experiments") / experiment.name
    from node.research.report import write_outputs
    from node.research.runs import load_results, run_experiment

    plan_size = len(experiment.scenarios()) * len(experiment.seeds)
    where = f"the Dask cluster at {args.cluster}" if args.cluster else (
        f"{args.workers} local worker(s)" if args.workers else "local workers (one per CPU)")
    log.info("experiment %s: %d scenarios x %d seeds = %d runs on %s; results in %s", experiment.name,
             len(experiment.scenarios()), len(experiment.seeds), plan_size, where, out)
    finished = [0]

    def announce(result: dict) -> None:
        finished[0] += 1
        savings = result["kpis"].get("savings")
        log.info("run %s done (%s, seed %d) in %.1f s: savings %s", result["run_id"], _label(result["scenario"]),
                 result["seed"], result["seconds"], "n/a" if savings is None else f"{savings:.2f}")

    plan, progress = run_experiment(experiment, out, args.workers, args.cluster, announce)
    summary = write_outputs(experiment, plan, load_results(out, plan), out)
    print(f"{progress.planned} runs: {progress.ran} run now, {progress.done_before} from before, {progress.failed} failed")
    print(_headline(summary, experiment.scenario_keys))
    print(f"results in {out}/results.csv, summary.csv, plots/, report.json")
    if progress.failed:
        print(f"{progress.failed} run(s) failed: see {out}/runs/*.error.json; run the command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def _headline(summary, keys: list[str]) -> str:
    """Savings per scenario: mean and 95 % interval over the seeds."""
    lines = []
    for name in ("savings", "savings_percent"):
        rows = summary[summary["kpi"] == name]
        for _, row in rows.iterrows():
            interval = "" if row["n"] < 2 else f" [{row['ci95_low']:.2f}, {row['ci95_high']:.2f}]"
            lines.append(f"  {name:<16} {_label({k: row[k] for k in keys}):<60} {row['mean']:>9.2f}{interval} (n={row['n']})")
    return "\n".join(lines)


def _label(scenario: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in scenario.items())
