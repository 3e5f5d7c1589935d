"""Issue 11 item 3 end to end: a community on a network cleared at one price per zone,
settled on the embedded chain with the contract checking the zone prices and the zones'
capacities, indexed, and audited (zone prices, each entry's price, the congestion rent,
every line's flow against its committed limit); and the attacks on it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from node.audit.verify import IndexInputs, audit, report
from node.chain.connection import Chain
from node.chain.deploy import MarketSetup
from node.chain.market import DEFAULT_EPOCH_AGO, DEFAULT_TARIFFS, Market
from node.clearing.inputs import IntervalInputs
from node.clearing.interval import run_clearing, settlement_for
from node.clearing.network_inputs import NetworkInputs
from node.clearing.pricing import priced_settlement
from node.clearing.zonal import network_reasons
from node.errors import ChainError, InputError, SettlementError
from node.index.rebuild import check_index
from node.index.store import Index
from node.intent.signing import Reading, sign_reading
from tests.conftest import BUY, SELL, home_key, meter_key, standing_mandate

STEPS = 2
BIG = 100_000  # Wh: no limit in practice
P2P_COST = 10_000  # units per kWh the optimiser charges P2P trades (friction)


def zonal_market(chain: Chain, zones: list[int], epoch_ago: int = DEFAULT_EPOCH_AGO) -> Market:
    """A market at BUY/SELL with homes 1..n registered in `zones` (their network zone
    indices), funded, with standing mandates at the tariffs; its interval 0 starts at
    the quarter hour `epoch_ago` seconds before the current one's start."""
    now = chain.w3.eth.get_block("latest")["timestamp"]
    epoch = now - now % 900 - epoch_ago
    market = Market.deploy(chain, BIG, BIG, setup=MarketSetup(BIG, BIG, epoch, DEFAULT_TARIFFS))
    ids = range(1, len(zones) + 1)
    market.register([home_key(p).address for p in ids], list(zones), [f"home-{p}" for p in ids],
                    [meter_key(p).address for p in ids])
    market.fund_wallets({p: 10_000_000 for p in range(0, len(zones) + 1)})
    market.deposit_bond(market.bond()[1])
    market.submit_mandates([standing_mandate(market, p) for p in ids])
    return market


def network(zone_of: list[int], names: list[str], lines: list[tuple[int, int, int]], grid: list[tuple[int, int]]
            ) -> NetworkInputs:
    """Committed network: `lines` (from, to, limit Wh both ways), `grid` (import, export Wh) per zone."""
    return NetworkInputs(
        zones=names, participant_zone=zone_of,
        line_from=[a for a, _, _ in lines], line_to=[b for _, b, _ in lines],
        susceptance_ppm=[1_000_000] * len(lines),
        line_forward_wh=[[w] * STEPS for *_, w in lines], line_back_wh=[[w] * STEPS for *_, w in lines],
        grid_import_wh=[[i] * STEPS for i, _ in grid], grid_export_wh=[[e] * STEPS for _, e in grid],
    )


def interval_inputs(market: Market, load_wh: list[int], pv_wh: list[int], net: NetworkInputs) -> IntervalInputs:
    k = market.next_interval()
    terms = market.terms_at(k)
    start = np.datetime_as_string(np.datetime64(market.clock().start(k), "s")) + "+00:00"
    return IntervalInputs(
        interval=k, start=start, participants=list(range(1, len(load_wh) + 1)),
        load_wh=[[w] * STEPS for w in load_wh], pv_wh=[[w] * STEPS for w in pv_wh],
        buy_price=[terms.import_price] * STEPS, sell_price=[terms.export_price] * STEPS,
        import_capacity_wh=[BIG] * STEPS, export_capacity_wh=[BIG] * STEPS, p2p_cost=P2P_COST, batteries=[],
        terms_index=terms.index, p2p_fee=terms.p2p_fee, network=net,
    )


def indexed(market: Market, path) -> Index:
    """An index of everything the market did so far (registrations, deposits, ...)."""
    index = Index(path)
    index.apply(market.events(), up_to_block=market.chain.w3.eth.block_number)
    return index


