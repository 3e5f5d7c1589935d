"""A wholesale case in Mini-ISO's terms: a network, each zone's load, generators and
their offers (tranches of MW at a price), and Mini-ISO's files for it.

Mini-ISO describes a case with a JSON manifest naming four CSV files:

    {"generators": "generators.csv", "lines": "lines.csv", "offers": "offers.csv", "zones": "zones.csv"}

    generators.csv  name, zone, capacity (MW); optional cost (per MWh)
    lines.csv       name, zone_from, zone_to, susceptance (per unit on 1000 MVA), capacity (MW)
    offers.csv      generator, tranche, quantity (MW), price (per MWh)
    zones.csv       name, load (MW); optional x, y (where to draw it)

Other columns (Mini-ISO's data carries outputs such as a zone's price, or an "old cost")
are ignored, as Mini-ISO does. What Mini-ISO left as a TODO is checked here: a
generator's offers together may not exceed its capacity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from node.data.network import Line, Network, Zone
from node.data.network_file import check_columns, known_name, line_rows, names, numbers
from node.data.table import read_table
from node.errors import DataError, InputError

MANIFEST_KEYS = ("generators", "lines", "offers", "zones")
# Columns this importer reads; anything else in Mini-ISO's files is passed over.
_READ = {
    "generators": (("name", "zone", "capacity"), ("cost",)),
    "lines": (("name", "zone_from", "zone_to", "susceptance", "capacity"), ()),
    "offers": (("generator", "tranche", "quantity", "price"), ()),
    "zones": (("name", "load"), ("x", "y")),
}
CAPACITY_SLACK_MW = 1e-9  # offers summed in floating point may exceed a capacity by rounding only


@dataclass(frozen=True)
class Generator:
    name: str
    zone: str
    capacity_mw: float
    cost_per_mwh: float | None = None  # the generator's own cost, for the classroom's profit column


@dataclass(frozen=True)
class Offer:
    generator: str
    tranche: str
    quantity_mw: float
    price_per_mwh: float


@dataclass(frozen=True, eq=False)
class WholesaleCase:
    """A network, the load in each zone, generators and their offers, checked together."""

    network: Network
    loads_mw: Mapping[str, float]
    generators: tuple[Generator, ...]
    offers: tuple[Offer, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "generators", tuple(self.generators))
        object.__setattr__(self, "offers", tuple(self.offers))
        zones = self.network.zone_index
        loads = {z.name: 0.0 for z in self.network.zones}
        for zone, load in self.loads_mw.items():
            if zone not in zones:
                raise InputError(f"a load is given for zone {zone!r}, which is not a zone of the network")
            if not (isinstance(load, (int, float)) and math.isfinite(load) and load >= 0):
                raise InputError(f"zone {zone}: load must be a number >= 0 MW, got {load!r}")
            loads[zone] = float(load)
        object.__setattr__(self, "loads_mw", loads)
        seen: set[str] = set()
        for g in self.generators:
            if g.name in seen:
                raise InputError(f"generator {g.name!r} appears twice")
            seen.add(g.name)
            if g.zone not in zones:
                raise InputError(f"generator {g.name}: zone {g.zone!r} is not a zone of the network")
            if not (math.isfinite(g.capacity_mw) and g.capacity_mw >= 0):
                raise InputError(f"generator {g.name}: capacity must be a number >= 0 MW, got {g.capacity_mw!r}")
        check_offers(self.generators, self.offers)

    def generator(self, name: str) -> Generator:
        for g in self.generators:
            if g.name == name:
                return g
        raise InputError(f"no generator {name!r} in this case")

    def offers_of(self, generator: str) -> tuple[Offer, ...]:
        return tuple(o for o in self.offers if o.generator == generator)

    def with_offers(self, generator: str, offers: Iterable[Offer]) -> WholesaleCase:
        """This case with `generator`'s offers replaced (checked like the case's own)."""
        self.generator(generator)
        offers = tuple(offers)
        strangers = sorted({o.generator for o in offers} - {generator})
        if strangers:
            raise InputError(f"offers for {generator} include tranches of {', '.join(strangers)}")
        kept = tuple(o for o in self.offers if o.generator != generator)
        return replace(self, offers=kept + offers)

    def with_loads(self, loads_mw: Mapping[str, float]) -> WholesaleCase:
        return replace(self, loads_mw={**self.loads_mw, **loads_mw})

    def clearing_input(self, interval: int | None = None) -> dict[str, Any]:
        """Keyword arguments for `optimizer.zonal.clear_zonal`, with `interval`'s line limits."""
        zone_of = {g.name: g.zone for g in self.generators}
        return {
            "zones": [{"name": z, "load_mw": load} for z, load in self.loads_mw.items()],
            "lines": self.network.clearing_lines(interval),
            "offers": [{"generator": o.generator, "zone": zone_of[o.generator], "tranche": o.tranche,
                        "quantity_mw": o.quantity_mw, "price_per_mwh": o.price_per_mwh} for o in self.offers],
            "base_power_mva": self.network.base_power_mva,
            "reference_zone": self.network.reference_zone,
        }


