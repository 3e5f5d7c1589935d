"""The agents of a whole community: one order per home per interval, signed with the
home's key, and the outcome of each clearing fed back to every agent.

Signing is EIP-712 over the same Order type a person signs (node.intent.signing); the
digest is computed once per order and signed as a hash, which is what
``eth_account``'s typed-data signing does too, without re-encoding the domain a
thousand times an interval. Nonces are ``AGENT_NONCE_BASE + interval``: one per
interval, above any a person picks by hand, so an agent's order amends a person's.

Everything an agent decides follows from the data, the tariffs and the prices cleared
before, so replaying the settled intervals (`observe` in interval order) rebuilds every
agent's state after a crash, and the order it would sign again is the one in the book.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence

import numpy as np
import pandas as pd
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from node.agents.bids import Composed, compose
from node.agents.home import Battery, HomeAgent, MarketView
from node.agents.thermal import Thermostat, outdoor_temperature
from node.data.assets import battery_spec_of
from node.data.community import Community
from node.data.config import CommunityConfig
from node.intent.signing import Domain, Order, SignedOrder, struct_hash
from node.units import UNITS_PER_TOKEN, round_price_units

AGENT_NONCE_BASE = 1 << 48  # below the 56 bits a settlement packs a nonce into
ORDER_LIFETIME_S = 86_400


class PriceMemory:
    """The cleared prices the agents have seen: recent ones for TESP's mean and standard
    deviation, and each interval's for the same-time-yesterday forecast."""

    def __init__(self, size: int, steps_per_day: int) -> None:
        self.recent: deque[int] = deque(maxlen=size)
        self.by_interval: dict[int, int] = {}
        self.steps_per_day = steps_per_day

    def add(self, interval: int, price: int) -> None:
        self.recent.append(price)
        self.by_interval[interval] = price
        self.by_interval.pop(interval - 2 * self.steps_per_day, None)

    def view(self, interval: int, buy: int, sell: int) -> tuple[float, float, float]:
        """(expected price, mean, standard deviation) for `interval`, units per kWh."""
        if len(self.recent) >= 2:
            mean, std = float(np.mean(self.recent)), float(np.std(self.recent))
        else:
            mean, std = (buy + sell) / 2, (buy - sell) / 4
        std = std if std > 0 else max((buy - sell) / 4, 1.0)
        expected = self.by_interval.get(interval - self.steps_per_day, self.recent[-1] if self.recent else mean)
        return float(expected), mean, std


