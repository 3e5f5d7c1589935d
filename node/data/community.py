"""The shared data model of a community: its homes and their metered energy.

A `Community` is what the synthetic generator and the dataset import both
produce and what the optimiser consumes: one row per home, one column per
market interval, energy in kWh per interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from node.errors import InputError

LONG_COLUMNS: tuple[str, ...] = ("timestamp", "participant", "consumption_kwh", "production_kwh")
"""Columns of the long table: one row per (interval, participant)."""


@dataclass(frozen=True)
class BatterySpec:
    """One home battery's own parameters (what the config's [batteries] gives by default).

    Attributes:
        capacity_kwh: usable energy capacity, kWh.
        power_kw: maximum charge and discharge power, kW.
        charge_efficiency: fraction of the energy taken in that is stored, (0, 1].
        discharge_efficiency: fraction of the stored energy delivered, (0, 1].
        min_soc: lowest state of charge, fraction of capacity, [0, 1).
        initial_soc: state of charge at the start, fraction of capacity, (min_soc, 1].
    """

    capacity_kwh: float
    power_kw: float
    charge_efficiency: float
    discharge_efficiency: float
    min_soc: float
    initial_soc: float

    def __post_init__(self) -> None:
        checks = (
            (self.capacity_kwh > 0, "capacity_kwh", "> 0 kWh"),
            (self.power_kw > 0, "power_kw", "> 0 kW"),
            (0 < self.charge_efficiency <= 1, "charge_efficiency", "in (0, 1]"),
            (0 < self.discharge_efficiency <= 1, "discharge_efficiency", "in (0, 1]"),
            (0 <= self.min_soc < 1, "min_soc", "in [0, 1)"),
            (self.min_soc < self.initial_soc <= 1, "initial_soc", f"in (min_soc = {self.min_soc}, 1]"),
        )
        for ok, name, expected in checks:
            if not ok:
                raise InputError(f"battery {name} must be {expected}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class HvacSpec:
    """One home's air conditioner or heat pump; its thermal model is the config's [hvac].

    Attributes:
        mode: "cool" or "heat".
        power_kw: electric power while running, kW.
        cop: thermal kW per electric kW.
        setpoint_c: preferred indoor temperature, degrees C.
    """

    mode: str
    power_kw: float
    cop: float
    setpoint_c: float

    def __post_init__(self) -> None:
        if self.mode not in ("cool", "heat") or self.power_kw <= 0 or not 0 < self.cop <= 10:
            raise InputError(f"HVAC needs mode cool or heat, power > 0 kW and a COP in (0, 10], got {self}")


@dataclass(frozen=True)
class Home:
    """One household participant.

    Attributes:
        name: unique participant name, e.g. ``home-01``.
        zone: grid zone (feeder) the home is connected to; 0 for a single zone.
        pv_kwp: installed PV peak power in kWp; 0 when the home has no PV.
        battery: whether the home has a battery.
        pv_tilt_deg: roof tilt of the PV array, degrees (None: unknown).
        pv_azimuth_deg: compass direction the PV array faces, degrees, 180 = south.
        battery_spec: the battery's own parameters; None with ``battery`` means the
            config's [batteries].
        connection_kw: the most power the home's grid connection carries either way, kW
            (None: no limit of its own).
        hvac: the home's air conditioner or heat pump, if any.
    """

    name: str
    zone: int
    pv_kwp: float
    battery: bool
    pv_tilt_deg: float | None = None
    pv_azimuth_deg: float | None = None
    battery_spec: BatterySpec | None = None
    connection_kw: float | None = None
    hvac: HvacSpec | None = None

    def __post_init__(self) -> None:
        if self.battery_spec is not None and not self.battery:
            raise InputError(f"home {self.name}: a battery spec without battery = True")
        if self.connection_kw is not None and not self.connection_kw > 0:
            raise InputError(f"home {self.name}: connection_kw must be > 0, got {self.connection_kw}")


@dataclass(frozen=True, eq=False)
class Community:
    """Homes and their energy per interval.

    Attributes:
        homes: the participants, in a fixed order that indexes the arrays' rows.
        timestamps: start of each interval, UTC, evenly spaced.
        consumption_kwh: (N homes, S intervals) energy consumed per interval.
        production_kwh: (N, S) energy produced (PV) per interval.

    The arrays are made read-only so that a community handed to several
    consumers (optimiser, UI, audit) cannot be changed behind their backs.
    """

    homes: tuple[Home, ...]
    timestamps: pd.DatetimeIndex
    consumption_kwh: np.ndarray
    production_kwh: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "homes", tuple(self.homes))
        object.__setattr__(self, "timestamps", _checked_timestamps(self.timestamps))
        shape = (len(self.homes), len(self.timestamps))
        for field in ("consumption_kwh", "production_kwh"):
            object.__setattr__(self, field, _checked_energy(field, getattr(self, field), shape))
        names = [home.name for home in self.homes]
        if len(set(names)) != len(names):
            raise InputError(f"Community: home names must be unique, got {names}")

    @property
    def names(self) -> tuple[str, ...]:
        """Participant names in row order."""
        return tuple(home.name for home in self.homes)

    @property
    def interval(self) -> pd.Timedelta | None:
        """Length of one interval, or None when there is a single timestamp."""
        if len(self.timestamps) < 2:
            return None
        return self.timestamps[1] - self.timestamps[0]

    def to_long_frame(self) -> pd.DataFrame:
        """The energy as a long table, timestamp-major, homes in row order.

        Columns: timestamp (UTC), participant, consumption_kwh, production_kwh.
        """
        n_homes, n_steps = self.consumption_kwh.shape
        return pd.DataFrame(
            {
                "timestamp": self.timestamps.repeat(n_homes),
                "participant": pd.array(np.tile(np.array(self.names, dtype=object), n_steps), dtype="str"),
                # Transposed so that each timestamp's homes are adjacent.
                "consumption_kwh": self.consumption_kwh.T.reshape(-1),
                "production_kwh": self.production_kwh.T.reshape(-1),
            }
        )


def home_names(count: int) -> tuple[str, ...]:
    """Deterministic names ``home-01`` .. ``home-NN``, zero-padded so they sort."""
    width = max(2, len(str(count)))
    return tuple(f"home-{i:0{width}d}" for i in range(1, count + 1))


def peak_kwp(production_kwh: np.ndarray, interval_hours: float) -> np.ndarray:
    """Each home's PV peak power as the data shows it (kWh per interval / interval hours),
    rounded up to 0.1 kWp: a lower bound of what is installed, 0 exactly for a home that
    never produces (rounding up so that a producing home never gets 0 kWp)."""
    peak_kw = np.asarray(production_kwh).max(axis=1) / interval_hours
    return np.ceil(np.round(peak_kw * 10, 9)) / 10


def assign_batteries(pv_kwp: Sequence[float], battery_share: float, seed: int) -> tuple[bool, ...]:
    """Choose which homes get a battery, reproducibly.

    ``round(battery_share * len(pv_kwp))`` homes get one, capped at the number
    of PV homes, chosen uniformly at random among the homes with ``pv_kwp > 0``
    using ``seed``. Batteries go only to PV homes because that is where a home
    battery earns its keep (storing its own midday surplus).
    """
    producing = np.flatnonzero(np.asarray(pv_kwp, dtype=float) > 0)
    count = min(_round_half_up(battery_share * len(pv_kwp)), producing.size)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_BATTERY_STREAM,)))
    chosen = set(rng.choice(producing, size=count, replace=False).tolist()) if count else set()
    return tuple(i in chosen for i in range(len(pv_kwp)))


# Fixed stream id so battery choice does not depend on what else used the seed.
_BATTERY_STREAM = 7


def _round_half_up(value: float) -> int:
    # Python's round() rounds halves to even, which would surprise a user
    # asking for a 0.5 share of 5 homes.
    return int(np.floor(value + 0.5))


def _checked_timestamps(timestamps: pd.DatetimeIndex) -> pd.DatetimeIndex:
    index = pd.DatetimeIndex(timestamps)
    if index.tz is None or str(index.tz) != "UTC":
        raise InputError("Community: timestamps must be timezone-aware UTC")
    if len(index) >= 2:
        steps = np.diff(index.as_unit("ns").asi8)
        if steps[0] <= 0 or np.any(steps != steps[0]):
            raise InputError("Community: timestamps must be increasing and evenly spaced")
    return index


def _checked_energy(field: str, values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    array = np.array(values, dtype=float)  # a private copy, then frozen
    if array.shape != shape:
        raise InputError(f"Community: {field} has shape {array.shape}, expected (homes, intervals) = {shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise InputError(f"Community: {field} must be finite and non-negative")
    array.setflags(write=False)
    return array
