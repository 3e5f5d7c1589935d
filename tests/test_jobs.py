"""Deferrable jobs: the consumer-event file, signed windows in the book, greedy placement
within them, and PySSMic's local-PV KPI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from node.agents.schedule import local_pv_share, schedule_jobs, windows
from node.data.community import Community, Home
from node.data.config import default_config
from node.data.jobs import load_jobs
from node.errors import DataError, InputError
from node.intent.jobs import JobWindow, sign_job_window
from node.intent.orders import OrderBook
from node.intent.signing import Domain

T0 = int(pd.Timestamp("2026-06-01T00:00:00+00:00").timestamp())
HOUR = 3600


def _files(tmp_path: Path, lines: list[str]) -> Path:
    (tmp_path / "loads").mkdir(exist_ok=True)
    (tmp_path / "loads" / "run.csv").write_text("0 0\n1800 500\n3600 1000\n")  # 1 kWh over an hour
    path = tmp_path / "jobs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _community(hours: int = 12) -> Community:
    config = default_config()
    times = pd.date_range(config.market.start, periods=hours * 4, freq="15min")
    pv = np.zeros((2, len(times)))
    pv[0, 24:32] = 1.0  # home a has 1 kWh of surplus per quarter hour from 06:00 to 08:00
    return Community((Home("a", 0, 4.0, False), Home("b", 0, 0.0, False)), times, np.full((2, len(times)), 0.1), pv)


@pytest.mark.parametrize(
    "line, field, fragment",
    [
        (f"{T0};{T0};{T0}", None, "has 3 fields"),
        (f"{T0};{T0 + 10};{T0};[a]:[w]:[1];run.csv", "latest_start", "before the earliest start"),
        (f"{T0};{T0};{T0};[zz]:[w]:[1];run.csv", "device", "house 'zz' is not a participant"),
        (f"{T0};{T0};{T0};a:w;run.csv", "device", "is not house:device:id"),
        (f"{T0};soon;{T0};a:w:1;run.csv", "earliest", "'soon' is not a unix time"),
        (f"{T0};{T0};{T0};a:w:1;gone.csv", "profile", "load profile 'gone.csv' not found"),
    ],
)
def test_a_bad_jobs_line_is_refused_naming_line_and_field(tmp_path, line, field, fragment):
    with pytest.raises(DataError) as error:
        load_jobs(_files(tmp_path, [f"{T0};{T0};{T0 + HOUR};a:w:0;run.csv", line]), ["a", "b"])
    assert (error.value.row, error.value.column) == (2, field)
    assert fragment in str(error.value)


def test_a_load_profile_spreads_its_energy_over_the_intervals_it_runs_in(tmp_path):
    (job,) = load_jobs(_files(tmp_path, [f"{T0};{T0};{T0};[a]:[w]:[1];run.csv"]), ["a"])
    starts = T0 + 900 * np.arange(8)
    used = job.profile.per_interval(T0 + 450, starts, 900)
    np.testing.assert_allclose(used, [125, 250, 250, 250, 125, 0, 0, 0])
    assert job.energy_wh == 1000 and job.participant == "a" and job.device == "w:1"


def test_the_book_keeps_only_windows_signed_by_the_participants_owner(tmp_path):
    owner, stranger = Account.create(), Account.create()
    domain = Domain(1, "0x" + "22" * 20)
    with OrderBook(tmp_path / "book.sqlite", domain, lambda pid: owner.address if pid == 1 else None) as book:
        window = JobWindow(1, 7, T0, T0 + HOUR, 1000, 1)
        with pytest.raises(InputError, match="is signed by"):
            book.submit_job_window(sign_job_window(stranger, domain, window), now=T0)
        book.submit_job_window(sign_job_window(owner, domain, window), now=T0)
        with pytest.raises(InputError, match="already used job window nonce 1"):
            book.submit_job_window(sign_job_window(owner, domain, window), now=T0)
        assert book.job_windows()[(1, 7)].job_window == window


def _signed(job, low, high, energy=None):
    window = JobWindow(1, job.job_id, low, high, job.energy_wh if energy is None else energy, 1)
    return {(1, job.job_id): sign_job_window(Account.create(), Domain(1, "0x" + "22" * 20), window)}


def test_a_job_moves_only_within_a_signed_window_for_its_own_energy(tmp_path):
    (job,) = load_jobs(_files(tmp_path, [f"{T0};{T0};{T0 + 10 * HOUR};[a]:[w]:[1];run.csv"]), ["a"])
    ids = {"a": 1}
    assert windows([job], {}, ids)[job.key][0] == (T0, T0)
    assert windows([job], _signed(job, T0 + HOUR, T0 + 3 * HOUR), ids)[job.key] == ((T0 + HOUR, T0 + 3 * HOUR), "signed window")
    assert windows([job], _signed(job, T0, T0 + HOUR, energy=5000), ids)[job.key][0] == (T0, T0)
    assert windows([job], _signed(job, T0 + 11 * HOUR, T0 + 12 * HOUR), ids)[job.key][0] == (T0, T0)


def test_greedy_placement_runs_a_job_on_its_own_surplus_and_raises_the_local_pv_share(tmp_path):
    (job,) = load_jobs(_files(tmp_path, [f"{T0};{T0};{T0 + 10 * HOUR};[a]:[w]:[1];run.csv"]), ["a", "b"])
    community, config = _community(), default_config()
    allowed = windows([job], _signed(job, T0, T0 + 10 * HOUR), {"a": 1, "b": 2})
    earliest = schedule_jobs(community, [job], allowed, config, greedy=False)
    greedy = schedule_jobs(community, [job], allowed, config, greedy=True)
    assert earliest.placements[0].start == T0
    assert T0 + 6 * HOUR <= greedy.placements[0].start <= T0 + 7 * HOUR
    assert greedy.energy_kwh.sum() == pytest.approx(1.0)
    assert local_pv_share(community, greedy) == pytest.approx(1.0)
    assert local_pv_share(community, earliest) == 0.0


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 40), st.integers(0, 40))
def test_a_placed_job_never_starts_outside_its_window(a, b):
    import tempfile

    low, high = T0 + 900 * min(a, b), T0 + 900 * max(a, b)
    with tempfile.TemporaryDirectory() as folder:
        (job,) = load_jobs(_files(Path(folder), [f"{T0};{low};{high};[a]:[w]:[1];run.csv"]), ["a", "b"])
    allowed = windows([job], _signed(job, T0, T0 + 12 * HOUR), {"a": 1, "b": 2})
    placed = schedule_jobs(_community(), [job], allowed, default_config(), greedy=True).placements[0]
    assert low <= placed.start <= high
