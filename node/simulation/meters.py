"""The homes' meters in a simulation: each signs its home's reading of every interval
(EIP-712 `Reading`: import and export Wh at the connection point) with its own key, which
the market registered as the home's meter key. The keys are kept in the state directory
(``meters.json``); a run without one derives them from the community's seed.

A meter reads what happened, not what the oracle says: the home's load less its PV from
the community's data (the meters' own copy), plus what its battery did as the
settlement scheduled it (the settled net energy less the load and PV the oracle put in
its inputs; zero for a home the settlement left out). An oracle that puts other meter
data into its inputs settles energy the meter contradicts. In an auction market homes
are taken to follow their filled orders: they read what was settled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from node.chain.settlement import Settlement
from node.clearing.inputs import IntervalInputs
from node.clearing.left_out import left_out_draw_wh
from node.data.community import Community
from node.clearing.store import sync_dir
from node.errors import InputError
from node.intent.signing import Domain, Reading, SignedReading, sign_reading


def meter_keys(path: Path | None, community: Community, ids: np.ndarray, seed: int) -> dict[int, LocalAccount]:
    """Each home's meter key by participant id: read from `path`, or made there (random,
    file readable by its owner only); without a path, derived from the seed."""
    names = {int(pid): home.name for pid, home in zip(ids, community.homes)}
    if path is None:
        return {pid: Account.from_key(keccak(text=f"gridledger-meter/{seed}/{name}")) for pid, name in names.items()}
    keys: dict[str, str] = {}
    if path.exists():
        try:
            keys = json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"{path} is not a meter key file ({exc}): restore it, or start the state over") from exc
    missing = [pid for pid in names if str(pid) not in keys]
    if missing:
        for pid in missing:
            keys[str(pid)] = "0x" + os.urandom(32).hex()
        # Durably before any key reaches the chain (MeterKeySet): a lost key file would
        # leave the chain's meter keys without the keys that sign for them.
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as out:
            os.chmod(tmp, 0o600)
            out.write(json.dumps(keys, indent=1, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        sync_dir(path.parent)
    return {pid: Account.from_key(keys[str(pid)]) for pid in names}


class SimulatedMeters:
    """The meters of a community's homes, reading its data."""

    def __init__(self, keys: dict[int, LocalAccount], community: Community, ids: np.ndarray, first_interval: int,
                 domain: Domain) -> None:
        self.keys = keys
        self.domain = domain
        self.first_interval = first_interval
        self.row = {int(pid): i for i, pid in enumerate(ids)}
        self.net_wh = np.rint(community.consumption_kwh * 1000).astype(np.int64) - np.rint(
            community.production_kwh * 1000).astype(np.int64)

    @classmethod
    def of(cls, market, community: Community, config, ids: np.ndarray, path: Path | None = None) -> "SimulatedMeters":
        """The meters of `community`'s homes on `market`, their keys as set_up_community
        registered them (from `path`, else from the seed)."""
        first = int(config.market.interval_index(community.timestamps[:1])[0])
        return cls(meter_keys(path, community, ids, config.community.seed), community, ids, first, market.domain())

    def readings(self, inputs: IntervalInputs, settlement: Settlement) -> list[SignedReading]:
        """Every home's signed reading of the interval `inputs` and `settlement` are for."""
        k = inputs.interval
        step = k - self.first_interval
        settled = {int(p): int(g + q) for p, g, q in zip(settlement.participants, settlement.grid_wh, settlement.p2p_wh)}
        in_inputs = {pid: i for i, pid in enumerate(inputs.participants)}
        # A left-out home's jobs and HVAC still run (node.clearing.left_out).
        draw = left_out_draw_wh(inputs, set(in_inputs) - set(settled)) if inputs.mechanism == "community" else {}
        out = []
        for pid, key in sorted(self.keys.items()):
            if inputs.mechanism == "auction":
                net = settled.get(pid, 0)
            else:
                net = int(self.net_wh[self.row[pid], step]) + draw.get(pid, 0)
                if pid in settled and pid in in_inputs:
                    # The battery did what the settlement scheduled: settled net less the
                    # load and PV the oracle's inputs gave this home.
                    i = in_inputs[pid]
                    net += settled[pid] - (inputs.load_wh[i][0] - inputs.pv_wh[i][0])
            out.append(sign_reading(key, self.domain, Reading.of_net(pid, k, net)))
        return out
