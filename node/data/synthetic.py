"""A seeded synthetic community: believable PV and household load.

PV: pvlib's Ineichen clear-sky irradiance at the site, transposed to each
home's roof (tilt and azimuth drawn per home, isotropic sky model), scaled by
kWp, a system performance ratio and a cell-temperature derate, then multiplied
by a clear-sky index that models the weather: each day has a regime (clear,
mixed, overcast) that persists from day to day as a Markov chain, within a day
the index follows an AR(1) process with occasional cloudy spells, and each
home adds a little local variation (cloud edges). All homes share the day's
weather because a community sits under the same sky.

Load: a standard residential shape (night base, morning and evening peaks,
a later and fuller day at weekends) on the local clock of the tariff time
zone, shifted and reshaped a little per home, scaled to each home's annual
consumption (daily mean = annual / 365; no seasonal scaling), times AR(1)
multiplicative noise, plus random appliance runs (kettle, oven, washing
machine) that carry about a fifth of the energy.

Energy is evaluated at each interval's midpoint, so an interval's energy is
its mean power times its length. Randomness comes from independent streams of
``config.community.seed`` (homes, weather, and one per home for load), so the
same seed always gives the same community.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pvlib

from node.data.community import BatterySpec, Community, Home, HvacSpec, assign_batteries, home_names
from node.data.config import CommunityConfig

__all__ = ["generate_community"]

# Independent random streams of the seed; fixed ids keep each stream stable
# when another part of the generator changes.
_HOMES_STREAM, _WEATHER_STREAM, _LOAD_STREAM, _ASSETS_STREAM = 1, 2, 3, 4

# PV system: losses other than temperature (inverter, wiring, soiling,
# mismatch), crystalline temperature coefficient, and a Ross-model cell
# temperature rise over an assumed 20 degC summer day.
_PERFORMANCE_RATIO = 0.90
_TEMP_COEFF_PER_K = -0.0037
_ROSS_K_PER_W_M2 = 0.03
_AIR_TEMP_C = 20.0

# Daily weather regimes: transition matrix (rows: today, columns: tomorrow),
# and per regime the mean clear-sky index, its AR(1) spread, and the rate of
# cloudy spells per hour. Tuned so a June day in Berlin yields ~4-5 kWh/kWp.
_REGIMES = ("clear", "mixed", "overcast")
_REGIME_TRANSITIONS = np.array([[0.60, 0.30, 0.10], [0.25, 0.50, 0.25], [0.15, 0.45, 0.40]])
_REGIME_MEAN = np.array([0.95, 0.75, 0.35])
_REGIME_SPREAD = np.array([0.03, 0.12, 0.10])
_REGIME_SPELLS_PER_HOUR = np.array([0.05, 0.5, 0.0])
_SPELL_MEAN_MINUTES = 30.0
_SPELL_DEPTH = 0.45  # clear-sky index multiplier while a cloud passes
_CLOUD_MEMORY_MINUTES = 45.0
_LOCAL_CLOUD_SPREAD = 0.05

# Household load shape: base level plus Gaussian bumps (centre h, width h, height).
_WEEKDAY_BUMPS = ((7.0, 1.0, 0.55), (12.5, 1.5, 0.30), (19.5, 2.0, 0.90))
_WEEKEND_BUMPS = ((9.5, 1.5, 0.60), (12.5, 1.5, 0.55), (19.0, 2.0, 0.85))
_BASE_LEVEL = 0.35
# Weekend days use a bit more (people at home); 5 x 0.98 + 2 x 1.05 = 7 keeps
# the weekly mean at annual / 365.
_WEEKDAY_FACTOR, _WEEKEND_FACTOR = 0.98, 1.05
_LOAD_NOISE_SPREAD = 0.2
_LOAD_NOISE_MEMORY_MINUTES = 60.0
_APPLIANCE_SHARE = 0.2
_APPLIANCE_POWER_KW = (1.0, 2.5)
_APPLIANCE_MINUTES = np.array([10.0, 20.0, 45.0, 90.0])
_APPLIANCE_MINUTES_P = np.array([0.35, 0.25, 0.25, 0.15])


def generate_community(config: CommunityConfig) -> Community:
    """A reproducible synthetic community as described by ``config``.

    ``config.community`` gives the number of homes, PV and battery shares,
    days, seed and site; ``config.market`` the start and interval length. Homes
    are named ``home-01`` .. ``home-NN``, all in zone 0.
    """
    spec = config.community
    timestamps = timestamps_of(config)
    homes = _draw_homes(config)
    roofs = _draw_roofs(_stream(spec.seed, _HOMES_STREAM), len(homes))
    homes = _with_assets(config, homes, roofs)
    weather_rng = _stream(spec.seed, _WEATHER_STREAM)
    production = _pv_energy(config, timestamps, homes, roofs, weather_rng)
    consumption = np.vstack(
        [
            _load_energy(config, timestamps, annual_kwh, _stream(spec.seed, _LOAD_STREAM, i))
            for i, annual_kwh in enumerate(_draw_annual_loads(config))
        ]
    )
    return Community(homes, timestamps, consumption, production)


def timestamps_of(config: CommunityConfig) -> pd.DatetimeIndex:
    """The interval starts of the synthetic community `config` describes."""
    return pd.date_range(config.market.start, periods=config.community.days * 24 * 60 // config.market.interval_minutes,
                         freq=config.market.interval)


def _stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _draw_homes(config: CommunityConfig) -> tuple[Home, ...]:
    spec = config.community
    rng = _stream(spec.seed, _HOMES_STREAM, 0)
    n_pv = int(np.floor(spec.pv_share * spec.homes + 0.5))
    has_pv = np.zeros(spec.homes, dtype=bool)
    has_pv[rng.choice(spec.homes, size=n_pv, replace=False)] = True
    low, high = spec.pv_kwp_range
    # Installers sell whole panels, so sizes come in steps of 0.1 kWp.
    sizes = np.round(rng.uniform(low, high, spec.homes), 1).clip(low, high)
    pv_kwp = np.where(has_pv, sizes, 0.0)
    batteries = assign_batteries(pv_kwp, spec.battery_share, spec.seed)
    return tuple(
        Home(name=name, zone=0, pv_kwp=float(kwp), battery=battery)
        for name, kwp, battery in zip(home_names(spec.homes), pv_kwp, batteries)
    )


def _with_assets(config: CommunityConfig, homes: tuple[Home, ...], roofs: tuple[np.ndarray, np.ndarray]) -> tuple[Home, ...]:
    """The homes with their roofs' orientation and, as the config asks, batteries of their
    own size (uniform within battery_size_spread around [batteries]) and HVACs
    (hvac_share of the homes, chosen at random, each as [hvac])."""
    spec, b, h = config.community, config.batteries, config.hvac
    spread = spec.battery_size_spread
    rng = _stream(spec.seed, _ASSETS_STREAM)
    factors = rng.uniform(1 - spread, 1 + spread, (len(homes), 2))
    hvac_homes = set(rng.choice(len(homes), size=int(np.floor(spec.hvac_share * len(homes) + 0.5)), replace=False).tolist())
    out = []
    for i, home in enumerate(homes):
        changes: dict = {}
        if home.pv_kwp > 0:
            changes.update(pv_tilt_deg=round(float(roofs[0][i]), 1), pv_azimuth_deg=round(float(roofs[1][i]), 1))
        if home.battery and spread > 0:
            changes["battery_spec"] = BatterySpec(
                max(round(float(b.capacity_kwh * factors[i, 0]), 1), 0.1), max(round(float(b.power_kw * factors[i, 1]), 1), 0.1),
                b.charge_efficiency, b.discharge_efficiency, b.min_soc, b.initial_soc)
        if i in hvac_homes:
            changes["hvac"] = HvacSpec(h.mode, h.power_kw, h.cop, h.setpoint_c)
        out.append(replace(home, **changes))
    return tuple(out)


def _draw_annual_loads(config: CommunityConfig) -> np.ndarray:
    spec = config.community
    low, high = spec.annual_load_kwh_range
    return _stream(spec.seed, _HOMES_STREAM, 1).uniform(low, high, spec.homes)


def _draw_roofs(rng: np.random.Generator, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Roof tilt and azimuth (degrees, 180 = south), mostly south-ish pitched roofs."""
    tilt = rng.uniform(15.0, 45.0, count)
    azimuth = np.clip(rng.normal(180.0, 35.0, count), 90.0, 270.0)
    return tilt, azimuth