def settle_and_index(market: Market, index: Index, inputs: IntervalInputs):
    """The oracle's step: clear, store the inputs and the meters' readings, settle, index."""
    settlement = settlement_for(inputs, run_clearing(inputs))
    index.store_inputs(inputs)
    index.store_readings(
        sign_reading(meter_key(int(p)), market.domain(), Reading(int(p), inputs.interval, max(int(n), 0), max(-int(n), 0)))
        for p, n in zip(settlement.participants, settlement.grid_wh + settlement.p2p_wh)
    )
    receipt = market.settle(settlement)
    index.apply(receipt.events, receipt.gas_by_tx, up_to_block=receipt.block)
    return settlement, receipt


# Zone 0 (substation, grid) has a 3 kWh PV home and a 0.5 kWh load; zone 1 (feeder, its
# own transformer) two homes needing 3 kWh behind one line.
TWO_ZONES = dict(load_wh=[0, 500, 2_000, 1_000], pv_wh=[3_000, 0, 0, 0])


def two_zone_network(line_wh: int) -> NetworkInputs:
    return network([0, 0, 1, 1], ["substation", "feeder"], [(0, 1, line_wh)], [(BIG, BIG), (BIG, BIG)])


@pytest.fixture
def two_zone(tmp_path):
    chain = Chain.embedded()
    market = zonal_market(chain, [0, 0, 1, 1])
    return market, indexed(market, tmp_path / "index.sqlite")


def test_a_binding_line_prices_the_zones_apart_and_the_rent_goes_to_the_grid(two_zone):
    market, index = two_zone
    grid_before = market.balance(0)
    inputs = interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000))
    settlement, receipt = settle_and_index(market, index, inputs)
    (event,) = [e for e in receipt.events if e.name == "ZonePricesSettled"]
    low, high = event.args["zonePrices"]
    assert (low, high) == settlement.zone_prices and low < high
    # Zone 0 exports at the margin; zone 1's next kWh would come from its own grid,
    # which the optimiser prices against P2P energy at the tariff less the P2P friction.
    assert (low, high) == (SELL, BUY - P2P_COST)
    by_pid = dict(zip(settlement.participants.tolist(), zip(settlement.grid_wh.tolist(), settlement.p2p_wh.tolist())))
    # 1 kWh crosses the line, all of it P2P from zone 0's PV home to zone 1's homes.
    assert by_pid[1][1] == -1_500 and by_pid[3][1] + by_pid[4][1] == 1_000
    assert sum(p2p for _, p2p in by_pid.values()) == 0  # energy, to the Wh
    rent = event.args["congestionRentMilli"]
    assert rent == settlement.congestion_rent_milli == 1_000 * (high - low)
    # Money, to the unit: every wallet moved by its entry, the grid by its legs plus the rent.
    assert sum(market.balance(p) for p in range(5)) == 5 * 10_000_000
    legs = sum(g * (BUY if g > 0 else SELL) for g, _ in by_pid.values())
    assert (market.balance(0) - grid_before) * 1000 == pytest.approx(legs + rent, abs=1000 * 4)
    from node.oracle.daemon import describe_p2p_prices  # the oracle's log line

    assert describe_p2p_prices(settlement) == "zone prices 0.0600/0.2900/kWh (congestion rent 0.2300)"
    assert index.interval(inputs.interval)["zone_prices"] == [low, high]
    assert index.interval(inputs.interval)["congestion_rent_milli"] == rent
    assert not network_reasons(inputs.network, inputs.participants, {p: e for p, e in by_pid.items()})
    assert check_index(market, index) == []
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert verdicts and all(v.ok for v in verdicts), report(verdicts)


def test_prices_are_equal_in_every_zone_when_no_line_binds(two_zone):
    market, index = two_zone
    inputs = interval_inputs(market, **TWO_ZONES, net=two_zone_network(BIG))
    settlement, receipt = settle_and_index(market, index, inputs)
    (event,) = [e for e in receipt.events if e.name == "ZonePricesSettled"]
    low, high = event.args["zonePrices"]
    assert low == high and event.args["congestionRentMilli"] == 0
    assert all(v.ok for v in audit(market, IndexInputs(index), progress=False))


