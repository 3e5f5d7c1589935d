"""The demo's auction: every home signs an order for each interval from its own meter
data, as a participant with the simplest sensible rule would, so a replayed auction
market has something to clear (an interval without orders closes empty).

A home short of energy bids for its shortfall at the import tariff it would pay the
grid anyway; a home with a surplus asks the feed-in tariff it would get from the
grid. Neighbours trade what they can at the auction's price, and what nobody takes
goes to or comes from the grid (orders at the tariffs are the auction's grid legs),
so every home's energy is settled. Nonces are interval + 1: a browser order signed
later (its nonce is the time in milliseconds) amends the demo's order for the same
interval.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from node.data.community import Community
from node.data.config import CommunityConfig
from node.chain.market import Market
from node.intent.signing import BUY, SELL, Order, SignedOrder, sign_order
from node.simulation.setup import demo_key
from node.units import round_price_units

VALID_DAYS = 30  # the orders outlive a demo left running for a while
MIN_WH = 10  # below this a home sits the interval out


def demo_orders(market: Market, community: Community, config: CommunityConfig, ids: np.ndarray,
                intervals: range) -> list[SignedOrder]:
    """Each home's signed order for each of `intervals` (those of the community's data)."""
    domain = market.domain()
    times = pd.DatetimeIndex([config.market.start + k * config.market.interval for k in intervals])
    buy, sell = config.tariffs.buy_price(times), config.tariffs.sell_price(times)
    net_wh = np.rint((community.consumption_kwh - community.production_kwh) * 1000).astype(np.int64)
    first = intervals.start
    expiry = int(time.time()) + VALID_DAYS * 24 * 3600
    keys = [demo_key(config.community.seed, home.name) for home in community.homes]
    signed = []
    for k in intervals:
        step = k - first
        for row, pid in enumerate(ids):
            wh = int(net_wh[row, step])
            if abs(wh) < MIN_WH:
                continue
            limit = buy[step] if wh > 0 else sell[step]
            order = Order(participant=int(pid), interval=k, side=BUY if wh > 0 else SELL, energy_wh=abs(wh),
                          limit_price=round_price_units(float(limit)), expiry=expiry, nonce=k + 1)
            signed.append(sign_order(keys[row], domain, order))
    return signed
