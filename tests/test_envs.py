"""The learning environments step the real market: they pass Gymnasium's and
PettingZoo's API checks, every step settles one interval on chain that the auditor
accepts, the battery action reaches the committed inputs, and rewards are money."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

from node.audit.verify import IndexInputs, audit
from node.clearing.inputs import IntervalInputs
from node.data.config import config_from_mapping
from node.envs.community import CommunityEnv
from node.envs.home import HomeEnv

# Three homes, six 4-hour intervals: an episode is six steps.
TINY = config_from_mapping({
    "market": {"interval_minutes": 240, "horizon_steps": 6},
    "community": {"homes": 3, "days": 1, "pv_share": 0.67, "battery_share": 0.34},
})


@pytest.fixture
def home_env():
    env = HomeEnv(TINY)
    yield env
    env.close()


def test_home_env_passes_gymnasium_check_env(home_env):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its advice on float32 precision and the like
        check_env(home_env, skip_render_check=True)


def test_community_env_passes_pettingzoo_parallel_api_test():
    env = CommunityEnv(TINY)
    try:
        parallel_api_test(env, num_cycles=20)
    finally:
        env.close()


def test_every_step_settles_an_interval_the_auditor_accepts(home_env):
    home_env.reset(seed=0)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = home_env.step(np.array([0.5, 0.3], np.float32))
        assert not terminated
        steps += 1
    session = home_env.session
    assert steps == 6 and session.market.next_interval() == session.builder.intervals.stop
    verdicts = audit(session.market, IndexInputs(session.index), progress=False)
    assert len(verdicts) == 6 and all(v.ok for v in verdicts), [v.reasons for v in verdicts if not v.ok]
    with pytest.raises(RuntimeError, match="reset"):
        home_env.step(np.array([0.0, 0.0], np.float32))


def test_the_battery_action_reaches_the_committed_inputs(home_env):
    home_env.reset(seed=0)
    session, row = home_env.session, home_env.row
    pid = int(session.builder.participants[row])
    before = home_env.homes.soc_wh[row]
    home_env.step(np.array([1.0, 1.0], np.float32))  # charge at full power
    home_env.step(np.array([0.0, 1.0], np.float32))
    stored = IntervalInputs.from_json(session.index.last_inputs_for(session.builder.first_interval + 1))
    soc = {b.participant: b.soc_wh for b in stored.batteries}
    assert soc[pid] == home_env.homes.soc_wh[row] > before


def test_rewards_are_the_money_each_home_paid():
    env = CommunityEnv(TINY)
    try:
        env.reset(seed=3)
        start = {p["id"]: p["balance"] for p in env.session.index.participants()}
        supplier = dict.fromkeys(env.possible_agents, 0.0)
        rewards = dict.fromkeys(env.possible_agents, 0.0)
        while env.agents:
            buy, sell = env.homes.buy[env.session.interval - env.session.builder.first_interval], \
                env.homes.sell[env.session.interval - env.session.builder.first_interval]
            actions = {a: np.array([0.0, 0.5], np.float32) for a in env.agents}
            _, reward, _, _, info = env.step(actions)
            for agent in reward:
                rewards[agent] += reward[agent]
                unfilled = info[agent]["unfilled_wh"] / 1000
                supplier[agent] += unfilled * (buy if unfilled > 0 else sell)
        end = {p["id"]: p["balance"] for p in env.session.index.participants()}
        for i, agent in enumerate(env.possible_agents):
            pid = int(env.session.builder.participants[i])
            on_chain = (end[pid] - start[pid]) / 1e6
            assert rewards[agent] == pytest.approx(on_chain - supplier[agent], abs=1e-6)
    finally:
        env.close()


def test_bidding_at_the_tariffs_fills_every_order(home_env):
    home_env.reset(seed=0)
    for _ in range(6):
        step = home_env.session.interval - home_env.session.builder.first_interval
        need = home_env.homes.builder.load_wh[home_env.row, step] - home_env.homes.builder.pv_wh[home_env.row, step]
        _, _, _, _, info = home_env.step(np.array([0.0, 1.0 if need > 0 else 0.0], np.float32))
        assert info["unfilled_wh"] == 0 and info["filled_wh"] == need