def test_a_radial_feeder_behind_a_binding_transformer_keeps_each_zone_within_its_capacity(tmp_path):
    """Zone 0 is the substation, the only grid connection, its transformer rated 2 kWh
    per interval in and out; the feeder (zone 1) hangs below it on a line. The grid
    operator puts the transformer's rating on chain as zone 0's capacity."""
    market = zonal_market(Chain.embedded(), [0, 0, 1, 1])
    net = network([0, 0, 1, 1], ["substation", "feeder"], [(0, 1, BIG)], [(2_000, 2_000), (0, 0)])
    market.set_zone_capacity(0, 2_000, 2_000)
    index = indexed(market, tmp_path / "index.sqlite")
    inputs = interval_inputs(market, load_wh=[500, 0, 2_000, 1_000], pv_wh=[0, 200, 0, 0], net=net)
    settlement, receipt = settle_and_index(market, index, inputs)
    imported = sum(int(g) for g in settlement.grid_wh if g > 0)
    assert 1_990 <= imported <= 2_000  # the transformer binds (3.3 kWh wanted)
    # The feeder's homes settle grid energy that entered at the substation and came over
    # the line: a capacity of 0 for the feeder, which has no connection, would refuse this
    # honest settlement, so the grid operator sets none there (CommunityNetwork).
    feeder = {int(p): int(g) for p, g in zip(settlement.participants, settlement.grid_wh) if p in (3, 4)}
    assert sum(feeder.values()) > 1_000
    low, high = settlement.zone_prices
    assert low == high == BUY - 0  # short of energy everywhere: the import tariff (no fee)
    assert all(v.ok for v in audit(market, IndexInputs(index), progress=False))
    # A rogue oracle key settles the next interval's zone 0 over the transformer.
    rogue_inputs = interval_inputs(market, load_wh=[2_100, 0, 0, 0], pv_wh=[0, 0, 0, 0], net=net)
    rogue = priced_settlement(rogue_inputs.interval, rogue_inputs.hash(), np.array([1]), np.array([2_100]),
                              np.array([0]), BUY, SELL, BUY, p2p_prices=np.array([BUY]), zone_prices=(BUY, BUY))
    with pytest.raises(SettlementError, match=r"ZoneImportCapacityExceeded\(interval=\d+, zone=0, importWh=2100, capacityWh=2000\)"):
        market.settle(rogue)


def test_a_rogue_oracle_settling_over_an_intervals_own_zone_limit_is_refused(tmp_path):
    """The zone's default is generous, but the grid operator posted a tighter limit for
    this one interval (a limits file row): the contract checks the interval's own."""
    market = zonal_market(Chain.embedded(), [0, 0, 1, 1])
    net = network([0, 0, 1, 1], ["substation", "feeder"], [(0, 1, BIG)], [(5_000, 5_000), (0, 0)])
    market.set_zone_capacity(0, 5_000, 5_000)
    k = market.next_interval()
    market.set_zone_capacity(0, 1_500, 1_500, interval=k)
    assert market.zone_capacity(k, 0) == (1_500, 1_500) and market.zone_capacity(k + 1, 0) == (5_000, 5_000)
    inputs = interval_inputs(market, load_wh=[1_800, 0, 0, 0], pv_wh=[0, 0, 0, 0], net=net)
    rogue = priced_settlement(k, inputs.hash(), np.array([1]), np.array([1_800]), np.array([0]), BUY, SELL, BUY,
                              p2p_prices=np.array([BUY]), zone_prices=(BUY, BUY))
    with pytest.raises(SettlementError, match=r"ZoneImportCapacityExceeded\(interval=\d+, zone=0, importWh=1800, capacityWh=1500\)"):
        market.settle(rogue)
    within = priced_settlement(k, inputs.hash(), np.array([1]), np.array([1_500]), np.array([0]), BUY, SELL, BUY,
                               p2p_prices=np.array([BUY]), zone_prices=(BUY, BUY))
    market.settle(within)
    # Once settled, the operator can no longer move the interval's limit.
    with pytest.raises(ChainError, match=r"CapacityForPastInterval\(interval=\d+, nextInterval=\d+\)"):
        market.set_zone_capacity(0, 0, 0, interval=k)


