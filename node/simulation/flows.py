"""A run's energy and money flows (node.metrics.kpis.RunFlows), for the market as the
chain settled it and for the no-trading baseline under the same grid limits.

The market's flows come from what anyone can check: the settled entries (grid and P2P
energy, money) from the chain's events in the index, the metered load and PV and the
battery states from the committed inputs, and the battery states after the last
interval. Curtailment and unserved load are what the energy balance leaves over::

    residual[i,t] = (load - pv + ch - dis)[i,t] - (grid + p2p)[i,t]   settled
    uns = residual if residual > tolerance,  cur = -residual if residual < -tolerance

where the battery's terminal flows follow from its state of charge (``Δ ≥ 0``:
``ch = Δ / η_c``, else ``dis = -Δ η_d``). The tolerance (:data:`ROUNDING_WH`) absorbs
the whole-Wh rounding of settlements and states of charge. A battery charged and
discharged within one interval shows only its net change, so energy it lost doing so
(the community optimiser does that to burn surplus PV it cannot export, rather than
curtail it) counts as curtailed, which physically it is: PV that served nothing. A home an interval did not
settle (no mandate in force, no order, an unfilled order) thus shows its whole need as
unserved and its surplus as curtailed: the market did not serve it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from node.clearing.inputs import IntervalInputs
from node.index.store import Index
from node.metrics.kpis import Evaluation, RunFlows, evaluate, storage_value_per_kwh
from node.oracle.inputs_builder import InputsBuilder
from node.oracle.terms import Terms
from node.units import PPM, UNITS_PER_TOKEN
from optimizer import run_baseline
from optimizer.baseline import BaselineResult

ROUNDING_WH = 2.0  # settled net (< 1 Wh) plus state of charge (< 0.5 Wh / efficiency) rounding


def settled_flows(index: Index, builder: InputsBuilder, final_soc_wh: Mapping[int, int], settled: range | None = None) -> RunFlows:
    """The market's flows over the `settled` intervals (default: every interval of the
    data the index holds a settlement for, which must be the first ones); battery states
    after the last one are `final_soc_wh` (the oracle's, or a re-run's)."""
    intervals = settled if settled is not None else _settled_range(index, builder)
    steps = np.arange(intervals.start, intervals.stop) - builder.first_interval
    pids = [int(p) for p in builder.participants]
    row = {pid: i for i, pid in enumerate(pids)}
    N, S = len(pids), len(steps)
    grid, p2p, amount = (np.zeros((N, S)) for _ in range(3))
    for k, pid, grid_wh, p2p_wh, units in index.entries_between(intervals.start, intervals.stop):
        if pid in row:
            grid[row[pid], k - intervals.start], p2p[row[pid], k - intervals.start] = grid_wh, p2p_wh
            amount[row[pid], k - intervals.start] = units
    soc, capacity = _battery_states(index, intervals, row, final_soc_wh)
    delta = np.diff(soc, axis=1)
    eta_charge = builder.battery_values("charge_efficiency_ppm", PPM)[:, None] / PPM
    eta_discharge = builder.battery_values("discharge_efficiency_ppm", PPM)[:, None] / PPM
    charge = np.maximum(delta, 0) / eta_charge
    discharge = np.maximum(-delta, 0) * eta_discharge
    load, pv = builder.load_wh[:, steps].astype(float), builder.pv_wh[:, steps].astype(float)
    if builder.jobs:
        load = load + builder.job_energy_wh(placed_job_starts(index, builder, final_soc_wh))[:, steps]
    if builder.hvac_rows:
        load = load + placed_hvac_wh(index, builder, final_soc_wh)[:, steps]
    residual = load - pv + charge - discharge - grid - p2p
    unserved = np.where(residual > ROUNDING_WH, residual, 0.0)
    curtailed = np.where(residual < -ROUNDING_WH, -residual, 0.0)
    capacities = index.capacities_between(intervals.start, intervals.stop)
    return RunFlows(
        load_kwh=load / 1000, pv_kwh=pv / 1000,
        grid_import_kwh=np.maximum(grid, 0) / 1000, grid_export_kwh=np.maximum(-grid, 0) / 1000,
        p2p_buy_kwh=np.maximum(p2p, 0) / 1000, p2p_sell_kwh=np.maximum(-p2p, 0) / 1000,
        charge_kwh=charge / 1000, discharge_kwh=discharge / 1000,
        curtailed_kwh=curtailed / 1000, unserved_kwh=unserved / 1000,
        paid=-amount / UNITS_PER_TOKEN,
        storage_start_kwh=soc[:, 0] / 1000, storage_end_kwh=soc[:, -1] / 1000,
        battery_capacity_kwh=capacity / 1000,
        import_capacity_kwh=np.array([c[0] for c in capacities], dtype=float) / 1000,
        export_capacity_kwh=np.array([c[1] for c in capacities], dtype=float) / 1000,
        step_hours=builder.config.market.interval_hours,
        homes=builder.community.names,
    )


def placed_job_starts(index: Index, builder: InputsBuilder, final_state: Mapping[int, int]) -> dict[tuple[int, int], int]:
    """Where the optimiser started each job: read from the committed inputs of the
    settled intervals (a started job is listed started at least once after its start),
    and from the state after the last one (node.clearing.interval.CarriedState)."""
    starts: dict[tuple[int, int], int] = {}
    for k in builder.intervals:
        row = index.interval(k)
        if row is not None:
            for job in IntervalInputs.from_json(index.inputs(row["inputs_hash"])).jobs:
                if job.started_interval is not None:
                    starts[(job.participant, job.job)] = job.started_interval
    starts.update(getattr(final_state, "job_starts", {}))
    return starts


def placed_hvac_wh(index: Index, builder: InputsBuilder, final_state: Mapping[int, int]) -> np.ndarray:
    """(N, steps) what the optimiser ran the HVACs at, Wh: from each settled interval's
    committed indoor temperature and the next one's (the last from the final state), by
    the inputs' own thermal model (milli-degrees: within a Wh or so)."""
    energy = np.zeros(builder.load_wh.shape)
    row = {int(p): i for i, p in enumerate(builder.participants)}
    settled = [(k, index.interval(k)) for k in builder.intervals]
    inputs = [IntervalInputs.from_json(index.inputs(r["inputs_hash"])) for _, r in settled if r is not None]
    final = getattr(final_state, "indoor_mc", {})
    for now, after in zip(inputs, inputs[1:] + [None]):
        if not now.hvacs:
            continue
        thermal = now.clearing_thermal(row)
        next_mc = {h.participant: h.indoor_mc for h in after.hvacs} if after is not None else final
        for unit, h in enumerate(now.hvacs):
            if h.participant in next_mc:
                rise = next_mc[h.participant] / 1000 - thermal.decay[unit] * thermal.indoor_c[unit] - (
                    1 - thermal.decay[unit]) * thermal.outdoor_c[unit, 0]
                energy[row[h.participant], now.interval - builder.first_interval] += 1000 * rise / thermal.gain_k_per_kwh[unit]
    return np.clip(np.rint(energy), 0, None)


