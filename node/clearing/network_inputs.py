"""The network part of an interval's committed inputs, in integers.

A clearing on a network (`optimizer.zones`) depends on the zones, the lines and every
limit per step, so they are committed and hashed with the rest of the inputs
(`IntervalInputs.network`) and an auditor re-runs the zonal clearing from them. The
canonical JSON holds integers only: susceptances in millionths of a per unit, limits in
whole Wh per step, ``NO_LIMIT`` (-1) for none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from node.errors import InputError
from node.units import PPM
from optimizer.types import ZoneNetwork

NO_LIMIT = -1


@dataclass(frozen=True)
class NetworkInputs:
    zones: list[str]  # zone names, in index order
    participant_zone: list[int]  # each participant's zone index, in the order of the participants
    line_from: list[int]
    line_to: list[int]
    susceptance_ppm: list[int]  # per unit x 1e6, > 0
    line_forward_wh: list[list[int]]  # lines x steps, from line_from to line_to; NO_LIMIT for none
    line_back_wh: list[list[int]]
    grid_import_wh: list[list[int]]  # zones x steps; 0 where a zone has no grid connection
    grid_export_wh: list[list[int]]
    reference_zone: int = 0

    @staticmethod
    def from_network(net: ZoneNetwork, zones: list[str]) -> "NetworkInputs":
        """`net` (limits in kWh per step) in chain units: limits rounded down to whole Wh,
        so the committed limits never exceed the physical ones."""
        if len(zones) != net.zones:
            raise InputError(f"{len(zones)} zone names for a network of {net.zones} zones")

        def wh(kwh: np.ndarray) -> list[list[int]]:
            kwh = np.asarray(kwh, dtype=float)
            floor = np.floor(np.where(np.isfinite(kwh), kwh, 0.0) * 1000 + 1e-9).astype(np.int64)
            return np.where(np.isfinite(kwh), floor, NO_LIMIT).tolist()

        return NetworkInputs(
            zones=list(zones),
            participant_zone=[int(z) for z in net.home_zone],
            line_from=[int(z) for z in net.line_from],
            line_to=[int(z) for z in net.line_to],
            susceptance_ppm=[int(round(b * PPM)) for b in net.susceptance],
            line_forward_wh=wh(net.line_forward_kwh),
            line_back_wh=wh(net.line_back_kwh),
            grid_import_wh=wh(net.grid_import_kwh),
            grid_export_wh=wh(net.grid_export_kwh),
            reference_zone=int(net.reference_zone),
        )

    def to_network(self) -> ZoneNetwork:
        """The optimiser's view, in kWh per step (NO_LIMIT as infinity); shapes and
        values are checked by the clearing (`optimizer.zones.check_network`)."""

        def kwh(wh: list[list[int]], rows: int) -> np.ndarray:
            values = np.asarray(wh, dtype=float).reshape(rows, -1) if rows else np.zeros((0, self.steps))
            return np.where(values == NO_LIMIT, np.inf, values / 1000)

        L, Z = len(self.line_from), len(self.zones)
        return ZoneNetwork(
            home_zone=np.asarray(self.participant_zone, dtype=np.int64),
            line_from=np.asarray(self.line_from, dtype=np.int64),
            line_to=np.asarray(self.line_to, dtype=np.int64),
            susceptance=np.asarray(self.susceptance_ppm, dtype=float) / PPM,
            line_forward_kwh=kwh(self.line_forward_wh, L),
            line_back_kwh=kwh(self.line_back_wh, L),
            grid_import_kwh=kwh(self.grid_import_wh, Z),
            grid_export_kwh=kwh(self.grid_export_wh, Z),
            reference_zone=self.reference_zone,
        )

    @property
    def steps(self) -> int:
        return len(self.grid_import_wh[0]) if self.grid_import_wh else 0
