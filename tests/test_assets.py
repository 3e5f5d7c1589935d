"""Per-participant assets: the community file, the same columns in a dataset, synthetic
draws, and what reaches the committed inputs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from node.data.assets import apply_assets, load_assets, save_assets
from node.data.config import default_config
from node.data.dataset import load_dataset, save_dataset
from node.data.synthetic import generate_community
from node.errors import DataError
from node.oracle.inputs_builder import InputsBuilder
from tests.helpers import GOOD_ROWS, write_csv

HEADER = "participant,battery_kwh,battery_kw,charge_efficiency,discharge_efficiency,min_soc,initial_soc,connection_kw"


def _community(tmp_path: Path):
    return load_dataset(write_csv(tmp_path, GOOD_ROWS), default_config())


def _assets(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    return write_csv(tmp_path, rows, header=header, name="community.csv")


def test_each_battery_reaches_the_inputs_with_its_own_size_power_efficiency_and_soc(tmp_path):
    config = default_config()
    path = _assets(tmp_path, ["a,5,2,0.9,0.8,0.2,0.6,", "b,13.5,,,,,,"])
    community = apply_assets(_community(tmp_path), load_assets(path), config)
    builder = InputsBuilder(community, config, np.array([1, 2]))
    inputs = builder.inputs(builder.first_interval, builder.initial_soc())
    a, b = inputs.batteries
    assert (a.capacity_wh, a.max_charge_wh, a.charge_efficiency_ppm, a.discharge_efficiency_ppm) == (5000, 500, 900_000, 800_000)
    assert (a.min_soc_wh, a.soc_wh) == (1000, 3000)
    # Blank fields: [batteries] defaults, power at the same kW per kWh (5 kW / 10 kWh).
    assert (b.capacity_wh, b.max_charge_wh, b.min_soc_wh, b.soc_wh) == (13500, 1688, 1350, 6750)
    optimiser_view = inputs.to_clearing_inputs().batteries
    assert optimiser_view.capacity_kwh.tolist() == [5.0, 13.5]
    assert optimiser_view.charge_efficiency.tolist() == [0.9, 0.95]


def test_a_connection_limit_caps_the_battery_power_per_interval(tmp_path):
    config = default_config()
    path = _assets(tmp_path, ["b,10,5,,,,,4"])
    community = apply_assets(_community(tmp_path), load_assets(path), config)
    builder = InputsBuilder(community, config, np.array([1, 2]))
    (battery,) = builder.inputs(builder.first_interval, builder.initial_soc()).batteries
    assert battery.max_charge_wh == battery.max_discharge_wh == 1000  # 4 kW for 15 minutes


@pytest.mark.parametrize(
    "rows, row, column, fragment",
    [
        (["a,5,2,1.5,,,,"], 2, "charge_efficiency", "'1.5' is out of range; expected a fraction in (0, 1]"),
        (["a,5,,,,,,", "zz,5,,,,,,"], 3, "participant", "'zz' is not in the dataset"),
        (["a,5,,,,,,", "a,6,,,,,,"], 3, "participant", "has a row already"),
        (["a,0,2,,,,,"], 2, "battery_kw", "has no battery"),
        (["a,5,,,,0.6,0.5,"], 2, "initial_soc", "must be above min_soc 0.6"),
        (["a,five,,,,,,"], 2, "battery_kwh", "'five' is not a number"),
        (["b,,,,,,,3.5"], 2, "connection_kw", "production of 1 kWh at 2026-06-01T00:15:00+00:00 is more than"),
    ],
)
def test_a_bad_community_file_is_refused_naming_row_and_column(tmp_path, rows, row, column, fragment):
    with pytest.raises(DataError) as error:
        apply_assets(_community(tmp_path), load_assets(_assets(tmp_path, rows)), default_config())
    assert (error.value.row, error.value.column) == (row, column)
    assert fragment in str(error.value)


def test_an_unknown_column_is_refused(tmp_path):
    with pytest.raises(DataError, match="column 'battery_size'.*unknown column"):
        load_assets(_assets(tmp_path, ["a,5"], header="participant,battery_size"))


def test_blank_cells_keep_what_the_dataset_says(tmp_path):
    community = _community(tmp_path)
    path = _assets(tmp_path, ["a,,,,,,,", "b,,,,,,,"])
    assert apply_assets(community, load_assets(path), default_config()).homes == community.homes


def test_a_dataset_may_carry_the_asset_columns(tmp_path):
    header = "timestamp,participant,consumption_kwh,production_kwh,battery_kwh,hvac_kw"
    rows = [f"{r},{'7' if ',b,' in r else ''},{'2' if ',a,' in r else ''}" for r in GOOD_ROWS]
    community = load_dataset(write_csv(tmp_path, rows, header=header), default_config())
    a, b = community.homes
    assert a.hvac.power_kw == 2 and not a.battery
    assert b.battery_spec.capacity_kwh == 7 and b.hvac is None


def test_a_dataset_asset_column_must_be_constant_per_participant(tmp_path):
    header = "timestamp,participant,consumption_kwh,production_kwh,battery_kwh"
    rows = [f"{r},{i}" for i, r in enumerate(GOOD_ROWS)]
    with pytest.raises(DataError, match="must be the same on every row"):
        load_dataset(write_csv(tmp_path, rows, header=header), default_config())


def test_synthetic_batteries_and_hvacs_are_drawn_and_survive_the_file_round_trip(tmp_path):
    config = default_config()
    config = replace(config, community=replace(config.community, homes=12, battery_size_spread=0.3, hvac_share=0.25))
    community = generate_community(config)
    specs = [h.battery_spec for h in community.homes if h.battery]
    assert len({(s.capacity_kwh, s.power_kw) for s in specs}) > 1
    assert all(7 <= s.capacity_kwh <= 13 and 3.5 <= s.power_kw <= 6.5 for s in specs)
    assert sum(h.hvac is not None for h in community.homes) == 3
    for suffix in ("csv", "parquet"):
        save_dataset(community, tmp_path / f"d.{suffix}")
        assert load_dataset(tmp_path / f"d.{suffix}", config).homes == community.homes
        save_assets(community.homes, tmp_path / f"c.{suffix}")
        bare = replace(community, homes=tuple(replace(h, battery_spec=None, hvac=None) for h in community.homes))
        assert apply_assets(bare, load_assets(tmp_path / f"c.{suffix}"), config).homes == community.homes


def test_without_a_spread_the_synthetic_community_is_as_before():
    config = replace(default_config(), community=replace(default_config().community, homes=8))
    community = generate_community(config)
    assert all(h.battery_spec is None and h.hvac is None for h in community.homes)
    assert round(float(community.consumption_kwh.sum()), 6) == round(float(generate_community(config).consumption_kwh.sum()), 6)
