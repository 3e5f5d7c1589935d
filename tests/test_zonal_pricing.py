"""A zonal clearing in chain integers: each home's P2P energy at its own zone's price,
energy conserved to the Wh and money to the unit, the congestion rent in the grid's wallet."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from node.clearing.pricing import congestion_rent_milli, priced_settlement, zonal_step0_integers
from node.errors import InputError
from node.units import UNITS_PER_TOKEN, round_price_units
from optimizer import clear
from tests.test_clearing_zones import two_zones

BUY, SELL = round_price_units(0.30), round_price_units(0.05)  # the tariffs of two_zones, units per kWh


@pytest.mark.parametrize("line_kwh", [0.4, 1.0, 1e3])
def test_zonal_settlement_conserves_energy_and_money_and_pays_the_rent_to_the_grid(line_kwh: float) -> None:
    inputs = two_zones(line_kwh)
    result = clear(inputs)
    net_wh, p2p_wh, prices = zonal_step0_integers(result, inputs.network.home_zone, BUY, SELL)
    grid_wh = net_wh - p2p_wh
    assert int(p2p_wh.sum()) == 0  # P2P bought == sold, to the Wh
    settlement = priced_settlement(7, b"\0" * 32, np.arange(1, 5), grid_wh, p2p_wh, BUY, SELL, int(prices[0]),
                                   p2p_prices=prices)
    assert int(settlement.amount.sum()) + settlement.grid_amount == 0  # money, to the unit
    grid_legs_milli = int(grid_wh @ np.where(grid_wh > 0, BUY, SELL))
    rent_milli = congestion_rent_milli(p2p_wh, prices)
    # the grid's wallet: its legs plus the rent, each participant's amount within a unit
    assert abs(settlement.grid_amount * 1000 - (grid_legs_milli + rent_milli)) < 1000 * len(net_wh)
    if line_kwh < 1e3:
        assert prices[2] > prices[0] and rent_milli > 0
        # milli-units are Wh x units per kWh; each home's P2P moved by under 1 Wh in rounding
        assert rent_milli == pytest.approx(result.congestion_rent * UNITS_PER_TOKEN * 1000, abs=len(net_wh) * BUY)
    else:
        assert rent_milli == 0


def test_a_clearing_without_zone_prices_is_refused() -> None:
    inputs = dataclasses.replace(two_zones(1.0), network=None)
    with pytest.raises(InputError, match="network"):
        zonal_step0_integers(clear(inputs), np.zeros(4, dtype=np.int64), BUY, SELL)
