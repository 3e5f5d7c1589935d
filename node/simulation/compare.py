"""The same data under each clearing mechanism: the community optimiser, and the double
auction with every home's bidding agent (uniform price, then pay-as-bid). Each run is
an ordinary `simulate` state directory under one root (so each resumes, serves and
audits on its own); the outcomes go side by side into ``compare.csv``."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from node.chain.connection import Chain
from node.data.community import Community
from node.data.config import CommunityConfig
from node.data.meter_policy import Repair
from node.simulation.replay import simulate
from node.simulation.state import StatePaths, claim_state

log = logging.getLogger("gridledger.simulation")

RUNS = (("community", "community", "uniform", False),
        ("auction-uniform", "auction", "uniform", True),
        ("auction-pay-as-bid", "auction", "pay_as_bid", True))
# Costs are node.metrics' adjusted costs (stored energy valued alike in both runs).
COLUMNS = ("intervals", "adjusted_cost", "outside_cost", "cost_with_outside", "baseline_adjusted_cost",
           "savings_with_outside", "grid_import_kwh", "grid_export_kwh", "p2p_kwh", "outside_import_kwh", "gas_used",
           "job_local_pv_share", "hvac_kwh", "hvac_discomfort_kelvin_hours")


def compare(community: Community, config: CommunityConfig, root: Path, open_chain: Callable[[Path], Chain],
            jobs_file: Path | None = None, repairs: Sequence[Repair] = (), fresh: bool = False,
            progress: bool = True) -> list[dict]:
    """Runs every mechanism of `RUNS` on `community` into ``root/<run>``; returns one row
    of outcomes per run (also written to ``root/compare.csv``)."""
    rows = []
    for name, mechanism, pricing, agents in RUNS:
        state = root / name
        claim_state(state, "simulate", start_over=fresh)
        run_config = replace(config, market=replace(config.market, mechanism=mechanism, pricing=pricing),
                             agents=replace(config.agents, enabled=agents))
        log.info("%s: clearing %d intervals", name, len(community.timestamps))
        with open_chain(state) as chain:
            result = simulate(chain, community, run_config, StatePaths(state), progress=progress, repairs=repairs,
                              jobs_file=jobs_file)
        k = dict(result.kpis)
        k.setdefault("outside_cost", 0.0)
        k.setdefault("cost_with_outside", k["adjusted_cost"])
        k.setdefault("savings_with_outside", k["savings"])
        k.setdefault("outside_import_kwh", 0.0)
        rows.append({"run": name, **{c: k.get(c, "") for c in COLUMNS}})
    root.mkdir(parents=True, exist_ok=True)
    with (root / "compare.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ("run", *COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def table(rows: list[dict], currency: str) -> str:
    """The comparison as aligned text, one line per run."""
    head = f"{'run':<20} {'cost':>9} {'outside':>9} {'total':>9} {'baseline':>9} {'saved':>8} {'import':>8} " \
           f"{'P2P':>7} {'gas':>11}  ({currency}, kWh)"
    lines = [head]
    for r in rows:
        lines.append(f"{r['run']:<20} {r['adjusted_cost']:>9.2f} {r['outside_cost']:>9.2f} {r['cost_with_outside']:>9.2f} "
                     f"{r['baseline_adjusted_cost']:>9.2f} {r['savings_with_outside']:>8.2f} {r['grid_import_kwh']:>8.1f} "
                     f"{r['p2p_kwh']:>7.1f} {r['gas_used']:>11,}")
    if any(r["job_local_pv_share"] != "" for r in rows):
        lines.append("jobs served by local PV: " + ", ".join(f"{r['run']} {100 * r['job_local_pv_share']:.0f}%" for r in rows))
    if any(r["hvac_kwh"] != "" for r in rows):
        lines.append("HVAC (agents): " + ", ".join(f"{r['run']} {r['hvac_kwh']:.1f} kWh, {r['hvac_discomfort_kelvin_hours']:.1f} K·h "
                                                 "outside the comfort band" for r in rows if r["hvac_kwh"] != ""))
    return "\n".join(lines)
