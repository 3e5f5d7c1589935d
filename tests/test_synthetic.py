"""Synthetic community: reproducible, and believable for June at 52.5 N."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.data.community import Community, home_names
from node.data.config import CommunityConfig, default_config
from node.data.synthetic import _draw_annual_loads, generate_community

WEEKS = 4


def with_community(config: CommunityConfig, **changes: object) -> CommunityConfig:
    return dataclasses.replace(config, community=dataclasses.replace(config.community, **changes))


@pytest.fixture(scope="module")
def demo() -> Community:
    return generate_community(default_config())


@pytest.fixture(scope="module")
def month_config() -> CommunityConfig:
    return with_community(default_config(), days=7 * WEEKS)


@pytest.fixture(scope="module")
def month(month_config: CommunityConfig) -> Community:
    return generate_community(month_config)


def local_hours(community: Community) -> np.ndarray:
    return np.asarray(community.timestamps.tz_convert("Europe/Berlin").hour)


def test_demo_community_has_twenty_homes_and_one_day_of_quarter_hours(demo: Community) -> None:
    assert demo.consumption_kwh.shape == demo.production_kwh.shape == (20, 96)
    assert demo.timestamps[0] == pd.Timestamp("2026-06-01T00:00Z")
    assert (demo.timestamps[1] - demo.timestamps[0]) == pd.Timedelta(minutes=15)
    assert demo.names == tuple(f"home-{i:02d}" for i in range(1, 21))
    assert all(home.zone == 0 for home in demo.homes)


def test_names_are_zero_padded_so_they_sort() -> None:
    names = home_names(120)
    assert names[0] == "home-001" and names[-1] == "home-120"
    assert list(names) == sorted(names)


def test_same_seed_gives_identical_community(demo: Community) -> None:
    again = generate_community(default_config())
    assert again.homes == demo.homes
    assert np.array_equal(again.consumption_kwh, demo.consumption_kwh)
    assert np.array_equal(again.production_kwh, demo.production_kwh)
    assert again.timestamps.equals(demo.timestamps)


def test_another_seed_gives_another_community(demo: Community) -> None:
    other = generate_community(with_community(default_config(), seed=7))
    assert not np.array_equal(other.consumption_kwh, demo.consumption_kwh)


def test_pv_and_batteries_follow_the_configured_shares(demo: Community) -> None:
    pv = [home for home in demo.homes if home.pv_kwp > 0]
    assert len(pv) == 12
    assert all(3.0 <= home.pv_kwp <= 10.0 for home in pv)
    assert sum(home.battery for home in demo.homes) == 6
    assert all(home.pv_kwp > 0 for home in demo.homes if home.battery)


def test_homes_without_pv_produce_nothing(demo: Community) -> None:
    without = np.array([home.pv_kwp == 0 for home in demo.homes])
    assert np.all(demo.production_kwh[without] == 0)


def test_pv_is_zero_at_night(month: Community) -> None:
    hours = local_hours(month)
    night = (hours >= 23) | (hours < 4)  # Berlin in June: sunset ~21:30, sunrise ~4:45
    assert np.all(month.production_kwh[:, night] == 0)
    assert np.all(month.production_kwh[:, (hours >= 11) & (hours < 14)].sum(axis=0) > 0)


def test_pv_never_exceeds_the_inverter_rating(month: Community) -> None:
    kwp = np.array([home.pv_kwp for home in month.homes])
    assert np.all(month.production_kwh <= kwp[:, None] * 0.25 + 1e-12)


def test_june_pv_yield_per_kwp_is_believable_and_varies_by_day(month: Community) -> None:
    kwp = np.array([home.pv_kwp for home in month.homes])
    pv = kwp > 0
    daily_per_kwp = month.production_kwh[pv].reshape(pv.sum(), 7 * WEEKS, 96).sum(axis=2) / kwp[pv, None]
    assert 3.0 <= daily_per_kwp.mean() <= 6.0
    assert daily_per_kwp.max() <= 8.0  # a perfect June day at 52.5 N gives ~7
    community_days = daily_per_kwp.mean(axis=0)
    assert community_days.max() - community_days.min() > 1.5  # weather: sunny and cloudy days


def test_daily_load_is_annual_consumption_over_365(month: Community, month_config: CommunityConfig) -> None:
    expected_daily = _draw_annual_loads(month_config) / 365
    ratio = month.consumption_kwh.sum(axis=1) / (7 * WEEKS) / expected_daily
    assert np.all((ratio > 0.85) & (ratio < 1.15))
    assert 0.95 < ratio.mean() < 1.05


def test_load_peaks_in_the_evening_and_is_low_at_night(month: Community) -> None:
    hours = local_hours(month)
    mean_by_hour = np.array([month.consumption_kwh[:, hours == hour].mean() for hour in range(24)])
    assert mean_by_hour[18:22].max() > 2 * mean_by_hour[1:5].mean()
    assert np.all(month.consumption_kwh > 0)  # fridge and standby never stop


def test_weekend_mornings_start_later(month: Community) -> None:
    local = month.timestamps.tz_convert("Europe/Berlin")
    hours, weekend = np.asarray(local.hour), np.asarray(local.day_of_week >= 5)
    early = (hours >= 6) & (hours < 8)
    late = (hours >= 9) & (hours < 12)
    weekday_load = month.consumption_kwh[:, early & ~weekend].mean() / month.consumption_kwh[:, late & ~weekend].mean()
    weekend_load = month.consumption_kwh[:, early & weekend].mean() / month.consumption_kwh[:, late & weekend].mean()
    assert weekday_load > weekend_load


@settings(max_examples=15, deadline=None)
@given(
    homes=st.integers(1, 8),
    pv_share=st.floats(0, 1),
    battery_fraction=st.floats(0, 1),
    seed=st.integers(0, 2**32),
    interval=st.sampled_from([5, 15, 30, 60, 120]),
)
def test_any_valid_config_gives_a_consistent_community(
    homes: int, pv_share: float, battery_fraction: float, seed: int, interval: int
) -> None:
    config = with_community(
        default_config(), homes=homes, pv_share=pv_share, battery_share=pv_share * battery_fraction, seed=seed
    )
    config = dataclasses.replace(config, market=dataclasses.replace(config.market, interval_minutes=interval))
    community = generate_community(config)
    assert community.consumption_kwh.shape == (homes, 24 * 60 // interval)
    assert np.all(np.isfinite(community.production_kwh)) and np.all(community.production_kwh >= 0)
    assert all(home.pv_kwp > 0 for home in community.homes if home.battery)
    assert sum(home.pv_kwp > 0 for home in community.homes) == int(np.floor(pv_share * homes + 0.5))
