"""Community config: defaults, the documented example file, and errors naming their key."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.data.config import CommunityConfig, TariffConfig, default_config, load_config
from node.errors import ConfigError, InputError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "community.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "community.toml"
    path.write_text(text)
    return path


def test_default_config_has_the_documented_defaults() -> None:
    config = default_config()
    assert config.market.interval_minutes == 15
    assert config.market.horizon_steps == 96
    assert config.market.start == pd.Timestamp("2026-06-01T00:00:00+00:00")
    assert config.tariffs.peak_hours == (17, 21)
    assert config.community.homes == 20
    assert config.community.annual_load_kwh_range == (2500.0, 6000.0)
    assert config.wallets.initial_deposit == 50.0


def test_example_file_loads_and_equals_defaults() -> None:
    assert load_config(EXAMPLE) == default_config()


def test_example_file_comments_every_field_and_lists_every_field() -> None:
    lines = EXAMPLE.read_text().splitlines()
    keys = set()
    for number, line in enumerate(lines):
        match = re.match(r"^(\w+) = ", line)
        if match:
            keys.add(match.group(1))
            assert lines[number - 1].startswith("#"), f"no comment above '{line}'"
    every_field = {
        field.name
        for section in dataclasses.fields(CommunityConfig)
        for field in dataclasses.fields(getattr(default_config(), section.name))
    }
    assert keys == every_field


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == default_config()


def test_given_keys_override_only_themselves(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[market]\ninterval_minutes = 30\n[community]\nhomes = 5\n"))
    assert config.market.interval_minutes == 30
    assert config.community.homes == 5
    assert config.tariffs == default_config().tariffs


def test_start_accepts_a_string_with_offset_and_converts_to_utc(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[market]\nstart = "2026-06-01T02:00:00+02:00"\n'))
    assert config.market.start == pd.Timestamp("2026-06-01T00:00:00Z")
    assert str(config.market.start.tz) == "UTC"


@pytest.mark.parametrize(
    ("toml", "key", "fragment"),
    [
        ("[market]\ninterval_minutes = 7", "market.interval_minutes", "dividing 60"),
        ("[market]\ninterval_minutes = 0", "market.interval_minutes", "positive"),
        ("[market]\ninterval_minutes = 90", "market.interval_minutes", "dividing 24"),
        ("[market]\ninterval_minutes = 15.0", "market.interval_minutes", "an integer"),
        ("[market]\nhorizon_steps = 0", "market.horizon_steps", ">= 1"),
        ("[market]\nstart = 2026-06-01T00:00:00", "market.start", "UTC offset"),
        ('[market]\nstart = "tomorrow"', "market.start", "UTC offset"),
        ('[market]\ncurrency = "euro"', "market.currency", "ISO 4217"),
        ("[tariffs]\nbuy_per_kwh = -0.1", "tariffs.buy_per_kwh", ">= 0"),
        ("[tariffs]\nbuy_per_kwh = \"0.30\"", "tariffs.buy_per_kwh", "a number"),
        ("[tariffs]\nsell_per_kwh = 0.35", "tariffs.sell_per_kwh", "<= buy_per_kwh"),
        ("[tariffs]\npeak_buy_per_kwh = 0.2", "tariffs.peak_buy_per_kwh", ">= buy_per_kwh"),
        ("[tariffs]\npeak_hours = [17]", "tariffs.peak_hours", "a list of 2"),
        ("[tariffs]\npeak_hours = [17, 25]", "tariffs.peak_hours", "between 0 and 24"),
        ('[tariffs]\ntimezone = "Mars/Olympus"', "tariffs.timezone", "IANA"),
        ("[grid]\nimport_capacity_kw = 0", "grid.import_capacity_kw", "> 0"),
        ("[grid]\nexport_capacity_kw = -5", "grid.export_capacity_kw", "> 0"),
        ("[p2p]\ntransaction_cost_per_kwh = -0.01", "p2p.transaction_cost_per_kwh", ">= 0"),
        ("[batteries]\ncapacity_kwh = 0", "batteries.capacity_kwh", "> 0"),
        ("[batteries]\npower_kw = 0", "batteries.power_kw", "> 0"),
        ("[batteries]\ncharge_efficiency = 1.2", "batteries.charge_efficiency", "(0, 1]"),
        ("[batteries]\ndischarge_efficiency = 0", "batteries.discharge_efficiency", "(0, 1]"),
        ("[batteries]\ninitial_soc = 0.05", "batteries.initial_soc", "> min_soc"),
        ("[batteries]\ninitial_soc = 1.5", "batteries.initial_soc", "<= 1"),
        ("[batteries]\nmin_soc = -0.1", "batteries.min_soc", "[0, 1)"),
        ("[community]\nhomes = 0", "community.homes", ">= 1"),
        ("[community]\nhomes = true", "community.homes", "an integer"),
        ("[community]\npv_share = 1.5", "community.pv_share", "[0, 1]"),
        ("[community]\nbattery_share = 0.7", "community.battery_share", "only to PV homes"),
        ("[community]\ndays = 0", "community.days", ">= 1"),
        ("[community]\nseed = -1", "community.seed", ">= 0"),
        ("[community]\nlatitude = 95", "community.latitude", "[-90, 90]"),
        ("[community]\nlongitude = 200", "community.longitude", "[-180, 180]"),
        ("[community]\npv_kwp_range = [10, 3]", "community.pv_kwp_range", "min <= max"),
        ("[community]\nannual_load_kwh_range = 3000", "community.annual_load_kwh_range", "a list of 2"),
        ("[wallets]\ninitial_deposit = -1", "wallets.initial_deposit", ">= 0"),
        ('[market]\nmechanism = "auctoin"', "market.mechanism", '"community" or "auction"'),
        ('[market]\npricing = "vickrey"', "market.pricing", '"uniform" or "pay_as_bid"'),
    ],
)
def test_bad_value_error_names_file_key_and_expectation(tmp_path: Path, toml: str, key: str, fragment: str) -> None:
    path = write(tmp_path, toml + "\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: expected")
    assert fragment in message


def test_unknown_key_is_rejected_with_its_dotted_name(tmp_path: Path) -> None:
    path = write(tmp_path, "[tariffs]\nbuy_per_kWh = 0.3\n")
    with pytest.raises(ConfigError, match=r"tariffs\.buy_per_kWh: unknown key; expected one of: buy_per_kwh"):
        load_config(path)


def test_unknown_section_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tarifs: unknown section"):
        load_config(write(tmp_path, "[tarifs]\nbuy_per_kwh = 0.3\n"))


def test_section_that_is_not_a_table_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"grid: expected a table \[grid\]"):
        load_config(write(tmp_path, "grid = 5\n"))


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[market\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: not valid TOML")):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_replacing_a_field_with_a_bad_value_is_rejected_too() -> None:
    with pytest.raises(ConfigError, match=r"batteries\.min_soc"):
        dataclasses.replace(default_config().batteries, min_soc=2.0)


@given(st.integers(min_value=-5, max_value=1500))
def test_interval_is_valid_exactly_when_it_tiles_an_hour_or_a_day(minutes: int) -> None:
    tiles = minutes > 0 and (60 % minutes == 0 or (minutes % 60 == 0 and 1440 % minutes == 0))
    try:
        dataclasses.replace(default_config().market, interval_minutes=minutes)
    except ConfigError:
        assert not tiles
    else:
        assert tiles


def test_peak_price_applies_at_local_17_to_21_in_summer_and_winter() -> None:
    tariffs = default_config().tariffs
    summer = pd.date_range("2026-06-01T14:45Z", "2026-06-01T19:15Z", freq="15min")  # Berlin is UTC+2
    winter = pd.date_range("2026-12-01T15:45Z", "2026-12-01T20:15Z", freq="15min")  # Berlin is UTC+1
    for stamps in (summer, winter):
        prices = tariffs.buy_price(stamps)
        assert prices[0] == 0.30 and prices[-1] == 0.30 and prices[-2] == 0.30
        assert np.all(prices[1:-2] == 0.40)


def test_peak_hours_may_wrap_past_midnight() -> None:
    tariffs = dataclasses.replace(default_config().tariffs, peak_hours=(22, 6), timezone="UTC")
    stamps = pd.DatetimeIndex(["2026-06-01T21:00Z", "2026-06-01T23:00Z", "2026-06-02T05:45Z", "2026-06-02T06:00Z"])
    assert tariffs.is_peak(stamps).tolist() == [False, True, True, False]


def test_naive_timestamps_are_priced_as_utc() -> None:
    tariffs = default_config().tariffs
    assert tariffs.buy_price(pd.DatetimeIndex(["2026-06-01 15:00"]))[0] == 0.40


def test_sell_price_is_flat() -> None:
    stamps = pd.date_range("2026-06-01", periods=96, freq="15min", tz="UTC")
    assert np.all(default_config().tariffs.sell_price(stamps) == 0.06)


@given(
    buy=st.floats(0, 2),
    sell_fraction=st.floats(0, 1),
    peak_extra=st.floats(0, 2),
    hours=st.tuples(st.integers(0, 24), st.integers(0, 24)),
    offsets=st.lists(st.integers(0, 10_000), min_size=1, max_size=20),
)
def test_grid_never_buys_above_what_it_sells_for(
    buy: float, sell_fraction: float, peak_extra: float, hours: tuple[int, int], offsets: list[int]
) -> None:
    tariffs = TariffConfig(
        buy_per_kwh=buy, sell_per_kwh=buy * sell_fraction, peak_buy_per_kwh=buy + peak_extra, peak_hours=hours
    )
    stamps = pd.Timestamp("2026-01-01T00:00Z") + pd.to_timedelta(offsets, unit="h")
    assert np.all(tariffs.sell_price(stamps) <= tariffs.buy_price(stamps))
    assert set(tariffs.buy_price(stamps)) <= {tariffs.buy_per_kwh, tariffs.peak_buy_per_kwh}


def test_grid_capacity_per_interval_is_power_times_interval_hours() -> None:
    config = default_config()
    assert config.grid.import_capacity_kwh(config.market.interval_minutes) == pytest.approx(15.0)
    assert config.grid.export_capacity_kwh(60) == pytest.approx(40.0)


def test_interval_index_counts_from_the_epoch_and_rejects_off_grid_times() -> None:
    market = default_config().market
    stamps = pd.DatetimeIndex(["2026-06-01T00:00Z", "2026-06-01T01:15Z", "2026-05-31T23:45Z"])
    assert market.interval_index(stamps).tolist() == [0, 5, -1]
    with pytest.raises(InputError, match="not the start of a 15-minute interval"):
        market.interval_index(pd.DatetimeIndex(["2026-06-01T00:07Z"]))
