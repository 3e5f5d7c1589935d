"""Scenario throughput of `gridledger experiment`: runs per hour of 100 homes x 7 days.

For each worker count W, runs an experiment of W seeds of one scenario (default: the
community mechanism, 100 homes, 7 days of 15-minute intervals = 672 settled intervals
per run) with W local workers through node.research.runs, the code the command runs,
and prints runs per hour = W x 3600 / wall seconds, with the seconds of each run.
Runs are independent, so on a machine with enough cores runs per hour grow with W
until memory or cores run out; a Dask cluster (--cluster) adds machines.
Run: .venv/bin/python bench/bench_experiment.py [--homes 100] [--days 7] [--workers 1,2]
     [--mechanism community|auction_uniform|auction_pay_as_bid|baseline]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from node.research.experiment import load_experiment
from node.research.runs import load_results, run_experiment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, default=100)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma separated")
    parser.add_argument("--mechanism", default="community")
    args = parser.parse_args()
    print(f"{args.homes} homes x {args.days} days, {args.mechanism}"
          + ("" if args.days == 7 else f" (runs/hour of 7 days projected: x {args.days}/7, as settling is per interval)"))
    print(f"{'workers':>7} {'runs':>5} {'wall s':>8} {'runs/hour':>10} {'7-day runs/hour':>16}  seconds per run")
    for count in (int(w) for w in args.workers.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.toml"
            path.write_text(f"[experiment]\nname = 'bench'\nseeds = {count}\n[base]\ncommunity.homes = {args.homes}\n"
                            f"community.days = {args.days}\n[grid]\nmechanism = ['{args.mechanism}']\n")
            experiment = load_experiment(path)
            started = time.perf_counter()
            plan, progress = run_experiment(experiment, Path(tmp) / "out", count)
            wall = time.perf_counter() - started
            if progress.failed:
                raise SystemExit(f"{progress.failed} run(s) failed: see {tmp}/out/runs/*.error.json")
            seconds = [r["seconds"] for r in load_results(Path(tmp) / "out", plan)]
        rate = count * 3600 / wall
        print(f"{count:>7} {len(plan):>5} {wall:>8.0f} {rate:>10.1f} {rate * args.days / 7:>16.2f}  "
              + ", ".join(f"{s:.0f}" for s in seconds))


if __name__ == "__main__":
    main()
