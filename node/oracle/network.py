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

    def zone_capacities(self) -> dict[int, tuple[int, int]]:
        """(import, export) Wh per interval of every zone with a limited grid connection,
        by zone index: the capacity the grid operator sets on chain. A zone without a
        connection gets none on chain (its homes' energy arrives over lines, which the
        auditor checks; a limit of 0 would trip on the Wh its homes' rounding leaves)."""
        wh_per_mw = 1e6 * self.interval_minutes / 60
        out = {}
        for z, zone in enumerate(self.network.zones):
            if not zone.grid_connected:
                continue
            limits = [zone.grid_import_mw, zone.grid_export_mw]
            if any(math.isfinite(v) for v in limits):
                out[z] = tuple(int(v * wh_per_mw) if math.isfinite(v) else 2**48 - 1 for v in limits)
        return out
