"""The network a community clears on, from its config (``grid.network``): each home's
zone, what each interval's inputs commit of the network, and the zone capacities the
grid operator puts on chain.

A home's zone in the data (``Home.zone``, e.g. the community file's zone column) names
the network zone with that id (the network file's ``id`` column; without ids, its
position). On chain every participant is registered with its zone's index in the
network, which is the index of its price in a zonal settlement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from node.clearing.network_inputs import NetworkInputs
from node.clearing.zonal import MAX_ZONES
from node.data.community import Community
from node.data.config import CommunityConfig
from node.data.network import Network, community_network
from node.errors import ConfigError, DataError, InputError


@dataclass(frozen=True)
class CommunityNetwork:
    network: Network
    home_zone_names: tuple[str, ...]  # in the community's home order
    interval_minutes: int

    @staticmethod
    def of(community: Community, config: CommunityConfig) -> "CommunityNetwork | None":
        """The community's network, or None without ``grid.network``; ConfigError naming
        the field for a network file that does not load or does not hold every home."""
        path = config.grid.network
        if not path:
            return None
        from node.data.network_file import load_network

        try:
            network = load_network(path)
        except (InputError, DataError) as exc:
            raise ConfigError(f"grid.network: {exc}") from None
        if len(network.zones) > MAX_ZONES:
            raise ConfigError(f"grid.network: {path} has {len(network.zones)} zones; a settlement prices at most "
                              f"{MAX_ZONES}: merge zones")
        by_id = {z.id if z.id is not None else i: z.name for i, z in enumerate(network.zones)}
        for home in community.homes:
            if home.zone not in by_id:
                raise ConfigError(
                    f"grid.network: home {home.name} is in zone {home.zone}, which {path} does not have (zone ids "
                    f"{sorted(by_id)}); give the home one of them in the community file's zone column"
                )
        return CommunityNetwork(network, tuple(by_id[h.zone] for h in community.homes), config.market.interval_minutes)

    def chain_zones(self) -> list[int]:
        """Each home's zone as registered on chain: its zone's index in the network."""
        index = self.network.zone_index
        return [index[name] for name in self.home_zone_names]

    def inputs(self, interval: int, horizon: int) -> NetworkInputs:
        """What the inputs of `interval` commit: the network with every limit of each of
        the `horizon` steps (the limits file's overrides included), in whole Wh."""
        net = community_network(self.network, list(self.home_zone_names), range(interval, interval + horizon),
                                self.interval_minutes)
        return NetworkInputs.from_network(net, [z.name for z in self.network.zones])

    def zone_capacities(self, interval: int | None = None) -> dict[int, tuple[int, int]]:
        """(import, export) Wh of every grid-connected zone's connection in `interval`
        (None: the defaults, without the limits file's overrides), by zone index: the
        capacity the grid operator sets on chain, whole Wh rounded down as the inputs
        commit them (2^48 - 1: no limit). A zone without a connection gets none on chain,
        not 0: the contract sums each participant's grid energy into its own zone, and
        the homes of a feeder without a connection settle grid energy that entered at the
        substation and reached them over the lines (the P2P split is community-wide,
        `optimizer.zones.split_zonal`); a limit of 0 there would refuse honest
        settlements. The auditor attributes that energy to the connection it came
        through and checks it and the lines (`node.clearing.zonal.network_reasons`)."""
        limits = self.network.limits(interval)
        imp, exp = (_chain_wh(mw, self.interval_minutes) for mw in (limits.grid_import_mw, limits.grid_export_mw))
        return {z: (imp[z], exp[z]) for z, zone in enumerate(self.network.zones) if zone.grid_connected}

    def interval_capacities(self, intervals: range) -> dict[int, dict[int, tuple[int, int]]]:
        """Per interval of `intervals`, the zones whose limit there differs from their
        default (the limits file's time-varying rows): what the grid operator posts for
        that interval alone (TermsModule.setZoneCapacity)."""
        defaults = self.zone_capacities()
        out = {}
        for k in intervals:
            own = {z: cap for z, cap in self.zone_capacities(k).items() if cap != defaults[z]}
            if own:
                out[k] = own
        return out


CHAIN_NO_LIMIT = 2**48 - 1  # IntervalWord.WH_MAX: what zoneCapacityOf reports for no limit


def _chain_wh(mw: "np.ndarray", interval_minutes: int) -> list[int]:
    """MW limits as whole Wh per interval, rounded down as NetworkInputs.from_network
    rounds them (so chain and committed inputs agree to the Wh); inf: no limit."""
    kwh = np.asarray(mw, dtype=float) * 1000.0 * interval_minutes / 60
    return [int(math.floor(v * 1000 + 1e-9)) if math.isfinite(v) else CHAIN_NO_LIMIT for v in kwh]