def test_a_rogue_oracle_pricing_an_entry_at_another_zones_price_is_refused(two_zone):
    market, _ = two_zone
    inputs = interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000))
    honest = settlement_for(inputs, run_clearing(inputs))
    # Home 3 (zone 1) charged zone 0's cheap price for its P2P energy.
    cheap = honest.p2p_prices.copy()
    cheap[2] = honest.zone_prices[0]
    rogue = priced_settlement(inputs.interval, inputs.hash(), honest.participants, honest.grid_wh, honest.p2p_wh,
                              BUY, SELL, honest.p2p_price, p2p_prices=cheap, zone_prices=honest.zone_prices)
    with pytest.raises(SettlementError, match=r"PaymentMismatch\(participant=3"):
        market.settle(rogue)
    assert market.next_interval() == inputs.interval  # nothing settled


def test_the_auditor_flags_tampered_zone_prices_and_an_overloaded_line(two_zone):
    market, index = two_zone
    inputs = interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000))
    honest = settlement_for(inputs, run_clearing(inputs))
    # The oracle settles one price for both zones, within everyone's limits: the contract
    # cannot tell, the auditor can.
    flat = priced_settlement(inputs.interval, inputs.hash(), honest.participants, honest.grid_wh, honest.p2p_wh,
                             BUY, SELL, SELL, p2p_prices=np.full(4, SELL), zone_prices=(SELL, SELL))
    index.store_inputs(inputs)
    index.store_readings(
        sign_reading(meter_key(int(p)), market.domain(), Reading(int(p), inputs.interval, max(int(n), 0), max(-int(n), 0)))
        for p, n in zip(flat.participants, flat.grid_wh + flat.p2p_wh)
    )
    receipt = market.settle(flat)
    index.apply(receipt.events, receipt.gas_by_tx, up_to_block=receipt.block)
    (verdict,) = audit(market, IndexInputs(index), progress=False)
    assert any("zone prices [60000, 60000] differ from the re-run's [60000, 290000]" in r for r in verdict.reasons)
    assert any("congestion rent 0 milli-units differs" in r for r in verdict.reasons)
    # Twice the line's energy moved P2P across it: the flow check says which line.
    entries = {int(p): (int(g), 2 * int(q)) for p, g, q in zip(honest.participants, honest.grid_wh, honest.p2p_wh)}
    (reason,) = network_reasons(inputs.network, inputs.participants, entries)
    assert reason == "line 0 (substation->feeder) carries 2000 Wh, over its limit of 1000 Wh"
    # Zone 0's grid connection (here 100 kWh) is checked from the settled energies too.
    small = replace(inputs.network, grid_import_wh=[[1_000] * STEPS, [BIG] * STEPS])
    entries = {int(p): (int(g), int(q)) for p, g, q in zip(honest.participants, honest.grid_wh, honest.p2p_wh)}
    entries[2] = (entries[2][0] + 4_000, entries[2][1])
    assert network_reasons(small, inputs.participants, entries) == [
        f"zone substation imports from the grid {entries[1][0] + entries[2][0]} Wh, over its limit of 1000 Wh"]


def test_a_zonal_interval_settles_in_chunks_like_in_one_transaction(two_zone):
    market, index = two_zone
    inputs = interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000))
    settlement = settlement_for(inputs, run_clearing(inputs))
    receipt = market.settle_chunked(settlement, budget=485_000)  # one entry per chunk
    assert len([e for e in receipt.events if e.name == "ChunkVerified"]) == 4
    (event,) = [e for e in receipt.events if e.name == "ZonePricesSettled"]
    assert tuple(event.args["zonePrices"]) == settlement.zone_prices
    assert event.args["congestionRentMilli"] == settlement.congestion_rent_milli
    assert [market.balance(p) for p in range(1, 5)] == (10_000_000 + settlement.amount).tolist()


