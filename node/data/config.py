"""Community configuration: market timing, tariffs, grid limits, batteries.

The config is a TOML file (see ``examples/community.toml``, which documents
every field and its unit). Every section and field is optional; missing ones
take the defaults below, so ``load_config`` of the example file equals
``default_config()``. Unknown keys and bad values raise `ConfigError` naming the
file, the dotted key (``tariffs.buy_per_kwh``) and what is expected.

Each section is a frozen dataclass that validates itself on construction, so
``dataclasses.replace(config.batteries, min_soc=2.0)`` fails just as loudly as a
bad file does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import tomllib
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from node.data.devices import AgentConfig, HvacConfig
from node.data.section import InvalidValue, Section, as_utc_index
from node.data.tariffs import TariffConfig, resolve
from node.errors import ConfigError, InputError

__all__ = [
    "AgentConfig",
    "BatteryConfig",
    "CommunityConfig",
    "CommunitySpec",
    "GridConfig",
    "HvacConfig",
    "MarketConfig",
    "P2PConfig",
    "InvalidValue",
    "TariffConfig",
    "WalletConfig",
    "config_from_mapping",
    "default_config",
    "load_config",
]


@dataclass(frozen=True)
class MarketConfig(Section):
    """Market timing.

    Attributes:
        interval_minutes: length of one market interval in minutes.
        horizon_steps: intervals the optimiser looks ahead (rolling horizon).
        start: epoch of the market, UTC; interval 0 starts here.
        currency: ISO 4217 code of the settlement currency.
        mechanism: how each interval clears: "community" (the optimiser schedules
            batteries and trades for participants within their signed mandates) or
            "auction" (a double auction of participants' signed orders).
        pricing: the auction's pricing, "uniform" (pay-as-clear) or "pay_as_bid"
            (the spread goes to the grid operator's wallet).
    """

    section: ClassVar[str] = "market"
    interval_minutes: int = 15
    horizon_steps: int = 96
    start: pd.Timestamp = pd.Timestamp("2026-06-01T00:00:00+00:00")
    currency: str = "EUR"
    mechanism: str = "community"
    pricing: str = "uniform"

    def __post_init__(self) -> None:
        minutes = self.interval_minutes
        # Intervals must tile an hour or a day exactly, so that interval
        # boundaries fall on the same clock times every day.
        self._require(
            minutes > 0 and (60 % minutes == 0 or (minutes % 60 == 0 and 1440 % minutes == 0)),
            "interval_minutes",
            "a positive number of minutes dividing 60 (1, 5, 15, 30, 60, ...) or a whole number "
            "of hours dividing 24 (120, 180, 240, 360, 480, 720, 1440)",
        )
        self._require(self.horizon_steps >= 1, "horizon_steps", "an integer >= 1")
        self._require(self.start.tzinfo is not None, "start", "a date-time with a UTC offset")
        object.__setattr__(self, "start", self.start.tz_convert("UTC"))
        self._require(bool(re.fullmatch(r"[A-Z]{3}", self.currency)), "currency", "a 3-letter ISO 4217 code like EUR")
        self._require(self.mechanism in ("community", "auction"), "mechanism", '"community" or "auction"')
        self._require(self.pricing in ("uniform", "pay_as_bid"), "pricing", '"uniform" or "pay_as_bid"')

    @property
    def interval(self) -> pd.Timedelta:
        """Length of one interval."""
        return pd.Timedelta(minutes=self.interval_minutes)

    @property
    def interval_hours(self) -> float:
        """Length of one interval in hours (kW x interval_hours = kWh)."""
        return self.interval_minutes / 60

    def interval_index(self, timestamps: Iterable[Any]) -> np.ndarray:
        """Interval numbers (from the epoch `start`) of interval start times.

        Timezone-naive timestamps are taken as UTC. Raises `InputError` if a
        timestamp is not on the interval grid.
        """
        offsets = as_utc_index(timestamps).as_unit("ns").asi8 - self.start.as_unit("ns").value
        step = self.interval.value
        off_grid = offsets % step != 0
        if np.any(off_grid):
            bad = as_utc_index(timestamps)[int(np.argmax(off_grid))]
            raise InputError(f"{bad} is not the start of a {self.interval_minutes}-minute interval from {self.start}")
        return offsets // step


@dataclass(frozen=True)
class GridConfig(Section):
    """Community-level grid connection limits.

    Attributes:
        import_capacity_kw: maximum power drawn from the grid, kW.
        export_capacity_kw: maximum power fed into the grid, kW.
        network: the network file the community clears on (node/data/network_file.py,
            e.g. examples/network/network.toml), relative to the config file; each
            home is in the network zone whose id (or, without ids, index) is the
            home's zone. "" for none: a copper plate, one P2P price.
    """

    section: ClassVar[str] = "grid"
    import_capacity_kw: float = 60.0
    export_capacity_kw: float = 40.0
    network: str = ""

    def __post_init__(self) -> None:
        self._require(self.import_capacity_kw > 0, "import_capacity_kw", "a power > 0 kW")
        self._require(self.export_capacity_kw > 0, "export_capacity_kw", "a power > 0 kW")

    def import_capacity_kwh(self, interval_minutes: int) -> float:
        """Most energy the community may import in one interval, kWh."""
        return self.import_capacity_kw * interval_minutes / 60

    def export_capacity_kwh(self, interval_minutes: int) -> float:
        """Most energy the community may export in one interval, kWh."""
        return self.export_capacity_kw * interval_minutes / 60


@dataclass(frozen=True)
class P2PConfig(Section):
    """Peer-to-peer trading.

    Attributes:
        transaction_cost_per_kwh: fee per kWh traded between participants, currency per kWh.
    """

    section: ClassVar[str] = "p2p"
    transaction_cost_per_kwh: float = 0.005

    def __post_init__(self) -> None:
        self._require(self.transaction_cost_per_kwh >= 0, "transaction_cost_per_kwh", "a cost >= 0")


@dataclass(frozen=True)
class BatteryConfig(Section):
    """Home battery parameters (the same for every home that has one).

    Attributes:
        capacity_kwh: usable energy capacity, kWh.
        power_kw: maximum charge and discharge power, kW.
        charge_efficiency: fraction of grid-side energy stored when charging.
        discharge_efficiency: fraction of stored energy delivered when discharging.
        initial_soc: state of charge at the start, fraction of capacity.
        min_soc: lowest allowed state of charge, fraction of capacity.
    """

    section: ClassVar[str] = "batteries"
    capacity_kwh: float = 10.0
    power_kw: float = 5.0
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    initial_soc: float = 0.5
    min_soc: float = 0.1

    def __post_init__(self) -> None:
        self._require(self.capacity_kwh > 0, "capacity_kwh", "an energy > 0 kWh")
        self._require(self.power_kw > 0, "power_kw", "a power > 0 kW")
        for name in ("charge_efficiency", "discharge_efficiency"):
            self._require(0 < getattr(self, name) <= 1, name, "a fraction in (0, 1]")
        self._require(0 <= self.min_soc < 1, "min_soc", "a fraction in [0, 1)")
        self._require(
            self.min_soc < self.initial_soc <= 1,
            "initial_soc",
            f"a fraction > min_soc ({self.min_soc}) and <= 1",
        )


@dataclass(frozen=True)
class CommunitySpec(Section):
    """Shape of the synthetic community and the seed that makes it reproducible.

    Attributes:
        homes: number of homes.
        pv_share: fraction of homes with PV.
        battery_share: fraction of all homes with a battery (only PV homes get one).
        days: days of data to generate.
        seed: seed of every random choice (same seed, same community).
        latitude: site latitude, degrees north.
        longitude: site longitude, degrees east.
        pv_kwp_range: [min, max] PV peak power per PV home, kWp.
        annual_load_kwh_range: [min, max] annual consumption per home, kWh.
        battery_size_spread: each synthetic battery's capacity and power are drawn
            uniformly within this fraction around [batteries] (0: all alike).
        hvac_share: fraction of synthetic homes with an HVAC ([hvac]).
        assets_file: the community file giving each participant its own assets
            (node/data/assets.py), relative to the config file; "" for none.
        shared_batteries_file: the shared batteries and the homes' shares in them
            (node/data/shared_batteries.py), relative to the config file; "" for none.
    """

    section: ClassVar[str] = "community"
    homes: int = 20
    pv_share: float = 0.6
    battery_share: float = 0.3
    days: int = 1
    seed: int = 42
    latitude: float = 52.5
    longitude: float = 13.4
    pv_kwp_range: tuple[float, float] = (3.0, 10.0)
    annual_load_kwh_range: tuple[float, float] = (2500.0, 6000.0)
    battery_size_spread: float = 0.0
    hvac_share: float = 0.0
    assets_file: str = ""
    shared_batteries_file: str = ""

    def __post_init__(self) -> None:
        self._require(self.homes >= 1, "homes", "an integer >= 1")
        self._require(0 <= self.pv_share <= 1, "pv_share", "a fraction in [0, 1]")
        self._require(
            0 <= self.battery_share <= self.pv_share,
            "battery_share",
            f"a fraction in [0, pv_share ({self.pv_share})], since batteries go only to PV homes",
        )
        self._require(self.days >= 1, "days", "an integer >= 1")
        self._require(self.seed >= 0, "seed", "an integer >= 0")
        self._require(-90 <= self.latitude <= 90, "latitude", "degrees in [-90, 90]")
        self._require(-180 <= self.longitude <= 180, "longitude", "degrees in [-180, 180]")
        for name in ("pv_kwp_range", "annual_load_kwh_range"):
            low, high = getattr(self, name)
            self._require(0 < low <= high, name, "[min, max] with 0 < min <= max")
        self._require(0 <= self.battery_size_spread < 1, "battery_size_spread", "a fraction in [0, 1)")
        self._require(0 <= self.hvac_share <= 1, "hvac_share", "a fraction in [0, 1]")


@dataclass(frozen=True)
class WalletConfig(Section):
    """On-chain wallets in the demo.

    Attributes:
        initial_deposit: amount the admin deposits into each home's wallet, currency units.
    """

    section: ClassVar[str] = "wallets"
    initial_deposit: float = 50.0

    def __post_init__(self) -> None:
        self._require(self.initial_deposit >= 0, "initial_deposit", "an amount >= 0")


@dataclass(frozen=True)
class CommunityConfig:
    """The whole community config, one attribute per TOML section."""

    market: MarketConfig = field(default_factory=MarketConfig)
    tariffs: TariffConfig = field(default_factory=TariffConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    p2p: P2PConfig = field(default_factory=P2PConfig)
    batteries: BatteryConfig = field(default_factory=BatteryConfig)
    community: CommunitySpec = field(default_factory=CommunitySpec)
    wallets: WalletConfig = field(default_factory=WalletConfig)
    hvac: HvacConfig = field(default_factory=HvacConfig)
    agents: AgentConfig = field(default_factory=AgentConfig)


def default_config() -> CommunityConfig:
    """The built-in defaults (what ``examples/community.toml`` spells out)."""
    return CommunityConfig()


def load_config(path: str | Path) -> CommunityConfig:
    """Read and validate a community config TOML file.

    Missing sections and fields take their defaults. Raises `ConfigError`
    naming the file and the dotted key for unknown keys and bad values.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid TOML: the file is not UTF-8 text") from None
    return config_from_mapping(document, source=str(path), base=path.parent)


def config_from_mapping(document: Mapping[str, Any], source: str = "<config>", base: Path | None = None) -> CommunityConfig:
    """Build a config from already-parsed TOML tables (``source`` names it in errors).

    File paths in it (tariffs.prices_file, community.assets_file) are taken relative to
    ``base`` (the config file's directory; None: the working directory) and made
    absolute; a prices file is read and checked here."""
    sections = {f.name: f.default_factory for f in dataclasses.fields(CommunityConfig)}  # type: ignore[misc]
    unknown = sorted(set(document) - set(sections))
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]}: unknown section; expected one of: {', '.join(sections)}")
    built = {}
    for name, section_class in sections.items():
        table = document.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: {name}: expected a table [{name}], got {table!r}")
        built[name] = _build_section(section_class, table, source)  # type: ignore[arg-type]
    config = CommunityConfig(**built)
    tariffs, community = config.tariffs, config.community
    config = dataclasses.replace(
        config,
        tariffs=dataclasses.replace(tariffs, prices_file=resolve(tariffs.prices_file, base)),
        community=dataclasses.replace(community, assets_file=resolve(community.assets_file, base),
                                      shared_batteries_file=resolve(community.shared_batteries_file, base)),
        grid=dataclasses.replace(config.grid, network=resolve(config.grid.network, base)),
    )
    config.tariffs.check_prices()
    return config


