"""Clearing time of the community model versus community size and horizon.

For each size, a synthetic community (30 % of homes with a battery, PV on half
the roofs, morning/evening load peaks) runs a short rolling horizon: the first
clearing builds the model and canonicalises it; the following ones only set
parameters and re-solve. The project's target is 1000 homes x 96 steps in at
most 3 s on the 2-core reference machine.

    .venv/bin/python bench/bench_clearing.py            # full table
    .venv/bin/python bench/bench_clearing.py --quick    # small sizes only
    .venv/bin/python bench/bench_clearing.py --solvers  # also compare solvers at the largest size
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizer import Batteries, ClearingInputs, CommunityModel  # noqa: E402
from optimizer import community  # noqa: E402

TARGET_SECONDS = 3.0
TARGET_SHAPE = (1000, 96)
BATTERY_SHARE = 0.3


def synthetic_community(homes: int, steps: int, seed: int = 0) -> tuple[ClearingInputs, dict]:
    """Two days of data at ``steps`` per day; returns day-one inputs and the full series."""
    rng = np.random.default_rng(seed)
    hours_per_step = 24.0 / steps
    hour = (np.arange(2 * steps) * hours_per_step) % 24
    daily = 0.25 + 0.6 * np.exp(-((hour - 7.5) / 1.5) ** 2) + 1.0 * np.exp(-((hour - 19) / 2.0) ** 2)
    load_kw = daily * rng.uniform(0.6, 1.6, (homes, 1)) * rng.lognormal(0, 0.3, (homes, hour.size))
    sun = np.clip(np.sin((hour - 6) / 14 * np.pi), 0, None) ** 1.5
    kwp = rng.uniform(3, 8, (homes, 1)) * (rng.random((homes, 1)) < 0.5)
    clouds = np.clip(rng.normal(0.85, 0.15, (1, hour.size)), 0.2, 1.0)
    pv_kw = kwp * sun * clouds
    buy = np.where((hour >= 17) & (hour < 21), 0.38, np.where(hour < 6, 0.22, 0.30))
    sell = np.full(hour.size, 0.07)

    with_battery = np.sort(rng.choice(homes, int(round(BATTERY_SHARE * homes)), replace=False))
    B = with_battery.size
    capacity = rng.choice([5.0, 10.0, 13.5], B)
    power_kw = rng.choice([3.0, 5.0], B)
    batteries = Batteries(
        home=with_battery.astype(np.int64),
        capacity_kwh=capacity,
        max_charge_kwh=power_kw * hours_per_step,
        max_discharge_kwh=power_kw * hours_per_step,
        charge_efficiency=np.full(B, 0.95),
        discharge_efficiency=np.full(B, 0.95),
        soc_kwh=0.5 * capacity,
        min_soc_kwh=0.1 * capacity,
    )
    cap_kwh = 0.5 * homes * hours_per_step  # a feeder that binds at the evening peak
    series = {
        "load": load_kw * hours_per_step,
        "pv": pv_kw * hours_per_step,
        "buy": buy,
        "sell": sell,
        "cap": np.full(hour.size, cap_kwh),
    }
    return window(series, batteries, 0, steps), series


def window(series: dict, batteries: Batteries, start: int, steps: int) -> ClearingInputs:
    s = slice(start, start + steps)
    return ClearingInputs(
        load_kwh=series["load"][:, s],
        pv_kwh=series["pv"][:, s],
        buy_price_per_kwh=series["buy"][s],
        sell_price_per_kwh=series["sell"][s],
        import_capacity_kwh=series["cap"][s],
        export_capacity_kwh=series["cap"][s],
        p2p_cost_per_kwh=0.01,
        batteries=batteries,
    )


def bench_size(homes: int, steps: int, resolves: int) -> dict:
    """Time the first clearing (build + canonicalise + solve) and rolling re-solves."""
    inputs, series = synthetic_community(homes, steps)
    t0 = time.perf_counter()
    model = CommunityModel(homes, steps, inputs.batteries)
    result = model.clear(inputs, capacity_margin_kwh=homes * 1e-3)
    build = time.perf_counter() - t0

    times, cpu_times, solver_times = [], [], []
    batteries = inputs.batteries
    for start in range(1, resolves + 1):
        batteries = dataclasses.replace(batteries, soc_kwh=result.soc_path_kwh[:, 1])
        step_inputs = window(series, batteries, start, steps)
        t0, c0 = time.perf_counter(), time.process_time()
        result = model.clear(step_inputs, capacity_margin_kwh=homes * 1e-3)
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
        solver_times.append(model.problem.solver_stats.solve_time or float("nan"))
        assert result.status == "optimal", result.status
    return {
        "homes": homes,
        "steps": steps,
        "batteries": batteries.count,
        "variables": sum(v.size for v in model.problem.variables()),
        "build": build,
        "resolve": statistics.median(times),
        "cpu": statistics.median(cpu_times),
        "solver": statistics.median(solver_times),
    }


def print_table(rows: list[dict]) -> None:
    """build: first clearing incl. canonicalisation; resolve/cpu: median wall/CPU
    seconds of a rolling re-solve (CPU time shows what an unloaded machine would
    see when other processes share the cores); solver: the solver's own time."""
    header = (
        f"{'homes':>6} {'steps':>5} {'batt':>5} {'vars':>7} {'build s':>8} "
        f"{'resolve s':>9} {'cpu s':>7} {'solver s':>8} {'/3s':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = r["resolve"] / TARGET_SECONDS
        print(
            f"{r['homes']:>6} {r['steps']:>5} {r['batteries']:>5} {r['variables']:>7} "
            f"{r['build']:>8.3f} {r['resolve']:>9.3f} {r['cpu']:>7.3f} {r['solver']:>8.3f} {ratio:>6.2f}"
        )


SOLVER_VARIANTS = {
    "CLARABEL qdldl, no refinement": (
        "CLARABEL",
        {"direct_solve_method": "qdldl", "iterative_refinement_enable": False},
    ),
    "CLARABEL qdldl (defaults)": ("CLARABEL", {"direct_solve_method": "qdldl"}),
    "CLARABEL faer, no refinement": (
        "CLARABEL",
        {"direct_solve_method": "faer", "iterative_refinement_enable": False},
    ),
    "HIGHS ipm + crossover": ("HIGHS", {"highs_options": {"solver": "ipm"}}),
    "HIGHS ipm, no crossover": ("HIGHS", {"highs_options": {"solver": "ipm", "run_crossover": "off"}}),
    "HIGHS dual simplex": ("HIGHS", {"highs_options": {"solver": "simplex"}}),
}


def compare_solvers(homes: int, steps: int) -> None:
    """Re-solve the same clearing with each solver variant; time and check agreement."""
    inputs, _ = synthetic_community(homes, steps)
    model = CommunityModel(homes, steps, inputs.batteries)
    saved = community.SOLVER_ATTEMPTS
    print(f"\nsolvers at {homes} homes x {steps} steps (re-solve, median of 3)")
    print(f"{'variant':<30} {'wall s':>8} {'cpu s':>8} {'objective':>16} {'price':>8}")
    try:
        for name, (solver, options) in SOLVER_VARIANTS.items():
            community.SOLVER_ATTEMPTS = ((solver, options),)
            model.clear(inputs)  # first solve per solver also canonicalises for it
            runs, cpu = [], []
            for _ in range(3):
                t0, c0 = time.perf_counter(), time.process_time()
                result = model.clear(inputs)
                runs.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            print(
                f"{name:<30} {statistics.median(runs):>8.3f} {statistics.median(cpu):>8.3f} "
                f"{result.objective:>16.6f} {result.p2p_price_per_kwh:>8.4f}"
            )
    finally:
        community.SOLVER_ATTEMPTS = saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only 10 and 100 homes x 24 steps")
    parser.add_argument("--resolves", type=int, default=5, help="rolling re-solves per size")
    parser.add_argument("--solvers", action="store_true", help="compare solvers at the largest size")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")

    sizes = [(10, 24), (100, 24)] if args.quick else [(n, t) for n in (10, 100, 1000) for t in (24, 96)]
    rows = []
    for homes, steps in sizes:
        rows.append(bench_size(homes, steps, args.resolves))
    print_table(rows)
    target = [r for r in rows if (r["homes"], r["steps"]) == TARGET_SHAPE]
    if target:
        r = target[0]
        verdict = "meets" if r["resolve"] <= TARGET_SECONDS else "MISSES"
        print(f"\n{TARGET_SHAPE[0]}x{TARGET_SHAPE[1]}: re-solve {r['resolve']:.2f} s = "
              f"{r['resolve'] / TARGET_SECONDS:.2f} x the {TARGET_SECONDS:.0f} s target ({verdict}); "
              f"first clearing incl. build {r['build']:.2f} s")
    if args.solvers:
        compare_solvers(*sizes[-1])
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
