"""Dynamic tariffs from a prices file: day-ahead plus fees, the explicit form, coverage,
and bad files named by row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from node.data.config import load_config
from node.errors import DataError, InputError
from node.oracle.inputs_builder import InputsBuilder
from tests.helpers import GOOD_ROWS, write_config, write_csv

DAY = pd.date_range("2026-06-01T00:00:00+00:00", periods=24, freq="1h")


def _config(tmp_path: Path, rows: list[str], header: str = "timestamp,day_ahead_per_kwh", fees: str = "grid_fee_per_kwh = 0.2\nsell_fee_per_kwh = 0.01\n"):
    write_csv(tmp_path, rows, header=header, name="prices.csv")
    return load_config(write_config(tmp_path, f'[tariffs]\nprices_file = "prices.csv"\n{fees}'))


def _hourly(prices) -> list[str]:
    return [f"{t.isoformat()},{p}" for t, p in zip(DAY, prices)]


def test_day_ahead_prices_plus_fees_price_every_quarter_hour_of_their_hour(tmp_path):
    tariffs = _config(tmp_path, _hourly([0.10 + h / 100 for h in range(24)])).tariffs
    quarters = pd.date_range(DAY[0], periods=8, freq="15min")
    np.testing.assert_allclose(tariffs.buy_price(quarters), [0.30] * 4 + [0.31] * 4)
    np.testing.assert_allclose(tariffs.sell_price(quarters), [0.09] * 4 + [0.10] * 4)


def test_negative_day_ahead_prices_give_free_import_and_no_feed_in(tmp_path):
    tariffs = _config(tmp_path, _hourly([-0.5] + [0.1] * 23)).tariffs
    assert tariffs.buy_price(DAY[:1])[0] == 0.0 and tariffs.sell_price(DAY[:1])[0] == 0.0


def test_beyond_the_file_the_last_day_repeats_and_before_it_nothing_is_priced(tmp_path):
    tariffs = _config(tmp_path, _hourly(np.arange(24) / 100)).tariffs
    later = DAY + pd.Timedelta(days=3)
    np.testing.assert_allclose(tariffs.buy_price(later), tariffs.buy_price(DAY))
    with pytest.raises(InputError, match="no price for the interval starting 2026-05-31T23:45:00"):
        tariffs.buy_price([DAY[0] - pd.Timedelta(minutes=15)])


def test_explicit_buy_and_sell_prices_are_taken_as_they_are(tmp_path):
    rows = [f"{t.isoformat()},0.3,0.1" for t in DAY]
    tariffs = _config(tmp_path, rows, header="timestamp,buy_per_kwh,sell_per_kwh", fees="").tariffs
    assert (tariffs.buy_price(DAY[:1])[0], tariffs.sell_price(DAY[:1])[0]) == (0.3, 0.1)
    assert (tariffs.highest_buy_price(), tariffs.lowest_sell_price()) == (0.3, 0.1)


@pytest.mark.parametrize(
    "rows, row, fragment",
    [
        (_hourly([0.1] * 23 + ["cheap"]), 25, "'cheap' is not a finite number"),
        (_hourly([0.1] * 5 + [150.0] + [0.1] * 18), 7, "implausibly large (> 100 per kWh); check the unit"),
        ([f"{DAY[1].isoformat()},0.1", f"{DAY[0].isoformat()},0.1"], 3, "not after the row before it"),
    ],
)
def test_a_bad_prices_file_is_refused_at_config_load_naming_the_row(tmp_path, rows, row, fragment):
    with pytest.raises(DataError) as error:
        _config(tmp_path, rows)
    assert error.value.row == row and fragment in str(error.value)


def test_a_missing_prices_file_is_named(tmp_path):
    with pytest.raises(DataError, match="prices file not found"):
        load_config(write_config(tmp_path, '[tariffs]\nprices_file = "nope.csv"\n'))


def test_each_step_of_the_committed_inputs_carries_its_dynamic_price(tmp_path):
    from node.data.dataset import load_dataset

    config = _config(tmp_path, _hourly([h / 100 for h in range(24)]))
    community = load_dataset(write_csv(tmp_path, GOOD_ROWS), config)
    builder = InputsBuilder(community, config, np.array([1, 2]))
    inputs = builder.inputs(builder.first_interval, builder.initial_soc())
    assert inputs.buy_price[:5] == [200_000] * 4 + [210_000]
    assert inputs.sell_price[4] == 0  # 0.01 day-ahead less the 0.01 sell fee
    assert len(inputs.buy_price) == config.market.horizon_steps
