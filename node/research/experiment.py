"""An experiment file: a grid of scenarios, each run once per seed.

A TOML file (see examples/experiment.toml)::

    [experiment]
    name = "mechanisms"              # default: the file's name
    seeds = [1, 2, 3]                # or a count: 3 means seeds 1, 2, 3
    config = "community.toml"        # optional base config, relative to this file
    intensity = "co2.csv"            # optional grid CO2 intensity (timestamp, g_per_kwh)

    [base]                           # config values for every run, as in the config file
    community.homes = 10

    [grid]                           # every combination of these lists is one scenario
    mechanism = ["community", "auction_uniform", "auction_pay_as_bid", "baseline"]
    community.battery_share = [0.0, 0.3]

A run's config is the base config, then ``[base]``, then its scenario's values, then
``community.seed`` = its seed (the synthetic community's every random choice). Every
run's config is checked before any run starts, so a typo stops the experiment at once
with the file and key named. A run's id is a hash of everything that determines its
numbers, so a resumed experiment reruns only runs it has no result for, and a changed
file reruns exactly the runs it changed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node.data.config import CommunityConfig, config_from_mapping, load_config
from node.errors import ConfigError, GridLedgerError, InputError

# Each mechanism an experiment can compare, and the market config it means.
MECHANISMS: dict[str, dict[str, str] | None] = {
    "community": {"mechanism": "community"},
    "auction_uniform": {"mechanism": "auction", "pricing": "uniform"},
    "auction_pay_as_bid": {"mechanism": "auction", "pricing": "pay_as_bid"},
    "baseline": None,  # no market: the no-trading baseline alone
}
MAX_RUNS = 100_000


@dataclass(frozen=True)
class RunSpec:
    """One run: a scenario (grid values by dotted key, mechanism included) and a seed."""

    run_id: str
    scenario: dict[str, Any]
    seed: int
    mechanism: str
    config: dict[str, dict[str, Any]]  # the full config document (node.simulation.record.config_document)
    intensity: tuple[float, ...] | None = None  # g/kWh per interval of the data


@dataclass(frozen=True)
class Experiment:
    name: str
    path: Path
    seeds: tuple[int, ...]
    grid: dict[str, list]  # dotted key -> values, in file order; "mechanism" always present
    base: dict[str, Any]  # dotted key -> value
    base_config: CommunityConfig
    intensity_path: Path | None
    text: str  # the file as written

    @property
    def scenario_keys(self) -> list[str]:
        return list(self.grid)

    def scenarios(self) -> list[dict[str, Any]]:
        keys = self.scenario_keys
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]

    def plan(self) -> list[RunSpec]:
        """Every run, scenarios in grid order, seeds within each; each config checked."""
        from node.simulation.record import config_document

        intensity = None if self.intensity_path is None else _intensity_for(self)
        runs = []
        base_document = _with(config_document(self.base_config), self.base, f"{self.path}: [base]")
        for scenario in self.scenarios():
            mechanism = scenario["mechanism"]
            values = {k: v for k, v in scenario.items() if k != "mechanism"}
            document = _with(base_document, values, f"{self.path}: [grid]")
            for key, value in (MECHANISMS[mechanism] or {}).items():
                document["market"][key] = value
            for seed in self.seeds:
                document["community"]["seed"] = seed
                config = _checked(document, f"{self.path}: scenario {_label(scenario)}, seed {seed}")
                run_config = config_document(config)
                series = None if intensity is None else tuple(intensity(config))
                run_id = _run_id(mechanism, run_config, series)
                runs.append(RunSpec(run_id, dict(scenario), seed, mechanism, run_config, series))
        return runs


def load_experiment(path: Path) -> Experiment:
    """Reads and checks an experiment file; InputError names the file and the key."""
    try:
        text = path.read_text()
        document = tomllib.loads(text)
    except FileNotFoundError:
        raise InputError(f"{path}: experiment file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the experiment file: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML: {exc}") from None
    unknown = sorted(set(document) - {"experiment", "base", "grid"})
    if unknown:
        raise InputError(f"{path}: unknown section [{unknown[0]}]; expected [experiment], [base] and [grid]")
    head = document.get("experiment", {})
    bad = sorted(set(head) - {"name", "seeds", "config", "intensity"})
    if bad:
        raise InputError(f"{path}: experiment.{bad[0]}: unknown key; expected name, seeds, config, intensity")
    seeds = _seeds(head.get("seeds", 1), path)
    base_config = load_config(path.parent / head["config"]) if "config" in head else config_from_mapping({})
    grid = _flatten(document.get("grid", {}))
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise InputError(f"{path}: grid.{key} must be a non-empty list of values, got {values!r}")
    mechanisms = grid.pop("mechanism", ["community"])
    for m in mechanisms:
        if m not in MECHANISMS:
            raise InputError(f"{path}: grid.mechanism: {m!r} is not one of {', '.join(MECHANISMS)}")
    for key in grid:
        if key.startswith("market.mechanism") or key.startswith("market.pricing"):
            raise InputError(f"{path}: grid.{key}: choose the market with grid.mechanism ({', '.join(MECHANISMS)})")
    grid = {"mechanism": mechanisms} | grid
    count = len(seeds) * _product(len(v) for v in grid.values())
    if count > MAX_RUNS:
        raise InputError(f"{path}: the grid makes {count:,} runs, more than {MAX_RUNS:,}: split the experiment")
    intensity = head.get("intensity")
    return Experiment(
        name=str(head.get("name", path.stem)), path=path, seeds=seeds, grid=grid,
        base=_flatten(document.get("base", {})), base_config=base_config,
        intensity_path=None if intensity is None else path.parent / intensity, text=text,
    )


def _seeds(raw: Any, path: Path) -> tuple[int, ...]:
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 1:
        return tuple(range(1, raw + 1))
    if isinstance(raw, list) and raw and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw):
        if len(set(raw)) != len(raw):
            raise InputError(f"{path}: experiment.seeds lists a seed twice: {raw}")
        return tuple(raw)
    raise InputError(f"{path}: experiment.seeds must be a count (>= 1) or a list of distinct seeds >= 0, got {raw!r}")


def _flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    """{"community": {"homes": [5]}} -> {"community.homes": [5]}; dotted TOML keys arrive nested."""
    out = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flatten(value, name + ".")
        else:
            out[name] = value
    return out


def _with(document: dict, values: dict[str, Any], where: str) -> dict:
    """A copy of the config `document` with dotted-key `values` set; a key that is not
    `section.field` of the config is refused here (a bad value, by config_from_mapping)."""
    out = {section: dict(fields) for section, fields in document.items()}
    for key, value in values.items():
        section, _, name = key.partition(".")
        if section not in out or name not in out[section]:
            raise InputError(f"{where}: {key}: not a config key (section.key, e.g. community.battery_share)")
        out[section][name] = value
    return out


def _checked(document: dict, where: str) -> CommunityConfig:
    try:
        return config_from_mapping(document, source=where)
    except ConfigError:
        raise
    except GridLedgerError as exc:
        raise InputError(f"{where}: {exc}") from None


def _run_id(mechanism: str, config: dict, intensity: tuple[float, ...] | None) -> str:
    canonical = json.dumps({"mechanism": mechanism, "config": config, "intensity": intensity}, sort_keys=True,
                           default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _label(scenario: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in scenario.items())


def _product(counts) -> int:
    total = 1
    for c in counts:
        total *= c
    return total


def _intensity_for(experiment: Experiment):
    """A function of a run's config giving the intensity at each interval of its data."""
    from node.data.intensity import load_intensity

    series = load_intensity(experiment.intensity_path)

    def at(config: CommunityConfig) -> list[float]:
        from node.data.synthetic import timestamps_of

        return series.at(timestamps_of(config))

    return at

