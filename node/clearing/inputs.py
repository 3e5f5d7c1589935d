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
from optimizer.types import Batteries, ClearingInputs

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
        if self.network is None:
            del document["network"]  # inputs without one hash as they did before it existed
        else:
            document["network"] = asdict(self.network)
        # Left out when empty, so inputs without repairs hash exactly as they did before
        # this field existed and FORMAT_VERSION stays 1; so are the chain's terms fields
        # at their defaults, for inputs written before them.
        if not self.repairs:
            del document["repairs"]
        for name, default in (("terms_index", 0), ("p2p_fee", 0), ("credit_excluded", [])):
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
        )


def _kwh(values) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(np.shape(values)) / 1000
