"""Deferrable jobs and HVACs through the community pipeline: the optimiser places them within their
signed windows in the committed inputs, the settlement carries their energy, the audit
re-runs the clearing from the inputs alone, and the run reports PySSMic's KPI."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from eth_account import Account

from node.audit.jobs import JobStarts, job_window_reasons
from node.chain.trust import Clock
from node.clearing.inputs import JobInputs
from node.clearing.interval import run_clearing, soc_after
from node.data.jobs import load_jobs
from node.oracle.inputs_builder import InputsBuilder
from node.simulation.flex import job_inputs
from node.intent.jobs import JobWindow, sign_job_window
from node.intent.signing import Domain
from node.chain.connection import Chain
from node.clearing.inputs import IntervalInputs
from node.data.community import Community, HvacSpec
from node.data.config import default_config, load_config
from node.data.synthetic import generate_community
from node.data.dataset import load_dataset
from node.data.importers.common import write_imported
from node.data.importers.pyssmic import import_pyssmic
from node.simulation.replay import simulate
from node.simulation.state import StatePaths, claim_state
from node.cli.main import main

DATA = Path(__file__).resolve().parent / "data"
T0 = int(pd.Timestamp("2026-06-01T00:00:00+00:00").timestamp())


def test_the_optimiser_places_a_neighbourhoods_jobs_within_their_windows_and_the_audit_passes(tmp_path, capsys):
    out = tmp_path / "neighbourhood"
    write_imported(import_pyssmic(DATA / "pyssmic", 120), out, 120)
    config = load_config(out / "community.toml")
    assert config.market.mechanism == "community"
    community = load_dataset(out / "data.csv", config)
    state = tmp_path / "state"
    claim_state(state, "simulate")
    with Chain.embedded(state) as chain:
        result = simulate(chain, community, config, StatePaths(state), progress=False, jobs_file=out / "jobs.csv")
    k = result.kpis
    assert k["jobs"] == 2 and k["jobs_flexible"] == 2
    assert abs(k["job_energy_placed_kwh"] - k["job_energy_kwh"]) < 1e-9  # every job ran, whole
    # the optimiser runs both jobs in the sun (at their earliest start a quarter of their energy is local)
    assert k["job_local_pv_share"] > k["job_local_pv_share_at_earliest_start"] + 0.5
    # the jobs' energy is consumption in the run's flows and in the baseline's (at earliest start)
    assert k["curtailed_kwh"] == 0 and k["unserved_kwh"] == 0
    assert k["baseline_grid_import_kwh"] > k["grid_import_kwh"]
    starts = {}
    for report in result.reports:
        inputs = IntervalInputs.from_json(result.index.inputs(result.index.interval(report.settlement.interval)["inputs_hash"]))
        for job in inputs.jobs:
            assert job.signed_window is not None
            if job.started_interval is not None:
                starts[job.job] = job.started_interval
                assert job.earliest_interval <= job.started_interval <= job.latest_interval
    assert len(starts) == 2
    assert main(["-q", "audit", "--state", str(state)]) == 0
    captured = capsys.readouterr()
    assert "failed" not in (captured.out + captured.err).replace("0 failed", "")


# ---------------------------------------------------------------- the auditor's window check
DOMAIN = Domain(1, "0x" + "22" * 20)
CLOCK = Clock(epoch=T0, interval_s=900, dispute_window=0, notice_s=0)
OWNER, STRANGER = Account.from_key("0x" + "11" * 32), Account.from_key("0x" + "12" * 32)


def _job(**change) -> JobInputs:
    """Job 7 of participant 1, signed for starts from 01:00 to 03:00 (intervals 4 to 12)."""
    window = JobWindow(1, 7, T0 + 3600, T0 + 3 * 3600, 1000, 1)
    job = JobInputs(1, 7, [400, 600], 4, 12, signed_window=sign_job_window(OWNER, DOMAIN, window).to_json())
    return replace(job, **change)


def _reasons(*jobs: JobInputs) -> list[str]:
    inputs = IntervalInputs(interval=5, start="", participants=[1], load_wh=[[0]], pv_wh=[[0]], buy_price=[1],
                            sell_price=[0], import_capacity_wh=[1], export_capacity_wh=[1], p2p_cost=0, batteries=[],
                            jobs=list(jobs))
    return job_window_reasons(inputs, DOMAIN, {1: OWNER.address}.get, CLOCK)


def test_the_audit_accepts_a_job_within_its_signed_window():
    assert _reasons(_job(), _job(started_interval=12), _job(signed_window=None, earliest_interval=9, latest_interval=9)) == []


@pytest.mark.parametrize("change, fragment", [
    (dict(earliest_interval=3), "before the signed earliest start"),
    (dict(latest_interval=13), "after the signed latest start"),
    (dict(started_interval=2), "outside its window"),
    (dict(energy_wh=[400, 700]), "signed for 1000 Wh"),
    (dict(job=8), "signed for participant 1, job 7"),
    (dict(signed_window=None), "without a signed window"),
    (dict(signed_window=sign_job_window(STRANGER, DOMAIN, JobWindow(1, 7, T0 + 3600, T0 + 3 * 3600, 1000, 1)).to_json()),
     "not by the participant's owner"),
    (dict(signed_window={"jobWindow": {}, "signature": "0x00"}), "does not parse or verify"),
])
def test_the_audit_flags_a_job_that_may_move_beyond_what_its_owner_signed(change, fragment):
    (reason,) = _reasons(_job(**change))
    assert fragment in reason and "participant 1" in reason


def test_the_optimiser_runs_the_homes_air_conditioners_within_their_comfort_band_and_the_audit_passes(tmp_path, capsys):
    config = default_config()
    config = replace(config, community=replace(config.community, homes=4, hvac_share=0.5, battery_share=0.25,
                                               pv_share=0.5))
    full = generate_community(config)
    steps = slice(52, 60)  # 13:00 to 15:00, the afternoon heat
    community = Community(full.homes, full.timestamps[steps], full.consumption_kwh[:, steps],
                          full.production_kwh[:, steps])
    state = tmp_path / "state"
    claim_state(state, "simulate")
    with Chain.embedded(state) as chain:
        result = simulate(chain, community, config, StatePaths(state), progress=False)
    k = result.kpis
    assert k["hvac_kwh"] > 0 and k["hvac_thermostat_kwh"] > 0
    assert k["curtailed_kwh"] == 0 and k["unserved_kwh"] == 0  # the HVACs' energy is consumption in the flows
    hvac = config.hvac
    indoor = []
    for report in result.reports:
        inputs = IntervalInputs.from_json(result.index.inputs(result.index.interval(report.settlement.interval)["inputs_hash"]))
        assert len(inputs.hvacs) == 2
        indoor += [h.indoor_mc / 1000 for h in inputs.hvacs]
    assert hvac.setpoint_c - hvac.range_low_c - 1e-3 <= min(indoor) and max(indoor) <= hvac.setpoint_c + hvac.range_high_c + 1e-3
    assert main(["-q", "audit", "--state", str(state)]) == 0
    captured = capsys.readouterr()
    assert "failed" not in (captured.out + captured.err).replace("0 failed", "")


def test_a_restarted_oracle_recovers_every_job_start_and_temperature_from_the_last_committed_inputs(tmp_path):
    """The daemon resumes from the last settled inputs alone (soc_after of their re-run):
    the next inputs are exactly those of a run never interrupted, and no job starts twice."""
    out = tmp_path / "neighbourhood"
    write_imported(import_pyssmic(DATA / "pyssmic", 120), out, 120)
    config = load_config(out / "community.toml")
    community = load_dataset(out / "data.csv", config)
    homes = (replace(community.homes[0], hvac=HvacSpec("cool", 1.5, 3.0, 24.0)),) + community.homes[1:]
    community = Community(homes, community.timestamps, community.consumption_kwh, community.production_kwh)
    jobs = load_jobs(out / "jobs.csv", community.names)
    ids = {name: i + 1 for i, name in enumerate(community.names)}
    allowed = {j.key: ((j.earliest, j.latest_start), "file") for j in jobs}
    builder = InputsBuilder(community, config, np.arange(1, len(ids) + 1),
                            jobs=job_inputs(jobs, allowed, {}, ids, config, community), hvac=True)
    state = builder.initial_soc()
    started: dict = {}
    for k in builder.intervals[:-1]:
        inputs = builder.inputs(k, state)
        state = soc_after(inputs, run_clearing(inputs))
        resumed = IntervalInputs.from_json(inputs.canonical_json())
        again = soc_after(resumed, run_clearing(resumed))
        assert builder.inputs(k + 1, again).hash() == builder.inputs(k + 1, state).hash()
        for key, s in state.job_starts.items():
            assert started.setdefault(key, s) == s, f"job {key} started twice"
    assert len(started) == len(jobs)
    assert state.indoor_mc and all(isinstance(v, int) for v in state.indoor_mc.values())


def test_the_audit_flags_a_job_whose_committed_start_is_rewritten_or_that_is_offered_again():
    def inputs(interval: int, *jobs: JobInputs) -> IntervalInputs:
        return IntervalInputs(interval=interval, start="", participants=[1], load_wh=[[0]], pv_wh=[[0]], buy_price=[1],
                              sell_price=[0], import_capacity_wh=[1], export_capacity_wh=[1], p2p_cost=0,
                              batteries=[], jobs=list(jobs))

    honest = JobStarts()
    assert honest.reasons(inputs(5, _job())) == []
    assert honest.reasons(inputs(7, _job(started_interval=6))) == []
    assert honest.reasons(inputs(8, _job(started_interval=6))) == []
    rewritten = JobStarts()
    rewritten.reasons(inputs(7, _job(started_interval=6)))
    (reason,) = rewritten.reasons(inputs(8, _job(started_interval=5)))
    assert "listed as started in interval 5, but the inputs of interval 7 said 6" in reason
    (reason,) = rewritten.reasons(inputs(9, _job()))
    assert "offered to start again, but it started in interval 6" in reason
    (reason,) = JobStarts().reasons(inputs(9, _job(started_interval=9)))
    assert "not before this one" in reason


def test_a_left_out_homes_air_conditioner_runs_as_a_thermostat_metered_declared_and_audited(tmp_path, capsys):
    """Wallets of 2 cents run dry within the hour, so the homes are left out; their air
    conditioners go on running as thermostats do. Each left-out HVAC home's signed reading
    carries its unit's energy exactly when the committed indoor temperature was above the
    middle of its band, and the indoor temperature moves with it from interval to interval.
    (Before, a left-out HVAC neither ran nor warmed up.)"""
    from node.clearing.left_out import thermostat_on

    config = default_config()
    config = replace(config, community=replace(config.community, homes=4, hvac_share=0.5, battery_share=0.0, pv_share=0.0),
                     wallets=replace(config.wallets, initial_deposit=0.02))
    full = generate_community(config)
    steps = slice(52, 64)  # 13:00 to 16:00, the afternoon heat
    community = Community(full.homes, full.timestamps[steps], full.consumption_kwh[:, steps], full.production_kwh[:, steps])
    state = tmp_path / "state"
    claim_state(state, "simulate")
    with Chain.embedded(state) as chain:
        result = simulate(chain, community, config, StatePaths(state), progress=False)
    data_wh = {i + 1: np.rint(community.consumption_kwh[i] * 1000).astype(int) for i in range(len(community.homes))}
    ran, temperatures = 0, {}
    for step, report in enumerate(result.reports):
        k = report.settlement.interval
        inputs = IntervalInputs.from_json(result.index.inputs(result.index.interval(k)["inputs_hash"]))
        settled = {int(p) for p in report.settlement.participants}
        readings = {r.reading.participant: r.reading.net_wh for r in result.index.readings(k)}
        for hvac in inputs.hvacs:
            temperatures.setdefault(hvac.participant, []).append(hvac.indoor_mc)
            if hvac.participant in settled:
                continue
            expected = data_wh[hvac.participant][step] + (hvac.max_wh if thermostat_on(hvac) else 0)
            assert readings[hvac.participant] == expected, (k, hvac.participant)
            ran += thermostat_on(hvac)
    assert ran > 0, "no left-out air conditioner ran: the case must make one run"
    assert all(len(set(t)) > 1 for t in temperatures.values()), temperatures
    assert main(["-q", "audit", "--state", str(state)]) == 0
    captured = capsys.readouterr()
    assert "failed" not in (captured.out + captured.err).replace("0 failed", "")
