"""Orders the homes of a simulated community sign in an auction market.

An auction clears only what participants signed. In a replay nobody is at a keyboard,
so the homes' own demo keys (node.simulation.setup.demo_key) sign their orders here,
and the orders reach the oracle the way a person's do: through the durable order book,
which checks each signature against the registered owner.

`tariff_bidders` is the plain strategy an experiment's auction runs use: each home
orders exactly its net need of the interval (load − PV; the auction does not schedule
batteries), a buyer at the import tariff and a seller at the feed-in tariff. These are
the prices at which each has the grid as an outside option, so every order is filled
(by peers first, then the grid within its capacity) and the auction only decides how
much of it goes between neighbours and at what price. The learning environments
(node.envs) use `Bidders` to sign whatever their agents choose.
"""

from __future__ import annotations

import time

import numpy as np

from node.chain.market import Market
from node.intent.orders import OrderBook
from node.intent.signing import BUY, SELL, Order, sign_order
from node.oracle.inputs_builder import InputsBuilder
from node.simulation.setup import demo_key
from node.units import round_price_units

# Orders of a replay stay valid whatever the chain's clock says: they are for one
# interval only, and the contract refuses them for any other.
ORDER_EXPIRY = 2**40


class Bidders:
    """Signs and submits orders for the homes of `builder`'s community (rows in data
    order, participants `builder.participants`) with their demo keys."""

    def __init__(self, market: Market, book: OrderBook, builder: InputsBuilder) -> None:
        self.book = book
        self.builder = builder
        self.domain = market.domain()
        seed = builder.config.community.seed
        self.keys = [demo_key(seed, home.name) for home in builder.community.homes]

    def net_need_wh(self, interval: int) -> np.ndarray:
        """(N,) each home's metered load − PV in `interval`, Wh (+ to buy, − to sell)."""
        step = interval - self.builder.first_interval
        return self.builder.load_wh[:, step] - self.builder.pv_wh[:, step]

    def tariffs(self, interval: int) -> tuple[int, int]:
        """(import, feed-in) tariff of `interval`, minor units per kWh, as its inputs commit them."""
        when = [self.builder.start_of(interval)]
        tariffs = self.builder.config.tariffs
        return round_price_units(tariffs.buy_price(when)[0]), round_price_units(tariffs.sell_price(when)[0])

    def submit(self, interval: int, energy_wh: np.ndarray, limit_price: np.ndarray) -> int:
        """One order per home with non-zero `energy_wh` (+ buy, − sell) at its
        `limit_price` (units per kWh); the interval number is the order's nonce. Returns
        how many were submitted."""
        now = int(time.time())
        submitted = 0
        for row, (wh, price) in enumerate(zip(np.asarray(energy_wh).tolist(), np.asarray(limit_price).tolist())):
            if int(wh) == 0:
                continue
            order = Order(participant=int(self.builder.participants[row]), interval=interval, side=BUY if wh > 0 else SELL,
                          energy_wh=abs(int(wh)), limit_price=max(int(price), 0), expiry=ORDER_EXPIRY, nonce=interval)
            self.book.submit(sign_order(self.keys[row], self.domain, order), now, interval)
            submitted += 1
        return submitted


def tariff_bidders(market: Market, book: OrderBook, builder: InputsBuilder) -> None:
    """Signs every home's order for every interval not settled yet (and without orders
    in the book, so a resumed run does not sign twice): its net need at its tariff."""
    bidders = Bidders(market, book, builder)
    for interval in range(market.next_interval(), builder.intervals.stop):
        if book.count_for(interval):
            continue
        buy, sell = bidders.tariffs(interval)
        need = bidders.net_need_wh(interval)
        bidders.submit(interval, need, np.where(need > 0, buy, sell))
