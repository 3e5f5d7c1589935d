"""The electrical network a market prices: zones joined by lines, DC power flow.

A **zone** is a node of the network (a Mini-ISO zone, a bus of a MATPOWER case, the
bus-bar of a feeder or of a home's connection). A **line** joins two zones; under the
DC approximation it carries ``f = S * b * (theta_from - theta_to)`` MW, with ``S`` the
base power (MVA, 1000 by default as in Mini-ISO), ``b`` the susceptance in per unit of
it and ``theta`` the zones' voltage angles, one of which (the reference zone's) is 0.
A line's flow is limited to ``capacity_mw`` from ``zone_from`` to ``zone_to`` and to
``capacity_back_mw`` the other way.

A radial distribution grid (home connection -> feeder -> transformer/substation ->
grid) is the special case of a tree: each level is a zone whose line to its parent
carries everything below it, whatever the susceptance, so the line's two limits are
the level's import and export limits. Where the network meets the upstream grid, a
zone has a **grid connection** with its own import and export limits.

Every limit may change per market interval (`Network.limits`): the file's values are
the default, and an interval's overrides replace them for that interval only.

Everything here is MW; the file reader converts kW files once, on reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from node.errors import InputError
from optimizer.types import ZoneNetwork

BASE_POWER_MVA = 1000.0
ZONE_KINDS = ("zone", "grid", "substation", "transformer", "feeder", "connection")
"""What a zone stands for; levels of a radial grid from the top down after "zone"."""
LINE_KINDS = ("line", "transformer", "substation", "feeder", "connection")
"""What a line stands for; a radial level's line takes the level's kind."""
LEVEL_SUSCEPTANCE = 1.0
"""Per-unit susceptance given to a radial level's line: on a tree the flows do not
depend on it, only on what is injected below."""


@dataclass(frozen=True)
class Zone:
    name: str
    id: int | None = None  # the zone number participants are registered with on chain
    kind: str = "zone"
    grid_import_mw: float | None = None  # None: no connection to the upstream grid here
    grid_export_mw: float | None = None
    x: float | None = None  # where to draw it (any unit; Mini-ISO's coordinates)
    y: float | None = None

    @property
    def grid_connected(self) -> bool:
        return self.grid_import_mw is not None


@dataclass(frozen=True)
class Line:
    name: str
    zone_from: str
    zone_to: str
    susceptance: float  # per unit on the network's base power
    capacity_mw: float  # most flow from zone_from to zone_to (inf: no limit)
    capacity_back_mw: float  # most flow from zone_to to zone_from
    kind: str = "line"


@dataclass(frozen=True)
class Limits:
    """Every limit of the network in one interval, in the order of its zones and lines."""

    line_forward_mw: np.ndarray
    line_back_mw: np.ndarray
    grid_import_mw: np.ndarray  # 0 where a zone has no grid connection
    grid_export_mw: np.ndarray


@dataclass(frozen=True, eq=False)
class Network:
    """Zones and lines, checked: unique names, lines between known and different zones,
    positive susceptances, non-negative limits, every zone connected to the reference.

    ``overrides`` maps an interval to {element: (import_mw, export_mw)}, where an element
    is a line (import: from zone_from to zone_to) or a grid-connected zone (import: from
    the upstream grid); a radial level's import and export are those of its line.
    """

    zones: tuple[Zone, ...]
    lines: tuple[Line, ...]
    base_power_mva: float = BASE_POWER_MVA
    reference_zone: str | None = None
    overrides: Mapping[int, Mapping[str, tuple[float, float]]] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", tuple(self.zones))
        object.__setattr__(self, "lines", tuple(self.lines))
        if not self.zones:
            raise InputError("a network needs at least one zone")
        _unique([z.name for z in self.zones], "zone")
        _unique([line.name for line in self.lines], "line")
        _unique([z.id for z in self.zones if z.id is not None], "zone id")
        if not (math.isfinite(self.base_power_mva) and self.base_power_mva > 0):
            raise InputError(f"base power must be a number > 0 MVA, got {self.base_power_mva!r}")
        for z in self.zones:
            _check_zone(z)
        index = self.zone_index
        for line in self.lines:
            _check_line(line, index)
        if self.reference_zone is None:
            object.__setattr__(self, "reference_zone", self.zones[0].name)
        elif self.reference_zone not in index:
            raise InputError(f"reference zone {self.reference_zone!r} is not a zone of the network")
        isolated = self.unreachable()
        if isolated:
            raise InputError(f"zone(s) {', '.join(isolated)} have no path of lines to the reference zone "
                             f"{self.reference_zone}; connect them with a line")
        overrides = {int(k): dict(v) for k, v in self.overrides.items()}
        elements = self.limited_elements()
        for interval, changes in overrides.items():
            for element, (imp, exp) in changes.items():
                if element not in elements:
                    raise InputError(f"interval {interval}: {element!r} is neither a line nor a zone with a grid "
                                     "connection; only those have limits")
                _check_limit(f"interval {interval}, {element}: import", imp)
                _check_limit(f"interval {interval}, {element}: export", exp)
        object.__setattr__(self, "overrides", overrides)

    # -- lookup --------------------------------------------------------------------------

    @property
    def zone_index(self) -> dict[str, int]:
        return {z.name: i for i, z in enumerate(self.zones)}

    @property
    def line_index(self) -> dict[str, int]:
        return {line.name: i for i, line in enumerate(self.lines)}

    def zone(self, name: str) -> Zone:
        try:
            return self.zones[self.zone_index[name]]
        except KeyError:
            raise InputError(f"no zone {name!r} in the network") from None

    def limited_elements(self) -> set[str]:
        """Names an interval's override may change: lines and grid-connected zones."""
        return {line.name for line in self.lines} | {z.name for z in self.zones if z.grid_connected}

    def unreachable(self) -> list[str]:
        """Zones without a path of lines to the reference zone."""
        neighbours: dict[str, set[str]] = {z.name: set() for z in self.zones}
        for line in self.lines:
            neighbours[line.zone_from].add(line.zone_to)
            neighbours[line.zone_to].add(line.zone_from)
        start = self.reference_zone or self.zones[0].name
        seen, stack = {start}, [start]
        while stack:
            for other in neighbours[stack.pop()] - seen:
                seen.add(other)
                stack.append(other)
        return [z.name for z in self.zones if z.name not in seen]

    # -- limits per interval ------------------------------------------------------------------

    def limits(self, interval: int | None = None) -> Limits:
        """The limits in force in `interval` (the defaults for None or an interval without
        overrides)."""
        forward = np.array([line.capacity_mw for line in self.lines], dtype=float)
        back = np.array([line.capacity_back_mw for line in self.lines], dtype=float)
        grid_in = np.array([z.grid_import_mw or 0.0 for z in self.zones], dtype=float)
        grid_out = np.array([z.grid_export_mw or 0.0 for z in self.zones], dtype=float)
        lines, zones = self.line_index, self.zone_index
        for element, (imp, exp) in self.overrides.get(interval, {}).items() if interval is not None else ():
            if element in lines:
                forward[lines[element]], back[lines[element]] = imp, exp
            else:
                grid_in[zones[element]], grid_out[zones[element]] = imp, exp
        return Limits(forward, back, grid_in, grid_out)

    # -- DC power flow ------------------------------------------------------------------------

    def incidence(self) -> np.ndarray:
        """Lines x zones: +1 at a line's zone_from, -1 at its zone_to."""
        zones = self.zone_index
        matrix = np.zeros((len(self.lines), len(self.zones)))
        for i, line in enumerate(self.lines):
            matrix[i, zones[line.zone_from]] = 1.0
            matrix[i, zones[line.zone_to]] = -1.0
        return matrix

    def ptdf(self) -> np.ndarray:
        """Power transfer distribution factors, lines x zones: the MW on each line when one
        MW is injected in a zone and taken out at the reference zone (whose column is 0).
        For injections ``P`` that sum to zero, the flows are ``ptdf() @ P`` whatever the
        reference; this is the form a multi-period clearing adds line limits in."""
        A = self.incidence()
        ref = self.zone_index[self.reference_zone]
        others = [i for i in range(len(self.zones)) if i != ref]
        weights = self.base_power_mva * np.array([line.susceptance for line in self.lines])
        reduced = (A[:, others].T * weights) @ A[:, others]
        result = np.zeros_like(A)
        if others:
            result[:, others] = np.linalg.solve(reduced, (A[:, others].T * weights)).T
        return result

    def flows(self, injection_mw: Sequence[float]) -> np.ndarray:
        """DC line flows for zone injections (generation minus load) that sum to zero."""
        injection = np.asarray(injection_mw, dtype=float)
        if injection.shape != (len(self.zones),):
            raise InputError(f"expected one injection per zone ({len(self.zones)}), got shape {injection.shape}")
        if abs(injection.sum()) > 1e-6 * max(1.0, np.abs(injection).sum()):
            raise InputError(f"injections must sum to zero (they sum to {injection.sum():g} MW)")
        return self.ptdf() @ injection

    # -- for the clearing -------------------------------------------------------------------

    def clearing_lines(self, interval: int | None = None) -> list[dict[str, Any]]:
        """The lines in `optimizer.zonal.clear_zonal`'s form, with `interval`'s limits."""
        limits = self.limits(interval)
        return [{"name": line.name, "zone_from": line.zone_from, "zone_to": line.zone_to,
                 "susceptance": line.susceptance, "capacity_mw": float(limits.line_forward_mw[i]),
                 "capacity_back_mw": float(limits.line_back_mw[i])} for i, line in enumerate(self.lines)]


    def energy_limits(self, interval: int, interval_minutes: int) -> tuple[list[dict[str, Any]], dict[str, tuple[int, int]]]:
        """`interval`'s limits as whole Wh per interval (rounded down), in the form
        `optimizer.zonal_auction.clear_zonal_auction` takes: its lines with capacity_wh and
        capacity_back_wh, and each grid-connected zone's (import Wh, export Wh)."""
        if not (isinstance(interval_minutes, int) and interval_minutes > 0):
            raise InputError(f"interval length must be a whole number of minutes > 0, got {interval_minutes!r}")
        wh_per_mw = 1_000_000 * interval_minutes / 60

        def wh(mw: float) -> float | int:
            return mw if math.isinf(mw) else math.floor(mw * wh_per_mw + 1e-9)

        limits = self.limits(interval)
        lines = [{"name": line.name, "zone_from": line.zone_from, "zone_to": line.zone_to, "susceptance": line.susceptance,
                  "capacity_wh": wh(limits.line_forward_mw[i]), "capacity_back_wh": wh(limits.line_back_mw[i])}
                 for i, line in enumerate(self.lines)]
        grid = {}
        for i, z in enumerate(self.zones):
            if z.grid_connected:
                imp, exp = wh(limits.grid_import_mw[i]), wh(limits.grid_export_mw[i])
                if math.isinf(imp) or math.isinf(exp):
                    raise InputError(f"zone {z.name}: an auction needs a finite grid import and export limit per interval")
                grid[z.name] = (int(imp), int(exp))
        return lines, grid


