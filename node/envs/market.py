"""The real market, stepped one interval at a time for learning agents.

`MarketSession` is a community's auction market on a fresh embedded chain: the
contracts deployed, the homes registered with their keys, the oracle ready. Each
`step` takes one order per home (energy and limit price, signed with the home's key
into the order book), and the oracle builds the interval's committed inputs, clears
the double auction and settles it on chain, exactly as `gridledger simulate` does.

`Homes` is the physics the market does not do: each home's battery, run by its agent
(the auction schedules no batteries), whose state of charge goes into the committed
inputs; and what a home's order leaves unfilled, which its supplier settles at the
grid's tariffs (unfilled demand bought at the import tariff, unsold surplus taken at
the feed-in tariff), so a low bid risks a P2P trade, never the lights.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from node.chain.connection import Chain
from node.data.community import Community
from node.data.config import CommunityConfig
from node.index.store import Index
from node.oracle.daemon import Oracle
from node.oracle.inputs_builder import InputsBuilder
from node.simulation.bidders import Bidders
from node.simulation.replay import open_book, open_market
from node.simulation.state import StatePaths
from node.units import PPM, UNITS_PER_TOKEN

FORECAST_STEPS = 4  # steps ahead of tariffs, load and PV an observation shows
# sin, cos of the hour; buy, sell now; buy ahead; load, PV now; load, PV ahead; SoC; has battery; last price
OBSERVATION_SIZE = 2 + 2 + FORECAST_STEPS + 2 + 2 * FORECAST_STEPS + 1 + 1 + 1
OBSERVATION_BOUND = 1e6  # far above any price per kWh or energy per interval of a home


@dataclass(frozen=True)
class Settled:
    """What one interval did for each home (rows in data order)."""

    paid: np.ndarray  # currency: on chain plus the supplier's settlement of the unfilled rest
    paid_on_chain: np.ndarray  # currency
    filled_wh: np.ndarray  # the settled energy of each home's order (+ bought, − sold)
    unfilled_wh: np.ndarray  # ordered need the market did not fill (+ demand, − surplus)
    price: float  # the interval's P2P price, currency per kWh
    interval: int
    tx_hash: str


class MarketSession:
    """A community's auction market on its own in-memory chain (or a new deployment on
    the node at `rpc`, e.g. a local anvil, several times faster), settled interval by interval."""

    def __init__(self, community: Community, config: CommunityConfig, pricing: str = "uniform", rpc: str | None = None) -> None:
        self.config = replace(config, market=replace(config.market, mechanism="auction", pricing=pricing))
        # An episode's files are thrown away at its end: keep them in memory where there is a tmpfs.
        shm = Path("/dev/shm")
        self._tmp = tempfile.TemporaryDirectory(prefix="gridledger-env-", dir=shm if shm.is_dir() else None)
        paths = StatePaths(Path(self._tmp.name))
        self.chain = Chain.embedded() if rpc is None else Chain.connect(rpc)
        self.index = Index(paths.index)
        self.market, ids = open_market(self.chain, community, self.config, paths, self.index)
        self.builder = InputsBuilder(community, self.config, ids)
        self.book = open_book(paths, self.market, self.index)
        self.oracle = Oracle(self.market, self.index, self.builder, self.book)
        self.oracle.clear_ahead = False
        self.oracle.catch_up_index()  # the book checks signers against the owners the index knows
        self.bidders = Bidders(self.market, self.book, self.builder)
        self.interval = self.builder.first_interval

    @property
    def steps_left(self) -> int:
        return self.builder.intervals.stop - self.interval

    def step(self, energy_wh: np.ndarray, limit_price: np.ndarray, soc_wh: dict[int, int]) -> Settled:
        """Signs each home's order (+ buy, − sell; 0: none) at its limit price (units per
        kWh), then clears and settles the interval with the batteries at `soc_wh`."""
        if self.steps_left <= 0:
            raise IndexError("the data has no interval left: reset the environment")
        k = self.interval
        energy_wh = np.asarray(energy_wh, dtype=np.int64)
        self.bidders.submit(k, energy_wh, limit_price)
        report, _ = self.oracle.settle(k, soc_wh)
        s = report.settlement
        row = {int(p): i for i, p in enumerate(self.builder.participants)}
        filled = np.zeros(len(row), dtype=np.int64)
        amount = np.zeros(len(row), dtype=np.int64)
        for pid, grid, p2p, units in zip(s.participants.tolist(), s.grid_wh.tolist(), s.p2p_wh.tolist(), s.amount.tolist()):
            filled[row[pid]], amount[row[pid]] = grid + p2p, units
        unfilled = energy_wh - filled
        buy, sell = s.buy_price / UNITS_PER_TOKEN, s.sell_price / UNITS_PER_TOKEN
        supplier = np.where(unfilled > 0, unfilled * buy, unfilled * sell) / 1000
        on_chain = -amount / UNITS_PER_TOKEN
        self.interval += 1
        return Settled(on_chain + supplier, on_chain, filled, unfilled, s.p2p_price / UNITS_PER_TOKEN, k,
                       report.receipt.tx_hash)

    def close(self) -> None:
        self.book.close()
        self.index.close()
        self.chain.close()
        self._tmp.cleanup()


class Homes:
    """The homes' metered energy, tariffs and batteries, as agents see and run them.

    Actions per home: ``battery`` in [-1, 1] (share of the rated power: + charge,
    − discharge; ignored without a battery) and ``price`` in [0, 1] (the order's limit
    between the feed-in tariff (0) and the import tariff (1))."""

    def __init__(self, builder: InputsBuilder) -> None:
        self.builder = builder
        N = len(builder.participants)
        self.has_battery = np.zeros(N, dtype=bool)
        self.has_battery[builder.battery_rows] = True
        # Each home's own battery (node.data.assets); zero where there is none.
        self.capacity_wh = builder.battery_values("capacity_wh")
        self.min_soc_wh = builder.battery_values("min_soc_wh")
        self.max_charge_wh, self.max_discharge_wh = builder.battery_values("max_charge_wh"), builder.battery_values("max_discharge_wh")
        self.eta_charge = builder.battery_values("charge_efficiency_ppm", PPM) / PPM
        self.eta_discharge = builder.battery_values("discharge_efficiency_ppm", PPM) / PPM
        initial = builder.initial_soc()
        self.initial_soc_wh = np.array([initial.get(int(p), 0) for p in builder.participants], dtype=np.int64)
        self.soc_wh = self.initial_soc_wh.copy()
        steps = builder.intervals.stop - builder.first_interval
        times = [builder.start_of(k) for k in range(builder.first_interval, builder.first_interval + steps + FORECAST_STEPS)]
        tariffs = builder.config.tariffs
        self.buy = np.asarray(tariffs.buy_price(times), dtype=float)
        self.sell = np.asarray(tariffs.sell_price(times), dtype=float)
        self.hours = np.array([t.tz_convert(tariffs.timezone).hour + t.minute / 60 for t in times])

    def reset(self) -> None:
        self.soc_wh = self.initial_soc_wh.copy()

    def soc_by_participant(self) -> dict[int, int]:
        return {int(self.builder.participants[i]): int(self.soc_wh[i]) for i in np.flatnonzero(self.has_battery)}

    def act(self, step: int, battery: np.ndarray, price: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Runs the batteries for `step` (of the data) and returns each home's order:
        energy (its net need after the battery, Wh) and limit price (units per kWh)."""
        battery = np.clip(np.nan_to_num(np.asarray(battery, dtype=float)), -1, 1) * self.has_battery
        room = np.floor((self.capacity_wh - self.soc_wh) / self.eta_charge)
        stored = np.floor((self.soc_wh - self.min_soc_wh) * self.eta_discharge)
        charge = np.clip(np.rint(np.maximum(battery, 0) * self.max_charge_wh), 0, np.maximum(room, 0)).astype(np.int64)
        discharge = np.clip(np.rint(np.maximum(-battery, 0) * self.max_discharge_wh), 0, np.maximum(stored, 0)).astype(np.int64)
        self.soc_wh = self.soc_wh + np.floor(charge * self.eta_charge).astype(np.int64) - np.ceil(discharge / self.eta_discharge).astype(np.int64)
        need = self.builder.load_wh[:, step] - self.builder.pv_wh[:, step] + charge - discharge
        share = np.clip(np.nan_to_num(np.asarray(price, dtype=float)), 0, 1)
        limit = np.rint((self.sell[step] + share * (self.buy[step] - self.sell[step])) * UNITS_PER_TOKEN).astype(np.int64)
        return need, limit

    def tariff_actions(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The tariff bidders' actions (node.simulation.bidders): battery idle, buy at the
        import tariff, sell at the feed-in tariff."""
        need = self.builder.load_wh[:, step] - self.builder.pv_wh[:, step]
        return np.zeros(len(need)), (need > 0).astype(float)

    def observe(self, step: int, last_price: float) -> np.ndarray:
        """(N, OBSERVATION_SIZE) float32: what each home sees before ordering for `step`."""
        b = self.builder
        last = b.load_wh.shape[1] - 1
        ahead = np.minimum(np.arange(step + 1, step + 1 + FORECAST_STEPS), last)
        N = len(b.participants)
        angle = 2 * np.pi * self.hours[step] / 24
        columns = [
            np.full((N, 1), np.sin(angle)), np.full((N, 1), np.cos(angle)),
            np.full((N, 1), self.buy[step]), np.full((N, 1), self.sell[step]),
            np.tile(self.buy[step + 1: step + 1 + FORECAST_STEPS], (N, 1)),
            b.load_wh[:, [step]] / 1000, b.pv_wh[:, [step]] / 1000,
            b.load_wh[:, ahead] / 1000, b.pv_wh[:, ahead] / 1000,
            (self.soc_wh / np.maximum(self.capacity_wh, 1))[:, None],
            self.has_battery[:, None].astype(float),
            np.full((N, 1), last_price),
        ]
        return np.clip(np.hstack(columns), -OBSERVATION_BOUND, OBSERVATION_BOUND).astype(np.float32)