def check_offers(generators: Iterable[Generator], offers: Iterable[Offer]) -> None:
    """Each offer names a known generator, a tranche once, a quantity >= 0 and a finite
    price; a generator's tranches together stay within its capacity."""
    capacity = {g.name: g.capacity_mw for g in generators}
    offered: dict[str, float] = {}
    tranches: set[tuple[str, str]] = set()
    for o in offers:
        if o.generator not in capacity:
            raise InputError(f"an offer names generator {o.generator!r}, which is not in the case")
        if (o.generator, o.tranche) in tranches:
            raise InputError(f"generator {o.generator} offers tranche {o.tranche!r} twice")
        tranches.add((o.generator, o.tranche))
        if not (math.isfinite(o.quantity_mw) and o.quantity_mw >= 0):
            raise InputError(f"offer {o.generator}/{o.tranche}: quantity must be a number >= 0 MW, got {o.quantity_mw!r}")
        if not math.isfinite(o.price_per_mwh):
            raise InputError(f"offer {o.generator}/{o.tranche}: price must be a finite number, got {o.price_per_mwh!r}")
        offered[o.generator] = offered.get(o.generator, 0.0) + o.quantity_mw
        if offered[o.generator] > capacity[o.generator] + CAPACITY_SLACK_MW:
            raise InputError(f"generator {o.generator} offers {offered[o.generator]:g} MW in all, more than its "
                             f"capacity of {capacity[o.generator]:g} MW; lower a tranche's quantity")


# -- Mini-ISO's files ---------------------------------------------------------------------------


