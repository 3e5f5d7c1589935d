"""The network file: a TOML manifest naming CSV tables (see examples/network/).

    [network]
    name = "Two feeders"          # optional, shown in the UI
    power_unit = "kW"             # unit of every power in the tables: "kW" or "MW" (default MW)
    base_power_mva = 1000.0       # S of the DC power flow f = S b (theta_from - theta_to), MVA
    reference_zone = "grid"       # optional: the zone whose angle is 0 (default: the first)
    zones = "zones.csv"           # optional when levels.csv names every zone
    lines = "lines.csv"           # optional
    levels = "levels.csv"         # optional: a radial grid, level by level
    limits = "limits.csv"         # optional: limits that differ in some intervals

Tables (header row first; columns in any order; optional columns may be left out):

    zones.csv   name; optional id (integer >= 0: the zone participants register with on
                chain), kind (zone, grid, substation, transformer, feeder, connection),
                grid_import and grid_export (a connection to the upstream grid at this zone:
                both or neither; "inf" for no limit), x and y (where to draw it)
    lines.csv   name, zone_from, zone_to, susceptance (per unit on base_power_mva, > 0),
                capacity (most flow from zone_from to zone_to, or "inf"); optional
                capacity_back (the other way; default capacity), kind
    levels.csv  name, kind (grid, substation, transformer, feeder, connection), parent,
                import, export; optional id, x, y. Each level is a zone; a level with a
                parent is joined to it by a line named like the level whose limits are the
                level's import (into the level) and export; a level without a parent is
                where the network meets the upstream grid, with those limits.
    limits.csv  interval (the market interval number, >= 0), element (a line, a level or
                a grid-connected zone), import, export: the limits in force in that interval
                instead of the defaults. For a line, import is the flow from zone_from to
                zone_to.

A bad cell is reported with the file, the row (the header is row 1) and the column.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from node.data.network import LEVEL_SUSCEPTANCE, ZONE_KINDS, Line, Network, Zone
from node.data.table import first_bad, is_blank, read_table, to_floats
from node.errors import DataError, InputError

POWER_UNITS = {"MW": 1, "kW": 1000}  # table values per MW
MANIFEST_KEYS = ("name", "power_unit", "base_power_mva", "reference_zone", "zones", "lines", "levels", "limits")
LEVEL_KINDS = ZONE_KINDS[1:]  # every kind but a plain "zone"

COLUMNS = {
    "zones": (("name",), ("id", "kind", "grid_import", "grid_export", "x", "y")),
    "lines": (("name", "zone_from", "zone_to", "susceptance", "capacity"), ("capacity_back", "kind")),
    "levels": (("name", "kind", "parent", "import", "export"), ("id", "x", "y")),
    "limits": (("interval", "element", "import", "export"), ()),
}


def load_network(path: Path | str) -> Network:
    """The network a manifest describes; `DataError` naming file, row and column, or
    `InputError` naming the manifest key, for anything wrong."""
    path = Path(path)
    manifest = _read_manifest(path)
    unit = manifest.get("power_unit", "MW")
    if unit not in POWER_UNITS:
        raise InputError(f"{path}: power_unit must be one of {', '.join(POWER_UNITS)}, got {unit!r}")
    per_mw = POWER_UNITS[unit]
    tables = {key: _table(path, manifest, key) for key in ("zones", "lines", "levels", "limits")}
    if tables["zones"] is None and tables["levels"] is None:
        raise InputError(f"{path}: name a zones table, a levels table or both (keys 'zones', 'levels')")

    zones: dict[str, Zone] = {}
    lines: list[Line] = []
    if tables["zones"] is not None:
        file, table = tables["zones"]
        for row, z in _zone_rows(file, table, per_mw):
            _add_unique(zones, z.name, z, file, row)
    if tables["levels"] is not None:
        file, table = tables["levels"]
        _levels(file, table, per_mw, zones, lines)
    if tables["lines"] is not None:
        file, table = tables["lines"]
        known_lines = {line.name for line in lines}
        for row, line in line_rows(file, table, per_mw, zones):
            if line.name in known_lines:
                raise DataError(str(file), row, "name", f"line {line.name!r} appears twice (a level's line has its name)")
            known_lines.add(line.name)
            lines.append(line)
    overrides = _overrides(*tables["limits"], per_mw, zones, lines) if tables["limits"] is not None else {}
    base = manifest.get("base_power_mva", 1000.0)
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not (math.isfinite(base) and base > 0):
        raise InputError(f"{path}: base_power_mva must be a number > 0, got {base!r}")
    reference = manifest.get("reference_zone")
    if reference is not None and reference not in zones:
        raise InputError(f"{path}: reference_zone {reference!r} is not a zone of the network")
    try:
        return Network(tuple(zones.values()), tuple(lines), float(base), reference, overrides,
                       str(manifest.get("name", path.stem)))
    except InputError as error:
        raise InputError(f"{path}: {error}") from None


def save_network(network: Network, directory: Path | str, power_unit: str = "MW") -> Path:
    """Writes `network` as network.toml, zones.csv, lines.csv (and limits.csv when some
    interval has its own limits) in `directory`; returns the manifest's path. Levels are
    written as the zones and lines they are, which reads back as the same network."""
    if power_unit not in POWER_UNITS:
        raise InputError(f"power_unit must be one of {', '.join(POWER_UNITS)}, got {power_unit!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    per_mw = POWER_UNITS[power_unit]

    def power(value: float | None) -> str:
        return "" if value is None else "inf" if math.isinf(value) else repr(float(value) * per_mw)

    zone_rows = [{"name": z.name, "id": "" if z.id is None else z.id, "kind": z.kind,
                  "grid_import": power(z.grid_import_mw), "grid_export": power(z.grid_export_mw),
                  "x": "" if z.x is None else z.x, "y": "" if z.y is None else z.y} for z in network.zones]
    line_rows = [{"name": line.name, "zone_from": line.zone_from, "zone_to": line.zone_to,
                  "susceptance": repr(line.susceptance), "capacity": power(line.capacity_mw),
                  "capacity_back": power(line.capacity_back_mw), "kind": line.kind} for line in network.lines]
    pd.DataFrame(zone_rows, columns=["name", *COLUMNS["zones"][1]]).to_csv(directory / "zones.csv", index=False)
    pd.DataFrame(line_rows, columns=[*COLUMNS["lines"][0], *COLUMNS["lines"][1]]).to_csv(directory / "lines.csv", index=False)
    text = [
        "[network]",
        f"name = {_toml_string(network.name)}",
        f'power_unit = "{power_unit}"',
        f"base_power_mva = {float(network.base_power_mva)!r}",
        f"reference_zone = {_toml_string(network.reference_zone or '')}",
        'zones = "zones.csv"',
        'lines = "lines.csv"',
    ]
    if network.overrides:
        limit_rows = [{"interval": k, "element": element, "import": power(imp), "export": power(exp)}
                      for k in sorted(network.overrides) for element, (imp, exp) in network.overrides[k].items()]
        pd.DataFrame(limit_rows, columns=list(COLUMNS["limits"][0])).to_csv(directory / "limits.csv", index=False)
        text.append('limits = "limits.csv"')
    manifest = directory / "network.toml"
    manifest.write_text("\n".join(text) + "\n")
    return manifest


# -- the manifest -----------------------------------------------------------------------------


def power_unit(path: Path | str) -> str:
    """The unit a network file's tables are written in ("MW" unless it says "kW")."""
    unit = _read_manifest(Path(path)).get("power_unit", "MW")
    return unit if unit in POWER_UNITS else "MW"