def test_too_many_zones_or_a_zonal_auction_are_refused_with_the_reason():
    net = network(list(range(4)), [f"z{i}" for i in range(65)], [(0, i, BIG) for i in range(1, 65)],
                  [(BIG, BIG)] * 65)
    base = IntervalInputs(interval=0, start="2026-01-01T00:00:00+00:00", participants=[1, 2, 3, 4],
                          load_wh=[[0] * STEPS] * 4, pv_wh=[[0] * STEPS] * 4, buy_price=[BUY] * STEPS,
                          sell_price=[SELL] * STEPS, import_capacity_wh=[BIG] * STEPS,
                          export_capacity_wh=[BIG] * STEPS, p2p_cost=0, batteries=[], network=net)
    with pytest.raises(InputError, match="65 zones; a settlement prices at most 64"):
        run_clearing(base)
    with pytest.raises(InputError, match="auction on a network"):
        run_clearing(replace(base, mechanism="auction", network=two_zone_network(BIG)))
    with pytest.raises(InputError, match="pay-as-bid; zone prices settle under uniform pricing only"):
        run_clearing(replace(base, pricing="pay_as_bid", network=two_zone_network(BIG)))


# -- a community run from its config on a network file ---------------------------------


def _network_file(directory, line_kw: float = 1.0):
    """Two zones: the substation (id 0, the grid connection, 20 kW each way) and a
    feeder (id 1) behind a line of `line_kw`."""
    (directory / "zones.csv").write_text("name,id,grid_import,grid_export\nsubstation,0,20,20\nfeeder,1,,\n")
    (directory / "lines.csv").write_text(f"name,zone_from,zone_to,susceptance,capacity\nfeeder-line,substation,feeder,1,{line_kw}\n")
    (directory / "network.toml").write_text('[network]\npower_unit = "kW"\nzones = "zones.csv"\nlines = "lines.csv"\n')
    return directory / "network.toml"


def _config_run(tmp_path, zones: list[int]):
    from node.data.community import Community
    from node.data.config import config_from_mapping
    from node.data.synthetic import generate_community

    _network_file(tmp_path)
    config = config_from_mapping({"community": {"homes": len(zones), "seed": 5}, "market": {"horizon_steps": 4},
                                  "grid": {"network": "network.toml"}}, base=tmp_path)
    full = generate_community(config)
    window = slice(68, 72)  # evening: the feeder's homes draw more than its line carries
    homes = tuple(replace(h, zone=z) for h, z in zip(full.homes, zones))
    return Community(homes, full.timestamps[window], full.consumption_kwh[:, window], full.production_kwh[:, window]), config


def test_a_community_runs_on_the_network_its_config_names(tmp_path):
    from node.simulation.replay import simulate
    from node.simulation.state import StatePaths

    community, config = _config_run(tmp_path, [0, 0, 1, 1])
    assert config.grid.network == str(tmp_path / "network.toml")
    result = simulate(Chain.embedded(), community, config, StatePaths(tmp_path / "state"), progress=False)
    market, index = result.market, result.index
    assert [market.market.functions.accountOf(p).call()[1] for p in (1, 2, 3, 4)] == [0, 0, 1, 1]
    assert market.zone_capacity(market.next_interval(), 0) == (5_000, 5_000)  # 20 kW for 15 minutes
    # The feeder has no grid connection and no limit on chain (see
    # CommunityNetwork.zone_capacities and the radial feeder's test).
    assert market.zone_capacity(market.next_interval(), 1) == (2**48 - 1, 2**48 - 1)
    series = index.zone_price_series()
    assert [s["interval"] for s in series] == [r["interval"] for r in index.intervals()] and len(series) == 4
    inputs = IntervalInputs.from_json(index.inputs(index.intervals()[0]["inputs_hash"]))
    assert inputs.network.zones == ["substation", "feeder"] and inputs.network.participant_zone == [0, 0, 1, 1]
    assert inputs.network.line_forward_wh[0][0] == 250  # 1 kW for 15 minutes
    # The feeder's battery home sells more than its neighbour buys and the line takes
    # only 250 Wh back to the substation: there P2P energy is dearer than on the feeder.
    assert any(s["prices"][0] > s["prices"][1] and s["rent_milli"] > 0 for s in series)
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert verdicts and all(v.ok for v in verdicts), report(verdicts)


