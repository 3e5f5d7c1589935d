"""A community battery (issue 12 item 2, its first half): a participant of its own with no
load and no PV, only a battery. It needs nothing new: the optimiser schedules it like any
home's battery (its home is a bus with nothing else on it), its energy settles on chain
into its own wallet, and the audit re-runs it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from node.chain.connection import Chain
from node.cli.main import main
from node.data.community import BatterySpec, Community, Home
from node.data.config import default_config
from node.data.synthetic import generate_community
from node.simulation.replay import simulate
from node.simulation.state import StatePaths, claim_state


def test_a_community_battery_with_no_home_of_its_own_is_scheduled_settled_and_audited(tmp_path, capsys):
    config = default_config()
    config = replace(config, community=replace(config.community, homes=4, battery_share=0.0, pv_share=1.0))
    homes = generate_community(config)
    steps = slice(40, 76)  # 10:00 to 19:00: a sunny surplus, then the evening
    battery = Home("community-battery", 0, 0.0, True, battery_spec=BatterySpec(40.0, 10.0, 0.95, 0.95, 0.1, 0.2))
    zeros = np.zeros((1, steps.stop - steps.start))
    community = Community(homes.homes + (battery,), homes.timestamps[steps],
                          np.vstack([homes.consumption_kwh[:, steps], zeros]),
                          np.vstack([homes.production_kwh[:, steps], zeros]))
    state = tmp_path / "state"
    claim_state(state, "simulate")
    with Chain.embedded(state) as chain:
        result = simulate(chain, community, config, StatePaths(state), progress=False)
        pid = int(result.participants[-1])
    entries = [e for r in result.reports for p, g, q in zip(r.settlement.participants, r.settlement.grid_wh,
                                                               r.settlement.p2p_wh) if int(p) == pid for e in [(g, q)]]
    charged = sum(g + q for g, q in entries if g + q > 0)
    discharged = -sum(g + q for g, q in entries if g + q < 0)
    assert charged > 100 and discharged > 1000, (charged, discharged)  # it stored some noon surplus and served the evening
    assert main(["-q", "audit", "--state", str(state)]) == 0
    captured = capsys.readouterr()
    assert "failed" not in (captured.out + captured.err).replace("0 failed", "")
