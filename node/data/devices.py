"""Config sections of the flexible devices and of the agents that bid for the homes:
``[hvac]`` (a first-order thermal model and TESP's double-ramp bidding) and
``[agents]`` (who submits each home's order in an auction replay, and how it prices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from node.data.section import Section

HVAC_MODES = ("cool", "heat")
STRATEGIES = ("price_taker", "uniform_bid")


@dataclass(frozen=True)
class HvacConfig(Section):
    """An air conditioner or heat pump: its thermal model and how it bids (the defaults of
    every HVAC the community file or the synthetic community does not size itself).

    Attributes:
        mode: "cool" (air conditioner) or "heat" (heat pump).
        power_kw: electric power while running, kW.
        cop: coefficient of performance, thermal kW per electric kW.
        setpoint_c: preferred indoor temperature, degrees C.
        range_low_c: comfort band below the setpoint, K (TESP's range_low, as a width).
        range_high_c: comfort band above the setpoint, K (TESP's range_high).
        ramp_low: bid slope below the setpoint, in price standard deviations across the
            band (TESP's ramp_low).
        ramp_high: bid slope above the setpoint (TESP's ramp_high).
        resistance_k_per_kw: thermal resistance between inside and outside, K per kW.
        capacitance_kwh_per_k: thermal capacitance of the home, kWh per K.
        outdoor_mean_c: daily mean outdoor temperature, degrees C.
        outdoor_amplitude_c: half the daily swing of the outdoor temperature, K.
        outdoor_warmest_hour: local hour of the warmest outdoor temperature.
    """

    section: ClassVar[str] = "hvac"
    mode: str = "cool"
    power_kw: float = 1.5
    cop: float = 3.0
    setpoint_c: float = 24.0
    range_low_c: float = 2.0
    range_high_c: float = 2.0
    ramp_low: float = 2.0
    ramp_high: float = 2.0
    resistance_k_per_kw: float = 3.0
    capacitance_kwh_per_k: float = 5.0
    outdoor_mean_c: float = 22.0
    outdoor_amplitude_c: float = 6.0
    outdoor_warmest_hour: float = 15.0

    def __post_init__(self) -> None:
        self._require(self.mode in HVAC_MODES, "mode", '"cool" or "heat"')
        self._require(self.power_kw > 0, "power_kw", "a power > 0 kW")
        self._require(0 < self.cop <= 10, "cop", "a coefficient of performance in (0, 10]")
        self._require(5 <= self.setpoint_c <= 35, "setpoint_c", "an indoor temperature in [5, 35] degrees C")
        for name in ("range_low_c", "range_high_c", "ramp_low", "ramp_high"):
            self._require(getattr(self, name) > 0, name, "a number > 0")
        self._require(self.resistance_k_per_kw > 0, "resistance_k_per_kw", "a resistance > 0 K per kW")
        self._require(self.capacitance_kwh_per_k > 0, "capacitance_kwh_per_k", "a capacitance > 0 kWh per K")
        self._require(-50 <= self.outdoor_mean_c <= 50, "outdoor_mean_c", "a temperature in [-50, 50] degrees C")
        self._require(0 <= self.outdoor_amplitude_c <= 30, "outdoor_amplitude_c", "a swing in [0, 30] K")
        self._require(0 <= self.outdoor_warmest_hour < 24, "outdoor_warmest_hour", "an hour in [0, 24)")


@dataclass(frozen=True)
class AgentConfig(Section):
    """Bidding agents: in an auction market each home's agent signs the home's order for
    every interval with the home's key and submits it to the order book.

    Attributes:
        enabled: whether agents bid for the homes (`simulate --agents` turns them on).
        strategy: how a home prices what it must buy or sell: "price_taker" (buys at the
            import tariff and sells at the feed-in tariff, so the grid takes any rest) or
            "uniform_bid" (P2P-Simulator's rule: bid = a x feed-in + (1 - a) x import,
            with a = bid_share; what the auction leaves unfilled is settled by the
            home's supplier outside the community).
        bid_share: uniform_bid's a, in [0, 1] (1 bids the feed-in tariff, 0 the import).
        battery_charge_below: a battery charges when the expected P2P price is at or
            below this point of [feed-in, import] (0 = feed-in, 1 = import).
        battery_discharge_above: a battery discharges when the expected P2P price is at
            or above this point of [feed-in, import].
        price_memory: cleared prices an agent remembers for its mean and standard
            deviation (TESP's price statistics), intervals.
    """

    section: ClassVar[str] = "agents"
    enabled: bool = False
    strategy: str = "price_taker"
    bid_share: float = 0.5
    battery_charge_below: float = 0.3
    battery_discharge_above: float = 0.7
    price_memory: int = 96

    def __post_init__(self) -> None:
        self._require(self.strategy in STRATEGIES, "strategy", '"price_taker" or "uniform_bid"')
        self._require(0 <= self.bid_share <= 1, "bid_share", "a fraction in [0, 1]")
        self._require(0 <= self.battery_charge_below <= 1, "battery_charge_below", "a fraction in [0, 1]")
        self._require(
            self.battery_charge_below < self.battery_discharge_above <= 1,
            "battery_discharge_above",
            f"a fraction in (battery_charge_below ({self.battery_charge_below}), 1]",
        )
        self._require(self.price_memory >= 1, "price_memory", "an integer >= 1")
