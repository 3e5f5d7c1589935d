"""A replay in which a home's wallet runs dry half-way: the oracle leaves that home out of
each interval it cannot pay for and settles the rest, with the clearing run ahead in a
worker as replays do. (It used to restart the worker at that interval for ever.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from node.index.store import Index
from tests.helpers import write_config, write_csv

REPO = Path(__file__).resolve().parents[1]
HOMES, STEPS = 3, 24  # past PIPELINE_MIN_INTERVALS, so the clearing runs ahead in a worker
# Wallets of 2 cents and no PV (the grid's wallet only takes money in): home 2 buys
# 20 Wh a step and runs dry after a few intervals, homes 1 and 3 buy 1 Wh and never do.
CONFIG = """
[market]
horizon_steps = 4
[wallets]
initial_deposit = 0.02
"""


def meter_rows() -> list[str]:
    rows = []
    for step in range(STEPS):
        stamp = f"2026-06-01T{step // 4:02d}:{15 * (step % 4):02d}:00+00:00"
        rows += [f"{stamp},h1,0.001,0", f"{stamp},h2,0.02,0", f"{stamp},h3,0.001,0"]
    return rows


def test_a_wallet_that_runs_dry_is_left_out_and_the_replay_finishes(tmp_path):
    data = write_csv(tmp_path, meter_rows())
    config = write_config(tmp_path, CONFIG)
    state = tmp_path / "state"
    run = subprocess.run([sys.executable, "-m", "node.cli", "simulate", "--config", str(config), "--data", str(data),
                          "--state", str(state), "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "cannot pay" in run.stderr
    index = Index(state / "index.sqlite")
    assert index.summary()["intervals"] == STEPS
    settled = {(k, participant) for k, participant, *_ in index.entries_between(0, STEPS)}
    left_out = [k for k in range(STEPS) if (k, 2) not in settled]
    assert left_out and left_out == list(range(left_out[0], STEPS))  # from when the money ran out, for good
    audit = subprocess.run([sys.executable, "-m", "node.cli", "audit", "--state", str(state), "--no-progress"], cwd=REPO,
                           capture_output=True, text=True, timeout=240)
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr[-2000:]


def test_a_left_out_homes_job_still_runs_at_its_latest_start_metered_declared_and_audited(tmp_path):
    """Home 2's wallet runs dry before its washing machine's window (02:00 to 03:00,
    intervals 8 to 12) opens, so nobody places the job: it starts at its latest start, as
    the appliance would, its 2 x 200 Wh are in the home's signed readings and in the
    settlement's declared energy, and the next inputs carry it as started. (It used to be
    dropped at its deadline: the washing never ran and its energy vanished from the run.)"""
    data = write_csv(tmp_path, meter_rows())
    config = write_config(tmp_path, CONFIG)
    t0 = 1780272000  # 2026-06-01T00:00:00Z
    (tmp_path / "wash.txt").write_text("0 0\n900 200\n1800 400\n")
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(f"{t0};{t0 + 2 * 3600};{t0 + 3 * 3600};h2:washer:1;wash.txt\n")
    state = tmp_path / "state"
    run = subprocess.run([sys.executable, "-m", "node.cli", "simulate", "--config", str(config), "--data", str(data),
                          "--jobs", str(jobs), "--state", str(state), "--no-progress"], cwd=REPO, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    index = Index(state / "index.sqlite")
    settled = {(k, participant) for k, participant, *_ in index.entries_between(0, STEPS)}
    assert all((k, 2) not in settled for k in range(8, 14)), "home 2 was meant to be left out by then"
    net = {k: {r.reading.participant: r.reading.net_wh for r in index.readings(k)} for k in (11, 12, 13, 14)}
    assert [net[k][2] for k in (11, 12, 13, 14)] == [20, 220, 220, 20]
    from node.clearing.inputs import IntervalInputs
    later = IntervalInputs.from_json(index.inputs(index.interval(13)["inputs_hash"]))
    assert [(j.participant, j.started_interval) for j in later.jobs] == [(2, 12)]
    audit = subprocess.run([sys.executable, "-m", "node.cli", "audit", "--state", str(state), "--no-progress"], cwd=REPO,
                           capture_output=True, text=True, timeout=240)
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr[-2000:]
