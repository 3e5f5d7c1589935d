"""Networks from and to pandapower: its built-in test grids (a radial low-voltage feeder,
IEEE and MATPOWER cases) and MATPOWER files (.m through matpowercaseframes, .mat), and
back to a MATPOWER .mat file.

pandapower is an optional dependency (``pip install gridledger[network]``) and heavy:
it is imported inside these functions only, so nothing else pays for it.

The DC model pandapower builds (and MATPOWER's ``makeBdc``) is what this reads: every bus
becomes a zone, every line and two-winding transformer a line whose susceptance is
``1 / x`` in per unit on the network's ``sn_mva``; a line's limit is its thermal rating at
unity power factor (``sqrt(3) x vn_kv x max_i_ka x parallel x df``), a transformer's its
``sn_mva x parallel``, both scaled by ``max_loading_percent`` where pandapower has one.
Tap ratios and phase shifts are left out, as a DC market model does. An external grid
without a cost is a grid connection of its bus, limited by its ``max_p_mw`` / ``min_p_mw``
where given; one with a cost (the slack generator of an OPF case) is a generator.
Loads become each zone's load; generators (``gen``, ``sgen``, ``ext_grid``) with a
linear or quadratic cost in ``poly_cost`` become generators with offers (a quadratic cost
as three tranches priced at their midpoints' marginal cost).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

from node.data.network import Line, Network, Zone
from node.data.wholesale import Generator, Offer, WholesaleCase
from node.errors import InputError

INSTALL_HINT = "install it with `pip install 'gridledger[network]'` (pandapower and matpowercaseframes)"
_UNSUPPORTED = ("trafo3w", "impedance", "xward", "ward", "dcline", "tcsc", "ssc", "svc", "vsc")
_QUADRATIC_TRANCHES = 3
# pandapower's MATPOWER reader widens limits by 1e-10 MW; powers are read to the watt.
MW_RESOLUTION = 1e-6


def pandapower_grids() -> list[str]:
    """Names of pandapower's built-in grids this module can load (`pandapower.networks`)."""
    networks = _networks()
    return sorted(name for name in dir(networks) if name.startswith(("case", "create_kerber", "panda_four",
                                                                         "simple_four", "example_", "create_cigre",
                                                                         "create_dickert", "kb_extrem")))


def load_pandapower_grid(name: str) -> WholesaleCase:
    """pandapower's built-in grid `name`, e.g. ``case9`` or ``create_kerber_landnetz_kabel_1``."""
    networks = _networks()
    factory = getattr(networks, name, None)
    if not callable(factory) or name.startswith("_"):
        raise InputError(f"pandapower has no built-in grid {name!r}; `gridledger network grids` lists them")
    return case_from_pandapower(factory(), name)


