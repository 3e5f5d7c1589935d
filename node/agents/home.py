"""One home's bidding agent: its must-run energy from the data, its battery and HVAC,
the steps they bid each interval, and what the clearing did to them.

The agent forecasts perfectly (the data is its forecast, as the oracle's inputs are) and
decides with what every participant can know: the tariffs, and the prices the market
cleared at before (public once settled). Battery arbitrage: charge when the expected
P2P price is at or below ``battery_charge_below`` of the way from the feed-in to the
import tariff, discharge when at or above ``battery_discharge_above``; the expected
price is the price cleared at the same time the day before, else the last one, else
the middle of the tariffs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from node.agents.bids import Composed, Step, allocate
from node.agents.thermal import Thermostat
from node.data.community import BatterySpec
from node.data.devices import AgentConfig


@dataclass(frozen=True)
class MarketView:
    """What every agent knows when it bids for an interval; prices in units per kWh."""

    interval: int
    buy: int
    sell: int
    expected: float
    mean: float
    std: float
    outdoor_c: float
    hours: float

    def between(self, fraction: float) -> int:
        """The price `fraction` of the way from the feed-in to the import tariff."""
        return int(round(self.sell + fraction * (self.buy - self.sell)))


@dataclass
class Battery:
    """A battery run by its home's agent; energy in Wh (the state is kept exact, in floats)."""

    spec: BatterySpec
    max_wh: int  # per interval, at the terminals (power, capped by the connection)
    soc_wh: float = field(init=False)

    def __post_init__(self) -> None:
        self.soc_wh = self.spec.initial_soc * self.capacity_wh

    @property
    def capacity_wh(self) -> float:
        return self.spec.capacity_kwh * 1000

    def charge_room_wh(self) -> int:
        return int(min(self.max_wh, (self.capacity_wh - self.soc_wh) / self.spec.charge_efficiency))

    def discharge_room_wh(self) -> int:
        return int(min(self.max_wh, (self.soc_wh - self.spec.min_soc * self.capacity_wh) * self.spec.discharge_efficiency))

    def apply(self, charged_wh: int, discharged_wh: int) -> None:
        self.soc_wh += charged_wh * self.spec.charge_efficiency - discharged_wh / self.spec.discharge_efficiency


@dataclass
class HomeAgent:
    """The agent of participant `participant`; `base_wh` is the home's must-run energy per
    interval of the data (consumption incl. scheduled jobs, less production; + buys)."""

    participant: int
    name: str
    base_wh: list[int]
    first_interval: int
    rules: AgentConfig
    battery: Battery | None = None
    hvac: Thermostat | None = None
    connection_wh: int | None = None

    def steps(self, view: MarketView) -> list[Step]:
        steps = []
        base = self.base_wh[view.interval - self.first_interval]
        if base:
            steps.append(Step("base", base, self._must_price(view, base > 0), True))
        if self.hvac is not None:
            bid = self.hvac.bid(view.mean, view.std, float(view.buy))
            if bid is not None:
                steps.append(Step("hvac", self.hvac.energy_wh(view.hours), int(round(bid)), bid >= view.buy))
        if self.battery is not None:
            charge, discharge = self.battery.charge_room_wh(), self.battery.discharge_room_wh()
            if charge > 0:
                steps.append(Step("charge", charge, view.between(self.rules.battery_charge_below), False))
            if discharge > 0:
                steps.append(Step("discharge", -discharge, view.between(self.rules.battery_discharge_above), False))
        return self._within_connection(steps)

    def observe(self, view: MarketView, composed: Composed, filled_wh: int, price: int) -> dict:
        """Applies the interval's outcome to the devices; returns the agent's record of it."""
        served = allocate(composed, filled_wh)
        row = {"interval": view.interval, "participant": self.participant, "name": self.name,
               "side": {None: "", 0: "buy", 1: "sell"}[composed.side], "order_wh": composed.energy_wh,
               "limit": composed.limit, "filled_wh": filled_wh}
        base = next((s.energy_wh for s in composed.steps if s.device == "base"), 0)
        outside = base - served.get("base", 0)
        row["outside_import_wh"], row["outside_export_wh"] = max(outside, 0), max(-outside, 0)
        if self.hvac is not None:
            energy = self.hvac.energy_wh(view.hours)
            duty = served.get("hvac", 0) / energy if energy else 0.0
            self.hvac.advance(duty, view.outdoor_c, view.hours)
            self.hvac.respond(price, view.mean, view.std)
            row.update(hvac_wh=served.get("hvac", 0), indoor_c=round(self.hvac.indoor_c, 3),
                       setpoint_c=round(self.hvac.setpoint_c, 3))
        if self.battery is not None:
            self.battery.apply(served.get("charge", 0), -served.get("discharge", 0))
            row["soc_wh"] = round(self.battery.soc_wh, 3)
        return row

    def _must_price(self, view: MarketView, buying: bool) -> int:
        if self.rules.strategy == "uniform_bid":
            # P2P-Simulator's uniform auction rule: a x SMP + (1 - a) x retail.
            return view.between(1 - self.rules.bid_share)
        return view.buy if buying else view.sell

    def _within_connection(self, steps: list[Step]) -> list[Step]:
        """Flexible steps cut so that the home's net stays within its connection."""
        if self.connection_wh is None:
            return steps
        kept = [s for s in steps if s.must]
        for s in sorted((s for s in steps if not s.must), key=lambda s: s.device):
            net = sum(k.energy_wh for k in kept)
            room = self.connection_wh - net if s.energy_wh > 0 else self.connection_wh + net
            size = min(abs(s.energy_wh), max(room, 0))
            if size:
                kept.append(Step(s.device, size if s.energy_wh > 0 else -size, s.limit, s.must))
        return kept
