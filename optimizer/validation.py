"""Checks on clearing inputs: a bad value is refused with its name, never solved around."""

from __future__ import annotations

import numpy as np

from node.errors import InputError
from optimizer.types import Batteries, ClearingInputs, Jobs, Thermal

SOC_SLACK_KWH = 1e-6  # initial SoC this far outside its bounds is tolerance, not an error


def check_battery_specs(batteries: Batteries, homes: int) -> None:
    b = batteries
    if b.count and (b.home.min() < 0 or b.home.max() >= homes):
        raise InputError(f"battery home index out of range 0..{homes - 1}: {b.home.tolist()}")
    for name in ("charge_efficiency", "discharge_efficiency"):
        eff = getattr(b, name)
        if np.any((eff <= 0) | (eff > 1)):
            raise InputError(f"battery {name} must be in (0, 1], got {eff.tolist()}")
    if np.any(b.min_soc_kwh < 0) or np.any(b.min_soc_kwh > b.capacity_kwh):
        raise InputError("battery min_soc_kwh must be within [0, capacity_kwh]")
    if np.any(b.max_charge_kwh < 0) or np.any(b.max_discharge_kwh < 0):
        raise InputError("battery max_charge_kwh and max_discharge_kwh must be >= 0")
    specs = (b.capacity_kwh, b.max_charge_kwh, b.max_discharge_kwh, b.min_soc_kwh)
    if not all(np.all(np.isfinite(a)) for a in specs):
        raise InputError("battery specs contain NaN or infinite values")


def check_jobs(jobs: Jobs, homes: int) -> None:
    """Deferrable jobs: shapes, homes, draws, and a window for every job not yet started."""
    J = jobs.count
    for name in ("earliest", "latest", "started", "start"):
        if np.shape(getattr(jobs, name)) != (J,):
            raise InputError(f"jobs.{name} has shape {np.shape(getattr(jobs, name))}, expected ({J},)")
    if jobs.energy_kwh.ndim != 2 or jobs.energy_kwh.shape[0] != J:
        raise InputError(f"jobs.energy_kwh has shape {jobs.energy_kwh.shape}, expected ({J}, steps of the longest job)")
    if J and (jobs.home.min() < 0 or jobs.home.max() >= homes):
        raise InputError(f"job home index out of range 0..{homes - 1}: {jobs.home.tolist()}")
    if not np.all(np.isfinite(jobs.energy_kwh)) or np.any(jobs.energy_kwh < 0):
        raise InputError("jobs.energy_kwh must be finite and >= 0")
    for j in np.flatnonzero(~jobs.started & (jobs.latest < jobs.earliest)):
        raise InputError(f"job {j} (home {int(jobs.home[j])}): its window [{int(jobs.earliest[j])}, "
                         f"{int(jobs.latest[j])}] ends before it begins")
    for j in np.flatnonzero(jobs.started & (jobs.start > 0)):
        raise InputError(f"job {j} (home {int(jobs.home[j])}) is marked started at step {int(jobs.start[j])}, after step 0")


def check_thermal(thermal: Thermal, homes: int, horizon: int) -> None:
    """HVACs: shapes, homes, and physical values (a bad one is refused, not solved around)."""
    t, H = thermal, thermal.count
    if not H:
        return
    for name in ("max_kwh", "cop", "sign", "resistance_k_per_kw", "capacitance_kwh_per_k", "indoor_c",
                 "comfort_low_c", "comfort_high_c"):
        if np.shape(getattr(t, name)) != (H,):
            raise InputError(f"thermal.{name} has shape {np.shape(getattr(t, name))}, expected ({H},)")
    if np.shape(t.outdoor_c) != (H, horizon):
        raise InputError(f"thermal.outdoor_c has shape {np.shape(t.outdoor_c)}, expected ({H}, {horizon})")
    if t.home.min() < 0 or t.home.max() >= homes:
        raise InputError(f"HVAC home index out of range 0..{homes - 1}: {t.home.tolist()}")
    values = [t.max_kwh, t.cop, t.resistance_k_per_kw, t.capacitance_kwh_per_k, t.indoor_c, t.outdoor_c,
              t.comfort_low_c, t.comfort_high_c]
    if not all(np.all(np.isfinite(v)) for v in values) or not np.isfinite(t.step_hours) or t.step_hours <= 0:
        raise InputError("thermal inputs contain NaN or infinite values (or a step of no length)")
    if np.any(t.max_kwh < 0) or np.any(t.cop <= 0) or np.any(t.resistance_k_per_kw <= 0) or np.any(t.capacitance_kwh_per_k <= 0):
        raise InputError("HVAC power must be >= 0 and its COP, resistance and capacitance > 0")
    if not np.all(np.isin(t.sign, (-1, 1))):
        raise InputError(f"HVAC sign must be -1 (cooling) or +1 (heating), got {t.sign.tolist()}")
    if np.any(t.comfort_low_c > t.comfort_high_c):
        raise InputError("an HVAC's comfort band is empty (comfort_low_c above comfort_high_c)")


def check_inputs(inputs: ClearingInputs) -> None:
    N, T = inputs.load_kwh.shape
    check_jobs(inputs.jobs, N)
    check_thermal(inputs.thermal, N, T)
    shapes = {
        "pv_kwh": (inputs.pv_kwh, (N, T)),
        "buy_price_per_kwh": (inputs.buy_price_per_kwh, (T,)),
        "sell_price_per_kwh": (inputs.sell_price_per_kwh, (T,)),
        "import_capacity_kwh": (inputs.import_capacity_kwh, (T,)),
        "export_capacity_kwh": (inputs.export_capacity_kwh, (T,)),
    }
    for name, (array, shape) in shapes.items():
        if np.shape(array) != shape:
            raise InputError(f"{name} has shape {np.shape(array)}, expected {shape}")
    arrays = [inputs.load_kwh] + [a for a, _ in shapes.values()]
    if not all(np.all(np.isfinite(a)) for a in arrays) or not np.isfinite(inputs.p2p_cost_per_kwh):
        raise InputError("clearing inputs contain NaN or infinite values")
    for name in ("load_kwh", "pv_kwh", "import_capacity_kwh", "export_capacity_kwh"):
        if np.any(getattr(inputs, name) < 0):
            raise InputError(f"{name} must be non-negative")
    if inputs.p2p_cost_per_kwh < 0:
        raise InputError(f"p2p_cost_per_kwh must be >= 0, got {inputs.p2p_cost_per_kwh}")
    above = np.flatnonzero(inputs.sell_price_per_kwh > inputs.buy_price_per_kwh)
    if above.size:
        t = int(above[0])
        # Selling above the import price lets anyone buy from the grid and sell straight back.
        raise InputError(
            f"sell_price_per_kwh {inputs.sell_price_per_kwh[t]!r} exceeds buy_price_per_kwh "
            f"{inputs.buy_price_per_kwh[t]!r} at step {t}; the export tariff must not exceed the import tariff"
        )
    b = inputs.batteries
    low, high = b.soc_kwh < b.min_soc_kwh - SOC_SLACK_KWH, b.soc_kwh > b.capacity_kwh + SOC_SLACK_KWH
    if np.any(low | high) or not np.all(np.isfinite(b.soc_kwh)):
        bad = int(np.flatnonzero(low | high | ~np.isfinite(b.soc_kwh))[0])
        raise InputError(
            f"battery {bad} (home {int(b.home[bad])}) has soc_kwh {b.soc_kwh[bad]!r} outside "
            f"[{b.min_soc_kwh[bad]!r}, {b.capacity_kwh[bad]!r}]"
        )
