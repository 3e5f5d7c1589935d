"""The auditor needs no archive node: it reads events, transactions and the committed
inputs, never contract state at an old block. Proved on anvil restarted from its state
file, which keeps every block, transaction and log but no state of old blocks."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account import Account

from node.audit.history import CapacityHistory, MeterKeys, Owners
from node.audit.verify import IndexInputs, audit, report
from node.chain.anvil import start_anvil
from node.chain.connection import Chain
from node.chain.events import Event
from node.chain.market import Deployment, Market
from node.data.community import Community
from node.data.config import default_config
from node.data.synthetic import generate_community
from node.index.store import Index
from node.oracle.daemon import Oracle
from node.oracle.inputs_builder import InputsBuilder
from node.simulation.meters import SimulatedMeters
from node.simulation.setup import deploy_community, home_accounts
from tests.helpers import settle_shifted_p2p

STEPS = 5


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    """Five midday intervals of six homes settled on anvil, the last by a rogue oracle
    (it passes the contract, not the clearing); then the grid operator lowers the default
    capacity below every settled flow and a home sets a new meter key, both of which a
    read of today's state would misapply to the past; then anvil restarts from its state
    file. Yields the restarted node's URL, the state directory and the rogue interval."""
    tmp = tmp_path_factory.mktemp("pruned")
    config = default_config()
    config = replace(config, community=replace(config.community, homes=6, seed=3),
                     market=replace(config.market, horizon_steps=STEPS))
    full = generate_community(config)
    window = slice(48, 48 + STEPS)  # midday: P2P trade to tamper with
    community = Community(full.homes, full.timestamps[window], full.consumption_kwh[:, window],
                          full.production_kwh[:, window])
    state_file = tmp / "anvil-state.json"
    anvil = start_anvil(state_file, port=0)
    try:
        chain = Chain.connect(anvil.url)
        index = Index(tmp / "index.sqlite")
        market, ids = deploy_community(chain, community, config, index)
        market.deployment.save(tmp / "deployment.json")
        builder = InputsBuilder(community, config, ids)
        meters = SimulatedMeters.of(market, community, config, ids)
        oracle = Oracle(market, index, builder, meters=meters)
        rogue = builder.intervals.stop - 1
        oracle.run(until=rogue, progress=False)
        settle_shifted_p2p(market, index, oracle, builder, rogue)

        ops = chain.operators
        chain.transact(market.market.functions.setDefaultCapacity(1, 1), ops.grid_operator, 100_000)
        owner = home_accounts(community, config)[0]
        chain.fund(owner.address, 10**18)
        new_meter = Account.create()
        chain.transact(market.market.functions.setMeterKey(int(ids[0]), new_meter.address), owner, 200_000)
        assert market.capacity(builder.first_interval) == (1, 1)
        old_block = chain.w3.eth.block_number - 10
        market.market.functions.capacityOf(builder.first_interval).call(block_identifier=old_block)  # archive: fine
        index.close()
    finally:
        anvil.stop()  # SIGTERM: anvil writes its state file
    anvil = start_anvil(state_file, port=anvil.port)
    try:
        yield anvil.url, tmp, builder.first_interval, rogue, old_block
    finally:
        anvil.stop()


def test_the_audit_runs_on_a_restarted_node_that_has_no_old_state(restarted):
    url, tmp, first, rogue, old_block = restarted
    chain = Chain.connect(url)
    market = Market(chain, Deployment.load(tmp / "deployment.json"))
    # The restarted node answers for its head, not for old blocks: a vacuous pass is ruled out.
    assert market.capacity(first) == (1, 1)
    with pytest.raises(Exception, match="BlockOutOfRange"):
        market.market.functions.capacityOf(first).call(block_identifier=old_block)

    index = Index(tmp / "index.sqlite")
    verdicts = audit(market, IndexInputs(index), progress=False)
    index.close()
    assert [v.interval for v in verdicts] == list(range(first, rogue + 1))
    assert all(v.ok for v in verdicts[:-1]), report(verdicts)
    assert not verdicts[-1].ok
    assert "differ from the re-run" in " ".join(verdicts[-1].reasons)


def _event(name: str, block: int, **args) -> Event:
    return Event(name, args, block, "0x", 0)


def test_capacity_is_what_held_where_the_contract_checked_it():
    # Block b at time 100 b; the market deployed at block 1; every interval starts at 1000
    # here, after every event, except where a start is given.
    history = CapacityHistory(block_time=lambda block: 100 * block, deployed_at=100)
    history.add(_event("DefaultCapacitySet", 1, importWh=1000, exportWh=500))
    history.add(_event("CapacitySet", 5, interval=7, importWh=200, exportWh=2**64 - 1))
    history.add(_event("DefaultCapacitySet", 9, importWh=1, exportWh=1))
    assert history.at(3, (4, 0), 1000) == (1000, 500)
    assert history.at(7, (4, 0), 1000) == (1000, 500)  # its own capacity came later
    assert history.at(7, (6, 0), 1000) == (200, 2**48 - 1)  # beyond 2^48 - 1: no limit, as stored
    assert history.at(8, (9, 0), 1000) == (1000, 500)  # the same block, an earlier log
    assert history.at(8, (10, 0), 1000) == (1, 1)
    # An interval that started (at 850) before the default changed (at 900) keeps the one
    # before, as the contract does; history (started before the deployment) takes the latest.
    assert history.at(8, (10, 0), 850) == (1000, 500)
    assert history.at(8, (10, 0), 900) == (1, 1)
    assert history.at(8, (10, 0), 50) == (1, 1)
    assert history.set_points(8, (10, 0), 850) == {None: (1, 0)}


def test_a_new_meter_key_signs_only_later_intervals_and_one_not_yet_in_force_is_replaced():
    keys = MeterKeys()
    keys.add(_event("MeterKeySet", 1, participant=1, meter="0xA", fromInterval=0))
    keys.add(_event("MeterKeySet", 5, participant=1, meter="0xB", fromInterval=10))
    keys.add(_event("MeterKeySet", 6, participant=1, meter="0xC", fromInterval=10))
    assert [keys.of(1, k) for k in (0, 9, 10, 50)] == ["0xA", "0xA", "0xC", "0xC"]
    assert keys.of(2, 0) == "0x" + "00" * 20


def test_an_order_is_checked_against_the_owner_at_its_settlement():
    owners = Owners()
    owners.add(_event("ParticipantRegistered", 1, participant=3, owner="0xOld"))
    owners.add(_event("OwnerRotated", 8, participant=3, previousOwner="0xOld", newOwner="0xNew"))
    assert owners.at(3, (5, 0)) == "0xOld"
    assert owners.at(3, (9, 0)) == "0xNew"
    assert owners.at(4, (9, 0)) is None
    assert owners.current == {3: "0xNew"}


def test_a_dispute_is_tried_on_the_restarted_node_before_anything_is_sent(restarted, capsys):
    """`gridledger dispute --rpc` on the restarted (pruned) node: the interval's chunks from
    its logs, the dry run on its head. An honest interval's reading agrees with its
    settlement, so the chain would refuse the dispute, and says why."""
    from node.cli.main import main

    url, tmp, _, rogue, _ = restarted
    honest = rogue - 1
    index = Index(tmp / "index.sqlite")
    pid = index.readings(honest)[0].reading.participant
    index.close()
    code = main(["-q", "dispute", str(honest), "--participant", str(pid), "--rpc", url, "--state", str(tmp), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 1 and f"interval {honest}, participant {pid}: the meter signed" in out
    assert f"the chain would refuse it: NoContradiction(participant={pid}" in out
