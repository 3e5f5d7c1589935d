"""`gridledger experiment`: a grid of scenarios x seeds, each through the real pipeline in
worker processes, one tidy table with 95 % intervals, plots and a reproducible report;
resumable, and every config checked before anything runs."""

from __future__ import annotations

import contextlib
import io
import json

import pandas as pd
import pytest

from node.cli.main import main
from node.errors import InputError
from node.research import runs as runs_module
from node.research.experiment import load_experiment

TINY_BASE = """
[base]
market.interval_minutes = 240
market.horizon_steps = 6
community.homes = 3
community.pv_share = 0.67
community.battery_share = 0.34
"""


def write(directory, text: str, name: str = "experiment.toml"):
    path = directory / name
    path.write_text(text)
    return path


def run_cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["-q", "experiment", *args])
    return code, out.getvalue()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    directory = tmp_path_factory.mktemp("experiment")
    path = write(directory, '[experiment]\nname = "tiny"\nseeds = [1, 2]\n' + TINY_BASE +
                 '[grid]\nmechanism = ["community", "auction_uniform", "baseline"]\n')
    out = directory / "out"
    code, printed = run_cli(str(path), "--out", str(out), "--workers", "2")
    assert code == 0, printed
    return path, out, printed


def test_every_scenario_runs_once_per_seed_into_one_tidy_table(experiment):
    _, out, printed = experiment
    table = pd.read_csv(out / "results.csv")
    assert list(table["mechanism"]) == ["community"] * 2 + ["auction_uniform"] * 2 + ["baseline"] * 2
    assert list(table["seed"]) == [1, 2] * 3
    assert table["run_id"].is_unique
    assert {"savings", "savings_percent", "self_sufficiency", "baseline_curtailed_kwh", "savings_gini"} <= set(table.columns)
    assert pd.read_parquet(out / "results.parquet").equals(table)
    baseline = table[table["mechanism"] == "baseline"]
    assert (baseline["savings"] == 0).all() and (baseline["p2p_kwh"] == 0).all()
    assert (table[table["mechanism"] != "baseline"]["p2p_kwh"] > 0).all(), "the markets trade between neighbours"
    assert "6 runs: 6 run now, 0 from before, 0 failed" in printed


def test_each_market_run_settled_on_its_own_chain_and_is_recorded(experiment):
    _, out, _ = experiment
    report = json.loads((out / "report.json").read_text())
    assert report["planned"] == report["done"] == 6
    markets = [r["market"] for r in report["runs"] if r["scenario"]["mechanism"] != "baseline"]
    assert all(m and m.startswith("0x") for m in markets)
    assert {"cvxpy", "numpy", "python"} <= set(report["versions"])
    assert report["file_text"].startswith("[experiment]")
    seeds = {r["seed"]: r["data_sha256"] for r in report["runs"] if r["scenario"]["mechanism"] == "community"}
    assert seeds[1] != seeds[2], "each seed is another community"


def test_summary_gives_the_mean_and_95_percent_interval_over_seeds(experiment):
    _, out, _ = experiment
    table = pd.read_csv(out / "results.csv")
    summary = pd.read_csv(out / "summary.csv")
    row = summary[(summary["mechanism"] == "community") & (summary["kpi"] == "savings")].iloc[0]
    x = table[table["mechanism"] == "community"]["savings"]
    assert row["n"] == 2 and row["mean"] == pytest.approx(x.mean())
    # Student's t with one degree of freedom: 12.706 standard errors each side.
    assert row["ci95_high"] - row["mean"] == pytest.approx(12.7062 * x.std(ddof=1) / 2 ** 0.5, rel=1e-4)
    assert (out / "plots" / "savings.png").stat().st_size > 0


def test_a_resumed_experiment_reruns_only_the_missing_run_and_gets_the_same_numbers(experiment):
    path, out, _ = experiment
    before = (out / "results.csv").read_bytes()
    table = pd.read_csv(out / "results.csv")
    lost = table[table["mechanism"] == "auction_uniform"]["run_id"].iloc[1]
    (out / "runs" / f"{lost}.json").unlink()
    code, printed = run_cli(str(path), "--out", str(out), "--workers", "1")
    assert code == 0
    assert "6 runs: 1 run now, 5 from before, 0 failed" in printed
    assert (out / "results.csv").read_bytes() == before, "re-running a run gives identical numbers"


