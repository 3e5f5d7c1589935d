"""Each interval's canonical clearing inputs, cut from a community's data and the chain's terms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from node.agents.thermal import outdoor_temperature
from node.clearing.inputs import (PPM, BatteryInputs, HvacInputs, IntervalInputs, JobInputs, ShareInputs,
                                  SharedBatteryInputs)
from node.clearing.interval import mandate_soc_bounds
from node.clearing.shares import stored_pwh
from node.data.assets import battery_spec_of
from node.data.shared_batteries import shared_batteries_of
from node.data.community import Community, Home
from node.data.config import CommunityConfig
from node.data.meter_policy import Repair, committed_repairs
from node.errors import InputError
from node.intent.bounds import MAX_ENTRY_WH
from node.intent.signing import Mandate, SignedOrder
from node.oracle.network import CommunityNetwork
from node.oracle.terms import Terms
from node.units import round_price_units


class InputsBuilder:
    """Cuts a community's data into each interval's canonical inputs.

    Forecasts are the data itself (perfect foresight), which is what a replay of
    metered data can honestly offer; beyond the end of the data the forecast repeats
    the same time of the day before (a persistence forecast), so the horizon never
    shrinks and the optimiser model is never rebuilt.

    `repairs` (from `node.data.dataset.load_dataset_with_report`) go into the committed
    inputs of the interval they belong to. `jobs` are deferrable jobs for the community
    optimiser to place (node.simulation.flex.job_inputs), each not yet started; the state
    handed from interval to interval (node.clearing.interval.CarriedState) says which started.
    With `hvac` the community optimiser runs the homes' HVACs (their spec from the
    community file or the data, the thermal model and outdoor temperature from [hvac]);
    the state carries their indoor temperatures.
    """

    def __init__(
        self, community: Community, config: CommunityConfig, participants: np.ndarray, repairs: Sequence[Repair] = (),
        jobs: Sequence[JobInputs] = (),
        hvac: bool = False,
    ) -> None:
        self.config = config
        self.community = community
        self.participants = np.asarray(participants, dtype=np.int64)
        self.load_wh = _readings_wh(community, community.consumption_kwh, "consumption_kwh")
        self.pv_wh = _readings_wh(community, community.production_kwh, "production_kwh")
        self.repairs = committed_repairs(repairs, community, self.participants)
        self.steps = self.load_wh.shape[1]
        self.first_interval = int(config.market.interval_index(community.timestamps[:1])[0])
        self.horizon = config.market.horizon_steps
        self.steps_per_day = int(round(pd.Timedelta(days=1) / config.market.interval))
        minutes = config.market.interval_minutes
        self.import_wh = int(round(config.grid.import_capacity_kwh(minutes) * 1000))
        self.export_wh = int(round(config.grid.export_capacity_kwh(minutes) * 1000))
        self.battery_rows = [i for i, home in enumerate(community.homes) if home.battery]
        self.battery_specs = {row: battery_inputs_spec(community.homes[row], config) for row in self.battery_rows}
        self.jobs = list(jobs)
        self.hvac_rows = [i for i, home in enumerate(community.homes) if home.hvac is not None] if hvac else []
        self.shares, self.shared_batteries = shared_battery_inputs(community, config, self.participants)
        self.network = CommunityNetwork.of(community, config)  # None: a copper plate
        # What the no-trading baseline consumes beyond the data (HVACs by thermostat), Wh.
        self.baseline_extra_wh: np.ndarray | None = None

    def battery_values(self, key: str, default: int = 0) -> np.ndarray:
        """(N,) one fixed battery parameter per home in chain units (a key of
        `battery_inputs_spec`, e.g. "capacity_wh"); `default` for homes without one."""
        values = np.full(len(self.participants), default, dtype=np.int64)
        for row, spec in self.battery_specs.items():
            values[row] = spec[key]
        return values

    @property
    def intervals(self) -> range:
        return range(self.first_interval, self.first_interval + self.steps)

    def initial_soc(self) -> dict[int, int]:
        socs = {}
        for row in self.battery_rows:
            spec = battery_spec_of(self.community.homes[row], self.config)
            socs[int(self.participants[row])] = int(round(spec.initial_soc * self.battery_specs[row]["capacity_wh"]))
        return socs

    def start_of(self, interval: int) -> pd.Timestamp:
        return self.config.market.start + interval * self.config.market.interval

    def inputs(
        self,
        interval: int,
        soc_wh: dict[int, int],
        terms: Terms | None = None,
        orders: Sequence[SignedOrder] = (),
        credit_excluded: Sequence[int] = (),
    ) -> IntervalInputs:
        """The canonical inputs of `interval` from battery states `soc_wh` and the chain's
        `terms` (mandates in force, capacities, tariffs; None: no chain to ask, everyone
        clears at the configured capacity and tariffs) and, for an auction, the
        interval's signed `orders`. `credit_excluded` are homes whose wallet cannot pay
        for their energy (the oracle asked the chain): they are left out."""
        if interval not in self.intervals:
            raise InputError(f"interval {interval} is outside the data (intervals {self.intervals.start}..{self.intervals.stop - 1})")
        columns = self._columns(interval - self.first_interval)
        times = pd.DatetimeIndex([self.start_of(interval + j) for j in range(self.horizon)])
        buy, sell = self.tariffs(times, terms, interval)
        capacity = [self._capacity(terms, interval + j) for j in range(self.horizon)]
        mandates = None if terms is None else {m.participant: m for m in terms.mandates}
        market = self.config.market
        chain = None if terms is None else terms.prices_of(interval)
        return IntervalInputs(
            interval=interval,
            start=self.start_of(interval).isoformat(),
            participants=[int(p) for p in self.participants],
            load_wh=self.load_wh[:, columns].tolist(),
            pv_wh=self.pv_wh[:, columns].tolist(),
            buy_price=buy,
            sell_price=sell,
            import_capacity_wh=[c[0] for c in capacity],
            export_capacity_wh=[c[1] for c in capacity],
            p2p_cost=round_price_units(self.config.p2p.transaction_cost_per_kwh),
            batteries=[self._battery(row, soc_wh, mandates) for row in self.battery_rows],
            repairs=self.repairs.get(interval - self.first_interval, []),
            mechanism=market.mechanism,
            pricing=market.pricing if chain is None else ("pay_as_bid" if chain.pay_as_bid else "uniform"),
            mandates=None if mandates is None else [m.values() for m in terms.mandates],
            orders=[o.to_json() for o in latest_orders(orders)] if market.mechanism == "auction" else [],
            terms_index=0 if chain is None else chain.index,
            p2p_fee=0 if chain is None else chain.p2p_fee,
            credit_excluded=sorted(int(p) for p in credit_excluded),
            jobs=self._jobs(interval, getattr(soc_wh, "job_starts", {})) if market.mechanism == "community" else [],
            hvacs=self._hvacs(times, getattr(soc_wh, "indoor_mc", {})) if market.mechanism == "community" else [],
            **self._storage(terms, interval, soc_wh),
            network=None if self.network is None else self.network.inputs(interval, self.horizon),
        )

    def _storage(self, terms: Terms | None, interval: int, soc_wh: Mapping[int, int]) -> dict:
        """The shared batteries' part of the inputs: the chain's storage fee and operator
        for the interval (none without a chain), the shares, each with what its account
        can deliver (carried from the interval before; at the start, the energy it was
        registered with: node.clearing.shares), and their batteries."""
        if not self.shares:
            return {}
        fee, operator = (0, 0) if terms is None else terms.storage_of(interval)
        carried = getattr(soc_wh, "share_pwh", {})
        discharge = self.battery_values("discharge_efficiency_ppm")
        row = {int(p): i for i, p in enumerate(self.participants)}
        shares = [replace(s, deliverable_pwh=carried.get(s.participant,
                                                         stored_pwh(soc_wh.get(s.participant, 0),
                                                                    int(discharge[row[s.participant]]))))
                  for s in self.shares]
        return dict(storage_fee=fee, storage_operator=operator, shares=shares,
                    shared_batteries=list(self.shared_batteries))

    def _hvacs(self, times: pd.DatetimeIndex, indoor_mc: Mapping[int, int]) -> list[HvacInputs]:
        """The HVACs the optimiser runs, their indoor temperature from the carried state
        (the setpoint at the start)."""
        if not self.hvac_rows:
            return []
        model, market = self.config.hvac, self.config.market
        outdoor = np.rint(1000 * outdoor_temperature(model, times, market.interval, self.config.tariffs.timezone))
        out = []
        for row in self.hvac_rows:
            spec, pid = self.community.homes[row].hvac, int(self.participants[row])
            setpoint = int(round(spec.setpoint_c * 1000))
            out.append(HvacInputs(
                participant=pid,
                max_wh=int(round(spec.power_kw * market.interval_hours * 1000)),
                cop_ppm=int(round(spec.cop * PPM)),
                mode=spec.mode,
                resistance_mk_per_kw=int(round(model.resistance_k_per_kw * 1000)),
                capacitance_wh_per_k=int(round(model.capacitance_kwh_per_k * 1000)),
                interval_s=int(market.interval.total_seconds()),
                indoor_mc=int(indoor_mc.get(pid, setpoint)),
                outdoor_mc=[int(t) for t in outdoor],
                comfort_low_mc=setpoint - int(round(model.range_low_c * 1000)),
                comfort_high_mc=setpoint + int(round(model.range_high_c * 1000)),
            ))
        return out

    def earliest_job_starts(self) -> dict[tuple[int, int], int]:
        """Every job at the start of its window: how it runs with nobody to place it."""
        return {(j.participant, j.job): j.earliest_interval for j in self.jobs}

    def job_energy_wh(self, starts: Mapping[tuple[int, int], int]) -> np.ndarray:
        """(N, steps of the data) the energy of the jobs started at `starts`, in whole Wh
        (energy falling outside the data is left out)."""
        energy = np.zeros_like(self.load_wh)
        row = {int(p): i for i, p in enumerate(self.participants)}
        for job in self.jobs:
            start = starts.get((job.participant, job.job))
            if start is None:
                continue
            for lag, wh in enumerate(job.energy_wh):
                step = start + lag - self.first_interval
                if 0 <= step < self.steps:
                    energy[row[job.participant], step] += wh
        return energy

    def _jobs(self, interval: int, starts: dict[tuple[int, int], int]) -> list[JobInputs]:
        """The jobs the clearing of `interval` places or must know of: pending ones whose
        window is open or opens within the horizon, and started ones until they stop
        drawing and their window has passed (so each appears started at least once after
        its start, and none is started twice)."""
        out = []
        for job in self.jobs:
            started = starts.get((job.participant, job.job))
            if started is None:
                if job.latest_interval >= interval and job.earliest_interval < interval + self.horizon:
                    out.append(job)
            elif interval <= max(started + len(job.energy_wh), job.latest_interval + 1):
                out.append(replace(job, started_interval=started))
        return out

    def tariffs(self, times: pd.DatetimeIndex, terms: Terms | None, first: int) -> tuple[list[int], list[int]]:
        """Import and export prices (units per kWh) of the intervals from `first` at
        `times`: the chain's terms if known, else the config's tariffs."""
        if terms is not None and terms.prices_of(first) is not None:
            prices = [terms.prices_of(first + j) for j in range(len(times))]
            return [p.import_price for p in prices], [p.export_price for p in prices]
        tariffs = self.config.tariffs
        return ([round_price_units(p) for p in tariffs.buy_price(times)],
                [round_price_units(p) for p in tariffs.sell_price(times)])

    def _capacity(self, terms: Terms | None, interval: int) -> tuple[int, int]:
        known = None if terms is None else terms.capacity_of(interval)
        return known if known is not None else (self.import_wh, self.export_wh)

    def _battery(self, row: int, soc_wh: dict[int, int], mandates: dict[int, Mandate] | None) -> BatteryInputs:
        participant = int(self.participants[row])
        battery = BatteryInputs(participant=participant, soc_wh=soc_wh[participant], **self.battery_specs[row])
        if mandates is None:
            return battery
        low, high = mandate_soc_bounds(battery, mandates.get(participant), battery.soc_wh)
        return replace(battery, min_soc_wh=low, max_soc_wh=high)

    def _columns(self, step: int) -> np.ndarray:
        columns = step + np.arange(self.horizon)
        period = self.steps_per_day if self.steps >= self.steps_per_day else self.steps
        beyond = columns >= self.steps
        columns[beyond] = self.steps - period + (columns[beyond] - self.steps) % period
        return columns


def _readings_wh(community: Community, kwh: np.ndarray, column: str) -> np.ndarray:
    """Meter readings in whole Wh; InputError naming the first one that no settlement
    entry could carry (node.intent.bounds), or that is not a finite amount of at least 0."""
    bad = ~np.isfinite(kwh) | (kwh < 0) | (np.abs(kwh) * 1000 > MAX_ENTRY_WH)
    if bad.any():
        row, step = (int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{community.names[row]}, {community.timestamps[step]}: {column} {kwh[row, step]} is not a "
                         f"reading a settlement can carry (0 to {MAX_ENTRY_WH / 1000:.0f} kWh)", field=column)
    return np.rint(kwh * 1000).astype(np.int64)


def shared_battery_inputs(community: Community, config: CommunityConfig, participants: np.ndarray
                          ) -> tuple[list[ShareInputs], list[SharedBatteryInputs]]:
    """The config's shared batteries as inputs: each share participant of `community`
    (by name) with its battery and share, and each battery's capacity and power per
    interval, in Wh. Empty without shared batteries."""
    shared = shared_batteries_of(config)
    if shared is None:
        return [], []
    row = {name: i for i, name in enumerate(community.names)}
    shares = [ShareInputs(int(participants[row[name]]), battery, int(round(kwh * 1000)))
              for name, (battery, _, kwh) in shared.share_names().items() if name in row]
    step_wh = config.market.interval_hours * 1000
    batteries = [SharedBatteryInputs(i, int(round(b.capacity_kwh * 1000)), int(round(b.power_kw * step_wh)),
                                     int(round(b.power_kw * step_wh))) for i, b in enumerate(shared.batteries)]
    return sorted(shares, key=lambda s: s.participant), batteries


def battery_inputs_spec(home: Home, config: CommunityConfig) -> dict[str, int]:
    """A home battery's fixed parameters in chain units (all but its state of charge).
    A connection limit below the battery's power caps what it may charge or discharge
    per interval (a static bound: the home's other flows within the limit are phase 2's
    per-step constraint in the optimiser)."""
    spec = battery_spec_of(home, config)
    step_h = config.market.interval_hours
    power_kw = spec.power_kw if home.connection_kw is None else min(spec.power_kw, home.connection_kw)
    return dict(
        capacity_wh=int(round(spec.capacity_kwh * 1000)),
        max_charge_wh=int(round(power_kw * step_h * 1000)),
        max_discharge_wh=int(round(power_kw * step_h * 1000)),
        charge_efficiency_ppm=int(round(spec.charge_efficiency * PPM)),
        discharge_efficiency_ppm=int(round(spec.discharge_efficiency * PPM)),
        min_soc_wh=int(round(spec.min_soc * spec.capacity_kwh * 1000)),
    )


def latest_orders(orders: Sequence[SignedOrder]) -> list[SignedOrder]:
    """One order per participant, the one with the highest nonce: a participant amends
    an order by signing a new one (the settlement carries one order per entry)."""
    latest: dict[int, SignedOrder] = {}
    for o in orders:
        if o.order.participant not in latest or o.order.nonce > latest[o.order.participant].order.nonce:
            latest[o.order.participant] = o
    return [latest[p] for p in sorted(latest)]