class AgentFleet:
    """A community's bidding agents, in participant order."""

    def __init__(self, community: Community, config: CommunityConfig, participants: Sequence[int],
                 accounts: Sequence[LocalAccount], domain: Domain) -> None:
        self.config = config
        self.community = community
        self.participants = [int(p) for p in participants]
        self.accounts = list(accounts)
        self._prefix = b"\x19\x01" + domain.separator()
        market = config.market
        self.hours = market.interval_hours
        self.first_interval = int(market.interval_index(community.timestamps[:1])[0])
        self.memory = PriceMemory(config.agents.price_memory, int(round(pd.Timedelta(days=1) / market.interval)))
        self.outdoor = outdoor_temperature(config.hvac, community.timestamps, market.interval, config.tariffs.timezone)
        self.buy = [round_price_units(p) for p in config.tariffs.buy_price(community.timestamps)]
        self.sell = [round_price_units(p) for p in config.tariffs.sell_price(community.timestamps)]
        load = np.rint(community.consumption_kwh * 1000).astype(np.int64)
        pv = np.rint(community.production_kwh * 1000).astype(np.int64)
        self.agents = [self._agent(i, pid, (load[i] - pv[i]).tolist()) for i, pid in enumerate(self.participants)]
        self._composed: dict[int, list[Composed]] = {}
        self.records: list[dict] = []

    def _agent(self, row: int, pid: int, base: list[int]) -> HomeAgent:
        home = self.community.homes[row]
        connection = None if home.connection_kw is None else int(home.connection_kw * self.hours * 1000)
        agent = HomeAgent(pid, home.name, base, self.first_interval, self.config.agents, connection_wh=connection)
        spec = battery_spec_of(home, self.config)
        if spec is not None:
            power = spec.power_kw if home.connection_kw is None else min(spec.power_kw, home.connection_kw)
            agent.battery = Battery(spec, int(round(power * self.hours * 1000)))
        if home.hvac is not None:
            agent.hvac = Thermostat.start(home.hvac, self.config.hvac)
        return agent

    def view(self, interval: int) -> MarketView:
        step = interval - self.first_interval
        buy, sell = self.buy[step], self.sell[step]
        expected, mean, std = self.memory.view(interval, buy, sell)
        return MarketView(interval, buy, sell, expected, mean, std, float(self.outdoor[step]), self.hours)

    def decide(self, interval: int) -> list[Composed]:
        """Every home's order for `interval` (kept for `observe`)."""
        view = self.view(interval)
        composed = [compose(agent.steps(view), view.expected) for agent in self.agents]
        self._composed[interval] = composed
        return composed

    def sign(self, interval: int, composed: list[Composed], now: int | None = None) -> list[SignedOrder]:
        """The non-empty orders, each signed with its home's key."""
        now = int(time.time()) if now is None else now
        end = int((self.config.market.start + (interval + 1) * self.config.market.interval).timestamp())
        expiry = max(now, end) + ORDER_LIFETIME_S
        signed = []
        for pid, account, c in zip(self.participants, self.accounts, composed):
            if c.side is None:
                continue
            order = Order(pid, interval, c.side, c.energy_wh, c.limit, expiry, AGENT_NONCE_BASE + interval)
            digest = keccak(self._prefix + struct_hash(order))
            signed.append(SignedOrder(order, bytes(account.unsafe_sign_hash(digest).signature)))
        return signed

    def observe(self, interval: int, served_wh: dict[int, int], price: int) -> None:
        """Feeds the settled outcome of `interval` to every agent: each participant's
        settled energy (+ in, - out; absent = nothing) and the interval's P2P price."""
        composed = self._composed.pop(interval, None)
        if composed is None:  # catching up after a restart: decide again, as it did then
            self.decide(interval)
            composed = self._composed.pop(interval)
        view = self.view(interval)
        for agent, c in zip(self.agents, composed):
            filled = abs(served_wh.get(agent.participant, 0))
            self.records.append(agent.observe(view, c, filled, price))
        self.memory.add(interval, price)

    def summary(self) -> dict:
        """Energy the agents' homes settled outside the community, at the tariffs, and the
        HVACs' comfort: what a run's KPIs add for an auction with agents."""
        if not self.records:
            return {}
        frame = pd.DataFrame(self.records)
        step = frame["interval"] - self.first_interval
        buy, sell = np.asarray(self.buy)[step], np.asarray(self.sell)[step]
        cost = (frame["outside_import_wh"] * buy - frame["outside_export_wh"] * sell).sum() / 1000 / UNITS_PER_TOKEN
        kpis = {"outside_import_kwh": float(frame["outside_import_wh"].sum()) / 1000,
                "outside_export_kwh": float(frame["outside_export_wh"].sum()) / 1000, "outside_cost": float(cost)}
        if "indoor_c" in frame:
            hvac = frame.dropna(subset=["indoor_c"])
            homes = {a.participant: a.hvac for a in self.agents if a.hvac is not None}
            low = hvac["participant"].map(lambda p: homes[p].spec.setpoint_c - self.config.hvac.range_low_c)
            high = hvac["participant"].map(lambda p: homes[p].spec.setpoint_c + self.config.hvac.range_high_c)
            outside_band = (hvac["indoor_c"] - high).clip(lower=0) + (low - hvac["indoor_c"]).clip(lower=0)
            kpis.update(hvac_kwh=float(hvac["hvac_wh"].sum()) / 1000,
                        hvac_discomfort_kelvin_hours=float((outside_band * self.hours).sum()))
        return kpis