def _read_manifest(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"{path}: network file not found")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable TOML file ({error})") from None
    if set(document) != {"network"} or not isinstance(document["network"], dict):
        raise InputError(f"{path}: expected one [network] table (see examples/network/network.toml)")
    manifest = document["network"]
    unknown = sorted(set(manifest) - set(MANIFEST_KEYS))
    if unknown:
        raise InputError(f"{path}: network.{unknown[0]}: unknown key; expected one of {', '.join(MANIFEST_KEYS)}")
    return manifest


def _table(manifest_path: Path, manifest: dict, key: str) -> tuple[Path, pd.DataFrame] | None:
    if key not in manifest:
        return None
    name = manifest[key]
    if not isinstance(name, str) or not name:
        raise InputError(f"{manifest_path}: network.{key} must be a file name, got {name!r}")
    file = (manifest_path.parent / name)
    table = read_table(file)
    required, optional = COLUMNS[key]
    check_columns(file, table, required, optional)
    return file, table


def check_columns(file: Path, table: pd.DataFrame, required: Iterable[str], optional: Iterable[str] = ()) -> None:
    """Every required column present, no column twice and none unknown (a typo would
    otherwise pass as a missing optional column)."""
    columns = list(table.columns)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise DataError(str(file), 1, repeated[0], "column appears twice")
    missing = [c for c in required if c not in columns]
    if missing:
        raise DataError(str(file), 1, None, f"missing column(s) {', '.join(missing)}; expected {', '.join(required)}")
    allowed = list(required) + list(optional)
    unknown = [c for c in columns if c not in allowed]
    if unknown:
        raise DataError(str(file), 1, unknown[0], f"unknown column; expected {', '.join(allowed)}")


