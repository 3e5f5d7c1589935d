"""Clearing time of the double auction versus order-book size.

Random books around the tariffs (half buys, half sells, 1..5000 Wh, limits spread
from below the sell tariff to above the buy tariff, a tenth of the participants on
both sides so netting runs too). Each size is cleared with both pricings; the table
shows the best and the median of several runs, garbage collector on; on a
shared machine the best is the reproducible figure (us/order uses it).

    .venv/bin/python bench/bench_auction.py            # 100, 1k, 10k orders
    .venv/bin/python bench/bench_auction.py --sizes 100000
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

from optimizer.auction import AuctionOrder, Side, clear_auction  # noqa: E402

BUY_TARIFF, SELL_TARIFF = 300_000, 60_000  # units per kWh


def random_book(size: int, seed: int = 0) -> list[AuctionOrder]:
    rng = random.Random(seed)
    participants = max(2, size * 9 // 10)
    return [
        AuctionOrder(
            order_id=f"{k:08d}",
            participant=rng.randint(1, participants),
            side=Side.BUY if k % 2 else Side.SELL,
            energy_wh=rng.randint(1, 5000),
            limit_price=rng.randint(SELL_TARIFF - 40_000, BUY_TARIFF + 40_000),
        )
        for k in range(size)
    ]


def bench(size: int, pricing: str, runs: int) -> dict:
    book = random_book(size)
    times = []
    result = None
    for _ in range(runs):
        # GC stays on (the oracle runs with it), but each run starts from a clean heap
        # and without the previous result alive, so runs do not pay for each other.
        del result
        gc.collect()
        t0 = time.perf_counter()
        result = clear_auction(book, BUY_TARIFF, SELL_TARIFF, pricing)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
    return {
        "orders": size,
        "pricing": pricing,
        "best_ms": 1e3 * min(times),
        "median_ms": 1e3 * statistics.median(times),
        "trades": len(result.trades),
        "volume_kwh": result.volume_wh / 1000,
        "type": result.clearing_type.value,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)

    header = (
        f"{'orders':>8} {'pricing':>10} {'best ms':>8} {'median ms':>10} "
        f"{'us/order':>9} {'trades':>7} {'kWh':>9} {'type':>7}"
    )
    print(header)
    print("-" * len(header))
    for size in args.sizes:
        for pricing in ("uniform", "pay_as_bid"):
            r = bench(size, pricing, args.runs)
            print(
                f"{r['orders']:>8} {r['pricing']:>10} {r['best_ms']:>8.2f} {r['median_ms']:>10.2f} "
                f"{1e3 * r['best_ms'] / r['orders']:>9.2f} {r['trades']:>7} {r['volume_kwh']:>9.1f} {r['type']:>7}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
