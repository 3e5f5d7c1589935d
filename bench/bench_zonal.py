"""Zonal clearing time (optimizer.zonal.clear_zonal) on a random meshed network.

The default case is the one issue 11 names: 100 zones, 200 lines, 1,000 offers. Zones
lie on a ring (so the network is connected) with random chords; loads of 50-150 MW;
ten offer tranches per generator, 100 generators; some of the tighter lines
bind, so prices differ. Each run builds and solves the model from scratch,
as one classroom round or one interval does. Printed: best and median of the runs
against the target, and how many lines bound.

    .venv/bin/python bench/bench_zonal.py
    .venv/bin/python bench/bench_zonal.py --zones 300 --lines 600 --offers 3000
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizer.zonal import clear_zonal  # noqa: E402

TARGET_S = 0.25  # a classroom round should feel instant; an interval has minutes


def random_case(zones: int, lines: int, offers: int, seed: int = 0) -> dict:
    rng = random.Random(seed)
    names = [f"z{i:03d}" for i in range(zones)]
    pairs = [(i, (i + 1) % zones) for i in range(zones)]
    while len(pairs) < lines:
        a, b = rng.sample(range(zones), 2)
        pairs.append((a, b))
    zone_rows = [{"name": z, "load_mw": rng.uniform(50, 150)} for z in names]
    total = sum(z["load_mw"] for z in zone_rows)
    line_rows = [{"name": f"l{k:03d}", "zone_from": names[a], "zone_to": names[b],
                  "susceptance": rng.uniform(5, 100), "capacity_mw": rng.choice([60, 200, 400, 400, 1000, 1000])}
                 for k, (a, b) in enumerate(pairs[:lines])]
    tranches = 10
    generators = max(1, offers // tranches)
    # Enough supply (1.6 x the load) that every case is feasible.
    per_tranche = 1.6 * total / (generators * tranches)
    offer_rows = []
    for g in range(generators):
        zone = rng.choice(names)
        base = rng.uniform(10, 60)
        for t in range(tranches):
            if len(offer_rows) < offers:
                offer_rows.append({"generator": f"g{g:03d}", "zone": zone, "tranche": f"t{t}",
                                   "quantity_mw": per_tranche, "price_per_mwh": round(base + 3 * t + rng.random(), 2)})
    return {"zones": zone_rows, "lines": line_rows, "offers": offer_rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zones", type=int, default=100)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--offers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    case = random_case(args.zones, args.lines, args.offers)
    clear_zonal(**case)  # the first call pays for importing cvxpy and HiGHS
    times, result = [], None
    for _ in range(args.runs):
        del result
        gc.collect()
        t0 = time.perf_counter()
        result = clear_zonal(**case)
        times.append(time.perf_counter() - t0)
    best, median = min(times), statistics.median(times)
    prices = result.lmp.values()
    print(f"zonal clearing, {args.zones} zones, {args.lines} lines, {args.offers} offers (HiGHS, {args.runs} runs)")
    print(f"  best {best:.3f} s, median {median:.3f} s  (target < {TARGET_S:.2f} s: {'ok' if best < TARGET_S else 'MISSED'})")
    print(f"  {len(result.binding_lines)} binding lines, prices {min(prices):.2f}..{max(prices):.2f} per MWh, "
          f"congestion rent {result.congestion_rent:,.0f} per hour")
    return 0 if best < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