# -- cells ------------------------------------------------------------------------------------


def names(file: Path, table: pd.DataFrame, column: str) -> list[str]:
    values = table[column]
    first_bad(file, values, is_blank(values), column, lambda _: "missing name")
    return [str(v).strip() for v in values]


def numbers(file: Path, table: pd.DataFrame, column: str, *, minimum: float | None = None, positive: bool = False,
            infinite_ok: bool = False, blank_ok: bool = False, per_mw: float = 1) -> list[float | None]:
    """A numeric column divided by `per_mw` (1000 for a kW column, read as MW); "inf" only
    where `infinite_ok`; blank cells are None where `blank_ok`."""
    if column not in table:
        return [None] * len(table)
    values = table[column]
    blank = is_blank(values)
    if not blank_ok:
        first_bad(file, values, blank, column, lambda _: "missing value")
    text = values.astype(str).str.strip().str.lower()
    parsed = to_floats(text.where(~blank, "nan"))
    first_bad(file, values, ~blank & np.isnan(parsed), column, lambda v: f"{v!r} is not a number")
    first_bad(file, values, ~blank & np.isinf(parsed) & ~(infinite_ok & (parsed > 0)), column,
              lambda v: f"{v!r} is not a finite number" if not infinite_ok else f"{v!r}: only +inf means no limit")
    with np.errstate(invalid="ignore"):
        if minimum is not None:
            first_bad(file, values, ~blank & (parsed < minimum), column, lambda v: f"{v!r} is negative; expected >= {minimum:g}")
        if positive:
            first_bad(file, values, ~blank & (parsed <= 0), column, lambda v: f"{v!r} must be > 0")
    return [None if b else float(v) / per_mw for b, v in zip(blank, parsed)]


def _integers(file: Path, table: pd.DataFrame, column: str, blank_ok: bool) -> list[int | None]:
    values = numbers(file, table, column, minimum=0, blank_ok=blank_ok)
    bad = np.array([v is not None and v != math.floor(v) for v in values])
    first_bad(file, table[column] if column in table else table.iloc[:, 0], bad, column,
              lambda v: f"{v!r} is not an integer")
    return [None if v is None else int(v) for v in values]


def _kinds(file: Path, table: pd.DataFrame, allowed: tuple[str, ...], default: str) -> list[str]:
    if "kind" not in table:
        return [default] * len(table)
    values = table["kind"]
    text = values.astype(str).str.strip().str.lower().where(~is_blank(values), default)
    first_bad(file, values, ~text.isin(allowed).to_numpy(), "kind",
              lambda v: f"{v!r} is not one of {', '.join(allowed)}")
    return list(text)


def _add_unique(found: dict, name: str, value, file: Path, row: int, what: str = "zone") -> None:
    if name in found:
        raise DataError(str(file), row, "name", f"{what} {name!r} appears twice")
    found[name] = value


def known_name(file: Path, row: int, column: str, name: str, known: Mapping, what: str = "zone") -> None:
    """A reference to a zone (or generator...) that must have been defined."""
    if name not in known:
        listed = ", ".join(list(known)[:8]) + (", ..." if len(known) > 8 else "")
        raise DataError(str(file), row, column, f"{name!r} is not a known {what} ({what}s: {listed})")


# -- tables -----------------------------------------------------------------------------------


def _zone_rows(file: Path, table: pd.DataFrame, per_mw: float):
    zone_names = names(file, table, "name")
    ids = _integers(file, table, "id", blank_ok=True) if "id" in table else [None] * len(table)
    kinds = _kinds(file, table, ZONE_KINDS, "zone")
    grid_in = numbers(file, table, "grid_import", minimum=0, infinite_ok=True, blank_ok=True, per_mw=per_mw)
    grid_out = numbers(file, table, "grid_export", minimum=0, infinite_ok=True, blank_ok=True, per_mw=per_mw)
    xs, ys = (numbers(file, table, c, blank_ok=True) for c in ("x", "y"))
    for i, row in enumerate(table.index):
        if (grid_in[i] is None) != (grid_out[i] is None):
            column = "grid_export" if grid_out[i] is None else "grid_import"
            raise DataError(str(file), int(row), column, "a grid connection needs both grid_import and grid_export")
        yield int(row), Zone(zone_names[i], ids[i], kinds[i], grid_in[i], grid_out[i], xs[i], ys[i])


