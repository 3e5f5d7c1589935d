"""A grid limit has to be known before its interval runs. The contract takes a capacity
for any interval not yet settled (it needs no notice), so a grid operator could tighten
the limit of an interval whose flows are already metered and make it bind after the
fact (on a network, collecting the congestion rent). The auditor reports every limit an
interval was checked against that was set after the interval started; intervals that
started before the market was deployed are history a replay posts limits for later."""

from __future__ import annotations

import pytest

from node.audit.verify import IndexInputs, audit
from node.chain.connection import Chain
from tests.test_zonal_chain import BIG, TWO_ZONES, indexed, interval_inputs, settle_and_index, two_zone_network, zonal_market


@pytest.mark.parametrize("late", [False, True], ids=["set-in-time", "set-after-start"])
def test_a_grid_limit_set_after_its_interval_started_fails_the_audit(tmp_path, late):
    chain = Chain.embedded()
    market = zonal_market(chain, [0, 0, 1, 1], epoch_ago=-900)  # interval 0 starts after deployment
    index = indexed(market, tmp_path / "index.sqlite")
    start = market.clock().start(0)

    def set_limits():
        market.set_zone_capacity(1, BIG - 1, BIG - 1, interval=0)
        market._send(market.market.functions.setCapacity(0, BIG - 1, BIG - 1), chain.operators.grid_operator, 80_000)

    if not late:
        set_limits()
    chain.advance_time(market.clock().end(0) + 1)
    if late:
        set_limits()  # the interval is over and metered; not yet settled, so the contract takes them
    settle_and_index(market, index, interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000)))
    (verdict,) = audit(market, IndexInputs(index), progress=False)
    late_reasons = [r for r in verdict.reasons if "after the interval started" in r]
    if not late:
        assert verdict.ok, verdict.reasons
        return
    assert verdict.reasons == late_reasons and len(late_reasons) == 2
    assert late_reasons[0].startswith("the community's grid limit in force was set in block ")
    assert late_reasons[1].startswith("zone 1's grid limit in force was set in block ")
    assert all(r.endswith(f"after the interval started at {start}") for r in late_reasons)


def test_limits_of_history_posted_after_deployment_pass(two_zone_history):
    """A replay deploys with interval 0 a day in the past and posts its limits then."""
    market, index = two_zone_history
    market.set_zone_capacity(1, BIG - 1, BIG - 1, interval=0)
    settle_and_index(market, index, interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000)))
    (verdict,) = audit(market, IndexInputs(index), progress=False)
    assert verdict.ok, verdict.reasons


@pytest.fixture
def two_zone_history(tmp_path):
    market = zonal_market(Chain.embedded(), [0, 0, 1, 1])
    return market, indexed(market, tmp_path / "index.sqlite")