def community_network(network: Network, home_zones: Sequence[str], intervals: Sequence[int],
                      interval_minutes: int) -> ZoneNetwork:
    """`network` in the community clearing's terms (`optimizer.types.ZoneNetwork`): home
    ``i`` in zone ``home_zones[i]`` (a zone name), step ``t`` under the limits of market
    interval ``intervals[t]``, every limit as kWh per step (MW x 1000 x interval hours)."""
    if not (isinstance(interval_minutes, int) and interval_minutes > 0):
        raise InputError(f"interval length must be a whole number of minutes > 0, got {interval_minutes!r}")
    index = network.zone_index
    unknown = sorted({z for z in home_zones if z not in index})
    if unknown:
        raise InputError(f"home zone(s) {', '.join(map(str, unknown))} are not zones of network "
                         f"{network.name or '(unnamed)'}; register each home in one of {', '.join(index)}")
    kwh_per_mw = 1000.0 * interval_minutes / 60
    steps = [network.limits(int(k)) for k in intervals]

    def per_step(field: str) -> np.ndarray:
        columns = [getattr(limits, field) for limits in steps]
        return np.stack(columns, axis=1) * kwh_per_mw if columns else np.zeros((0, 0))

    lines = network.lines
    return ZoneNetwork(
        home_zone=np.array([index[z] for z in home_zones], dtype=np.int64),
        line_from=np.array([index[line.zone_from] for line in lines], dtype=np.int64),
        line_to=np.array([index[line.zone_to] for line in lines], dtype=np.int64),
        susceptance=np.array([line.susceptance for line in lines], dtype=float),
        line_forward_kwh=per_step("line_forward_mw").reshape(len(lines), len(steps)),
        line_back_kwh=per_step("line_back_mw").reshape(len(lines), len(steps)),
        grid_import_kwh=per_step("grid_import_mw").reshape(len(network.zones), len(steps)),
        grid_export_kwh=per_step("grid_export_mw").reshape(len(network.zones), len(steps)),
        reference_zone=index[network.reference_zone],
    )