def _build_section(section_class: type[Section], table: Mapping[str, Any], source: str) -> Section:
    hints = typing.get_type_hints(section_class)
    names = [f.name for f in dataclasses.fields(section_class)]  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(
            f"{source}: {section_class.section}.{unknown[0]}: unknown key; expected one of: {', '.join(names)}"
        )
    values = {}
    for name, raw in table.items():
        key = f"{section_class.section}.{name}"
        try:
            values[name] = _coerce(hints[name], raw, key)
        except InvalidValue as error:
            raise ConfigError(f"{source}: {error}") from None
    try:
        return section_class(**values)
    except InvalidValue as error:
        raise ConfigError(f"{source}: {error}") from None


def _coerce(hint: Any, raw: Any, key: str) -> Any:
    """Check a TOML value's type against the field's annotation and convert it."""
    if hint is bool:
        if isinstance(raw, bool):
            return raw
        raise InvalidValue(key, "true or false", raw)
    if hint is int:
        # bool is an int in Python but `homes = true` is surely a mistake.
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        raise InvalidValue(key, "an integer", raw)
    if hint is float:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        raise InvalidValue(key, "a number", raw)
    if hint is str:
        if isinstance(raw, str):
            return raw
        raise InvalidValue(key, "a string", raw)
    if hint is pd.Timestamp:
        return _coerce_timestamp(raw, key)
    if typing.get_origin(hint) is tuple:
        item_hints = typing.get_args(hint)
        if not isinstance(raw, list) or len(raw) != len(item_hints):
            raise InvalidValue(key, f"a list of {len(item_hints)} values like [3, 10]", raw)
        return tuple(_coerce(item_hint, item, key) for item_hint, item in zip(item_hints, raw))
    raise TypeError(f"no TOML conversion for {hint!r}")  # a programming error, not a user one


def _coerce_timestamp(raw: Any, key: str) -> pd.Timestamp:
    expected = "a date-time with a UTC offset like 2026-06-01T00:00:00+00:00"
    if isinstance(raw, dt.datetime):
        stamp = pd.Timestamp(raw)
    elif isinstance(raw, str):
        try:
            stamp = pd.Timestamp(raw)
        except ValueError:
            raise InvalidValue(key, expected, raw) from None
    else:
        raise InvalidValue(key, expected, raw)
    # The epoch numbers every interval on chain; guessing its zone is too risky.
    if stamp.tzinfo is None:
        raise InvalidValue(key, expected, raw)
    return stamp.tz_convert("UTC")
