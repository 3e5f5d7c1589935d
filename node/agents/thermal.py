r"""An air conditioner or heat pump: a first-order thermal model of the home and TESP's
double-ramp bidding (the Olympic Peninsula controller of GridLAB-D/TESP).

Thermal model (one resistance R to outside, one capacitance C; exact over an interval
of h hours in which the inputs are constant)::

    C dT/dt = (T_out - T) / R + s COP P_el d          s = -1 cooling, +1 heating
    T' = T_eq + (T - T_eq) exp(-h / (R C)),   T_eq = T_out + s COP P_el d R

with d in [0, 1] the share of the interval the unit runs. The outdoor temperature is a
daily sinusoid from the config ([hvac] outdoor_*), at each interval's midpoint.

Double-ramp bid (TESP/GridLAB-D ``CN_RAMP``, with the band widths as positive numbers):
the comfort band is [setpoint - range_low, setpoint + range_high]. With the agent's
price mean and standard deviation (TESP's ``mean``, ``std_dev``) and dT = T - setpoint,
a cooling unit bids

    T >= setpoint + range_high          the price cap (it must run)
    T <= setpoint - range_low           nothing (it must not)
    otherwise                           mean + dT ramp std / range

with (ramp, range) = (ramp_high, range_high) above the setpoint and (ramp_low,
range_low) below; a heating unit mirrors it (its need grows as T falls). The bid is
clipped to [0, cap]. After the interval clears at P the thermostat's setpoint moves by
TESP's offset ``(P - mean) range / (ramp std)`` (the inverse of the bid ramp; up for a
cooling unit when power is dear), clipped to the band: the setpoint the agent reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from node.data.community import HvacSpec
from node.data.devices import HvacConfig


@dataclass
class Thermostat:
    """One home's HVAC: its spec, the shared thermal model, and the indoor temperature."""

    spec: HvacSpec
    model: HvacConfig
    indoor_c: float
    setpoint_c: float  # the setpoint after the last clearing's offset

    @staticmethod
    def start(spec: HvacSpec, model: HvacConfig) -> "Thermostat":
        return Thermostat(spec, model, spec.setpoint_c, spec.setpoint_c)

    @property
    def sign(self) -> int:
        return -1 if self.spec.mode == "cool" else 1

    def bid(self, mean: float, std: float, cap: float) -> float | None:
        """The double-ramp bid price (currency units per kWh as `mean`), None: no bid."""
        m, base = self.model, self.spec.setpoint_c
        deviation = self.indoor_c - base
        need = deviation if self.spec.mode == "cool" else -deviation  # > 0: the unit should run
        upper = m.range_high_c if self.spec.mode == "cool" else m.range_low_c
        lower = m.range_low_c if self.spec.mode == "cool" else m.range_high_c
        if need >= upper:
            return cap
        if need <= -lower:
            return None
        above = deviation > 0
        ramp, width = (m.ramp_high, m.range_high_c) if above else (m.ramp_low, m.range_low_c)
        price = mean + need * ramp * std / width
        return min(max(price, 0.0), cap)

    def respond(self, price: float, mean: float, std: float) -> None:
        """TESP's setpoint offset from the cleared price."""
        m = self.model
        if std <= 0:
            self.setpoint_c = self.spec.setpoint_c
            return
        # A price above the mean is where the bid ramp sits on the needy side of the
        # setpoint: above it for a cooling unit, below it for a heating one.
        above = (price > mean) == (self.spec.mode == "cool")
        ramp, width = (m.ramp_high, m.range_high_c) if above else (m.ramp_low, m.range_low_c)
        offset = (price - mean) * width / (ramp * std)
        offset = offset if self.spec.mode == "cool" else -offset
        self.setpoint_c = self.spec.setpoint_c + min(max(offset, -m.range_low_c), m.range_high_c)

    def energy_wh(self, hours: float) -> int:
        """Electric energy of a whole interval of running, Wh."""
        return int(round(self.spec.power_kw * hours * 1000))

    def advance(self, duty: float, outdoor_c: float, hours: float) -> None:
        """The indoor temperature after an interval in which the unit ran `duty` of the time."""
        m = self.model
        equilibrium = outdoor_c + self.sign * self.spec.cop * self.spec.power_kw * duty * m.resistance_k_per_kw
        decay = math.exp(-hours / (m.resistance_k_per_kw * m.capacitance_kwh_per_k))
        self.indoor_c = equilibrium + (self.indoor_c - equilibrium) * decay

    def thermostat_duty(self) -> float:
        """A plain thermostat's duty (no market): run whenever the home is on the wrong
        side of the setpoint at the start of the interval."""
        need = (self.indoor_c - self.spec.setpoint_c) * (1 if self.spec.mode == "cool" else -1)
        return 1.0 if need > 0 else 0.0


def outdoor_temperature(model: HvacConfig, starts: pd.DatetimeIndex, interval: pd.Timedelta, timezone: str) -> np.ndarray:
    """The outdoor temperature at each interval's midpoint, degrees C."""
    local = (starts + interval / 2).tz_convert(timezone)
    hour = (local.hour + local.minute / 60 + local.second / 3600).to_numpy()
    return model.outdoor_mean_c + model.outdoor_amplitude_c * np.cos(2 * np.pi * (hour - model.outdoor_warmest_hour) / 24)


def thermostat_load_kwh(specs: list[HvacSpec | None], model: HvacConfig, starts: pd.DatetimeIndex,
                        interval: pd.Timedelta, timezone: str) -> np.ndarray:
    """What each home's HVAC draws under a plain thermostat, kWh per interval (N, S): the
    reference a market without HVAC bidding sees as inflexible load."""
    hours = interval / pd.Timedelta(hours=1)
    outdoor = outdoor_temperature(model, starts, interval, timezone)
    load = np.zeros((len(specs), len(starts)))
    for i, spec in enumerate(specs):
        if spec is None:
            continue
        unit = Thermostat.start(spec, model)
        for step, temperature in enumerate(outdoor):
            duty = unit.thermostat_duty()
            load[i, step] = spec.power_kw * hours * duty
            unit.advance(duty, temperature, hours)
    return load