def line_rows(file: Path, table: pd.DataFrame, per_mw: float, zones: dict):
    line_names = names(file, table, "name")
    ends = {c: names(file, table, c) for c in ("zone_from", "zone_to")}
    susceptance = numbers(file, table, "susceptance", positive=True)
    capacity = numbers(file, table, "capacity", minimum=0, infinite_ok=True, per_mw=per_mw)
    back = numbers(file, table, "capacity_back", minimum=0, infinite_ok=True, blank_ok=True, per_mw=per_mw)
    kinds = _kinds(file, table, ("line", "transformer", "substation", "feeder", "connection"), "line")
    seen: dict[str, int] = {}
    for i, row in enumerate(table.index):
        row = int(row)
        _add_unique(seen, line_names[i], row, file, row, "line")
        for column, values in ends.items():
            known_name(file, row, column, values[i], zones)
        if ends["zone_from"][i] == ends["zone_to"][i]:
            raise DataError(str(file), row, "zone_to", f"the line connects {ends['zone_to'][i]!r} to itself")
        yield row, Line(line_names[i], ends["zone_from"][i], ends["zone_to"][i], susceptance[i], capacity[i],
                        capacity[i] if back[i] is None else back[i], kinds[i])


def _levels(file: Path, table: pd.DataFrame, per_mw: float, zones: dict, lines: list) -> None:
    level_names = names(file, table, "name")
    kinds = _kinds(file, table, LEVEL_KINDS, "")
    blank_kind = [k == "" for k in kinds]
    first_bad(file, table["kind"], np.array(blank_kind), "kind", lambda _: f"missing kind; one of {', '.join(LEVEL_KINDS)}")
    parents = [None if b else str(v).strip() for b, v in zip(is_blank(table["parent"]), table["parent"])]
    imports = numbers(file, table, "import", minimum=0, infinite_ok=True, per_mw=per_mw)
    exports = numbers(file, table, "export", minimum=0, infinite_ok=True, per_mw=per_mw)
    ids = _integers(file, table, "id", blank_ok=True) if "id" in table else [None] * len(table)
    xs, ys = (numbers(file, table, c, blank_ok=True) for c in ("x", "y"))
    rows = [int(r) for r in table.index]
    for i, row in enumerate(rows):
        top = parents[i] is None
        if kinds[i] == "grid" and not top:
            raise DataError(str(file), row, "parent", "a level of kind grid is the top: leave its parent blank")
        zone = Zone(level_names[i], ids[i], kinds[i], imports[i] if top else None, exports[i] if top else None, xs[i], ys[i])
        _add_unique(zones, level_names[i], zone, file, row)
    for i, row in enumerate(rows):
        parent = parents[i]
        if parent is None:
            continue
        known_name(file, row, "parent", parent, zones)
        if parent == level_names[i]:
            raise DataError(str(file), row, "parent", "a level cannot be its own parent")
        lines.append(Line(level_names[i], parent, level_names[i], LEVEL_SUSCEPTANCE, imports[i], exports[i], kinds[i]))
    _check_no_cycle(file, rows, level_names, parents)


def _check_no_cycle(file: Path, rows: list[int], level_names: list[str], parents: list[str | None]) -> None:
    parent_of = dict(zip(level_names, parents))
    for i, start in enumerate(level_names):
        seen, current = [start], parent_of.get(start)
        while current in parent_of:
            if current in seen:
                raise DataError(str(file), rows[i], "parent", f"levels {' -> '.join(seen + [current])} form a cycle; "
                                "a radial grid's levels end at a level without a parent")
            seen.append(current)
            current = parent_of[current]


def _overrides(file: Path, table: pd.DataFrame, per_mw: float, zones: dict, lines: list) -> dict:
    intervals = _integers(file, table, "interval", blank_ok=False)
    elements = names(file, table, "element")
    imports = numbers(file, table, "import", minimum=0, infinite_ok=True, per_mw=per_mw)
    exports = numbers(file, table, "export", minimum=0, infinite_ok=True, per_mw=per_mw)
    limited = {line.name for line in lines} | {name for name, z in zones.items() if z.grid_connected}
    overrides: dict[int, dict[str, tuple[float, float]]] = {}
    for i, row in enumerate(table.index):
        if elements[i] not in limited:
            raise DataError(str(file), int(row), "element",
                            f"{elements[i]!r} is neither a line nor a zone with a grid connection; only those have limits")
        for_interval = overrides.setdefault(intervals[i], {})
        if elements[i] in for_interval:
            raise DataError(str(file), int(row), "element", f"{elements[i]!r} has two rows for interval {intervals[i]}")
        for_interval[elements[i]] = (imports[i], exports[i])
    return overrides


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
