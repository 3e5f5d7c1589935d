"""Audit throughput against worker count, and what a month of 100 homes needs.

Settles a community (default 100 homes, one day = 96 intervals) on the embedded chain,
then audits it with the re-clearing on 1, 2, ... local worker processes
(node.audit.parallel), printing intervals per second for each. It also times the
auditor's own per-interval work (chain reads, authorisations, terms: what stays in
one process) by auditing with the verdicts already computed, and projects the workers
a month (2,880 intervals) needs to be audited within the goal of 2 minutes:

    workers >= re-clearing time per interval / (120 s / 2,880 - own time per interval)

On the embedded chain, reading the chain's logs and transactions is most of the
auditor's own work (eth-tester scans blocks per call); --anvil settles and audits on a
local anvil node, as a production audit reads a real node.
Run: .venv/bin/python bench/bench_audit_workers.py [--homes 100] [--days 1] [--workers 1,2,4] [--anvil]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from node.audit.parallel import reruns_on
from node.audit.verify import IndexInputs, audit
from node.chain.connection import Chain
from node.chain.market import Deployment, Market
from node.data.config import default_config
from node.data.synthetic import generate_community
from node.index.store import Index
from node.parallel import workers
from node.simulation.replay import simulate
from node.simulation.state import StatePaths

MONTH_INTERVALS = 2880
GOAL_S = 120


def open_chain(state: Path, rpc: str | None) -> Chain:
    return Chain.embedded(state) if rpc is None else Chain.connect(rpc)


def settle(state: Path, homes: int, days: int, rpc: str | None) -> None:
    config = default_config()
    config = replace(config, community=replace(config.community, homes=homes, days=days))
    with open_chain(state, rpc) as chain:
        simulate(chain, generate_community(config), config, StatePaths(state), progress=True).index.close()


def timed_audit(state: Path, rpc: str | None, reruns=None) -> tuple[float, list]:
    with open_chain(state, rpc) as chain:
        index = Index(state / "index.sqlite")
        market = Market(chain, Deployment.load(state / "deployment.json"))
        started = time.perf_counter()
        verdicts = audit(market, IndexInputs(index), progress=False, **({} if reruns is None else {"reruns": reruns}))
        seconds = time.perf_counter() - started
        index.close()
    if not all(v.ok for v in verdicts):
        raise SystemExit("the audit failed an interval: " + str([v.reasons for v in verdicts if not v.ok][:1]))
    return seconds, verdicts


def _warm(_: int) -> None:
    import node.audit.parallel  # noqa: F401  (cvxpy and the clearing, loaded once per worker)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, default=100)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--workers", default="1,2,4", help="worker counts, comma separated")
    parser.add_argument("--anvil", action="store_true", help="settle and audit on a local anvil node")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        state, rpc = Path(tmp), None
        if args.anvil:
            from node.chain.anvil import start_anvil

            rpc = stack.enter_context(start_anvil(None)).url
        print(f"settling {args.homes} homes x {args.days} day(s) on {'anvil' if rpc else 'the embedded chain'}...")
        settle(state, args.homes, args.days, rpc)
        serial, verdicts = timed_audit(state, rpc)
        n = len(verdicts)
        # The auditor's own work: the same audit with every re-clearing already done.
        own, _ = timed_audit(state, rpc, lambda settled, *_: iter(verdicts))
        print(f"{n} intervals of {args.homes} homes; in one process {n / serial:.2f} intervals/s; the auditor's own "
              f"work (chain reads, authorisations) {own / n * 1000:.0f} ms per interval")
        print(f"{'workers':>7} {'intervals/s':>12} {'month of 2,880':>15}  goal {GOAL_S} s")
        for count in (int(w) for w in args.workers.split(",")):
            with workers(count) as pool:
                # Start the workers (spawn, imports) before timing: a long audit pays it once.
                list(pool.map(_warm, range(count)))
                seconds, again = timed_audit(state, rpc, reruns_on(pool, at_least=0))
            assert [v.reasons for v in again] == [v.reasons for v in verdicts]
            month = MONTH_INTERVALS * seconds / n
            print(f"{count:>7} {n / seconds:>12.2f} {month:>13.0f} s  {'met' if month <= GOAL_S else 'not met'}")
        rerun = (serial - own) / n
        room = GOAL_S / MONTH_INTERVALS - own / n
        needed = "unreachable: the auditor's own work alone exceeds the goal" if room <= 0 else \
            f"{math.ceil(rerun / room)} workers (re-clearing {rerun * 1000:.0f} ms per interval)"
        print(f"a month of {args.homes} homes within {GOAL_S} s needs about {needed}")


if __name__ == "__main__":
    main()
