"""Running an experiment: each run through the real pipeline in a worker, each result
kept as it arrives, so an interrupted experiment resumes where it stopped.

A run is a simulation (node.simulation.replay.simulate) of its synthetic community on a
fresh embedded chain in a temporary directory: the same contracts, oracle, clearing and
settlement as `gridledger simulate`; auction runs with the homes' tariff bidders
(node.simulation.bidders). A "baseline" run settles nothing: its KPIs are the
baseline's. Results go to ``OUT/runs/<run id>.json`` (written whole, then renamed);
a run whose file exists is not run again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from node.errors import GridLedgerError, InputError
from node.parallel import local_cpus, workers
from node.research.experiment import Experiment, RunSpec

log = logging.getLogger("gridledger.experiment")

MARKER = "gridledger-experiment.json"


@dataclass
class Progress:
    planned: int
    done_before: int
    ran: int = 0
    failed: int = 0


def run_one(run: RunSpec) -> dict:
    """One run, start to end; returns its KPIs (node.metrics Evaluation.flat), the
    record that reproduces it and how long it took. Top level, so workers can import it."""
    from node.data.config import config_from_mapping
    from node.data.synthetic import generate_community

    started = time.perf_counter()
    config = config_from_mapping(run.config)
    community = generate_community(config)
    intensity = None if run.intensity is None else np.asarray(run.intensity, dtype=float)
    if run.mechanism == "baseline":
        evaluation, record = _baseline_only(community, config, intensity)
    else:
        evaluation, record = _simulated(community, config, run.mechanism, intensity)
    return {"run_id": run.run_id, "scenario": run.scenario, "seed": run.seed, "mechanism": run.mechanism,
            "kpis": _plain(evaluation.flat()), "record": record, "seconds": time.perf_counter() - started}


def _simulated(community, config, mechanism: str, intensity):
    from node.chain.connection import Chain
    from node.simulation.bidders import tariff_bidders
    from node.simulation.day_ahead import replay_genesis
    from node.simulation.replay import simulate
    from node.simulation.state import StatePaths

    genesis = replay_genesis(community, config)
    with tempfile.TemporaryDirectory(prefix="gridledger-run-") as tmp, Chain.embedded(None, genesis) as chain:
        result = simulate(chain, community, config, StatePaths(Path(tmp)), progress=False, clear_ahead=False,
                          agents=tariff_bidders if mechanism.startswith("auction") else None,
                          intensity_g_per_kwh=intensity)
        result.index.close()
    return result.evaluation, result.record


def _baseline_only(community, config, intensity):
    from dataclasses import replace

    from node.metrics.kpis import evaluate, storage_value_per_kwh
    from node.oracle.inputs_builder import InputsBuilder
    from node.simulation.flows import baseline_flows, run_baseline_of
    from node.simulation.record import run_record

    builder = InputsBuilder(community, config, np.arange(1, len(community.homes) + 1))
    flows = baseline_flows(builder, run_baseline_of(builder))
    if intensity is not None:
        flows = replace(flows, intensity_g_per_kwh=intensity)
    sell = config.tariffs.sell_price(community.timestamps)
    value = storage_value_per_kwh(sell, config.batteries.discharge_efficiency)
    record = run_record(config, community, {"chain": None, "market": None}, mechanism="baseline")
    return evaluate(flows, flows, value, config.market.currency), record


def claim_output(out: Path, experiment: Experiment) -> None:
    """Makes `out` this experiment's output directory: new, empty, or one an experiment
    wrote before (its runs are reused where their ids match). Anything else is refused."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: give a directory for the experiment's results")
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        raise InputError(f"--out {out} is not empty and holds no experiment ({MARKER} is missing): GridLedger "
                         "deletes nothing it did not make; give a new or empty directory")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps({"experiment": experiment.name, "file": str(experiment.path)}, indent=2) + "\n")


def run_experiment(experiment: Experiment, out: Path, count: int | None = None, cluster: str | None = None,
                   on_result: Callable[[dict], None] | None = None) -> tuple[list[RunSpec], Progress]:
    """Runs every planned run without a result in `out`, `count` local workers at a time
    (default: one per CPU) or on the Dask `cluster`; returns the plan and what happened.
    A failed run is logged and kept in ``runs/<id>.error.json``; the others go on."""
    plan = experiment.plan()  # checks every config before anything runs
    claim_output(out, experiment)
    pending = [r for r in plan if not _result_path(out, r).exists()]
    progress = Progress(planned=len(plan), done_before=len(plan) - len(pending))
    if not pending:
        return plan, progress
    count = min(count or local_cpus(), len(pending)) if cluster is None else None
    with workers(count, cluster) as pool:
        futures = {pool.submit(run_one, r): r for r in pending}
        for future in as_completed(futures):
            run = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # a worker's failure, reported and kept; the others go on
                progress.failed += 1
                _write(out / "runs" / f"{run.run_id}.error.json", {"run": asdict(run), "error": f"{type(exc).__name__}: {exc}",
                                                                    "traceback": traceback.format_exception(exc)})
                log.error("run %s (%s, seed %d) failed: %s", run.run_id, run.scenario, run.seed, exc)
                continue
            _write(_result_path(out, run), result)
            (out / "runs" / f"{run.run_id}.error.json").unlink(missing_ok=True)
            progress.ran += 1
            if on_result is not None:
                on_result(result)
    return plan, progress


def load_results(out: Path, plan: list[RunSpec]) -> list[dict]:
    """The stored result of every run of `plan` that has one, in plan order."""
    results = []
    for run in plan:
        path = _result_path(out, run)
        if path.exists():
            try:
                results.append(json.loads(path.read_text()))
            except ValueError as exc:
                raise GridLedgerError(f"{path} is not a run result ({exc}): delete it to run it again") from None
    return results


def _result_path(out: Path, run: RunSpec) -> Path:
    return out / "runs" / f"{run.run_id}.json"


def _write(path: Path, document: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(document, indent=1, default=str) + "\n")
    os.replace(tmp, path)


def _plain(values: dict) -> dict:
    """KPIs for JSON: NaN as None."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in values.items()}
