"""One classroom round's outcome as tables per zone, line, generator and offer, the way
Mini-ISO shows them, and as JSON for the state file and the API.

Money is per hour of the round (MW x price per MWh); a load pays its zone's price, a
generator receives its zone's price for what it is dispatched, and the congestion rent
is what loads pay minus what generators receive.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from node.data.wholesale import WholesaleCase
from optimizer.zonal import BINDING_TOLERANCE_MW, ZonalClearing


@dataclass(frozen=True)
class ZoneRow:
    name: str
    load_mw: float
    generation_mw: float
    net_import_mw: float  # load minus generation: what the lines bring in
    lmp: float
    load_payment: float


@dataclass(frozen=True)
class LineRow:
    name: str
    zone_from: str
    zone_to: str
    flow_mw: float  # + from zone_from to zone_to
    limit_mw: float  # the limit in the direction of the flow
    loading: float  # |flow| / limit, 0..1
    binding: bool
    shadow_price: float
    rent: float


@dataclass(frozen=True)
class GeneratorRow:
    name: str
    zone: str
    capacity_mw: float
    offered_mw: float
    dispatched_mw: float
    lmp: float
    revenue: float
    cost: float | None  # at the generator's own cost per MWh, where the case gives one
    profit: float | None


@dataclass(frozen=True)
class OfferRow:
    generator: str
    tranche: str
    quantity_mw: float
    price_per_mwh: float
    dispatched_mw: float
    marginal: bool  # partly dispatched: its price is its zone's price


@dataclass(frozen=True)
class Round:
    """A cleared round, or one that could not clear (`error` says why)."""

    number: int
    cleared_at: str  # ISO 8601, UTC
    case: str
    zones: tuple[ZoneRow, ...] = ()
    lines: tuple[LineRow, ...] = ()
    generators: tuple[GeneratorRow, ...] = ()
    offers: tuple[OfferRow, ...] = ()
    load_payment: float = 0.0
    generator_revenue: float = 0.0
    congestion_rent: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def lmp(self) -> dict[str, float]:
        return {z.name: z.lmp for z in self.zones}

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for line in data["lines"]:
            line["limit_mw"] = _json_number(line["limit_mw"])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Round:
        rows = {"zones": ZoneRow, "lines": LineRow, "generators": GeneratorRow, "offers": OfferRow}
        values = {f.name: data.get(f.name) for f in fields(cls) if f.name in data}
        for key, row_type in rows.items():
            values[key] = tuple(row_type(**row) for row in data.get(key, ()))
        for line in values["lines"]:
            object.__setattr__(line, "limit_mw", float(line.limit_mw))
        return cls(**values)


def tabulate(number: int, cleared_at: str, case: WholesaleCase, result: ZonalClearing) -> Round:
    """The round's tables from the case it cleared and the clearing's result."""
    zone_of = {g.name: g.zone for g in case.generators}
    generation = {z: 0.0 for z in case.loads_mw}
    for (generator, _), mw in result.dispatch_mw.items():
        generation[zone_of[generator]] += mw
    zones = tuple(
        ZoneRow(z, load, _r(generation[z]), _r(load - generation[z] - result.shed_mw.get(z, 0.0)), result.lmp[z],
                _r(result.load_payment[z]))
        for z, load in case.loads_mw.items()
    )
    lines = []
    for line in case.network.lines:
        flow = result.flow_mw[line.name]
        limit = line.capacity_mw if flow >= 0 else line.capacity_back_mw
        loading = abs(flow) / limit if limit and not math.isinf(limit) else 0.0
        lines.append(LineRow(line.name, line.zone_from, line.zone_to, flow, limit, _r(loading, 4),
                             abs(flow) >= limit - BINDING_TOLERANCE_MW, result.line_shadow_price[line.name],
                             _r(result.line_rent[line.name])))
    generators = []
    for g in case.generators:
        dispatched = result.generator_mw.get(g.name, 0.0)
        revenue = result.generator_revenue.get(g.name, 0.0)
        cost = None if g.cost_per_mwh is None else _r(g.cost_per_mwh * dispatched)
        generators.append(GeneratorRow(g.name, g.zone, g.capacity_mw, _r(sum(o.quantity_mw for o in case.offers_of(g.name))),
                                       _r(dispatched), result.lmp[g.zone], _r(revenue), cost,
                                       None if cost is None else _r(revenue - cost)))
    offers = tuple(
        OfferRow(o.generator, o.tranche, o.quantity_mw, o.price_per_mwh, (mw := result.dispatch_mw[(o.generator, o.tranche)]),
                 BINDING_TOLERANCE_MW < mw < o.quantity_mw - BINDING_TOLERANCE_MW)
        for o in case.offers
    )
    return Round(number, cleared_at, case.name, zones, tuple(lines), tuple(generators), offers,
                 _r(sum(result.load_payment.values())), _r(sum(result.generator_revenue.values())),
                 _r(result.congestion_rent))


def _r(value: float, digits: int = 6) -> float:
    return round(float(value), digits) + 0.0


def _json_number(value: float) -> float | str:
    return "inf" if math.isinf(value) else value