def test_each_intervals_own_zone_limit_from_the_limits_file_is_on_chain_before_it_settles(tmp_path):
    from node.simulation.replay import simulate
    from node.simulation.setup import first_interval_of
    from node.simulation.state import StatePaths

    community, config = _config_run(tmp_path, [0, 0, 1, 1])
    k = first_interval_of(community, config) + 1
    (tmp_path / "limits.csv").write_text(f"interval,element,import,export\n{k},substation,2,2\n{k + 2},substation,3,1\n")
    manifest = tmp_path / "network.toml"
    manifest.write_text(manifest.read_text() + 'limits = "limits.csv"\n')
    result = simulate(Chain.embedded(), community, config, StatePaths(tmp_path / "state"), progress=False)
    market, index = result.market, result.index
    # 2 kW and 3/1 kW for 15 minutes in their intervals, 20 kW by default.
    assert [market.zone_capacity(i, 0) for i in range(k - 1, k + 3)] == [(5_000, 5_000), (500, 500), (5_000, 5_000),
                                                                        (750, 250)]
    settled = index.entries_between(k - 1, k + 3)
    assert {row[0] for row in settled} == set(range(k - 1, k + 3))
    for interval, (imp, exp) in ((k, (500, 500)), (k + 2, (750, 250))):
        zone0 = sum(grid for i, pid, grid, _, _ in settled if i == interval and pid in (1, 2))
        assert -exp <= zone0 <= imp
    verdicts = audit(market, IndexInputs(index), progress=False)
    assert verdicts and all(v.ok for v in verdicts), report(verdicts)


def test_a_home_in_a_zone_the_network_lacks_is_a_config_error_naming_the_field(tmp_path):
    from node.errors import ConfigError
    from node.oracle.network import CommunityNetwork

    community, config = _config_run(tmp_path, [0, 0, 1, 7])
    with pytest.raises(ConfigError, match=r"grid\.network: home .* is in zone 7, which .* does not have \(zone ids \[0, 1\]\)"):
        CommunityNetwork.of(community, config)
    (tmp_path / "lines.csv").write_text("name,zone_from,zone_to,susceptance,capacity\nfeeder-line,substation,nowhere,1,1\n")
    with pytest.raises(ConfigError, match=r"grid\.network: .*lines\.csv.*nowhere"):
        CommunityNetwork.of(community, config)


def test_the_dashboard_charts_each_zones_price_and_the_congestion_rent(two_zone, tmp_path):
    from webui import create_app

    market, index = two_zone
    index.set_meta(currency="EUR", interval_minutes=15, start="2026-01-01T00:00:00+00:00", first_interval=0)
    for line_wh in (1_000, BIG):  # a binding line, then none
        settle_and_index(market, index, interval_inputs(market, **TWO_ZONES, net=two_zone_network(line_wh)))
    client = create_app({"INDEX_PATH": str(tmp_path / "index.sqlite"), "TESTING": True}).test_client()
    page = client.get("/").get_data(as_text=True)
    assert "P2P price per zone" in page and "Congestion rent to the grid operator" in page
    assert "zone 0" in page and "zone 1" in page
    # The line's loading over time: at its limit while it binds, far under it after.
    assert "Line and grid connection loading (1 congested line-intervals)" in page
    assert "substation → feeder" in page and "100.0 %" in page
    interval = client.get("/intervals/0").get_data(as_text=True)
    assert 'id="zone-prices"' in interval and "congestion rent" in interval
    assert index.zone_price_series() == [
        {"interval": 0, "prices": [SELL, BUY - P2P_COST], "rent_milli": 1_000 * (BUY - P2P_COST - SELL)},
        {"interval": 1, "prices": index.zone_price_series()[1]["prices"], "rent_milli": 0},
    ]


