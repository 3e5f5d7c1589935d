"""The flexible loads of a replay: deferrable jobs placed within their signed windows,
and HVACs where no agent runs them; the community the market settles (and its
no-trading baseline runs on, node.simulation.flows).

Jobs come from a jobs file (node.data.jobs). Each home signs its jobs' windows as the
file gives them (with its demo key, as it signed its mandate at set-up); the book keeps
them, checked against the registered owner, and a job moves only within the window in
the book. With bidding agents (an auction) each home's agent places its jobs greedily
(node.agents.schedule) and runs its HVAC itself; otherwise (the community optimiser,
which schedules neither until phase 2) jobs run at their earliest start and HVACs by a
plain thermostat, as inflexible load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from eth_account.signers.local import LocalAccount

from node.agents.schedule import Schedule, local_pv_share, schedule_jobs, windows
from node.agents.thermal import thermostat_load_kwh
from node.data.community import Community
from node.data.config import CommunityConfig
from node.data.jobs import Job, load_jobs
from node.intent.jobs import JobWindow, sign_job_window
from node.intent.orders import OrderBook
from node.intent.signing import Domain

log = logging.getLogger("gridledger.simulation")


@dataclass
class FlexPlan:
    community: Community  # what the market settles on (and its baseline is measured on)
    schedule: Schedule | None = None
    kpis: dict = field(default_factory=dict)


def plan_flexibility(community: Community, config: CommunityConfig, jobs_file: Path | None, book: OrderBook,
                     domain: Domain, ids: Sequence[int], accounts: Sequence[LocalAccount], agents: bool) -> FlexPlan:
    reference = community
    hvacs = [home.hvac for home in community.homes]
    kpis: dict = {}
    if any(h is not None for h in hvacs):
        load = thermostat_load_kwh(hvacs, config.hvac, community.timestamps, config.market.interval, config.tariffs.timezone)
        reference = _plus(reference, load)
        kpis["hvac_thermostat_kwh"] = float(load.sum())
    if jobs_file is None:
        return FlexPlan(community if agents else reference, kpis=kpis)
    jobs = load_jobs(jobs_file, community.names)
    names = {name: int(pid) for name, pid in zip(community.names, ids)}
    sign_windows(jobs, book, domain, names, dict(zip(community.names, accounts)))
    allowed = windows(jobs, book.job_windows(), names)
    earliest = schedule_jobs(community, jobs, allowed, config, greedy=False)
    placed = schedule_jobs(community, jobs, allowed, config, greedy=True) if agents else earliest
    kpis.update(
        jobs=len(jobs),
        jobs_flexible=sum(1 for p in placed.placements if p.window[0] < p.window[1]),
        job_energy_kwh=float(placed.energy_kwh.sum()),
        job_energy_outside_data_kwh=placed.outside_data_kwh,
        job_local_pv_share=local_pv_share(community, placed),
        job_local_pv_share_at_earliest_start=local_pv_share(community, earliest),
    )
    log.info("%d jobs (%d flexible within signed windows), %.1f kWh: %.0f%% served by local PV (%.0f%% at their "
             "earliest start)", kpis["jobs"], kpis["jobs_flexible"], kpis["job_energy_kwh"],
             100 * kpis["job_local_pv_share"], 100 * kpis["job_local_pv_share_at_earliest_start"])
    return FlexPlan(placed.added_to(community if agents else reference), placed, kpis)


def sign_windows(jobs: Sequence[Job], book: OrderBook, domain: Domain, ids: dict[str, int],
                 keys: dict[str, LocalAccount]) -> None:
    """Each home signs the window the file gives each of its jobs (nonce: the job's line
    in the file); a window the book already holds is not signed again."""
    now = int(time.time())
    for job in jobs:
        pid = ids[job.participant]
        if book.has_job_window(pid, job.line):
            continue
        window = JobWindow(pid, job.job_id, job.earliest, job.latest_start, job.energy_wh, job.line)
        book.submit_job_window(sign_job_window(keys[job.participant], domain, window), now)


def _plus(community: Community, extra_kwh: np.ndarray) -> Community:
    return Community(community.homes, community.timestamps, community.consumption_kwh + extra_kwh,
                     community.production_kwh)
