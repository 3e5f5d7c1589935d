"""The chain's units, fixed at every boundary between floats and the ledger.

Energy on chain is integer Wh; money is integer minor units of the settlement token
(6 decimals, so 1 token = 1,000,000 units); prices are minor units per kWh.
"""

from __future__ import annotations

TOKEN_DECIMALS = 6
UNITS_PER_TOKEN = 10**TOKEN_DECIMALS
PPM = 1_000_000  # shares (state of charge, efficiencies) in parts per million
BUY, SELL = 0, 1  # an order's side as signed and packed on chain


def round_price_units(price_per_kwh: float) -> int:
    """A currency-per-kWh price (a float from the optimiser or a tariff) in minor units
    per kWh, rounded to the nearest unit."""
    return int(round(price_per_kwh * UNITS_PER_TOKEN))
