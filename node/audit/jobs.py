"""The auditor's check of the deferrable jobs in committed inputs: each one the optimiser
could move must carry its participant's signed window (node.intent.jobs), and the
interval-grid window and start in the inputs must lie within it.

The re-run of the clearing (node.audit.verify) then shows the settlement placed the jobs
as the inputs allow; this check shows the inputs allowed no more than the participant
signed. A job without a signed window may not move: its earliest and latest interval
are one. Across intervals (:class:`JobStarts`), a job's start, once committed, never
changes, and a started job is never offered as pending again (it would run twice). Not
checked: that the clearing of the start interval did start the job (it would take a
second re-run of that interval); whether a job exists at all, or its profile: the
home's meter, which signs what it drew, is the check on that.
"""

from __future__ import annotations

from collections.abc import Callable

from node.chain.trust import Clock
from node.clearing.inputs import IntervalInputs, JobInputs
from node.errors import GridLedgerError
from node.intent.jobs import SignedJobWindow
from node.intent.signing import Domain


def job_window_reasons(inputs: IntervalInputs, domain: Domain, owner_of: Callable[[int], str | None],
                       clock: Clock) -> list[str]:
    """Where a job in `inputs` may move further than its participant signed."""
    reasons = []
    for job in inputs.jobs:
        label = f"participant {job.participant}, job {job.job}"
        if job.started_interval is not None and not job.earliest_interval <= job.started_interval <= job.latest_interval:
            reasons.append(f"{label}: started in interval {job.started_interval}, outside its window "
                           f"{job.earliest_interval}-{job.latest_interval}")
        if job.signed_window is None:
            if job.earliest_interval != job.latest_interval:
                reasons.append(f"{label}: may start in intervals {job.earliest_interval}-{job.latest_interval} "
                               "without a signed window")
            continue
        reasons += [f"{label}: {r}" for r in _window_reasons(job, domain, owner_of(job.participant), clock)]
    return reasons


def _window_reasons(job: JobInputs, domain: Domain, owner: str | None, clock: Clock) -> list[str]:
    try:
        signed = SignedJobWindow.from_json(job.signed_window)
        signer = signed.signer(domain)
    except (GridLedgerError, ValueError) as exc:
        return [f"its signed window does not parse or verify ({exc})"]
    w = signed.job_window
    reasons = []
    if owner is None or signer.lower() != owner.lower():
        reasons.append(f"its window is signed by {signer}, not by the participant's owner {owner}")
    if (w.participant, w.job) != (job.participant, job.job):
        reasons.append(f"its window was signed for participant {w.participant}, job {w.job}")
    if w.energy_wh != sum(job.energy_wh):
        reasons.append(f"its window was signed for {w.energy_wh} Wh, the inputs give it {sum(job.energy_wh)} Wh")
    first, last = clock.start(job.earliest_interval), clock.start(job.latest_interval)
    # A window inside one interval allows that one interval (starts are on the grid).
    inside_one = job.earliest_interval == job.latest_interval and first <= w.earliest < clock.end(job.earliest_interval)
    if first < w.earliest and not inside_one:
        reasons.append(f"interval {job.earliest_interval} starts at {first}, before the signed earliest start {w.earliest}")
    if last > w.latest_start:
        reasons.append(f"interval {job.latest_interval} starts at {last}, after the signed latest start {w.latest_start}")
    return reasons


class JobStarts:
    """Each job's committed start as the settled intervals' inputs state it, in order."""

    def __init__(self) -> None:
        self.started: dict[tuple[int, int], tuple[int, int]] = {}  # job -> (start, interval that first said so)

    def reasons(self, inputs: IntervalInputs) -> list[str]:
        """Where `inputs` contradict the starts committed by earlier inputs."""
        reasons = []
        for job in inputs.jobs:
            key, label = (job.participant, job.job), f"participant {job.participant}, job {job.job}"
            known = self.started.get(key)
            if job.started_interval is None:
                if known is not None:
                    reasons.append(f"{label}: offered to start again, but it started in interval {known[0]} "
                                   f"(inputs of interval {known[1]})")
                continue
            if job.started_interval >= inputs.interval:
                reasons.append(f"{label}: listed as started in interval {job.started_interval}, not before this one")
            elif known is None:
                self.started[key] = (job.started_interval, inputs.interval)
            elif known[0] != job.started_interval:
                reasons.append(f"{label}: listed as started in interval {job.started_interval}, but the inputs of "
                               f"interval {known[1]} said {known[0]}")
        return reasons
