"""What the importers share: resampling to the market interval and the output directory."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from node.data.assets import save_assets
from node.data.community import Community
from node.data.dataset import save_dataset
from node.errors import InputError


@dataclass(frozen=True)
class Imported:
    """A dataset made from a published layout, and what the import noticed."""

    community: Community
    timezone: str  # the data's local clock (peak hours, routines)
    notes: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()  # lines of a jobs file (node.data.jobs), profiles under loads/
    profiles: dict[str, Path] = field(default_factory=dict)  # load-profile file name -> where it is


def resample(energy_kwh: np.ndarray, source_minutes: int, target_minutes: int, what: str) -> np.ndarray:
    """Energy per interval (columns) from `source_minutes` to `target_minutes` intervals:
    split evenly when the target is finer (the energy is taken as spread evenly within
    each source interval), summed when it is coarser. The columns must start on a
    target boundary and fill whole target intervals."""
    if target_minutes == source_minutes:
        return energy_kwh
    if source_minutes % target_minutes == 0:
        factor = source_minutes // target_minutes
        return np.repeat(energy_kwh / factor, factor, axis=-1)
    if target_minutes % source_minutes == 0:
        factor = target_minutes // source_minutes
        if energy_kwh.shape[-1] % factor:
            raise InputError(f"{what}: {energy_kwh.shape[-1]} intervals of {source_minutes} minutes do not fill whole "
                             f"{target_minutes}-minute intervals; cut the data to whole days")
        return energy_kwh.reshape(*energy_kwh.shape[:-1], -1, factor).sum(axis=-1)
    raise InputError(f"{what}: {source_minutes}-minute data cannot be resampled to {target_minutes}-minute intervals "
                     "(one must divide the other); set market.interval_minutes accordingly")


def write_imported(imported: Imported, out: Path, interval_minutes: int, data_format: str = "csv") -> list[Path]:
    """Writes the dataset, the community file and a config naming them into `out`;
    returns the files written. Refuses to overwrite any of them."""
    out.mkdir(parents=True, exist_ok=True)
    data = out / f"data.{data_format}"
    files = [data, out / "community.csv", out / "community.toml"]
    if imported.jobs:
        files += [out / "jobs.csv", out / "loads"]
    taken = [p for p in files if p.exists()]
    if taken:
        raise InputError(f"{taken[0]} exists already; import into a new or empty directory (--out)")
    save_dataset(imported.community, data)
    save_assets(imported.community.homes, out / "community.csv")
    start = imported.community.timestamps[0].isoformat()
    config = (
        "# Written by `gridledger import`: the market's epoch is the data's first interval. Every other\n"
        "# setting takes its default (examples/community.toml documents them all); add them here.\n"
        f"[market]\nstart = {start}\ninterval_minutes = {interval_minutes}\n\n"
        f'[tariffs]\ntimezone = "{imported.timezone}"\n\n'
        '[community]\nassets_file = "community.csv"\n'
    )
    (out / "community.toml").write_text(config)
    if imported.jobs:
        (out / "jobs.csv").write_text("\n".join(imported.jobs) + "\n")
        (out / "loads").mkdir()
        for name, source in sorted(imported.profiles.items()):
            shutil.copyfile(source, out / "loads" / name)
    return files


def day_grid(first: pd.Timestamp, days: int, minutes: int) -> pd.DatetimeIndex:
    return pd.date_range(first, periods=days * 24 * 60 // minutes, freq=pd.Timedelta(minutes=minutes))