def baseline_load_wh(builder: InputsBuilder) -> np.ndarray:
    """The baseline's consumption: the data, every deferrable job at its earliest start,
    and the HVACs the market runs by a plain thermostat."""
    load = builder.load_wh + builder.job_energy_wh(builder.earliest_job_starts()) if builder.jobs else builder.load_wh
    return load if builder.baseline_extra_wh is None else load + builder.baseline_extra_wh


def run_baseline_of(builder: InputsBuilder, terms: Terms | None = None) -> BaselineResult:
    """The no-trading baseline over all of the data, on exactly the market's inputs: the
    load and PV in whole Wh as committed (deferrable jobs at their earliest start), the
    tariffs, and the grid capacity the chain's `terms` give each interval (else the
    configured one)."""
    config = builder.config
    times = [builder.start_of(k) for k in builder.intervals]
    capacity = np.array([_capacity(builder, terms, k) for k in builder.intervals], dtype=float).reshape(-1, 2) / 1000
    batteries = builder.inputs(builder.first_interval, builder.initial_soc()).to_clearing_inputs().batteries
    return run_baseline(baseline_load_wh(builder) / 1000, builder.pv_wh / 1000, batteries, config.tariffs.buy_price(times),
                        config.tariffs.sell_price(times), capacity[:, 0], capacity[:, 1])


def baseline_flows(builder: InputsBuilder, result: BaselineResult, terms: Terms | None = None, steps: int | None = None) -> RunFlows:
    """The flows of `result` (run_baseline_of(builder, terms)) over its first `steps`
    steps (default: all; fewer to compare with a market that has settled only so far),
    storage at the end taken after them."""
    S = result.cost.shape[1] if steps is None else steps
    batteries = builder.inputs(builder.first_interval, builder.initial_soc()).to_clearing_inputs().batteries
    N = builder.load_wh.shape[0]
    per_home = _per_home_sum(batteries.home, N)
    capacity = [_capacity(builder, terms, k) for k in builder.intervals[:S]]
    load = baseline_load_wh(builder)[:, :S] / 1000
    return RunFlows(
        load_kwh=load, pv_kwh=builder.pv_wh[:, :S] / 1000,
        grid_import_kwh=result.grid_import_kwh[:, :S], grid_export_kwh=result.grid_export_kwh[:, :S],
        p2p_buy_kwh=np.zeros_like(load), p2p_sell_kwh=np.zeros_like(load),
        charge_kwh=per_home @ result.battery_charge_kwh[:, :S], discharge_kwh=per_home @ result.battery_discharge_kwh[:, :S],
        curtailed_kwh=result.curtailed_kwh[:, :S], unserved_kwh=result.shed_kwh[:, :S], paid=result.cost[:, :S],
        storage_start_kwh=per_home @ result.soc_kwh[:, 0], storage_end_kwh=per_home @ result.soc_kwh[:, S],
        battery_capacity_kwh=per_home @ batteries.capacity_kwh,
        import_capacity_kwh=np.array([c[0] for c in capacity], dtype=float) / 1000,
        export_capacity_kwh=np.array([c[1] for c in capacity], dtype=float) / 1000,
        step_hours=builder.config.market.interval_hours,
        homes=builder.community.names,
    )


