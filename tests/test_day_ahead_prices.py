"""Dynamic tariffs settled on chain: a replay of a prices file posts each interval's prices
a day ahead as the grid operator, on an embedded chain that starts before the data, and
every entry settles at them; nobody can post them late, and a chain that cannot be early
is refused rather than settled at other prices."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from node.chain.connection import Chain
from node.chain.market import Deployment, Market
from node.cli.main import main
from node.data.config import load_config
from node.errors import ChainError
from node.index.store import Index
from tests.helpers import write_config, write_csv

HOMES, STEPS = 3, 30  # thirty hours: more than one posting
FILE_HOURS = 48
START = pd.Timestamp("2026-06-01T00:00:00+00:00")
CONFIG = """
[market]
interval_minutes = 60
horizon_steps = 4
[tariffs]
prices_file = "prices.csv"
grid_fee_per_kwh = 0.2
sell_fee_per_kwh = 0.01
"""


def meter_rows(steps: int) -> list[str]:
    rows = []
    for step in range(steps):
        stamp = (START + pd.Timedelta(hours=step)).isoformat()
        for home in range(1, HOMES + 1):
            rows.append(f"{stamp},h{home},{0.1 + 0.05 * ((home + step) % 4):.2f},{0.3 * (home % 2) * (step % 3):.2f}")
    return rows


def write_prices(directory: Path) -> None:
    hours = pd.date_range(START, periods=FILE_HOURS, freq="1h")
    write_csv(directory, [f"{t.isoformat()},{0.05 + 0.01 * (h % 7):.2f}" for h, t in enumerate(hours)],
              header="timestamp,day_ahead_per_kwh", name="prices.csv")


def simulate(state: Path, config: Path, data: Path) -> int:
    return main(["-q", "simulate", "--config", str(config), "--data", str(data), "--state", str(state), "--no-progress"])


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    """Settled in two runs: half the data, then all of it (the resumed run posts on)."""
    root = tmp_path_factory.mktemp("day-ahead")
    write_prices(root)
    config = write_config(root, CONFIG)
    half = write_csv(root, meter_rows(STEPS // 2), name="half.csv")
    data = write_csv(root, meter_rows(STEPS), name="meters.csv")
    state = root / "state"
    assert simulate(state, config, half) == 0
    assert simulate(state, config, data) == 0
    return state, load_config(config)


def market_of(state: Path) -> tuple[Chain, Market]:
    chain = Chain.embedded(state)
    return chain, Market(chain, Deployment.load(state / "deployment.json"))


def test_every_interval_settles_at_the_prices_the_file_gives_it(settled):
    state, config = settled
    intervals = Index(state / "index.sqlite").intervals()
    assert len(intervals) == STEPS
    times = [pd.Timestamp(i["start"]) for i in intervals]
    assert [i["buy_price"] for i in intervals] == [round(p * 1e6) for p in config.tariffs.buy_price(times)]
    assert [i["sell_price"] for i in intervals] == [round(p * 1e6) for p in config.tariffs.sell_price(times)]
    assert len({i["buy_price"] for i in intervals}) == 7  # the file's seven hourly prices, not time of use
    assert main(["-q", "audit", "--state", str(state), "--no-progress"]) == 0


def test_each_price_was_posted_once_and_at_least_the_notice_period_ahead(settled):
    state, _ = settled
    chain, market = market_of(state)
    with chain:
        clock = market.clock()
        posted = [e for e in market.events() if e.name == "IntervalPricesSet"]
        # Every interval the file prices, beyond the data too (a later run may bring more).
        assert sorted(e.args["interval"] for e in posted) == list(range(FILE_HOURS))
        for e in posted:
            mined_at = chain.w3.eth.get_block(e.block)["timestamp"]
            assert clock.start(e.args["interval"]) - mined_at >= clock.notice_s


def test_nobody_can_post_a_price_inside_the_notice_period(settled):
    state, _ = settled
    chain, market = market_of(state)
    with chain:
        soon = market.next_interval()  # starts when the data ends: where the chain's clock is
        with pytest.raises(ChainError, match="NoticeTooShort"):
            market.set_interval_prices(soon, 1, 0)


def test_the_chain_keeps_its_clock_behind_this_machine_when_reopened(settled):
    state, _ = settled
    chain, market = market_of(state)
    with chain:
        assert chain.clock_lag > 150 * 86_400  # started a day before June's data
        head = chain.w3.eth.get_block("latest")["timestamp"]
        assert head < (START + pd.Timedelta(days=2)).timestamp()


def test_a_state_whose_chain_started_now_is_refused_before_it_settles_at_other_prices(tmp_path, capsys):
    write_prices(tmp_path)
    data = write_csv(tmp_path, meter_rows(8))
    flat = write_config(tmp_path, "[market]\ninterval_minutes = 60\nhorizon_steps = 4\n")
    state = tmp_path / "state"
    assert main(["-q", "simulate", "--config", str(flat), "--data", str(write_csv(tmp_path, meter_rows(4), name="four.csv")),
                 "--state", str(state), "--no-progress"]) == 0
    dynamic = write_config(tmp_path, CONFIG)
    assert simulate(state, dynamic, data) == 2
    err = capsys.readouterr().err
    assert "interval 4" in err and "can no longer be posted" in err and "--fresh" in err
    chain, market = market_of(state)
    with chain:
        assert market.next_interval() == 4
        assert not [e for e in market.events() if e.name == "IntervalPricesSet"]