def test_the_grid_takes_any_config_key_and_seeds_set_the_community_seed(tmp_path):
    path = write(tmp_path, "[experiment]\nseeds = 2\n" + TINY_BASE +
                 "[grid]\nmechanism = ['community']\ncommunity.battery_share = [0.0, 0.34]\ntariffs.buy_per_kwh = [0.3]\n")
    experiment = load_experiment(path)
    plan = experiment.plan()
    assert [(r.scenario["community.battery_share"], r.seed) for r in plan] == [(0.0, 1), (0.0, 2), (0.34, 1), (0.34, 2)]
    assert [r.config["community"]["seed"] for r in plan] == [1, 2, 1, 2]
    assert plan[2].config["community"]["battery_share"] == 0.34 and plan[0].config["community"]["homes"] == 3
    assert len({r.run_id for r in plan}) == 4
    again = load_experiment(path).plan()
    assert [r.run_id for r in again] == [r.run_id for r in plan], "run ids are stable"


@pytest.mark.parametrize("grid, problem", [
    ("mechanism = ['community']\ncommunity.batery_share = [0.1]", "community.batery_share: not a config key"),
    ("mechanism = ['community']\ncommunity.battery_share = [0.9]", "battery_share"),
    ("mechanism = ['double_auction']", "'double_auction' is not one of"),
    ("mechanism = []", "must be a non-empty list"),
    ("market.mechanism = ['auction']", "choose the market with grid.mechanism"),
])
def test_a_bad_experiment_is_refused_before_anything_runs(tmp_path, grid, problem):
    path = write(tmp_path, "[experiment]\nseeds = 1\n" + TINY_BASE + "[grid]\n" + grid + "\n")
    out = tmp_path / "out"
    with pytest.raises(InputError, match=problem) as caught:
        load_experiment(path).plan()
    assert str(path) in str(caught.value)
    code, _ = run_cli(str(path), "--out", str(out))
    assert code == 2 and not out.exists()


def test_a_directory_that_is_not_an_experiments_is_refused(tmp_path):
    path = write(tmp_path, "[experiment]\nseeds = 1\n" + TINY_BASE + "[grid]\nmechanism = ['baseline']\n")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, _ = run_cli(str(path), "--out", str(out))
    assert code == 2 and (out / "notes.txt").read_text() == "keep me" and not (out / "runs").exists()


def test_a_failed_run_is_kept_with_its_error_and_the_others_finish(tmp_path, monkeypatch):
    path = write(tmp_path, "[experiment]\nseeds = [1, 2]\n" + TINY_BASE + "[grid]\nmechanism = ['baseline']\n")
    real = runs_module.run_one

    def flaky(run):
        if run.seed == 2:
            raise RuntimeError("the solver crashed")
        return real(run)

    monkeypatch.setattr(runs_module, "run_one", flaky)  # one worker: runs in this process
    out = tmp_path / "out"
    code, printed = run_cli(str(path), "--out", str(out), "--workers", "1")
    assert code == 1 and "1 failed" in printed
    errors = list((out / "runs").glob("*.error.json"))
    assert len(errors) == 1 and "the solver crashed" in errors[0].read_text()
    assert len(pd.read_csv(out / "results.csv")) == 1
    monkeypatch.setattr(runs_module, "run_one", real)
    code, printed = run_cli(str(path), "--out", str(out), "--workers", "1")
    assert code == 0 and "1 run now, 1 from before" in printed and not list((out / "runs").glob("*.error.json"))


def test_a_dask_cluster_runs_the_same_run_to_the_same_numbers(experiment, tmp_path, dask_cluster):
    _, out, _ = experiment
    path = write(tmp_path, "[experiment]\nseeds = [1]\n" + TINY_BASE + "[grid]\nmechanism = ['auction_uniform']\n")
    code, printed = run_cli(str(path), "--out", str(tmp_path / "out"), "--cluster", dask_cluster)
    assert code == 0, printed
    remote = pd.read_csv(tmp_path / "out" / "results.csv")
    local = pd.read_csv(out / "results.csv").set_index("run_id")
    assert len(remote) == 1
    row = remote.iloc[0]
    assert row["run_id"] in local.index, "the same scenario and seed is the same run"
    pd.testing.assert_series_equal(row.drop(["run_id"]), local.loc[row["run_id"]], check_names=False)
