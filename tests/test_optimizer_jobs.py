"""The phase-2 prototype of deferrable jobs in the clearing (optimizer/jobs.py): the
MILP finds the brute-force optimum, and its LP relaxation is a bound, not an answer."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.jobs import JobOptions, place_jobs

T = 6


def _cost(base, jobs, starts, buy, sell):
    net = base + sum(j.energy_kwh[s] for j, s in zip(jobs, starts))
    return float(buy @ np.maximum(net, 0) - sell @ np.maximum(-net, 0))


@settings(max_examples=10, deadline=None)
@given(st.lists(st.floats(-2, 2), min_size=T, max_size=T), st.lists(st.integers(1, 3), min_size=1, max_size=3),
       st.lists(st.floats(0.05, 0.5), min_size=T, max_size=T))
def test_the_milp_places_jobs_where_brute_force_does_and_the_relaxation_bounds_it(base, sizes, buy):
    base, buy = np.array(base), np.array(buy)
    sell = buy * 0.3
    jobs = []
    for k, size in enumerate(sizes):
        options = np.zeros((T - 1, T))
        for s in range(T - 1):
            options[s, s:s + 2] = size / 2  # a two-step run of `size` kWh, any start
        jobs.append(JobOptions(f"job{k}", options))
    plan = place_jobs(base, jobs, buy, sell, np.full(T, 100.0), np.full(T, 100.0))
    best = min(_cost(base, jobs, starts, buy, sell) for starts in itertools.product(range(T - 1), repeat=len(jobs)))
    assert abs(plan.cost - best) < 1e-6
    assert abs(_cost(base, jobs, plan.starts, buy, sell) - best) < 1e-6
    assert plan.relaxation_cost <= plan.cost + 1e-7


def test_a_capacity_that_binds_part_way_makes_the_relaxation_split_a_job():
    # 1 kWh of PV surplus in each of two steps, one 2 kWh job that fits in one step only:
    # the relaxation runs half the job in each surplus step; a real job cannot.
    base = np.array([-1.0, -1.0, 0.0])
    job = JobOptions("washer", np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 2.0]]))
    plan = place_jobs(base, [job], np.full(3, 0.3), np.full(3, 0.05), np.full(3, 10.0), np.full(3, 10.0))
    assert plan.relaxation_gap > 0.2