def _pv_energy(
    config: CommunityConfig,
    timestamps: pd.DatetimeIndex,
    homes: tuple[Home, ...],
    roofs: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """PV energy per home and interval, kWh, shape (N, S)."""
    spec, hours = config.community, config.market.interval_hours
    midpoints = timestamps + config.market.interval / 2
    poa_w_m2 = _clear_sky_poa(spec.latitude, spec.longitude, midpoints, *roofs)
    index = _clear_sky_index(config, timestamps, rng)
    local = _ar1(rng, (len(homes), len(timestamps)), _phi(config, _CLOUD_MEMORY_MINUTES), _LOCAL_CLOUD_SPREAD)
    poa_w_m2 = poa_w_m2 * index[np.newaxis, :] * np.exp(local)
    cell_temp_c = _AIR_TEMP_C + _ROSS_K_PER_W_M2 * poa_w_m2
    derate = 1.0 + _TEMP_COEFF_PER_K * (cell_temp_c - 25.0)
    kwp = np.array([home.pv_kwp for home in homes])[:, np.newaxis]
    power_kw = kwp * poa_w_m2 / 1000.0 * _PERFORMANCE_RATIO * derate
    # The inverter is rated at the array's peak power and clips above it.
    return np.clip(power_kw, 0.0, kwp) * hours


def _clear_sky_poa(
    latitude: float, longitude: float, times: pd.DatetimeIndex, tilt: np.ndarray, azimuth: np.ndarray
) -> np.ndarray:
    """Clear-sky plane-of-array irradiance, W/m2, shape (roofs, times); zero when the sun is down."""
    location = pvlib.location.Location(latitude, longitude, tz="UTC")
    with warnings.catch_warnings():
        # pvlib 0.16 still calls a DatetimeIndex accessor pandas 3 deprecates.
        warnings.filterwarnings("ignore", message=".*dayofyear is deprecated.*")
        sun = location.get_solarposition(times)
        sky = location.get_clearsky(times, model="ineichen", solar_position=sun)
    poa = pvlib.irradiance.get_total_irradiance(
        tilt[:, np.newaxis],
        azimuth[:, np.newaxis],
        sun["apparent_zenith"].to_numpy(),
        sun["azimuth"].to_numpy(),
        sky["dni"].to_numpy(),
        sky["ghi"].to_numpy(),
        sky["dhi"].to_numpy(),
        model="isotropic",
    )["poa_global"]
    daylight = sun["apparent_elevation"].to_numpy() > 0
    return np.where(daylight[np.newaxis, :], np.nan_to_num(poa), 0.0)


def _clear_sky_index(config: CommunityConfig, timestamps: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    """Community-wide clear-sky index per interval: day regimes, AR(1) wobble, cloudy spells."""
    day_of = _local_day_number(timestamps, config.tariffs.timezone)
    regimes = _day_regimes(rng, int(day_of.max()) + 1)[day_of]
    wobble = _ar1(rng, (1, len(timestamps)), _phi(config, _CLOUD_MEMORY_MINUTES), 1.0)[0]
    level = np.clip(_REGIME_MEAN[regimes] + _REGIME_SPREAD[regimes] * wobble, 0.05, 1.1)
    minutes = config.market.interval_minutes
    enter = 1.0 - np.exp(-_REGIME_SPELLS_PER_HOUR[regimes] * minutes / 60.0)
    leave = 1.0 - np.exp(-minutes / _SPELL_MEAN_MINUTES)
    draws = rng.random(len(timestamps))
    in_spell = np.zeros(len(timestamps), dtype=bool)
    cloudy = False
    for step, draw in enumerate(draws):
        cloudy = draw >= leave if cloudy else draw < enter[step]
        in_spell[step] = cloudy
    return np.where(in_spell, level * _SPELL_DEPTH, level)


def _day_regimes(rng: np.random.Generator, days: int) -> np.ndarray:
    """Weather regime per day as a Markov chain started from its stationary distribution."""
    eigenvalues, eigenvectors = np.linalg.eig(_REGIME_TRANSITIONS.T)
    stationary = np.real(eigenvectors[:, np.argmin(np.abs(eigenvalues - 1.0))])
    probabilities = stationary / stationary.sum()
    regimes = np.empty(days, dtype=int)
    for day in range(days):
        regimes[day] = rng.choice(len(_REGIMES), p=probabilities)
        probabilities = _REGIME_TRANSITIONS[regimes[day]]
    return regimes


def _load_energy(
    config: CommunityConfig, timestamps: pd.DatetimeIndex, annual_kwh: float, rng: np.random.Generator
) -> np.ndarray:
    """One home's consumption per interval, kWh, shape (S,)."""
    hours = config.market.interval_hours
    local = (timestamps + config.market.interval / 2).tz_convert(config.tariffs.timezone)
    clock = (local.hour + local.minute / 60.0 + local.second / 3600.0).to_numpy()
    weekend = np.asarray(local.day_of_week >= 5)
    shift_h = rng.normal(0.0, 0.5)
    heights = rng.uniform(0.8, 1.2, 3)
    base = rng.uniform(0.8, 1.2) * _BASE_LEVEL
    activity = np.where(
        weekend,
        _relative_demand(clock, _WEEKEND_BUMPS, base, heights, shift_h),
        _relative_demand(clock, _WEEKDAY_BUMPS, base, heights, shift_h),
    )
    daily_kwh = annual_kwh / 365.0 * np.where(weekend, _WEEKEND_FACTOR, _WEEKDAY_FACTOR)
    smooth_kwh = (1.0 - _APPLIANCE_SHARE) * daily_kwh * hours / 24.0 * activity
    noise = _ar1(rng, (1, len(timestamps)), _phi(config, _LOAD_NOISE_MEMORY_MINUTES), _LOAD_NOISE_SPREAD)[0]
    # exp(x - s^2/2) has mean 1, so noise does not shift the expected total.
    smooth_kwh = smooth_kwh * np.exp(noise - _LOAD_NOISE_SPREAD**2 / 2.0)
    return smooth_kwh + _appliance_runs(rng, config, activity, _APPLIANCE_SHARE * annual_kwh / 365.0)


def _relative_demand(
    clock_h: np.ndarray, bumps: tuple[tuple[float, float, float], ...], base: float, heights: np.ndarray, shift_h: float
) -> np.ndarray:
    """Demand at local clock hours relative to the day's mean (mean over 24 h is 1)."""

    def shape(hours: np.ndarray) -> np.ndarray:
        total = np.full_like(hours, base, dtype=float)
        for (centre, width, height), scale in zip(bumps, heights):
            # Circular distance so an evening bump wraps past midnight.
            distance = (hours - centre - shift_h + 12.0) % 24.0 - 12.0
            total += scale * height * np.exp(-0.5 * (distance / width) ** 2)
        return total

    day_mean = shape(np.linspace(0.0, 24.0, 1440, endpoint=False)).mean()
    return shape(clock_h) / day_mean


def _appliance_runs(
    rng: np.random.Generator, config: CommunityConfig, activity: np.ndarray, daily_kwh: float
) -> np.ndarray:
    """Energy of random appliance runs per interval; runs start when people are active."""
    minutes = config.market.interval_minutes
    steps = len(activity)
    mean_run_kwh = np.mean(_APPLIANCE_POWER_KW) * float(_APPLIANCE_MINUTES @ _APPLIANCE_MINUTES_P) / 60.0
    count = rng.poisson(daily_kwh / mean_run_kwh * steps * minutes / 1440.0)
    start_step = rng.choice(steps, size=count, p=activity / activity.sum())
    start_min = (start_step + rng.random(count)) * minutes
    length_min = rng.choice(_APPLIANCE_MINUTES, size=count, p=_APPLIANCE_MINUTES_P)
    power_kw = rng.uniform(*_APPLIANCE_POWER_KW, size=count)
    # A run touches at most `reach` consecutive intervals; add its overlap
    # with each of them. Runs past the end are cut off.
    energy = np.zeros(steps)
    reach = int(np.ceil(_APPLIANCE_MINUTES.max() / minutes)) + 1
    for offset in range(reach):
        step = start_step + offset
        inside = step < steps
        overlap_min = np.clip(
            np.minimum((step + 1) * minutes, start_min + length_min) - np.maximum(step * minutes, start_min), 0.0, None
        )
        np.add.at(energy, step[inside], (power_kw * overlap_min / 60.0)[inside])
    return energy


def _local_day_number(timestamps: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    local_dates = timestamps.tz_convert(timezone).normalize().tz_localize(None)
    return ((local_dates - local_dates[0]) // pd.Timedelta(days=1)).to_numpy().astype(int)


def _phi(config: CommunityConfig, memory_minutes: float) -> float:
    """AR(1) coefficient for a given memory, so behaviour does not depend on interval length."""
    return float(np.exp(-config.market.interval_minutes / memory_minutes))


def _ar1(rng: np.random.Generator, shape: tuple[int, int], phi: float, spread: float) -> np.ndarray:
    """Stationary AR(1) series along the last axis with standard deviation ``spread``."""
    shocks = rng.normal(0.0, spread, shape)
    series = np.empty(shape)
    series[:, 0] = shocks[:, 0]
    innovation = np.sqrt(1.0 - phi**2)
    for step in range(1, shape[1]):
        series[:, step] = phi * series[:, step - 1] + innovation * shocks[:, step]
    return series
