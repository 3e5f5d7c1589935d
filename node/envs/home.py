"""One home's battery and bids in the real market, as a Gymnasium environment.

Observation (float32, node.envs.market.OBSERVATION_SIZE values): the hour (sin, cos),
the import and feed-in tariffs now and the import tariff over the next steps, the
home's load and PV now and over the next steps (kWh; the forecast is the metered data),
its battery's state of charge (share of capacity) and whether it has one, and the
last interval's P2P price. Action: ``[battery, price]``, battery in [-1, 1] (share of
rated power, + charge), price in [0, 1] (its order's limit between the feed-in and the
import tariff). The home orders its net need after the battery. Reward: minus the money
it paid this interval (on chain, plus its supplier's settlement of any unfilled rest at
the tariffs). The other homes bid their net need at the tariffs. An episode is the
community's data, one step per market interval; it ends truncated.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from node.data.community import Community
from node.data.config import CommunityConfig, default_config
from node.envs.market import OBSERVATION_BOUND, OBSERVATION_SIZE, Homes, MarketSession
from node.errors import InputError


class HomeEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(self, config: CommunityConfig | None = None, community: Community | None = None,
                 home: str | None = None, pricing: str = "uniform", rpc: str | None = None) -> None:
        """`community`: the data (default: the synthetic community of `config`); `home`:
        the agent's home by name (default: the first with a battery); `rpc`: a JSON-RPC
        node (a local anvil) to deploy each episode's market on, instead of an embedded chain."""
        from node.data.synthetic import generate_community

        self.config = config or default_config()
        self.community = community or generate_community(self.config)
        names = list(self.community.names)
        if home is None:
            with_battery = [h.name for h in self.community.homes if h.battery]
            home = with_battery[0] if with_battery else names[0]
        if home not in names:
            raise InputError(f"home {home!r} is not in the community ({', '.join(names[:5])}...)")
        self.home = home
        self.row = names.index(home)
        self.pricing = pricing
        self.rpc = rpc
        self.observation_space = gym.spaces.Box(-OBSERVATION_BOUND, OBSERVATION_BOUND, (OBSERVATION_SIZE,), np.float32)
        self.action_space = gym.spaces.Box(np.array([-1, 0], np.float32), np.array([1, 1], np.float32), dtype=np.float32)
        self.session: MarketSession | None = None
        self.homes: Homes | None = None
        self.last_price = 0.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._close_session()
        # A new episode is a new market: a fresh chain with the contracts deployed.
        self.session = MarketSession(self.community, self.config, self.pricing, self.rpc)
        self.homes = Homes(self.session.builder)
        self.last_price = float(self.homes.sell[0])
        return self._observe(), {"interval": self.session.interval, "home": self.home}

    def step(self, action):
        if self.session is None or self.session.steps_left <= 0:
            raise RuntimeError("call reset() first: the episode has ended")
        step = self.session.interval - self.session.builder.first_interval
        battery, price = self.homes.tariff_actions(step)
        battery[self.row], price[self.row] = float(action[0]), float(action[1])
        need, limit = self.homes.act(step, battery, price)
        settled = self.session.step(need, limit, self.homes.soc_by_participant())
        self.last_price = settled.price
        truncated = self.session.steps_left == 0
        info = {"interval": settled.interval, "paid_on_chain": float(settled.paid_on_chain[self.row]),
                "filled_wh": int(settled.filled_wh[self.row]), "unfilled_wh": int(settled.unfilled_wh[self.row]),
                "p2p_price": settled.price}
        observation = self._observe() if not truncated else self._observe(final=True)
        return observation, -float(settled.paid[self.row]), False, truncated, info

    def close(self) -> None:
        self._close_session()

    def _observe(self, final: bool = False) -> np.ndarray:
        builder = self.session.builder
        step = self.session.interval - builder.first_interval
        return self.homes.observe(min(step, builder.load_wh.shape[1] - 1) if final else step, self.last_price)[self.row]

    def _close_session(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


gym.register("GridLedger/Home-v0", entry_point="node.envs.home:HomeEnv")