def _capacity(builder: InputsBuilder, terms: Terms | None, interval: int) -> tuple[int, int]:
    known = None if terms is None else terms.capacity_of(interval)
    return known if known is not None else (builder.import_wh, builder.export_wh)


def _settled_range(index: Index, builder: InputsBuilder) -> range:
    last = index.last_interval()
    stop = builder.first_interval if last is None else min(last + 1, builder.intervals.stop)
    return range(builder.first_interval, max(stop, builder.first_interval))


def _battery_states(index: Index, intervals: range, row: dict[int, int], final_soc_wh: Mapping[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """States of charge (N, S + 1) at the start of each interval and after the last, Wh,
    and each home's battery capacity (N,). The inputs hold one battery per participant."""
    states: dict[int, dict[int, int]] = {}
    capacity: dict[int, int] = {}
    for s in index.battery_series():
        if intervals.start <= s["interval"] < intervals.stop:
            states.setdefault(s["participant"], {})[s["interval"]] = s["soc_wh"]
            capacity[s["participant"]] = s["capacity_wh"]
    soc = np.zeros((len(row), len(intervals) + 1))
    caps = np.zeros(len(row))
    for pid, by_interval in states.items():
        if pid not in row:
            continue
        series = [by_interval.get(k) for k in intervals] + [final_soc_wh.get(pid)]
        # A missing state (a home not in those inputs) carries the last known one.
        known = next((v for v in series if v is not None), 0)
        for j, v in enumerate(series):
            known = known if v is None else v
            soc[row[pid], j] = known
        caps[row[pid]] = capacity[pid]
    return soc, caps


def _per_home_sum(home: np.ndarray, homes: int) -> np.ndarray:
    """(N, B) 0/1 matrix summing battery rows into their homes."""
    matrix = np.zeros((homes, home.shape[0]))
    matrix[home, np.arange(home.shape[0])] = 1.0
    return matrix


def baseline_rows(builder: InputsBuilder, result: BaselineResult) -> list[tuple]:
    """The baseline per interval and home as the index keeps it: (interval, participant,
    grid_import_wh, grid_export_wh, cost in minor units)."""
    imports = np.rint(result.grid_import_kwh * 1000).astype(np.int64)
    exports = np.rint(result.grid_export_kwh * 1000).astype(np.int64)
    cost = np.rint(result.cost * UNITS_PER_TOKEN).astype(np.int64)
    return [(interval, int(pid), int(imports[row, step]), int(exports[row, step]), int(cost[row, step]))
            for step, interval in enumerate(builder.intervals) for row, pid in enumerate(builder.participants)]


def evaluate_run(index: Index, builder: InputsBuilder, final_soc_wh: Mapping[int, int], baseline: BaselineResult,
                 terms: Terms | None = None, intensity_g_per_kwh: np.ndarray | None = None) -> Evaluation:
    """The KPIs of the market as settled so far against the baseline over the same
    intervals, stored energy valued alike (node.metrics.kpis.storage_value_per_kwh)."""
    market = settled_flows(index, builder, final_soc_wh)
    steps = market.load_kwh.shape[1]
    base = baseline_flows(builder, baseline, terms, steps)
    if intensity_g_per_kwh is not None:
        intensity = np.asarray(intensity_g_per_kwh, dtype=float)[:steps]
        market, base = replace(market, intensity_g_per_kwh=intensity), replace(base, intensity_g_per_kwh=intensity)
    config = builder.config
    sell = config.tariffs.sell_price([builder.start_of(k) for k in builder.intervals[:steps]])
    value = storage_value_per_kwh(sell, config.batteries.discharge_efficiency)
    horizon_hours = config.market.horizon_steps * config.market.interval_minutes / 60
    return evaluate(market, base, value, config.market.currency, horizon_hours)
