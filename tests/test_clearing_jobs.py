"""Deferrable jobs in the community clearing (optimizer.devices.JobFleet) against the naive
per-home LP with jobs (optimizer.reference), and the promises a job's owner relies on.

The clearing solves the LP relaxation of the job starts and makes step 0 integral (a job
starts now or it does not); the naive LP with the same step-0 decisions must cost exactly
the same, the relaxation no more, the MILP (binary starts) no more either.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import InputError
from optimizer import ClearingInputs, clear
from optimizer.reference import ReferenceLP
from optimizer.types import Jobs
from tests.test_clearing_exact import CAPACITY, DEVICE_BOX_KWH, REL, SOC, TARIFF, community, objective_with, step0_fixed


def with_jobs(inputs: ClearingInputs, seed: int, count: int, started: bool = False) -> ClearingInputs:
    """`count` random jobs (1-3 steps long) with windows overlapping the horizon."""
    rng = np.random.default_rng(seed)
    T = inputs.horizon
    earliest = rng.integers(-2, T, count)
    latest = earliest + rng.integers(0, T + 1, count)
    latest = np.maximum(latest, 0)
    is_started = rng.random(count) < 0.3 if started else np.zeros(count, dtype=bool)
    jobs = Jobs(
        home=rng.integers(0, inputs.homes, count),
        energy_kwh=rng.uniform(0.2, 2.5, (count, 3)) * (np.arange(3) < rng.integers(1, 4, (count, 1))),
        earliest=earliest,
        latest=latest,
        started=is_started,
        start=-rng.integers(0, 3, count),
    )
    return dataclasses.replace(inputs, jobs=jobs)


def small_community(draw: st.DrawFn) -> ClearingInputs:
    """A random small community with up to two batteries, in any regime."""
    homes = draw(st.integers(1, 5))
    return community(
        seed=draw(st.integers(0, 2**32 - 1)),
        homes=homes,
        horizon=draw(st.integers(1, 5)),
        battery_homes=draw(st.lists(st.integers(0, homes - 1), max_size=2).map(sorted).map(tuple)),
        import_cap=draw(st.sampled_from(sorted(CAPACITY))),
        export_cap=draw(st.sampled_from(sorted(CAPACITY))),
        soc=draw(st.sampled_from(SOC)),
        tariff=draw(st.sampled_from(TARIFF)),
        pv_scale=draw(st.sampled_from([0.2, 1.0, 3.0])),
    )


@st.composite
def communities_with_jobs(draw: st.DrawFn) -> ClearingInputs:
    inputs = small_community(draw)
    return with_jobs(inputs, draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, 4)), started=draw(st.booleans()))


def fixed_starts(lp: ReferenceLP, result) -> list:
    return [lp.job_start[:, 0] == result.job_starts_now.astype(float)]


@settings(max_examples=40, deadline=None)
@given(communities_with_jobs())
def test_clearing_with_jobs_equals_naive_lp_with_the_same_step0_starts(inputs: ClearingInputs) -> None:
    result = clear(inputs)
    lp = ReferenceLP(inputs)
    relaxed = lp.solve().objective
    same_starts = lp.solve(fixed_starts(lp, result)).objective
    assert result.objective == pytest.approx(same_starts, rel=REL, abs=REL)
    assert relaxed <= result.objective + 1e-6
    # ... and the per-home step 0 is part of an optimum with those starts.
    with_step0 = objective_with(lp, fixed_starts(lp, result) + step0_fixed(lp, result, DEVICE_BOX_KWH))
    assert with_step0 == pytest.approx(same_starts, rel=REL, abs=1e-5)


@settings(max_examples=25, deadline=None)
@given(communities_with_jobs())
def test_every_job_is_whole_and_inside_its_signed_window(inputs: ClearingInputs) -> None:
    result = clear(inputs)
    jobs = inputs.jobs
    now = result.job_starts_now
    assert now.dtype == bool and now.shape == (jobs.count,)
    pending = ~jobs.started
    # never started twice, never outside the window, never late
    assert not np.any(now & jobs.started)
    assert not np.any(now & ((jobs.earliest > 0) | (jobs.latest < 0)))
    if np.all(inputs.import_capacity_kwh >= CAPACITY["ample"]):  # a job is dropped only when the feeder cannot carry it
        assert np.all(now[pending & (jobs.latest == 0)])
    # the home's balance: load + job - pv + curtailed - shed + battery == its market position
    battery = np.bincount(inputs.batteries.home, result.battery_charge_kwh - result.battery_discharge_kwh,
                          inputs.homes)
    draw = jobs.running_kwh(inputs.homes, 1)[:, 0] + np.bincount(jobs.home, now * jobs.energy_kwh[:, 0], inputs.homes)
    assert result.job_kwh == pytest.approx(draw, abs=1e-12)
    lhs = inputs.load_kwh[:, 0] + result.job_kwh - inputs.pv_kwh[:, 0] + result.curtailed_kwh - result.shed_kwh + battery
    rhs = result.grid_import_kwh - result.grid_export_kwh + result.p2p_buy_kwh - result.p2p_sell_kwh
    assert lhs == pytest.approx(rhs, abs=1e-7)


def test_the_milp_bounds_the_step0_rounding_and_a_split_job_is_made_whole() -> None:
    """Two jobs at one home tie for one sunny step: the relaxation splits them; the
    clearing starts one whole job now and costs no less than the MILP."""
    inputs = community(3, homes=3, horizon=4, battery_homes=(), import_cap="ample", export_cap="ample",
                       soc="random", tariff="normal")
    pv = np.zeros_like(inputs.pv_kwh)
    pv[0, 0] = 1.0
    jobs = Jobs(home=np.array([0, 0]), energy_kwh=np.array([[1.0], [1.0]]), earliest=np.array([0, 0]),
                latest=np.array([3, 3]), started=np.zeros(2, dtype=bool), start=np.zeros(2, dtype=int))
    inputs = dataclasses.replace(inputs, pv_kwh=pv, load_kwh=np.zeros_like(pv), jobs=jobs,
                                 buy_price_per_kwh=np.full(4, 0.3), sell_price_per_kwh=np.full(4, 0.05))
    relaxed = ReferenceLP(inputs).solve().job_start[:, 0]
    assert np.all((relaxed > 0.1) & (relaxed < 0.9)), f"the relaxation should split the sun between the jobs: {relaxed}"
    result = clear(inputs)
    assert result.job_starts_now.sum() == 1
    milp = ReferenceLP(inputs, integer_jobs=True).solve().objective
    assert milp <= result.objective + 1e-6
    assert result.objective == pytest.approx(milp, rel=REL, abs=REL)


def test_a_job_starts_when_the_sun_shines_not_when_it_was_registered() -> None:
    inputs = community(4, homes=2, horizon=6, battery_homes=(), import_cap="ample", export_cap="ample",
                       soc="random", tariff="normal")
    pv = np.zeros_like(inputs.pv_kwh)
    pv[1, 3] = 3.0
    jobs = Jobs(home=np.array([0]), energy_kwh=np.array([[2.0]]), earliest=np.array([0]), latest=np.array([5]),
                started=np.zeros(1, dtype=bool), start=np.zeros(1, dtype=int))
    inputs = dataclasses.replace(inputs, pv_kwh=pv, load_kwh=np.zeros_like(pv), jobs=jobs)
    model_lp = ReferenceLP(inputs, integer_jobs=True)
    assert int(np.argmax(model_lp.solve().job_start[0])) == 3
    assert not clear(inputs).job_starts_now[0]
    # at its deadline it runs, sun or not
    late = dataclasses.replace(inputs, jobs=dataclasses.replace(jobs, earliest=np.array([-3]), latest=np.array([0])))
    assert clear(late).job_starts_now[0]
    assert clear(late).job_kwh[0] == pytest.approx(2.0)


def test_a_started_job_draws_its_profile_as_load_and_is_not_started_again() -> None:
    inputs = community(6, homes=2, horizon=3, battery_homes=(1,), import_cap="ample", export_cap="ample",
                       soc="random", tariff="normal")
    jobs = Jobs(home=np.array([0]), energy_kwh=np.array([[0.5, 0.7, 0.9]]), earliest=np.array([-5]),
                latest=np.array([2]), started=np.array([True]), start=np.array([-1]))
    result = clear(dataclasses.replace(inputs, jobs=jobs))
    assert not result.job_starts_now[0]
    assert result.job_kwh[0] == pytest.approx(0.7)


@pytest.mark.parametrize("change, message", [
    (dict(earliest=np.array([2]), latest=np.array([1])), "ends before it begins"),
    (dict(started=np.array([True]), start=np.array([2])), "after step 0"),
    (dict(home=np.array([7])), "out of range"),
    (dict(energy_kwh=np.array([[-1.0]])), ">= 0"),
    (dict(energy_kwh=np.array([[np.nan]])), "finite"),
])
def test_bad_jobs_are_refused_with_what_is_wrong(change: dict, message: str) -> None:
    inputs = community(1, homes=2, horizon=3, battery_homes=(), import_cap="ample", export_cap="ample",
                       soc="random", tariff="normal")
    jobs = Jobs(home=np.array([0]), energy_kwh=np.array([[1.0]]), earliest=np.array([0]), latest=np.array([2]),
                started=np.array([False]), start=np.array([0]))
    with pytest.raises(InputError, match=message):
        clear(dataclasses.replace(inputs, jobs=dataclasses.replace(jobs, **change)))


def test_no_jobs_clear_alike_whatever_the_width_of_their_empty_profile():
    # A clearing that leaves out the only homes with jobs passes Jobs with a (0, L) profile;
    # the cached model of that shape was built with none and refused them ("inputs' jobs
    # differ from the model's"), which stopped the oracle of a replay.
    inputs = community(3, 3, 4, (0,), "ample", "ample", "random", "normal")
    empty = Jobs(np.zeros(0, dtype=int), np.zeros((0, 3)), np.zeros(0, dtype=int), np.zeros(0, dtype=int),
                 np.zeros(0, dtype=bool), np.zeros(0, dtype=int))
    plain = clear(inputs)
    assert clear(dataclasses.replace(inputs, jobs=empty)).objective == pytest.approx(plain.objective, rel=1e-9)


def test_no_hvacs_clear_alike_whatever_their_step_length():
    # The same for HVACs: a clearing that leaves out every HVAC home passes empty Thermal
    # arrays with the market's step length (0.25 h), Thermal.none() has 1 h.
    from optimizer.types import Thermal

    inputs = community(3, 3, 4, (0,), "ample", "ample", "random", "normal")
    empty = dataclasses.replace(Thermal.none(), step_hours=0.25)
    plain = clear(inputs)
    assert clear(dataclasses.replace(inputs, thermal=empty)).objective == pytest.approx(plain.objective, rel=1e-9)
