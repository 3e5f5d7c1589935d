"""Each participant's own assets: the community file, and the same columns in a dataset.

The community file is a table (CSV or parquet), one row per participant:

    participant           the participant's name as in the dataset (required)
    zone                  grid zone, integer >= 0
    pv_kwp                installed PV peak power, kWp, [0, 1000]
    pv_tilt_deg           roof tilt of the PV array, degrees, [0, 90]
    pv_azimuth_deg        direction the PV array faces, degrees, [0, 360), 180 = south
    battery               true/false: whether the home has a battery
    battery_kwh           usable battery capacity, kWh, [0, 10000]; 0 = no battery
    battery_kw            battery charge and discharge power, kW, (0, 10000]
    charge_efficiency     fraction of the energy taken in that is stored, (0, 1]
    discharge_efficiency  fraction of the stored energy delivered, (0, 1]
    min_soc               lowest state of charge, fraction of capacity, [0, 1)
    initial_soc           state of charge at the start, fraction, (min_soc, 1]
    connection_kw         the most power the home's connection carries either way, kW, > 0
    hvac_kw               electric power of the home's air conditioner or heat pump, kW;
                          0 = none
    hvac_cop              its coefficient of performance, (0, 10]
    hvac_mode             cool or heat
    hvac_setpoint_c       its preferred indoor temperature, degrees C, [5, 35]

Every column but ``participant`` is optional and a blank cell keeps what the dataset
says (or the default): a battery's blank fields take the config's [batteries] values,
a blank ``battery_kw`` the same power per kWh as [batteries]; an HVAC's blank fields
take [hvac]. A participant missing from the file keeps the dataset's attributes; a
name the dataset lacks is an error. Where both give a value, the community file wins:
it is the asset register, a dataset's columns are a convenience.

A dataset may carry the same columns (constant on every row of a participant). Errors
name the file, the row (header = row 1) and the column, like a dataset's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from node.data.community import BatterySpec, Community, Home, HvacSpec
from node.data.config import CommunityConfig
from node.data.table import first_bad, is_blank, read_table, to_floats
from node.errors import DataError


@dataclass(frozen=True)
class _Column:
    ok: Callable[[np.ndarray], np.ndarray]
    expected: str


_FRACTION = "a fraction in (0, 1]"
NUMBER_COLUMNS: dict[str, _Column] = {
    "zone": _Column(lambda v: (v >= 0) & (v == np.floor(v)) & (v < 65536), "an integer zone in [0, 65535]"),
    "pv_kwp": _Column(lambda v: (v >= 0) & (v <= 1000), "a peak power in [0, 1000] kWp"),
    "pv_tilt_deg": _Column(lambda v: (v >= 0) & (v <= 90), "degrees in [0, 90]"),
    "pv_azimuth_deg": _Column(lambda v: (v >= 0) & (v < 360), "degrees in [0, 360), 180 = south"),
    "battery_kwh": _Column(lambda v: (v >= 0) & (v <= 10000), "a capacity in [0, 10000] kWh (0 = no battery)"),
    "battery_kw": _Column(lambda v: (v > 0) & (v <= 10000), "a power in (0, 10000] kW"),
    "charge_efficiency": _Column(lambda v: (v > 0) & (v <= 1), _FRACTION),
    "discharge_efficiency": _Column(lambda v: (v > 0) & (v <= 1), _FRACTION),
    "min_soc": _Column(lambda v: (v >= 0) & (v < 1), "a fraction in [0, 1)"),
    "initial_soc": _Column(lambda v: (v > 0) & (v <= 1), _FRACTION),
    "connection_kw": _Column(lambda v: (v > 0) & (v <= 100000), "a power in (0, 100000] kW"),
    "hvac_kw": _Column(lambda v: (v >= 0) & (v <= 1000), "an electric power in [0, 1000] kW (0 = no HVAC)"),
    "hvac_cop": _Column(lambda v: (v > 0) & (v <= 10), "a coefficient of performance in (0, 10]"),
    "hvac_setpoint_c": _Column(lambda v: (v >= 5) & (v <= 35), "a temperature in [5, 35] degrees C"),
}
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {"battery": ("true", "false", "1", "0", "yes", "no"), "hvac_mode": ("cool", "heat")}
ASSET_COLUMNS = ("participant", *NUMBER_COLUMNS, *TEXT_COLUMNS)
BATTERY_FIELDS = ("battery_kw", "charge_efficiency", "discharge_efficiency", "min_soc", "initial_soc")
HVAC_FIELDS = ("hvac_cop", "hvac_mode", "hvac_setpoint_c")


@dataclass(frozen=True)
class AssetValues:
    """Parsed asset columns, one value per participant (NaN / None where blank), and the
    row each participant's values come from, for errors."""

    path: Path
    names: list[str]
    rows: list[int]
    values: dict[str, np.ndarray]

    def of(self, index: int) -> dict[str, object]:
        """The non-blank values of participant `index`."""
        found = {}
        for column, array in self.values.items():
            value = array[index]
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            found[column] = value
        return found