def test_a_copper_plate_dashboard_has_no_zone_charts(tmp_path):
    from webui import create_app

    market = zonal_market(Chain.embedded(), [0, 0, 0, 0])
    index = indexed(market, tmp_path / "index.sqlite")
    index.set_meta(currency="EUR", interval_minutes=15, start="2026-01-01T00:00:00+00:00", first_interval=0)
    inputs = replace(interval_inputs(market, **TWO_ZONES, net=two_zone_network(BIG)), network=None)
    settle_and_index(market, index, inputs)
    page = create_app({"INDEX_PATH": str(tmp_path / "index.sqlite"), "TESTING": True}).test_client().get("/")
    assert page.status_code == 200 and "P2P price per zone" not in page.get_data(as_text=True)
    assert "Line and grid connection loading" not in page.get_data(as_text=True)


def test_a_zonal_interval_settles_and_audits_on_anvil(tmp_path):
    from node.chain.anvil import start_anvil

    with start_anvil(tmp_path / "anvil-state.json", port=0, gas_cap=True) as anvil:
        market = zonal_market(Chain.connect(anvil.url), [0, 0, 1, 1])
        index = indexed(market, tmp_path / "index.sqlite")
        settlement, receipt = settle_and_index(market, index, interval_inputs(market, **TWO_ZONES,
                                                                              net=two_zone_network(1_000)))
        (event,) = [e for e in receipt.events if e.name == "ZonePricesSettled"]
        assert tuple(event.args["zonePrices"]) == settlement.zone_prices == (SELL, BUY - P2P_COST)
        assert sum(market.balance(p) for p in range(5)) == 5 * 10_000_000
        verdicts = audit(market, IndexInputs(index), progress=False)
        assert verdicts and all(v.ok for v in verdicts), report(verdicts)
        index.close()


def test_a_home_left_out_loads_its_zones_grid_connection():
    """Home 2 (zone 0, 0.5 kWh) has no mandate: it is settled by its supplier, and its
    draw comes off zone 0's grid connection, so the community may import 0.5 kWh less there."""
    from node.clearing.zonal import subset_network
    from node.intent.signing import Mandate

    net = network([0, 0, 1, 1], ["substation", "feeder"], [(0, 1, BIG)], [(2_000, BIG), (0, 0)])
    base = IntervalInputs(interval=0, start="2026-01-01T00:00:00+00:00", participants=[1, 2, 3, 4],
                          load_wh=[[w] * STEPS for w in (500, 500, 1_000, 1_000)], pv_wh=[[0] * STEPS] * 4,
                          buy_price=[BUY] * STEPS, sell_price=[SELL] * STEPS, import_capacity_wh=[BIG] * STEPS,
                          export_capacity_wh=[BIG] * STEPS, p2p_cost=0, batteries=[], network=net,
                          mandates=[Mandate(p, BUY, SELL, 0, 1_000_000, 2**40, 1).values() for p in (1, 3, 4)])
    full = base.to_clearing_inputs()
    np.testing.assert_allclose(subset_network(full, np.array([0, 2, 3])).grid_import_kwh, [[1.5, 1.5], [0, 0]])
    result = run_clearing(base)
    assert 2 in result.excluded and result.participants.tolist() == [1, 3, 4]
    # 2.5 kWh wanted by the settled homes, 1.5 kWh left at the substation: the rest is shed.
    assert 1_490 <= int(result.grid_wh.sum()) <= 1_500


