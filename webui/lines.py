"""Line and connection loading of one settled zonal interval (issue 11's UI): each line's
step-0 flow against its committed limit, and each grid connection's exchange against
its limit, congestion flagged.

Computed from what an auditor trusts: the interval's committed inputs (the network and
its limits) and the settled entries, through the same DC power flow the auditor checks
(`node.clearing.zonal.settled_line_flows_wh`), not from anything the oracle claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from node.clearing.inputs import IntervalInputs
from node.clearing.network_inputs import NO_LIMIT
from node.clearing.zonal import settled_injections_wh, settled_line_flows_wh
from node.errors import InputError
from node.index.store import Index

# Each home's energy is rounded to the Wh after the clearing, so a binding limit can end
# up to a Wh per settled home short of it: within this share of the limit it is binding.
BINDING_SHARE = 0.99


@dataclass(frozen=True)
class Loading:
    """One line (from -> to) or grid connection in one interval."""

    name: str  # "substation -> feeder 1", or a zone's name for its grid connection
    flow_wh: int  # + along the name's direction (a connection: + imported from the grid)
    limit_wh: int | None  # the committed limit in the flow's direction; None: no limit
    kind: str  # "line" or "connection"

    @property
    def share(self) -> float | None:
        if self.limit_wh is None:
            return None
        return abs(self.flow_wh) / self.limit_wh if self.limit_wh else (1.0 if self.flow_wh else 0.0)

    @property
    def binding(self) -> bool:
        return self.share is not None and self.share >= BINDING_SHARE and self.flow_wh != 0


def interval_loading(index: Index, interval: dict) -> list[Loading]:
    """The loading of every line and grid connection of `interval` (an `Index.interval`
    row); empty when it was not settled on a network or its inputs are not stored."""
    raw = index.last_inputs_for(interval["interval"])
    if raw is None:
        return []
    try:
        inputs = IntervalInputs.from_json(raw)
    except InputError:
        return []  # damaged inputs are the audit's to report; the page shows the rest
    net = inputs.network
    if net is None:
        return []
    entries = {e["participant"]: (e["grid_wh"], e["p2p_wh"]) for e in interval["entries"]}
    entries = {p: e for p, e in entries.items() if p in set(inputs.participants)}
    flows = settled_line_flows_wh(net, inputs.participants, entries)
    rows = []
    for line, flow in enumerate(flows):
        a, b = net.zones[net.line_from[line]], net.zones[net.line_to[line]]
        forward, back = net.line_forward_wh[line][0], net.line_back_wh[line][0]
        if flow < 0:
            a, b, flow, forward = b, a, -flow, back
        rows.append(Loading(f"{a} → {b}", int(round(flow)), None if forward == NO_LIMIT else forward, "line"))
    exchange, _ = settled_injections_wh(net, inputs.participants, entries)
    for zone, wh in enumerate(exchange):
        imp, exp = net.grid_import_wh[zone][0], net.grid_export_wh[zone][0]
        if imp == 0 and exp == 0 and wh == 0:
            continue  # no grid connection in this zone
        limit = imp if wh >= 0 else exp
        rows.append(Loading(net.zones[zone], int(round(wh)), None if limit == NO_LIMIT else limit, "connection"))
    return rows


def loading_series(index: Index, intervals: list[int]) -> dict[int, list[Loading]]:
    """`interval_loading` of each of `intervals` settled on a network, for the dashboard's
    chart of loading over time; intervals without a network (or their inputs) are left out."""
    out = {}
    for k in intervals:
        row = index.interval(k)
        if row is not None and row.get("zone_prices"):
            if rows := interval_loading(index, row):
                out[k] = rows
    return out
