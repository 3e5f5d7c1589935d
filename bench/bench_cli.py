"""How fast the `gridledger` command answers: start-up, help, reading the index, bad input.

Each figure is the median wall time of a few runs of the real command in a fresh
process (python -m node.cli), printed against its target (issue 8):

    --help and every COMMAND --help          <= 1.0 s
    status / balances / trades, 100 homes    <= 1.5 s
    a bad data file rejected                 before cvxpy or web3 is imported (and its time)

    .venv/bin/python bench/bench_cli.py                 # builds a 100-home, 1-day state first
    .venv/bin/python bench/bench_cli.py --state DIR     # reuse a settled state directory
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELP_TARGET_S = 1.0
READ_TARGET_S = 1.5
COMMANDS = ("demo", "simulate", "serve", "generate", "status", "balances", "trades", "audit", "index", "account",
            "order", "mandate", "admin", "experiment", "node", "build")


def timed(args: list[str], runs: int, expect: int = 0) -> float:
    """Median wall seconds of `gridledger *args` in a fresh process."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "node.cli", *args], cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if done.returncode != expect:
            raise SystemExit(f"gridledger {' '.join(args)} exited {done.returncode}, expected {expect}:\n{done.stderr}")
    return statistics.median(times)


def row(label: str, seconds: float, target: float) -> None:
    verdict = "ok" if seconds <= target else "OVER"
    print(f"{label:<44} {seconds:6.2f} s   target <= {target:.1f} s   {verdict}")


def heavy_modules_loaded_by_bad_file(bad: Path) -> str:
    """The heavy libraries loaded by the time a bad data file is rejected."""
    code = ("import sys; from node.cli.main import main; code = main(['-q', 'simulate', '--data', sys.argv[1], "
            "'--state', sys.argv[2], '--no-progress']); "
            "print(' '.join(m for m in ('cvxpy', 'web3', 'eth_tester') if m in sys.modules)); sys.exit(code)")
    with tempfile.TemporaryDirectory() as state:
        done = subprocess.run([sys.executable, "-c", code, str(bad), str(Path(state) / "s")], cwd=REPO,
                              capture_output=True, text=True)
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, help="a settled state directory (default: settle 100 homes x 1 day)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (default: %(default)s)")
    args = parser.parse_args()

    print(f"gridledger command latency (median of {args.runs} fresh processes)\n")
    row("gridledger --help", timed(["--help"], args.runs), HELP_TARGET_S)
    worst = max(((c, timed([c, "--help"], args.runs)) for c in COMMANDS), key=lambda item: item[1])
    row(f"slowest COMMAND --help ({worst[0]})", worst[1], HELP_TARGET_S)

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        bad = scratch / "bad.csv"
        bad.write_text("timestamp,participant,consumption_kwh,production_kwh\n2026-06-01T00:00:00+00:00,a,x,0\n")
        row("bad data file rejected", timed(["-q", "simulate", "--data", str(bad), "--state", str(scratch / "s"),
                                             "--no-progress"], args.runs, expect=2), HELP_TARGET_S)
        loaded = heavy_modules_loaded_by_bad_file(bad)
        print(f"{'  heavy libraries loaded before rejecting it':<44} {loaded or 'none'}")

        state = args.state
        if state is None:
            state = scratch / "state"
            print("\nsettling 100 homes x 1 day for the read figures ...", flush=True)
            subprocess.run([sys.executable, "-m", "node.cli", "-q", "simulate", "--homes", "100", "--days", "1",
                            "--state", str(state), "--no-progress"], cwd=REPO, check=True, capture_output=True)
        for command in (["status"], ["balances"], ["trades", "--limit", "1000"]):
            row(f"gridledger {' '.join(command)} (100 homes)", timed([*command, "--state", str(state)], args.runs),
                READ_TARGET_S)


if __name__ == "__main__":
    main()