def _unique(names: Sequence[Any], what: str) -> None:
    seen: set[Any] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{what} {name!r} appears twice; names must be unique")
        seen.add(name)


def _check_limit(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise InputError(f"{what} must be a number >= 0 MW (inf for no limit), got {value!r}")


def _check_zone(z: Zone) -> None:
    if not isinstance(z.name, str) or not z.name.strip():
        raise InputError(f"a zone needs a name, got {z.name!r}")
    if z.kind not in ZONE_KINDS:
        raise InputError(f"zone {z.name}: kind {z.kind!r} is not one of {', '.join(ZONE_KINDS)}")
    if z.id is not None and (isinstance(z.id, bool) or not isinstance(z.id, int) or z.id < 0):
        raise InputError(f"zone {z.name}: id must be an integer >= 0, got {z.id!r}")
    if (z.grid_import_mw is None) != (z.grid_export_mw is None):
        raise InputError(f"zone {z.name}: a grid connection needs both an import and an export limit")
    if z.grid_connected:
        _check_limit(f"zone {z.name}: grid import", z.grid_import_mw)
        _check_limit(f"zone {z.name}: grid export", z.grid_export_mw)


def _check_line(line: Line, zones: Mapping[str, int]) -> None:
    what = f"line {line.name}"
    if not isinstance(line.name, str) or not line.name.strip():
        raise InputError(f"a line needs a name, got {line.name!r}")
    for end in (line.zone_from, line.zone_to):
        if end not in zones:
            raise InputError(f"{what}: zone {end!r} is not a zone of the network")
    if line.zone_from == line.zone_to:
        raise InputError(f"{what} connects zone {line.zone_from} to itself; a line joins two different zones")
    if line.kind not in LINE_KINDS:
        raise InputError(f"{what}: kind {line.kind!r} is not one of {', '.join(LINE_KINDS)}")
    if not (isinstance(line.susceptance, (int, float)) and math.isfinite(line.susceptance) and line.susceptance > 0):
        raise InputError(f"{what}: susceptance must be a finite number > 0 (per unit), got {line.susceptance!r}")
    _check_limit(f"{what}: capacity", line.capacity_mw)
    _check_limit(f"{what}: capacity back", line.capacity_back_mw)
