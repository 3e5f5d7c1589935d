"""Evaluate simple policies for one home in the real market (GridLedger/Home-v0).

Each episode is a different synthetic community (seeds 1..N) settled interval by
interval on its own embedded chain; the agent runs its home's battery and prices its
order, the other homes bid their net need at the tariffs. Three baseline policies:

  tariff            battery idle, buy at the import tariff, sell at the feed-in tariff
  self-consumption  charge from the home's own surplus, discharge into its deficit,
                    order the rest at the middle of the tariffs
  random            uniform random actions

Run: .venv/bin/python examples/home_agent.py [--episodes 3] [--homes 5]
A learning agent plugs in the same way: any function observation -> action.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from node.data.config import default_config
from node.envs.home import HomeEnv

LOAD, PV = 8, 9  # the home's load and PV now (kWh) in the observation (node.envs.market.Homes.observe)


def tariff(observation: np.ndarray, step_kwh: float) -> np.ndarray:
    return np.array([0.0, 1.0 if observation[LOAD] > observation[PV] else 0.0], np.float32)


def self_consumption(observation: np.ndarray, step_kwh: float) -> np.ndarray:
    surplus = observation[PV] - observation[LOAD]
    return np.array([np.clip(surplus / step_kwh, -1, 1), 0.5], np.float32)


def evaluate(policy, episodes: int, homes: int) -> tuple[list[float], int, float]:
    """Total reward (minus money paid) of each episode, steps taken, seconds."""
    totals, steps, started = [], 0, time.perf_counter()
    for seed in range(1, episodes + 1):
        config = default_config()
        config = replace(config, market=replace(config.market, interval_minutes=60, horizon_steps=24),
                         community=replace(config.community, homes=homes, days=1, seed=seed))
        step_kwh = config.batteries.power_kw * config.market.interval_hours
        env = HomeEnv(config)
        observation, _ = env.reset(seed=seed)
        env.action_space.seed(seed)
        total, done = 0.0, False
        while not done:
            action = env.action_space.sample() if policy is None else policy(observation, step_kwh)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += reward
            steps += 1
            done = terminated or truncated
        env.close()
        totals.append(total)
    return totals, steps, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--homes", type=int, default=5)
    args = parser.parse_args()
    for name, policy in (("tariff", tariff), ("self-consumption", self_consumption), ("random", None)):
        totals, steps, seconds = evaluate(policy, args.episodes, args.homes)
        print(f"{name:<17} reward {np.mean(totals):8.3f} ± {np.std(totals):.3f} EUR per day "
              f"over {args.episodes} episodes ({steps / seconds:.1f} steps/s, resets included)")


if __name__ == "__main__":
    main()
