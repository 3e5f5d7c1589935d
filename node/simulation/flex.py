"""The flexible loads of a replay: deferrable jobs placed within their signed windows,
and HVACs where no agent runs them; the community the market settles (and its
no-trading baseline runs on, node.simulation.flows).

Jobs come from a jobs file (node.data.jobs). Each home signs its jobs' windows as the
file gives them (with its demo key, as it signed its mandate at set-up); the book keeps
them, checked against the registered owner, and a job moves only within the window in
the book. With bidding agents (an auction) each home's agent places its jobs greedily
(node.agents.schedule) and runs its HVAC itself. In a community market the optimiser
places the jobs (optimizer.devices.JobFleet): they go into each interval's committed
inputs (node.clearing.inputs.JobInputs) on the interval grid, within the signed window;
a job without a valid signed window is fixed at its earliest start. In an auction
without agents jobs run at their earliest start; HVACs without agents run by a plain
thermostat, as inflexible load.
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
from node.clearing.inputs import JobInputs
from node.intent.jobs import JobWindow, SignedJobWindow, sign_job_window
from node.intent.orders import OrderBook
from node.intent.signing import Domain

log = logging.getLogger("gridledger.simulation")


@dataclass
class FlexPlan:
    community: Community  # what the market settles on (and its baseline is measured on)
    schedule: Schedule | None = None
    kpis: dict = field(default_factory=dict)
    jobs: list[JobInputs] = field(default_factory=list)  # for the community optimiser to place
    hvac: bool = False  # the community optimiser runs the HVACs
    thermostat_kwh: np.ndarray | None = None  # (homes, steps) the HVACs under a plain thermostat


def plan_flexibility(community: Community, config: CommunityConfig, jobs_file: Path | None, book: OrderBook,
                     domain: Domain, ids: Sequence[int], accounts: Sequence[LocalAccount], agents: bool) -> FlexPlan:
    reference = community
    hvacs = [home.hvac for home in community.homes]
    kpis: dict = {}
    optimised = not agents and config.market.mechanism == "community"
    thermostat = None
    if any(h is not None for h in hvacs):
        thermostat = thermostat_load_kwh(hvacs, config.hvac, community.timestamps, config.market.interval,
                                         config.tariffs.timezone)
        kpis["hvac_thermostat_kwh"] = float(thermostat.sum())
        if not optimised:
            reference = _plus(reference, thermostat)
    hvac = dict(hvac=thermostat is not None and optimised, thermostat_kwh=thermostat if optimised else None)
    if jobs_file is None:
        return FlexPlan(community if agents else reference, kpis=kpis, **hvac)
    jobs = load_jobs(jobs_file, community.names)
    names = {name: int(pid) for name, pid in zip(community.names, ids)}
    sign_windows(jobs, book, domain, names, dict(zip(community.names, accounts)))
    allowed = windows(jobs, book.job_windows(), names)
    earliest = schedule_jobs(community, jobs, allowed, config, greedy=False)
    if not agents and config.market.mechanism == "community":
        placed = job_inputs(jobs, allowed, book.job_windows(), names, config, community)
        kpis.update(
            jobs=len(jobs),
            jobs_flexible=sum(1 for j in placed if j.earliest_interval < j.latest_interval),
            job_energy_kwh=sum(sum(j.energy_wh) for j in placed) / 1000,
            job_local_pv_share_at_earliest_start=local_pv_share(community, earliest),
        )
        log.info("%d jobs (%d flexible within signed windows), %.1f kWh, for the optimiser to place",
                 kpis["jobs"], kpis["jobs_flexible"], kpis["job_energy_kwh"])
        return FlexPlan(reference, kpis=kpis, jobs=placed, **hvac)
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


def job_inputs(jobs: Sequence[Job], allowed: dict[str, tuple[tuple[int, int], str]],
               signed: dict[tuple[int, int], SignedJobWindow], ids: dict[str, int], config: CommunityConfig,
               community: Community) -> list[JobInputs]:
    """The jobs on the market's interval grid, for the optimiser: starts at interval
    starts within the window (the signed one within the file's); a window narrower than
    an interval boundary allows starts at the interval it begins in. Each job's energy
    per interval (its profile from an interval start) in whole Wh, summing to its energy.
    Jobs wholly outside the data are left out."""
    market = config.market
    epoch, length = int(market.start.timestamp()), int(market.interval.total_seconds())
    first = int(market.interval_index(community.timestamps[:1])[0])
    last = first + len(community.timestamps) - 1
    out = []
    for job in jobs:
        (low, high), reason = allowed[job.key]
        earliest, latest = -(-(low - epoch) // length), (high - epoch) // length
        if earliest > latest:
            earliest = latest = (low - epoch) // length
        if latest < first or earliest > last:
            continue
        steps = int(np.ceil(job.profile.duration_s / length)) or 1
        cumulative = np.rint(job.profile.used_by(np.arange(1, steps + 1) * length)).astype(np.int64)
        energy = np.diff(np.concatenate([[0], cumulative]))
        pid = ids[job.participant]
        window = signed.get((pid, job.job_id)) if reason == "signed window" else None
        out.append(JobInputs(pid, job.job_id, [int(e) for e in energy], int(earliest), int(latest),
                             signed_window=None if window is None else window.to_json()))
    return out


def _plus(community: Community, extra_kwh: np.ndarray) -> Community:
    return Community(community.homes, community.timestamps, community.consumption_kwh + extra_kwh,
                     community.production_kwh)