def parse_asset_column(path: Path, values: pd.Series, column: str) -> np.ndarray:
    """A column's cells as floats (NaN where blank) or lower-case text (None where blank)."""
    blank = is_blank(values)
    text = values.astype(str).str.strip()
    if column in TEXT_COLUMNS:
        allowed = TEXT_COLUMNS[column]
        lower = text.str.lower()
        first_bad(path, values, ~blank & ~np.asarray(lower.isin(allowed)), column,
                  lambda value: f"{value!r} is not one of {', '.join(allowed)}")
        return np.where(blank, None, lower.to_numpy(dtype=object))
    numbers = to_floats(text.where(~blank, None))
    numbers[blank] = np.nan
    first_bad(path, values, ~blank & ~np.isfinite(numbers), column, lambda value: f"{value!r} is not a number")
    spec = NUMBER_COLUMNS[column]
    with np.errstate(invalid="ignore"):
        bad = ~blank & ~spec.ok(numbers)
    first_bad(path, values, bad, column, lambda value: f"{value!r} is out of range; expected {spec.expected}")
    return numbers


def load_assets(path: str | Path) -> AssetValues:
    """Reads and checks a community file (see the module docstring)."""
    path = Path(path)
    table = read_table(path)
    columns = list(table.columns)
    if "participant" not in columns:
        raise DataError(str(path), None, "participant", "missing required column")
    for column in columns:
        if column not in ASSET_COLUMNS:
            raise DataError(str(path), None, column, f"unknown column; expected some of {', '.join(ASSET_COLUMNS)}")
    if len(set(columns)) != len(columns):
        raise DataError(str(path), 1, next(c for c in columns if columns.count(c) > 1), "column appears more than once")
    names = table["participant"].astype(str).str.strip()
    first_bad(path, table["participant"], is_blank(table["participant"]), "participant", lambda _: "missing participant name")
    repeated = np.asarray(names.duplicated())
    first_bad(path, table["participant"], repeated, "participant",
              lambda value: f"participant {value!r} has a row already; give each participant one row")
    values = {column: parse_asset_column(path, table[column], column) for column in columns if column != "participant"}
    return AssetValues(path, names.tolist(), [int(r) for r in table.index], values)


def apply_assets(community: Community, assets: AssetValues, config: CommunityConfig) -> Community:
    """`community` with each participant's assets from a community file (see the module
    docstring for which value wins); checks the data against connection limits."""
    position = {name: i for i, name in enumerate(community.names)}
    homes = list(community.homes)
    for index, (name, row) in enumerate(zip(assets.names, assets.rows)):
        if name not in position:
            raise DataError(str(assets.path), row, "participant",
                            f"participant {name!r} is not in the dataset; the file's names must match the data's")
        at = position[name]
        homes[at] = overlay(homes[at], assets.of(index), config, str(assets.path), row)
    updated = Community(tuple(homes), community.timestamps, community.consumption_kwh, community.production_kwh)
    check_connections(updated, config, str(assets.path), dict(zip(assets.names, assets.rows)))
    return updated


def overlay(home: Home, given: dict[str, object], config: CommunityConfig, path: str, row: int | None) -> Home:
    """`home` with the non-blank asset values `given` applied; DataError names `row`."""

    def fail(column: str, problem: str) -> DataError:
        return DataError(path, row, column, f"participant '{home.name}': {problem}")

    changes: dict[str, object] = {}
    for column in ("zone",):
        if column in given:
            changes[column] = int(given[column])  # type: ignore[arg-type]
    for column in ("pv_kwp", "pv_tilt_deg", "pv_azimuth_deg", "connection_kw"):
        if column in given:
            changes[column] = float(given[column])  # type: ignore[arg-type]
    battery, spec = _battery(home, given, config, fail)
    changes.update(battery=battery, battery_spec=spec, hvac=_hvac(home, given, config, fail))
    return replace(home, **changes)


def battery_spec_of(home: Home, config: CommunityConfig) -> BatterySpec | None:
    """The home's battery parameters: its own, or the config's [batteries]; None without one."""
    if not home.battery:
        return None
    if home.battery_spec is not None:
        return home.battery_spec
    b = config.batteries
    return BatterySpec(b.capacity_kwh, b.power_kw, b.charge_efficiency, b.discharge_efficiency, b.min_soc, b.initial_soc)


