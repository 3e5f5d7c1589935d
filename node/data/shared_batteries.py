"""Shared batteries in which homes hold virtual accounts (issue 12 item 2).

A shared battery (say 100 kWh / 50 kW at the community's site) is owned by the
community; homes hold shares of it (say 10 kWh each). Each share is a *virtual
account*: the home puts its surplus (or energy it buys) in and draws it out later,
paying nobody an energy price for its own stored energy, only a storage fee per kWh
put in, to the battery's owner, the storage operator.

In the market each account is a participant of its own: a *share participant*
``<home>@<battery>`` in its home's zone, with no load and no PV and a battery of
its share's size, registered on chain as a share of its battery
(contracts/src/modules/SharedBatteryModule.sol). The optimiser schedules it like any
battery; its power is the battery's in proportion to its share, so the accounts
together never exceed the battery's rating (conservative: an account cannot use power
another one leaves idle). The operator is a participant too: a home of the data, or
one added with no load, no PV and no battery.

The file (``community.shared_batteries_file`` in the config), TOML::

    operator = "community"        # who receives the storage fees (and owns the batteries)
    storage_fee_per_kwh = 0.02    # currency units per kWh a home puts into its account

    [[battery]]
    name = "school"               # letters, digits, - and _
    capacity_kwh = 100.0
    power_kw = 50.0
    charge_efficiency = 0.95      # optional, default 0.95
    discharge_efficiency = 0.95   # optional, default 0.95
    min_soc = 0.0                 # optional: fraction of each share kept, [0, 1)
    initial_soc = 0.1             # optional: each account's start, (min_soc, 1]
    shares = { "home-01" = 10.0, "home-02" = 10.0 }   # home -> kWh

Errors name the file and the battery (or key) at fault.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from node.data.community import BatterySpec, Community, Home
from node.errors import ConfigError

SEPARATOR = "@"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_TOP_KEYS = {"operator", "storage_fee_per_kwh", "battery"}
_BATTERY_KEYS = {"name", "capacity_kwh", "power_kw", "charge_efficiency", "discharge_efficiency", "min_soc",
                 "initial_soc", "shares"}


@dataclass(frozen=True)
class SharedBattery:
    """One shared battery and its accounts (home name -> share, kWh)."""

    name: str
    capacity_kwh: float
    power_kw: float
    shares: tuple[tuple[str, float], ...]
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    min_soc: float = 0.0
    initial_soc: float = 0.1

    def share_spec(self, share_kwh: float) -> BatterySpec:
        """An account's battery: its share of the capacity and, in proportion, of the power."""
        return BatterySpec(share_kwh, self.power_kw * share_kwh / self.capacity_kwh, self.charge_efficiency,
                           self.discharge_efficiency, self.min_soc, self.initial_soc)


@dataclass(frozen=True)
class SharedBatteries:
    """Every shared battery of a community, its operator and the storage fee."""

    operator: str
    storage_fee_per_kwh: float
    batteries: tuple[SharedBattery, ...]

    def share_names(self) -> dict[str, tuple[int, str, float]]:
        """Share participant name -> (battery number, home, kWh); batteries numbered from 0 in file order."""
        return {share_name(home, b.name): (i, home, kwh)
                for i, b in enumerate(self.batteries) for home, kwh in b.shares}


def share_name(home: str, battery: str) -> str:
    """The participant name of `home`'s account in `battery`."""
    return f"{home}{SEPARATOR}{battery}"


