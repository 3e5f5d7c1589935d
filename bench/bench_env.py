"""Steps per second of the learning environments, each step a real settled interval.

A step signs every home's order, clears the double auction and settles it on the
embedded chain (node.envs). Reset (a fresh chain, the contracts deployed, the homes
registered and funded) is timed apart. 15-minute intervals, one day of data.
With --anvil, each episode's market is deployed on a local anvil node instead (node.chain.anvil).
Run: .venv/bin/python bench/bench_env.py [--homes 5,20,100] [--steps 48] [--anvil]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from dataclasses import replace

import numpy as np

from node.data.config import default_config
from node.envs.community import CommunityEnv
from node.envs.home import HomeEnv


def config_for(homes: int):
    config = default_config()
    return replace(config, community=replace(config.community, homes=homes, days=1))


def bench_home(homes: int, steps: int, rpc: str | None) -> tuple[float, float]:
    env = HomeEnv(config_for(homes), rpc=rpc)
    started = time.perf_counter()
    env.reset(seed=0)
    env.action_space.seed(0)
    reset = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        env.step(env.action_space.sample())
    rate = steps / (time.perf_counter() - started)
    env.close()
    return reset, rate


def bench_community(homes: int, steps: int, rpc: str | None) -> tuple[float, float]:
    env = CommunityEnv(config_for(homes), rpc=rpc)
    started = time.perf_counter()
    env.reset(seed=0)
    reset = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        env.step({a: env.action_space(a).sample() for a in env.agents})
    rate = steps / (time.perf_counter() - started)
    env.close()
    return reset, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", default="5,20,100", help="community sizes, comma separated")
    parser.add_argument("--steps", type=int, default=48, help="steps timed per environment (at most 96)")
    parser.add_argument("--anvil", action="store_true", help="deploy each episode's market on a local anvil node")
    args = parser.parse_args()
    np.random.seed(0)
    with contextlib.ExitStack() as stack:
        rpc = None
        if args.anvil:
            from node.chain.anvil import start_anvil

            rpc = stack.enter_context(start_anvil(None)).url
        chain = "anvil" if rpc else "embedded eth-tester"
        print(f"{'environment (' + chain + ')':<40} {'reset s':>8} {'steps/s':>8} {'agent-steps/s':>14}")
        for homes in (int(h) for h in args.homes.split(",")):
            reset, rate = bench_home(homes, args.steps, rpc)
            print(f"{f'GridLedger/Home-v0, {homes} homes':<40} {reset:>8.2f} {rate:>8.1f} {rate:>14.1f}")
            reset, rate = bench_community(homes, args.steps, rpc)
            print(f"{f'CommunityEnv (parallel), {homes} homes':<40} {reset:>8.2f} {rate:>8.1f} {rate * homes:>14.1f}")


if __name__ == "__main__":
    main()
