"""Every home of a community as an agent in the real market: a PettingZoo Parallel env.

Agents are the homes, by name; each sees and does what node.envs.home.HomeEnv's one
agent does (the same observation and action), all at once each interval, and is
rewarded minus what it paid. All agents stay to the end of the data, where the
episode ends truncated for all.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import ParallelEnv

from node.data.community import Community
from node.data.config import CommunityConfig, default_config
from node.envs.market import OBSERVATION_BOUND, OBSERVATION_SIZE, Homes, MarketSession


class CommunityEnv(ParallelEnv):
    metadata = {"render_modes": [], "name": "gridledger_community_v0"}

    def __init__(self, config: CommunityConfig | None = None, community: Community | None = None,
                 pricing: str = "uniform", rpc: str | None = None) -> None:
        from node.data.synthetic import generate_community

        self.config = config or default_config()
        self.community = community or generate_community(self.config)
        self.pricing = pricing
        self.rpc = rpc
        self.possible_agents = list(self.community.names)
        self.agents: list[str] = []
        self.session: MarketSession | None = None
        self.homes: Homes | None = None
        self.last_price = 0.0

    @functools.lru_cache(maxsize=None)
    def observation_space(self, agent: str) -> gym.spaces.Box:
        return gym.spaces.Box(-OBSERVATION_BOUND, OBSERVATION_BOUND, (OBSERVATION_SIZE,), np.float32)

    @functools.lru_cache(maxsize=None)
    def action_space(self, agent: str) -> gym.spaces.Box:
        return gym.spaces.Box(np.array([-1, 0], np.float32), np.array([1, 1], np.float32), dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            for agent in self.possible_agents:
                self.action_space(agent).seed(seed + self.possible_agents.index(agent))
        self.close()
        self.session = MarketSession(self.community, self.config, self.pricing, self.rpc)
        self.homes = Homes(self.session.builder)
        self.last_price = float(self.homes.sell[0])
        self.agents = list(self.possible_agents)
        observations = self.homes.observe(0, self.last_price)
        return ({a: observations[i] for i, a in enumerate(self.agents)},
                {a: {"interval": self.session.interval} for a in self.agents})

    def step(self, actions: dict[str, Any]):
        if self.session is None or not self.agents:
            raise RuntimeError("call reset() first: the episode has ended")
        builder = self.session.builder
        step = self.session.interval - builder.first_interval
        battery, price = self.homes.tariff_actions(step)  # a home without an action bids at the tariffs
        for i, agent in enumerate(self.possible_agents):
            if agent in actions:
                battery[i], price[i] = float(actions[agent][0]), float(actions[agent][1])
        need, limit = self.homes.act(step, battery, price)
        settled = self.session.step(need, limit, self.homes.soc_by_participant())
        self.last_price = settled.price
        done = self.session.steps_left == 0
        observations = self.homes.observe(min(step + 1, builder.load_wh.shape[1] - 1), self.last_price)
        names = self.agents
        result = (
            {a: observations[i] for i, a in enumerate(names)},
            {a: -float(settled.paid[i]) for i, a in enumerate(names)},
            {a: False for a in names},
            {a: done for a in names},
            {a: {"interval": settled.interval, "filled_wh": int(settled.filled_wh[i]),
                 "unfilled_wh": int(settled.unfilled_wh[i]), "p2p_price": settled.price} for i, a in enumerate(names)},
        )
        if done:
            self.agents = []
        return result

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