def load_mini_iso(path: Path | str, base_power_mva: float = 1000.0) -> WholesaleCase:
    """The case a Mini-ISO JSON manifest names; errors name file, row and column."""
    path = Path(path)
    files = _manifest(path)
    tables = {}
    for key, file in files.items():
        table = read_table(file)
        required, optional = _READ[key]
        check_columns(file, table, required, optional + tuple(c for c in table.columns if c not in required + optional))
        tables[key] = (file, table)

    file, table = tables["zones"]
    zone_names = names(file, table, "name")
    loads = numbers(file, table, "load", minimum=0)
    xs, ys = (numbers(file, table, c, blank_ok=True) for c in ("x", "y"))
    zones: dict[str, Zone] = {}
    for i, row in enumerate(table.index):
        if zone_names[i] in zones:
            raise DataError(str(file), int(row), "name", f"zone {zone_names[i]!r} appears twice")
        zones[zone_names[i]] = Zone(zone_names[i], x=xs[i], y=ys[i])

    file, table = tables["lines"]
    lines = [line for _, line in line_rows(file, table, 1.0, zones)]

    file, table = tables["generators"]
    generator_names, generator_zones = names(file, table, "name"), names(file, table, "zone")
    capacities = numbers(file, table, "capacity", minimum=0)
    costs = numbers(file, table, "cost", blank_ok=True)
    generators: dict[str, Generator] = {}
    for i, row in enumerate(table.index):
        if generator_names[i] in generators:
            raise DataError(str(file), int(row), "name", f"generator {generator_names[i]!r} appears twice")
        known_name(file, int(row), "zone", generator_zones[i], zones)
        generators[generator_names[i]] = Generator(generator_names[i], generator_zones[i], capacities[i], costs[i])

    file, table = tables["offers"]
    offers = []
    owners, tranche_names = names(file, table, "generator"), names(file, table, "tranche")
    quantities, prices = numbers(file, table, "quantity", minimum=0), numbers(file, table, "price")
    offered: dict[str, float] = {}
    tranches: set[tuple[str, str]] = set()
    for i, row in enumerate(table.index):
        row = int(row)
        known_name(file, row, "generator", owners[i], generators, "generator")
        if (owners[i], tranche_names[i]) in tranches:
            raise DataError(str(file), row, "tranche", f"generator {owners[i]} offers tranche {tranche_names[i]!r} twice")
        tranches.add((owners[i], tranche_names[i]))
        offered[owners[i]] = offered.get(owners[i], 0.0) + quantities[i]
        capacity_mw = generators[owners[i]].capacity_mw
        if offered[owners[i]] > capacity_mw + CAPACITY_SLACK_MW:
            raise DataError(str(file), row, "quantity", f"generator {owners[i]}'s offers reach {offered[owners[i]]:g} MW "
                            f"here, more than its capacity of {capacity_mw:g} MW (generators.csv)")
        offers.append(Offer(owners[i], tranche_names[i], quantities[i], prices[i]))

    try:
        network = Network(tuple(zones.values()), tuple(lines), base_power_mva, name=path.stem)
        return WholesaleCase(network, dict(zip(zone_names, loads)), tuple(generators.values()), tuple(offers), path.stem)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None


def save_mini_iso(case: WholesaleCase, directory: Path | str, name: str | None = None) -> Path:
    """Writes `case` as a Mini-ISO manifest and its four CSV files; returns the manifest.
    Mini-ISO has one limit per line: a line whose two directions differ is refused."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    uneven = [line.name for line in case.network.lines if line.capacity_mw != line.capacity_back_mw]
    if uneven:
        raise InputError(f"line(s) {', '.join(uneven)} have different limits each way, which Mini-ISO cannot hold")
    frames = {
        "zones": pd.DataFrame([{"name": z.name, "load": case.loads_mw[z.name], "x": _blank(z.x), "y": _blank(z.y)}
                               for z in case.network.zones], columns=["name", "load", "x", "y"]),
        "lines": pd.DataFrame([{"name": line.name, "zone_from": line.zone_from, "zone_to": line.zone_to,
                                "susceptance": line.susceptance, "capacity": line.capacity_mw}
                               for line in case.network.lines], columns=list(_READ["lines"][0])),
        "generators": pd.DataFrame([{"name": g.name, "zone": g.zone, "capacity": g.capacity_mw, "cost": _blank(g.cost_per_mwh)}
                                    for g in case.generators], columns=["name", "zone", "capacity", "cost"]),
        "offers": pd.DataFrame([{"generator": o.generator, "tranche": o.tranche, "quantity": o.quantity_mw,
                                 "price": o.price_per_mwh} for o in case.offers], columns=list(_READ["offers"][0])),
    }
    for key, frame in frames.items():
        frame.to_csv(directory / f"{key}.csv", index=False)
    manifest = directory / f"{name or case.name or 'case'}.json"
    manifest.write_text(json.dumps({key: f"{key}.csv" for key in MANIFEST_KEYS}, indent=4) + "\n")
    return manifest


def _manifest(path: Path) -> dict[str, Path]:
    if not path.is_file():
        raise InputError(f"{path}: case file not found")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable JSON file ({error})") from None
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: expected a JSON object naming {', '.join(MANIFEST_KEYS)}")
    missing = [key for key in MANIFEST_KEYS if not isinstance(manifest.get(key), str)]
    if missing:
        raise InputError(f"{path}: the manifest must name a file for {', '.join(missing)} (e.g. \"{missing[0]}\": "
                         f"\"{missing[0]}.csv\")")
    return {key: path.parent / manifest[key] for key in MANIFEST_KEYS}


def _blank(value: float | None) -> Any:
    return "" if value is None else value
