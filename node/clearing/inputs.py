"""The committed inputs of one clearing: canonical, integer, content-addressed.

An interval's inputs are everything the optimiser sees (forecasts over the horizon,
tariffs, capacities, battery specs and states), in chain units (Wh, minor units per
kWh, parts per million). Their canonical JSON is hashed with keccak256; the hash goes
on chain with the settlement, so anyone holding the JSON can prove it is what the
oracle cleared and re-run the clearing bit for bit.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from functools import cached_property

import numpy as np
from eth_utils import keccak

from node.clearing.network_inputs import NetworkInputs
from node.errors import InputError
from node.units import PPM, UNITS_PER_TOKEN
from optimizer.types import Batteries, ClearingInputs, Jobs, Thermal

FORMAT_VERSION = 2
MECHANISMS = ("community", "auction")
_ADDED_IN_2 = ("mechanism", "pricing", "mandates", "orders")


@dataclass(frozen=True)
class BatteryInputs:
    participant: int
    capacity_wh: int
    max_charge_wh: int  # per interval
    max_discharge_wh: int
    charge_efficiency_ppm: int
    discharge_efficiency_ppm: int
    soc_wh: int  # at the start of the interval
    min_soc_wh: int
    # The optimiser's bounds: the physical ones narrowed by the owner's mandate (see
    # node.clearing.mandate_soc_bounds); None = the whole capacity.
    max_soc_wh: int | None = None

    @property
    def upper_wh(self) -> int:
        return self.capacity_wh if self.max_soc_wh is None else self.max_soc_wh


@dataclass(frozen=True)
class JobInputs:
    """A deferrable job (node.data.jobs) on the interval grid: it may start in any interval
    from `earliest_interval` to `latest_interval` (within the window its participant
    signed, `signed_window`: SignedJobWindow.to_json(); None = not flexible, and then the
    two are equal) and draws `energy_wh[l]` in the l-th interval after its start.
    `started_interval` is where it started, once an interval it runs in was settled: a
    started job is committed, its draw is data."""

    participant: int
    job: int  # the job's id (node.data.jobs.Job.job_id), as in its signed window
    energy_wh: list[int]
    earliest_interval: int
    latest_interval: int
    started_interval: int | None = None
    signed_window: dict | None = None


@dataclass(frozen=True)
class HvacInputs:
    """A home's air conditioner or heat pump for the optimiser (optimizer.types.Thermal),
    in integers: temperatures in milli-degrees C, resistance in milli-K per kW,
    capacitance in Wh per K. `indoor_mc` is the state at the start of the interval;
    `outdoor_mc` the outdoor temperature per step of the horizon."""

    participant: int
    max_wh: int  # electric energy of a whole interval of running
    cop_ppm: int
    mode: str  # "cool" or "heat"
    resistance_mk_per_kw: int
    capacitance_wh_per_k: int
    interval_s: int
    indoor_mc: int
    outdoor_mc: list[int]
    comfort_low_mc: int
    comfort_high_mc: int

    def __post_init__(self) -> None:
        if self.mode not in ("cool", "heat"):
            raise InputError(f"HVAC of participant {self.participant}: mode must be 'cool' or 'heat', got {self.mode!r}")


@dataclass(frozen=True)
class ShareInputs:
    """A share participant: a home's account in shared battery `battery`, holding
    `share_wh` of it (node.data.shared_batteries). Its battery (in `batteries`) is the
    account; on what it takes in it pays the storage fee."""

    participant: int
    battery: int
    share_wh: int
    # What the account can deliver at the start of the interval, pWh, as the contract
    # keeps it (node.clearing.shares); None in inputs committed before it was carried.
    deliverable_pwh: int | None = None


@dataclass(frozen=True)
class SharedBatteryInputs:
    """A shared battery whose accounts are share participants: its capacity and the most
    energy it takes in or gives out in an interval, Wh."""

    battery: int
    capacity_wh: int
    max_charge_wh: int
    max_discharge_wh: int


@dataclass(frozen=True)
class IntervalInputs:
    """Inputs of the clearing of `interval`; matrices are participants x horizon."""

    interval: int
    start: str  # ISO 8601 start of the interval, UTC
    participants: list[int]
    load_wh: list[list[int]]
    pv_wh: list[list[int]]
    buy_price: list[int]  # minor units per kWh, per step
    sell_price: list[int]
    import_capacity_wh: list[int]
    export_capacity_wh: list[int]
    p2p_cost: int  # minor units per kWh traded between participants
    batteries: list[BatteryInputs]
    # Meter values this interval's settlement used that no meter read (estimated gaps,
    # dropped duplicate rows; see node.data.meter_policy), so an auditor sees them.
    repairs: list[dict] = field(default_factory=list)
    # How the interval clears: the community optimiser, or a double auction of the
    # signed `orders` with `pricing` "uniform" or "pay_as_bid" (optimizer.auction).
    mechanism: str = "community"
    pricing: str = "uniform"
    # The mandates in force on chain when the inputs were built (node.mandates
    # MandateTerms as dicts). The community clearing settles only participants with one
    # and keeps within its limits; None means "every participant" (inputs built
    # without a chain, e.g. in tests of the optimiser path).
    mandates: list[dict] | None = None
    # Signed orders for this interval (SignedOrder.to_json()), at most one per participant.
    orders: list[dict] = field(default_factory=list)
    version: int = FORMAT_VERSION
    # The chain's terms the interval is priced by (its version, the P2P fee per kWh
    # bought), and the participants left out because their wallet and credit could not
    # pay their energy at the import tariff (the contract checks that on the exclusion).
    terms_index: int = 0
    p2p_fee: int = 0
    credit_excluded: list[int] = field(default_factory=list)
    # The network the interval clears on (zones, lines, limits per step; see
    # node.clearing.network_inputs); None on a copper plate.
    network: NetworkInputs | None = None
    # Deferrable jobs the community optimiser places (pending within their windows, or
    # started and still drawing or inside their window).
    jobs: list[JobInputs] = field(default_factory=list)
    hvacs: list[HvacInputs] = field(default_factory=list)  # HVACs the community optimiser runs
    # Shared batteries (issue 12): the chain's storage fee (units per kWh a share
    # participant takes in) and the participant it goes to, the share participants and
    # the batteries they are accounts in.
    storage_fee: int = 0
    storage_operator: int = 0
    shares: list[ShareInputs] = field(default_factory=list)
    shared_batteries: list[SharedBatteryInputs] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise InputError(f"inputs mechanism must be one of {', '.join(MECHANISMS)}, got {self.mechanism!r}")
        if self.pricing not in ("uniform", "pay_as_bid"):
            raise InputError(f"inputs pricing must be 'uniform' or 'pay_as_bid', got {self.pricing!r}")

    def canonical_json(self) -> bytes:
        """Sorted keys, no whitespace, integers only: one byte string per inputs."""
        return self._canonical

    def hash(self) -> bytes:
        return self._hash

    @cached_property
    def _canonical(self) -> bytes:
        # A shallow dict: dataclasses.asdict would deep-copy the N x T matrices.
        document = {f.name: getattr(self, f.name) for f in fields(self)}
        document["batteries"] = [asdict(b) for b in self.batteries]
        document["jobs"] = [asdict(j) for j in self.jobs]
        document["hvacs"] = [asdict(h) for h in self.hvacs]
        # Inputs committed before shares carried their energy keep their hash.
        document["shares"] = [{k: v for k, v in asdict(x).items() if v is not None} for x in self.shares]
        document["shared_batteries"] = [asdict(x) for x in self.shared_batteries]
        if self.network is None:
            del document["network"]  # inputs without one hash as they did before it existed
        else:
            document["network"] = asdict(self.network)
        # Left out when empty, so inputs without repairs hash exactly as they did before
        # this field existed and FORMAT_VERSION stays 1; so are the chain's terms fields
        # at their defaults, for inputs written before them.
        if not self.repairs:
            del document["repairs"]
        for name, default in (("terms_index", 0), ("p2p_fee", 0), ("credit_excluded", []), ("jobs", []),
                              ("hvacs", []), ("storage_fee", 0), ("storage_operator", 0), ("shares", []),
                              ("shared_batteries", [])):
            if document[name] == default:
                del document[name]
        if self.version == 1:
            # Version 1 inputs (settled before mechanisms and mandates were committed)
            # must keep hashing exactly as they were written.
            for name in _ADDED_IN_2:
                del document[name]
            for battery in document["batteries"]:
                del battery["max_soc_wh"]
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()

    @cached_property
    def _hash(self) -> bytes:
        return keccak(self._canonical)

    @staticmethod
    def from_json(data: bytes | str) -> "IntervalInputs":
        try:
            raw = json.loads(data)
            raw["batteries"] = [BatteryInputs(**b) for b in raw["batteries"]]
            raw["jobs"] = [JobInputs(**j) for j in raw.get("jobs", [])]
            raw["hvacs"] = [HvacInputs(**h) for h in raw.get("hvacs", [])]
            raw["shares"] = [ShareInputs(**x) for x in raw.get("shares", [])]
            raw["shared_batteries"] = [SharedBatteryInputs(**x) for x in raw.get("shared_batteries", [])]
            if raw.get("network") is not None:
                raw["network"] = NetworkInputs(**raw["network"])
            inputs = IntervalInputs(**raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise InputError(f"not a GridLedger interval inputs document: {exc}") from exc
        if inputs.version not in (1, FORMAT_VERSION):
            raise InputError(f"inputs format version {inputs.version} is not supported (expected 1 or {FORMAT_VERSION})")
        return inputs

    def to_clearing_inputs(self) -> ClearingInputs:
        """The optimiser's view of these inputs, in kWh and currency per kWh."""
        row = {pid: i for i, pid in enumerate(self.participants)}
        b = self.batteries
        batteries = Batteries(
            home=np.array([row[x.participant] for x in b], dtype=int),
            capacity_kwh=_kwh([x.upper_wh for x in b]),
            max_charge_kwh=_kwh([x.max_charge_wh for x in b]),
            max_discharge_kwh=_kwh([x.max_discharge_wh for x in b]),
            charge_efficiency=np.array([x.charge_efficiency_ppm for x in b], dtype=float) / PPM,
            discharge_efficiency=np.array([x.discharge_efficiency_ppm for x in b], dtype=float) / PPM,
            soc_kwh=_kwh([x.soc_wh for x in b]),
            min_soc_kwh=_kwh([x.min_soc_wh for x in b]),
            charge_cost_per_kwh=self._charge_cost_per_kwh(),
        )
        return ClearingInputs(
            load_kwh=_kwh(self.load_wh),
            pv_kwh=_kwh(self.pv_wh),
            buy_price_per_kwh=np.array(self.buy_price, dtype=float) / UNITS_PER_TOKEN,
            sell_price_per_kwh=np.array(self.sell_price, dtype=float) / UNITS_PER_TOKEN,
            import_capacity_kwh=_kwh(self.import_capacity_wh),
            export_capacity_kwh=_kwh(self.export_capacity_wh),
            p2p_cost_per_kwh=self.p2p_cost / UNITS_PER_TOKEN,
            batteries=batteries,
            network=None if self.network is None else self.network.to_network(),
            jobs=self.clearing_jobs(row),
            thermal=self.clearing_thermal(row),
        )

    def _charge_cost_per_kwh(self) -> np.ndarray | None:
        """(B,) the storage fee a share participant's battery pays per kWh charged; None without shares."""
        if not self.shares or not self.storage_fee:
            return None
        shares = {s.participant for s in self.shares}
        return np.array([self.storage_fee if b.participant in shares else 0 for b in self.batteries],
                        dtype=float) / UNITS_PER_TOKEN

    def clearing_thermal(self, row: dict[int, int]) -> Thermal:
        """The optimiser's view of the HVACs, in kWh, kelvin and hours."""
        if not self.hvacs:
            return Thermal.none()
        h = self.hvacs
        steps = {x.interval_s for x in h}
        if len(steps) != 1:
            raise InputError(f"the inputs' HVACs disagree on the interval length: {sorted(steps)} s")

        def array(name: str, scale: float) -> np.ndarray:
            return np.array([getattr(x, name) for x in h], dtype=float) / scale

        return Thermal(
            home=np.array([row[x.participant] for x in h], dtype=int),
            max_kwh=array("max_wh", 1000),
            cop=array("cop_ppm", PPM),
            sign=np.array([-1.0 if x.mode == "cool" else 1.0 for x in h]),
            resistance_k_per_kw=array("resistance_mk_per_kw", 1000),
            capacitance_kwh_per_k=array("capacitance_wh_per_k", 1000),
            step_hours=steps.pop() / 3600,
            indoor_c=array("indoor_mc", 1000),
            outdoor_c=np.array([x.outdoor_mc for x in h], dtype=float) / 1000,
            comfort_low_c=array("comfort_low_mc", 1000),
            comfort_high_c=array("comfort_high_mc", 1000),
        )

    def clearing_jobs(self, row: dict[int, int]) -> Jobs:
        """The optimiser's view of the jobs: steps relative to this interval, kWh."""
        if not self.jobs:
            return Jobs.none()
        length = max(len(j.energy_wh) for j in self.jobs)
        energy = np.zeros((len(self.jobs), length))
        for i, j in enumerate(self.jobs):
            energy[i, : len(j.energy_wh)] = j.energy_wh
        started = np.array([j.started_interval is not None for j in self.jobs])
        return Jobs(
            home=np.array([row[j.participant] for j in self.jobs], dtype=int),
            energy_kwh=energy / 1000,
            earliest=np.array([j.earliest_interval - self.interval for j in self.jobs], dtype=int),
            latest=np.array([j.latest_interval - self.interval for j in self.jobs], dtype=int),
            started=started,
            start=np.array([0 if j.started_interval is None else j.started_interval - self.interval for j in self.jobs],
                           dtype=int),
        )


def _kwh(values) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(np.shape(values)) / 1000