def load_matpower(path: Path | str) -> WholesaleCase:
    """A MATPOWER case file (.m or .mat) read by pandapower."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: MATPOWER file not found")
    if path.suffix not in (".m", ".mat"):
        raise InputError(f"{path}: a MATPOWER case is a .m or .mat file")
    _pandapower()
    from pandapower.converter.matpower import from_mpc

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = from_mpc(str(path))
    except ImportError as error:
        raise InputError(f"{path}: reading .m files needs matpowercaseframes ({error}); {INSTALL_HINT}") from None
    except Exception as error:  # the converter raises whatever its parsers do
        raise InputError(f"{path}: not a MATPOWER case pandapower can read ({type(error).__name__}: {error})") from None
    return case_from_pandapower(net, path.stem)


def case_from_pandapower(net: Any, name: str = "") -> WholesaleCase:
    """A pandapower network as a wholesale case (network, loads, generators, offers)."""
    for table in _UNSUPPORTED:
        if table in net and len(net[table]) and net[table]["in_service"].any():
            raise InputError(f"{name or 'the network'} has {table} elements, which GridLedger's DC model does not "
                             "represent; remove them or replace them with lines")
    if len(net.switch) and (net.switch["et"] == "b").any():
        raise InputError(f"{name or 'the network'} has bus-bus switches; merge the buses they join before importing")
    base = float(net.sn_mva)
    buses = net.bus[net.bus["in_service"]]
    zone_name = _zone_names(buses)
    coordinates = {index: _coordinates(row) for index, row in buses.iterrows()}
    grid: dict[int, tuple[float, float]] = {}
    priced = set(net.poly_cost[net.poly_cost["et"] == "ext_grid"]["element"]) if "poly_cost" in net else set()
    for index, ext in net.ext_grid[net.ext_grid["in_service"]].iterrows():
        if index in priced:
            continue  # an external grid with a cost is a generator (as in an OPF case), not a connection
        limits = (_limit(ext.get("max_p_mw")), _limit(-ext["min_p_mw"] if _has(ext, "min_p_mw") else None))
        if max(limits) > MW_RESOLUTION:  # one that can neither import nor export is only the angle reference
            grid[int(ext["bus"])] = limits
    zones = [Zone(zone_name[i], int(i), "zone", *(grid.get(int(i), (None, None))), *coordinates[i]) for i in buses.index]

    lines = []
    open_lines = set(net.switch[(net.switch["et"] == "l") & ~net.switch["closed"]]["element"]) if len(net.switch) else set()
    for index, row in net.line[net.line["in_service"]].iterrows():
        if index in open_lines:
            continue
        vn_kv = float(net.bus.at[row["from_bus"], "vn_kv"])
        x_pu = row["x_ohm_per_km"] * row["length_km"] / row["parallel"] / (vn_kv ** 2 / base)
        rating = math.sqrt(3) * vn_kv * row["max_i_ka"] * row["parallel"] * row["df"] * _loading(row)
        lines.append(_line(row, f"line{index}", zone_name, "from_bus", "to_bus", x_pu, rating, "line"))
    for index, row in net.trafo[net.trafo["in_service"]].iterrows():
        z_pu = row["vk_percent"] / 100 * base / row["sn_mva"]
        r_pu = row["vkr_percent"] / 100 * base / row["sn_mva"]
        x_pu = math.sqrt(max(z_pu ** 2 - r_pu ** 2, 0.0)) / row["parallel"]
        rating = row["sn_mva"] * row["parallel"] * _loading(row)
        lines.append(_line(row, f"trafo{index}", zone_name, "hv_bus", "lv_bus", x_pu, rating, "transformer"))

    loads: dict[str, float] = {}
    for _, row in net.load[net.load["in_service"]].iterrows():
        zone = zone_name[row["bus"]]
        loads[zone] = _mw(loads.get(zone, 0.0) + max(0.0, float(row["p_mw"] * row["scaling"])))
    generators, offers = _generators(net, zone_name)
    try:
        network = Network(tuple(zones), tuple(lines), base, name=name)
        return WholesaleCase(network, loads, tuple(generators), tuple(offers), name)
    except InputError as error:
        raise InputError(f"{name or 'the pandapower network'}: {error}") from None


def to_pandapower(case: WholesaleCase, vn_kv: float = 110.0) -> Any:
    """The case as a pandapower network at one voltage level: a line of susceptance b
    becomes 1 km with ``x = vn_kv^2 / (S b)`` ohm, its limit a current; loads and grid
    connections come along, and each offer tranche becomes a generator of its quantity
    with a linear cost at its price (named generator/tranche; MATPOWER keeps no names).
    A line's two limits become the larger one, since pandapower has one rating per line;
    the reference zone gets an external grid of 0 MW if it has no grid connection."""
    pp = _pandapower()
    network = case.network
    net = pp.create_empty_network(name=case.name or network.name, sn_mva=network.base_power_mva)
    bus = {}
    for z in network.zones:
        geodata = (z.x, z.y) if z.x is not None and z.y is not None else None
        bus[z.name] = pp.create_bus(net, vn_kv=vn_kv, name=z.name, geodata=geodata)
    z_base = vn_kv ** 2 / network.base_power_mva
    for line in network.lines:
        limit = max(line.capacity_mw, line.capacity_back_mw)
        max_i_ka = 1e6 if math.isinf(limit) else limit / (math.sqrt(3) * vn_kv)
        pp.create_line_from_parameters(net, bus[line.zone_from], bus[line.zone_to], length_km=1.0, r_ohm_per_km=0.0,
                                       x_ohm_per_km=z_base / line.susceptance, c_nf_per_km=0.0, max_i_ka=max_i_ka,
                                       name=line.name, max_loading_percent=100.0)
    reference = network.reference_zone
    for z in network.zones:
        if z.grid_connected or z.name == reference:
            limits = (_finite(z.grid_import_mw), -_finite(z.grid_export_mw)) if z.grid_connected else (0.0, 0.0)
            pp.create_ext_grid(net, bus[z.name], name=f"grid {z.name}", max_p_mw=limits[0], min_p_mw=limits[1])
    for zone, load in case.loads_mw.items():
        if load:
            pp.create_load(net, bus[zone], p_mw=load, name=f"load {zone}")
    zone_of = {g.name: g.zone for g in case.generators}
    for o in case.offers:
        # One generator per tranche with a linear cost: MATPOWER's piecewise linear costs
        # must have the same number of points for every generator, tranches need not.
        index = pp.create_gen(net, bus[zone_of[o.generator]], p_mw=0.0, max_p_mw=o.quantity_mw, min_p_mw=0.0,
                              name=f"{o.generator}/{o.tranche}", controllable=True)
        pp.create_poly_cost(net, index, "gen", cp1_eur_per_mw=o.price_per_mwh)
    return net


def save_matpower(case: WholesaleCase, path: Path | str) -> Path:
    """The case as a MATPOWER .mat file (pandapower's `to_mpc`)."""
    path = Path(path)
    if path.suffix != ".mat":
        raise InputError(f"{path}: pandapower writes MATPOWER cases as .mat files; name it {path.stem}.mat")
    net = to_pandapower(case)
    from pandapower.converter.matpower import to_mpc

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        to_mpc(net, str(path), init="flat")
    return path


# -- helpers ---------------------------------------------------------------------------------


def _pandapower():
    import logging

    # pandapower logs that numba and plotly would help; the DC model needs neither.
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pandapower
    except ImportError:
        raise InputError(f"pandapower is not installed; {INSTALL_HINT}") from None
    return pandapower


def _networks():
    _pandapower()
    import pandapower.networks

    return pandapower.networks


def _zone_names(buses) -> dict[int, str]:
    """Bus names where they are unique and given, else bus<index>."""
    names = [None if n is None or (isinstance(n, float) and math.isnan(n)) or not str(n).strip() else str(n).strip()
             for n in buses["name"]]
    unique = len(set(n for n in names if n)) == sum(1 for n in names if n) and all(names)
    return {int(i): (names[k] if unique else f"bus{i}") for k, i in enumerate(buses.index)}


def _coordinates(row) -> tuple[float | None, float | None]:
    geo = row.get("geo") if hasattr(row, "get") else None
    if isinstance(geo, str):
        try:
            x, y = json.loads(geo)["coordinates"][:2]
            return float(x), float(y)
        except (ValueError, KeyError, TypeError):
            pass
    return None, None


def _has(row, column: str) -> bool:
    value = row.get(column)
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _limit(value) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    return _mw(max(0.0, float(value)))


def _mw(value: float) -> float:
    return value if math.isinf(value) else round(value, 6) + 0.0


def _finite(value: float | None) -> float:
    return 1e9 if value is None or math.isinf(value) else value


def _loading(row) -> float:
    return float(row["max_loading_percent"]) / 100 if _has(row, "max_loading_percent") else 1.0


def _line(row, default_name: str, zone_name: dict, a: str, b: str, x_pu: float, rating: float, kind: str) -> Line:
    name = row["name"] if isinstance(row.get("name"), str) and row["name"].strip() else default_name
    if not (x_pu > 0 and math.isfinite(x_pu)):
        raise InputError(f"{kind} {name} has reactance {x_pu!r} per unit; the DC model needs a reactance > 0")
    rating = _mw(rating) if math.isfinite(rating) and rating > 0 else math.inf
    return Line(name, zone_name[int(row[a])], zone_name[int(row[b])], 1.0 / x_pu, rating, rating, kind)


def _generators(net, zone_name: dict) -> tuple[list[Generator], list[Offer]]:
    costs = {(row["et"], int(row["element"])): row for _, row in net.poly_cost.iterrows()} if "poly_cost" in net else {}
    generators, offers = [], []
    for table in ("gen", "sgen", "ext_grid"):
        if table not in net:
            continue
        for index, row in net[table][net[table]["in_service"]].iterrows():
            cost = costs.get((table, int(index)))
            if table == "ext_grid" and cost is None:
                continue  # the grid connection (see the module docstring)
            capacity = row["max_p_mw"] if _has(row, "max_p_mw") else row.get("p_mw", math.nan)
            if not (isinstance(capacity, (int, float)) and math.isfinite(capacity) and capacity > MW_RESOLUTION):
                continue  # an external grid without a limit is the grid connection, not a generator
            capacity = _mw(float(capacity))
            name = f"{table}{index}" if not (isinstance(row.get("name"), str) and row["name"].strip()) else row["name"]
            linear = float(cost["cp1_eur_per_mw"]) if cost is not None else None
            generators.append(Generator(name, zone_name[int(row["bus"])], float(capacity), linear))
            if cost is None:
                continue
            quadratic = float(cost["cp2_eur_per_mw2"])
            if quadratic == 0:
                offers.append(Offer(name, "t1", float(capacity), linear))
                continue
            step = float(capacity) / _QUADRATIC_TRANCHES
            for k in range(_QUADRATIC_TRANCHES):
                midpoint = step * (k + 0.5)
                offers.append(Offer(name, f"t{k + 1}", step, round(linear + 2 * quadratic * midpoint, 6)))
    return generators, offers