def load_shared_batteries(path: str | Path) -> SharedBatteries:
    """Read and validate a shared-batteries file (see the module docstring)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: shared batteries file not found") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: not a readable TOML file: {error}") from None
    return shared_batteries_from_mapping(document, str(path))


def shared_batteries_from_mapping(document: dict, source: str = "<shared batteries>") -> SharedBatteries:
    """SharedBatteries from parsed TOML; ConfigError naming `source` and the battery at fault."""
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: unknown key; expected one of: {', '.join(sorted(_TOP_KEYS))}")
    operator = document.get("operator")
    if not isinstance(operator, str) or not operator.strip() or SEPARATOR in operator:
        raise ConfigError(f"{source}: operator: give the name of the participant that receives the storage fees "
                          f"(a home of the data, or a new name without '{SEPARATOR}'), got {operator!r}")
    fee = _number(document, "storage_fee_per_kwh", source, lambda v: 0 <= v <= 100, "an amount in [0, 100] per kWh")
    tables = document.get("battery", [])
    if not isinstance(tables, list) or not tables:
        raise ConfigError(f"{source}: battery: give at least one [[battery]] table")
    batteries, seen_names = [], set()
    for number, table in enumerate(tables, start=1):
        where = f"{source}: battery {number}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: expected a [[battery]] table, got {table!r}")
        name = table.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: name must be 1-40 letters, digits, '-' or '_', got {name!r}")
        where = f"{source}: battery {number} ({name})"
        if name in seen_names:
            raise ConfigError(f"{where}: a second battery of this name; give each its own")
        seen_names.add(name)
        unknown = sorted(set(table) - _BATTERY_KEYS)
        if unknown:
            raise ConfigError(f"{where}: {unknown[0]}: unknown key; expected one of: {', '.join(sorted(_BATTERY_KEYS))}")
        capacity = _number(table, "capacity_kwh", where, lambda v: 0 < v <= 100_000, "a capacity in (0, 100000] kWh")
        power = _number(table, "power_kw", where, lambda v: 0 < v <= 100_000, "a power in (0, 100000] kW")
        optional = {}
        for key, ok, expected in (("charge_efficiency", lambda v: 0 < v <= 1, "a fraction in (0, 1]"),
                                  ("discharge_efficiency", lambda v: 0 < v <= 1, "a fraction in (0, 1]"),
                                  ("min_soc", lambda v: 0 <= v < 1, "a fraction in [0, 1)"),
                                  ("initial_soc", lambda v: 0 < v <= 1, "a fraction in (0, 1]")):
            if key in table:
                optional[key] = _number(table, key, where, ok, expected)
        shares_table = table.get("shares")
        if not isinstance(shares_table, dict) or not shares_table:
            raise ConfigError(f"{where}: shares: give the homes' shares as a table, e.g. shares = {{ \"home-01\" = 10.0 }}")
        shares = []
        for home, kwh in shares_table.items():
            if isinstance(kwh, bool) or not isinstance(kwh, (int, float)) or not 0 < kwh <= capacity:
                raise ConfigError(f"{where}: shares.{home}: a share in (0, capacity_kwh = {capacity:g}] kWh, got {kwh!r}")
            shares.append((str(home), float(kwh)))
        total = sum(kwh for _, kwh in shares)
        if total > capacity * (1 + 1e-9):
            raise ConfigError(f"{where}: the shares add up to {total:g} kWh, more than the battery's {capacity:g} kWh")
        battery = SharedBattery(name, capacity, power, tuple(shares), **optional)
        if not battery.min_soc < battery.initial_soc:
            raise ConfigError(f"{where}: initial_soc {battery.initial_soc:g} must be above min_soc {battery.min_soc:g}")
        batteries.append(battery)
    return SharedBatteries(operator.strip(), fee, tuple(batteries))


def with_shared_batteries(community: Community, shared: SharedBatteries, source: str = "<shared batteries>") -> Community:
    """`community` with a participant per account (after the homes, battery by battery,
    shares in file order) and the operator (before them) if it is not a home: each with
    no load and no PV. Every share's home must be a home of the data."""
    homes = {home.name: home for home in community.homes}
    added: list[Home] = []
    if shared.operator not in homes:
        added.append(Home(shared.operator, 0, 0.0, False))
    for battery in shared.batteries:
        for home, kwh in battery.shares:
            if home not in homes:
                raise ConfigError(f"{source}: battery {battery.name}: shares.{home}: no such home in the data")
            added.append(Home(share_name(home, battery.name), homes[home].zone, 0.0, True,
                              battery_spec=battery.share_spec(kwh)))
    taken = set(homes) & {h.name for h in added}
    if taken - {shared.operator}:
        raise ConfigError(f"{source}: the data already has participants named {sorted(taken)}: rename the battery")
    zeros = np.zeros((len(added), len(community.timestamps)))
    return replace(community, homes=community.homes + tuple(added),
                   consumption_kwh=np.vstack([community.consumption_kwh, zeros]),
                   production_kwh=np.vstack([community.production_kwh, zeros]))


def _number(table: dict, key: str, where: str, ok, expected: str) -> float:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(float(value)):
        raise ConfigError(f"{where}: {key} must be {expected}, got {value!r}")
    return float(value)


def shared_batteries_of(config) -> SharedBatteries | None:
    """The config's shared batteries (``community.shared_batteries_file``), None without."""
    path = config.community.shared_batteries_file
    return load_shared_batteries(path) if path else None


def apply_shared_batteries(community: Community, config) -> Community:
    """`community` with the config's shared batteries' participants (unchanged without a file)."""
    shared = shared_batteries_of(config)
    if shared is None:
        return community
    return with_shared_batteries(community, shared, config.community.shared_batteries_file)