def _battery(home: Home, given: dict, config: CommunityConfig, fail) -> tuple[bool, BatterySpec | None]:
    flag = given.get("battery")
    capacity = given.get("battery_kwh")
    fields = [f for f in BATTERY_FIELDS if f in given]
    has = home.battery
    if flag is not None:
        has = flag in ("true", "1", "yes")
    if capacity is not None:
        if flag is not None and has != (capacity > 0):
            raise fail("battery_kwh", f"battery is {flag} but battery_kwh is {capacity:g}; make them agree")
        has = capacity > 0
    if not has:
        if fields:
            raise fail(fields[0], "has no battery (give battery_kwh > 0), so its battery fields must be blank")
        return False, None
    if capacity is None and not fields:
        return True, home.battery_spec
    base = battery_spec_of(replace(home, battery=True), config)
    size = float(capacity) if capacity is not None else base.capacity_kwh
    power = given.get("battery_kw", base.power_kw if capacity is None else size * base.power_kw / base.capacity_kwh)
    values = dict(
        capacity_kwh=size,
        power_kw=float(power),
        charge_efficiency=float(given.get("charge_efficiency", base.charge_efficiency)),
        discharge_efficiency=float(given.get("discharge_efficiency", base.discharge_efficiency)),
        min_soc=float(given.get("min_soc", base.min_soc)),
        initial_soc=float(given.get("initial_soc", base.initial_soc)),
    )
    if not values["min_soc"] < values["initial_soc"]:
        raise fail("initial_soc", f"initial_soc {values['initial_soc']:g} must be above min_soc {values['min_soc']:g}")
    return True, BatterySpec(**values)


def _hvac(home: Home, given: dict, config: CommunityConfig, fail) -> HvacSpec | None:
    power = given.get("hvac_kw")
    fields = [f for f in HVAC_FIELDS if f in given]
    if power is not None and power == 0:
        if fields:
            raise fail(fields[0], "has no HVAC (hvac_kw is 0), so its HVAC fields must be blank")
        return None
    base = home.hvac
    if base is None and power is None:
        if fields:
            raise fail(fields[0], "has no HVAC: give hvac_kw > 0 with its other HVAC fields")
        return None
    h = config.hvac
    if base is None:
        base = HvacSpec(h.mode, h.power_kw, h.cop, h.setpoint_c)
    return HvacSpec(
        mode=str(given.get("hvac_mode", base.mode)),
        power_kw=float(power if power is not None else base.power_kw),
        cop=float(given.get("hvac_cop", base.cop)),
        setpoint_c=float(given.get("hvac_setpoint_c", base.setpoint_c)),
    )


def check_connections(community: Community, config: CommunityConfig, path: str, rows: dict[str, int]) -> None:
    """A home whose metered energy exceeds its connection limit in some interval has a
    wrong limit or wrong data; name the first such reading."""
    hours = config.market.interval_hours
    for i, home in enumerate(community.homes):
        if home.connection_kw is None:
            continue
        limit_kwh = home.connection_kw * hours * (1 + 1e-9)
        for label, series in (("consumption", community.consumption_kwh[i]), ("production", community.production_kwh[i])):
            over = np.flatnonzero(series > limit_kwh)
            if over.size:
                step = int(over[0])
                raise DataError(path, rows.get(home.name), "connection_kw",
                                f"participant '{home.name}': its {label} of {series[step]:g} kWh at "
                                f"{community.timestamps[step].isoformat()} is more than connection_kw "
                                f"{home.connection_kw:g} kW carries in {config.market.interval_minutes} minutes; "
                                "check the limit or the data")


def asset_table(homes: tuple[Home, ...] | list[Home]) -> pd.DataFrame:
    """The homes' assets as a community file table (blank = NaN / None), with only the
    columns some home gives a value; `load_assets` reads back what `save_assets` writes."""
    rows = []
    for home in homes:
        row: dict[str, object] = {"participant": home.name, "zone": home.zone, "pv_kwp": home.pv_kwp,
                                  "pv_tilt_deg": home.pv_tilt_deg, "pv_azimuth_deg": home.pv_azimuth_deg,
                                  "battery": "true" if home.battery else "false", "connection_kw": home.connection_kw}
        b = home.battery_spec
        if b is not None:
            row.update(battery_kwh=b.capacity_kwh, battery_kw=b.power_kw, charge_efficiency=b.charge_efficiency,
                       discharge_efficiency=b.discharge_efficiency, min_soc=b.min_soc, initial_soc=b.initial_soc)
        h = home.hvac
        if h is not None:
            row.update(hvac_kw=h.power_kw, hvac_cop=h.cop, hvac_mode=h.mode, hvac_setpoint_c=h.setpoint_c)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(ASSET_COLUMNS))
    keep = [c for c in frame.columns if c == "participant" or frame[c].notna().any()]
    return frame[keep]


def save_assets(homes: tuple[Home, ...] | list[Home], path: str | Path) -> None:
    """Writes a community file (CSV or parquet by extension)."""
    path = Path(path)
    frame = asset_table(homes)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.astype({c: "string" for c in frame.columns if frame[c].dtype == object}).to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
