"""A grid limit is known before its interval runs. Capacities need no notice, so a grid
operator able to set one for an interval whose flows are already metered could make it
bind after the fact (on a network, collecting the congestion rent) or leave the interval
unsettleable. The contract refuses an interval's own limit once the interval started,
and a default changed meanwhile does not reach back into intervals that started before
(DefaultCapacityWord); intervals that started before the market was deployed are history,
whose limits a replay posts afterwards. The auditor mirrors it and checks it."""

from __future__ import annotations

import pytest

from node.audit.trust import late_limit_reasons
from node.audit.verify import IndexInputs, audit
from node.chain.connection import Chain
from node.chain.trust import Clock
from node.errors import ChainError
from tests.test_zonal_chain import BIG, TWO_ZONES, indexed, interval_inputs, settle_and_index, two_zone_network, zonal_market


@pytest.fixture
def live(tmp_path):
    """A zonal market whose interval 0 starts after its deployment, and its index."""
    market = zonal_market(Chain.embedded(), [0, 0, 1, 1], epoch_ago=-900)
    return market, indexed(market, tmp_path / "index.sqlite")


def _set_community_capacity(market, interval: int, wh: int):
    call = market.market.functions.setCapacity(interval, wh, wh)
    return market._send(call, market.chain.operators.grid_operator, 80_000)


def test_an_intervals_own_limit_is_refused_once_it_started(live):
    market, _ = live
    clock = market.clock()
    market.set_zone_capacity(1, BIG - 1, BIG - 1, interval=0)  # before it starts: fine
    _set_community_capacity(market, 0, BIG - 1)
    market.chain.advance_time(clock.end(0) + 1)  # the interval ran and is metered, not settled
    with pytest.raises(ChainError, match="CapacityAfterStart"):
        market.set_zone_capacity(1, 10, 10, interval=0)
    with pytest.raises(ChainError, match="CapacityAfterStart"):
        _set_community_capacity(market, 0, 10)
    assert market.zone_capacity(0, 1) == (BIG - 1, BIG - 1) and market.capacity(0) == (BIG - 1, BIG - 1)
    market.set_zone_capacity(1, 10, 10, interval=2)  # one that has not started: still open


def test_a_default_changed_after_an_interval_started_does_not_reach_it(live):
    market, index = live
    clock = market.clock()
    market.chain.advance_time(clock.end(0) + 1)  # interval 0 ran and is metered; 1 runs
    # A zone default tight enough to make interval 0 unsettleable (zone 1 imports 2 kWh)...
    market.set_zone_capacity(1, 10, 10)
    no_limit = (2**48 - 1, 2**48 - 1)
    assert market.zone_capacity(0, 1) == market.zone_capacity(1, 1) == no_limit  # ...keeps out of both
    assert market.zone_capacity(2, 1) == (10, 10)  # and holds from the next one on
    # A second change would drop the default intervals 0 and 1 run under: settle them first.
    with pytest.raises(ChainError, match="DefaultCapacityInUse"):
        market.set_zone_capacity(1, 20, 20)
    settle_and_index(market, index, interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000)))
    (verdict,) = audit(market, IndexInputs(index), progress=False)
    assert verdict.ok, verdict.reasons


def test_limits_of_history_are_posted_after_deployment_and_audit_clean(tmp_path):
    """A replay deploys with interval 0 a day in the past and posts its limits then."""
    market = zonal_market(Chain.embedded(), [0, 0, 1, 1])
    index = indexed(market, tmp_path / "index.sqlite")
    market.set_zone_capacity(1, BIG - 1, BIG - 1, interval=0)
    _set_community_capacity(market, 0, BIG - 1)
    market.set_zone_capacity(1, BIG - 2, BIG - 2)
    market.set_zone_capacity(1, BIG - 3, BIG - 3)  # history takes the latest default
    assert market.zone_capacity(1, 1) == (BIG - 3, BIG - 3)
    settle_and_index(market, index, interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000)))
    (verdict,) = audit(market, IndexInputs(index), progress=False)
    assert verdict.ok, verdict.reasons


def test_the_audit_names_every_limit_set_after_its_interval_started():
    clock = Clock(epoch=10_000, interval_s=900, dispute_window=3_600, notice_s=0, deployed_at=5_000)
    block_time = {1: 9_000, 2: 10_000, 3: 10_001}.get
    assert late_limit_reasons(clock, 0, {None: (1, 0), 4: (2, 0)}, block_time) == []  # set by the start
    assert late_limit_reasons(clock, 0, {None: (1, 0), 4: (3, 7)}, block_time) == [
        "zone 4's grid limit in force was set in block 3 at 10001, after the interval started at 10000"]
    history = Clock(epoch=0, interval_s=900, dispute_window=3_600, notice_s=0, deployed_at=5_000)
    assert late_limit_reasons(history, 0, {None: (3, 0)}, block_time) == []  # started before the deployment


def test_the_oracle_reads_each_intervals_default_as_the_contract_does(live):
    from node.oracle.terms import ChainTerms

    market, _ = live
    market.chain.advance_time(market.clock().end(0) + 1)
    call = market.market.functions.setDefaultCapacity(5_000, 4_000)
    market._send(call, market.chain.operators.grid_operator, 80_000)
    terms = ChainTerms(market)
    terms.refresh()
    snapshot = terms.snapshot(0)
    assert [snapshot.capacity_of(k) for k in range(4)] == [market.capacity(k) for k in range(4)]
    assert snapshot.capacity_of(1) == (BIG, BIG) and snapshot.capacity_of(2) == (5_000, 4_000)
