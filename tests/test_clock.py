"""Clock safety: the oracle settles no interval that has not ended by its clock and
the chain's, stops (not INFO) when time makes every mandate lapse at once, and a clock
that jumped ahead leaves the chain as usable as it was."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from node.chain.connection import Chain
from node.chain.market import Deployment, Market
from node.cli.main import main
from node.intent.signing import Mandate
from tests.helpers import SMALL_CONFIG, meter_rows, start_gridledger, write_config, write_csv

HOMES, FIRST, MORE = 3, 4, 4


def mandate(participant: int, valid_until: int) -> Mandate:
    return Mandate(participant, 300_000, 60_000, 0, 1_000_000, valid_until, 1)


def test_every_mandate_lapsing_at_once_stops_the_oracle_before_anything_is_sent():
    from node.errors import ClockError
    from node.oracle.guards import LapseWatch

    watch = LapseWatch()
    in_force = [mandate(1, 1_000), mandate(2, 2_000)]
    with pytest.raises(ClockError, match=r"every mandate in force on chain \(2\) has lapsed by this machine's clock"):
        watch.check(in_force, [], now=5_000, margin_s=300)


def test_a_single_lapsed_mandate_is_named_in_a_warning_once(caplog):
    from node.errors import ClockError
    from node.oracle.guards import LapseWatch

    watch = LapseWatch()
    in_force = [mandate(1, 1_000), mandate(2, 10**9)]
    with caplog.at_level(logging.WARNING, logger="gridledger.oracle"):
        watch.check(in_force, in_force[1:], now=5_000, margin_s=300)
        watch.check(in_force, in_force[1:], now=6_000, margin_s=300)
    lapsed = [r for r in caplog.records if "participant 1's mandate 1 lapsed" in r.getMessage()]
    assert len(lapsed) == 1 and lapsed[0].levelno == logging.WARNING


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    return (write_csv(folder, meter_rows(HOMES, FIRST), name="first.csv"),
            write_csv(folder, meter_rows(HOMES, FIRST + MORE), name="both.csv"), write_config(folder, SMALL_CONFIG))


def simulate(state: Path, data: Path, config: Path) -> int:
    return main(["-q", "simulate", "--data", str(data), "--config", str(config), "--state", str(state), "--no-progress"])


def next_interval(state: Path) -> int:
    with Chain.embedded(state) as chain:
        return Market(chain, Deployment.load(state / "deployment.json")).next_interval()


def test_an_interval_that_has_not_ended_is_not_settled(tmp_path, capsys):
    """Data reaching two hours into the future: what has ended settles, then the oracle stops."""
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    rows = [f"{start + timedelta(minutes=15 * k):%Y-%m-%dT%H:%M:%S+00:00},h{h},0.2,{0.1 * (h % 2):.1f}"
            for k in range(12) for h in range(1, HOMES + 1)]
    data = write_csv(tmp_path, rows)
    config = write_config(tmp_path, SMALL_CONFIG + f'start = "{start:%Y-%m-%dT%H:%M:%S+00:00}"\n')
    state = tmp_path / "state"
    assert simulate(state, data, config) == 2
    err = capsys.readouterr().err
    assert "in the future by this machine's clock" in err and err.count("\n") == 1
    ended = (datetime.now(timezone.utc) - start) // timedelta(minutes=15)
    assert 4 <= next_interval(state) <= ended < 12


FAKETIME = shutil.which("faketime")


@pytest.mark.skipif(FAKETIME is None, reason="needs Debian's faketime (apt-get install faketime; .ci/run installs it)")
def test_a_clock_jump_of_eleven_years_settles_nothing_and_leaves_the_chain_usable(tmp_path, files):
    first, both, config = files
    state = tmp_path / "state"
    assert simulate(state, first, config) == 0
    journal = (state / "chain.journal").read_bytes()

    jumped = start_gridledger("-q", "simulate", "--data", str(both), "--config", str(config), "--state", str(state),
                              "--no-progress", env=os.environ | {"FAKETIME_DONT_FAKE_MONOTONIC": "1"},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              executable_prefix=[FAKETIME, "-f", "+4100d"])
    out, err = jumped.communicate(timeout=300)
    assert jumped.returncode == 2, err
    assert "has lapsed by this machine's clock" in err and "Nothing was settled" in err
    assert (state / "chain.journal").read_bytes() == journal  # no block from 2037

    assert simulate(state, both, config) == 0
    assert next_interval(state) == FIRST + MORE
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 0