def test_an_oracle_resumes_a_zonal_interval_its_crash_left_half_verified(two_zone):
    """The chain holds chunk 0 verified with the zone prices; the oracle, restarted,
    finds the same header hash (header and zone prices) and continues, abandoning nothing."""
    from node.chain.chunks import header_hash, plan_chunks

    market, _ = two_zone
    inputs = interval_inputs(market, **TWO_ZONES, net=two_zone_network(1_000))
    settlement = settlement_for(inputs, run_clearing(inputs))
    words = settlement.entries()
    first = plan_chunks(words, 485_000, zones=2)[0]  # one entry a chunk
    call = market.market.functions.verifyChunkZonal(settlement.header(), list(settlement.zone_prices),
                                                    words[first.start:first.end], [], False)
    market.chain.transact(call, market.chain.operators.oracle, 1_000_000)
    assert market.pending().header_hash == header_hash(settlement.header(), settlement.zone_prices)
    receipt = market.settle_chunked(settlement, budget=485_000)
    assert not [e for e in receipt.events if e.name == "PendingAbandoned"]
    assert [e.args["chunk"] for e in receipt.events if e.name == "ChunkVerified"] == [1, 2, 3]
    assert [market.balance(p) for p in range(1, 5)] == (10_000_000 + settlement.amount).tolist()


def test_a_zonal_interval_over_twenty_zones_settles_in_chunks_within_each_chunks_gas_limit():
    """The verify chunks' gas limits count the zones: each keeps its price, its running
    grid energy and reads its capacity (before, a non-last chunk of a few dozen entries
    over 20 zones ran out of gas)."""
    from node.chain.chunks import plan_chunks, verify_gas

    zones, homes = 20, 60
    market = zonal_market(Chain.embedded(), [i % zones for i in range(homes)])
    k = market.next_interval()
    terms = market.terms_at(k)
    ids = np.arange(1, homes + 1)
    grid = np.where(ids % 3 == 0, -200, 300)
    p2p = np.zeros(homes, dtype=np.int64)
    p2p[0], p2p[2] = 100, -100  # home 1 (zone 0) buys from home 3 (zone 2)
    zone_prices = tuple(SELL + 1_000 * (zones - z) for z in range(zones))  # zone 0 the dearest: rent >= 0
    settlement = priced_settlement(k, b"\1" * 32, ids, grid, p2p, terms.import_price, terms.export_price, min(zone_prices),
                                   np.array([zone_prices[(i - 1) % zones] for i in ids]), p2p_fee=terms.p2p_fee,
                                   terms_index=terms.index, zone_prices=zone_prices)
    budget = 1_500_000
    chunks = plan_chunks(settlement.entries(), budget, zones)
    assert len(chunks) >= 2
    receipt = market.settle_chunked(settlement, budget=budget)
    verified = [part for part in receipt.parts if any(e.name == "ChunkVerified" for e in part.events)]
    assert len(verified) == len(chunks)
    for part, chunk in zip(verified, chunks):
        assert part.gas_used <= verify_gas(chunk.end - chunk.start, 0, zones)
    assert [list(e.args["zonePrices"]) for e in receipt.events if e.name == "ZonePricesSettled"] == [list(zone_prices)]



@pytest.mark.parametrize("line_wh, congested", [(1_000, True), (BIG, False)])
def test_the_interval_page_shows_each_lines_loading_and_flags_the_binding_one(two_zone, tmp_path, line_wh, congested):
    """Issue 11's UI: the interval page draws each line's settled flow against its
    committed limit, and the grid connections', from the chain and the committed inputs."""
    from webui import create_app
    from webui.lines import interval_loading

    market, index = two_zone
    inputs = interval_inputs(market, **TWO_ZONES, net=two_zone_network(line_wh))
    settle_and_index(market, index, inputs)
    rows = {r.name: r for r in interval_loading(index, index.interval(inputs.interval))}
    line = rows["substation → feeder"]
    assert line.kind == "line" and line.binding is congested
    if congested:
        assert (line.flow_wh, line.limit_wh) == (1_000, 1_000)  # the kWh the binding line carries
    else:
        assert line.limit_wh == BIG and line.flow_wh > 1_000  # the feeder buys more P2P across it
    assert rows["feeder"].kind == "connection" and rows["feeder"].flow_wh > 0  # the rest of its need, imported

    page = create_app({"TESTING": True, "INDEX_PATH": index.path}).test_client().get(f"/intervals/{inputs.interval}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="network-loading"' in html and "substation → feeder" in html
    assert ('class="congested"' in html) is congested
