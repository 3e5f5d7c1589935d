"""Shared batteries with virtual per-home accounts (issue 12 item 2, its second half).

examples/shared_batteries.toml: one 40 kWh / 20 kW battery at the community's site, in
which three of four PV homes hold a 10 kWh account each, a storage fee of 0.02 per kWh put
in, paid to the community (a participant with no energy of its own). A day's sunny afternoon and evening settles on
the embedded chain, every account as a share participant; the audit re-checks it. Then
the attacks: a rogue oracle key skipping the fee or sending it elsewhere, and accounts
charged beyond their share or the battery's power."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from node.audit.history import read_history
from node.audit.shares import share_reasons
from node.audit.verify import IndexInputs, audit
from node.chain.connection import Chain
from node.chain.settlement import storage_fee_units
from node.chain.deploy import Tariffs
from node.chain.shares import schedule_storage_fee, share_of, storage_terms_at
from node.clearing.inputs import IntervalInputs
from node.clearing.pricing import priced_settlement
from node.data.config import default_config, load_config
from node.data.shared_batteries import apply_shared_batteries, load_shared_batteries, with_shared_batteries
from node.data.synthetic import generate_community
from node.errors import ChainError, ConfigError
from node.oracle.terms import ChainTerms
from node.simulation.replay import simulate
from node.simulation.state import StatePaths, claim_state
from webui import create_app

SHARED = (Path(__file__).resolve().parents[1] / "examples" / "shared_batteries.toml").read_text()
FEE = 20_000  # 0.02 per kWh in price units


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shared")
    (tmp / "shared.toml").write_text(SHARED)
    config = default_config()
    config = replace(config, community=replace(config.community, homes=4, battery_share=0.0, pv_share=1.0,
                                               shared_batteries_file=str(tmp / "shared.toml")))
    full = generate_community(config)
    steps = slice(0, 96)  # a whole day: the night and evening draw what the accounts stored at noon
    community = replace(full, timestamps=full.timestamps[steps], consumption_kwh=full.consumption_kwh[:, steps],
                        production_kwh=full.production_kwh[:, steps])
    community = with_shared_batteries(community, load_shared_batteries(tmp / "shared.toml"))
    state = tmp / "state"
    claim_state(state, "simulate")
    chain = Chain.embedded(state)
    result = simulate(chain, community, config, StatePaths(state), progress=False)
    yield community, result, state
    chain.close()


def _ids(community, result):
    return {home.name: int(pid) for home, pid in zip(community.homes, result.participants)}


def test_accounts_settle_on_chain_with_energy_money_and_fees_conserved(run):
    community, result, _ = run
    ids = _ids(community, result)
    market = result.market
    operator = ids["community"]
    accounts = {ids[f"home-0{i}@school"]: ids[f"home-0{i}"] for i in (1, 2, 3)}
    assert storage_terms_at(market, result.reports[0].settlement.interval) == (FEE, operator)
    assert {pid: share_of(market, pid) for pid in accounts} == {pid: (0, 10_000) for pid in accounts}
    assert share_of(market, ids["home-04"]) is None
    put_in, fees = 0, 0
    for r in result.reports:
        s = r.settlement
        assert int(s.p2p_wh.sum()) == 0  # energy conserved per interval, to the Wh
        assert int(s.amount.sum()) + s.grid_amount + s.storage_fees == 0  # money, to the unit
        net = dict(zip(s.participants.tolist(), (s.grid_wh + s.p2p_wh).tolist()))
        wh_in = [max(net.get(pid, 0), 0) for pid in accounts]
        assert s.storage_fees == sum(storage_fee_units(wh, FEE) for wh in wh_in)
        put_in += sum(wh_in)
        fees += s.storage_fees
    assert put_in > 5_000, put_in  # the accounts stored the noon surplus
    # Fee x Wh put in, within half a unit per entry of rounding.
    entries = sum(1 for r in result.reports for pid in accounts if pid in r.settlement.participants.tolist())
    assert abs(fees - FEE * put_in / 1000) <= entries / 2
    # The operator's wallet holds its deposit and the fees; it traded no energy itself.
    deposit = market.balance(operator) - fees
    assert deposit == int(round(default_config().wallets.initial_deposit * 1_000_000))


def test_the_audit_passes_and_the_index_shows_each_account(run):
    community, result, state = run
    verdicts = audit(result.market, IndexInputs(result.index), progress=False)
    assert len(verdicts) == len(result.reports) and [v.reasons for v in verdicts if not v.ok] == []
    index = result.index
    ids = _ids(community, result)
    assert index.balances()[ids["community"]] == result.market.balance(ids["community"])
    account = index.share_account(ids["home-01@school"])
    assert account["battery"] == 0 and account["capacity_wh"] == 10_000 and 0 <= account["stored_wh"] <= 10_000
    assert index.share_account(ids["home-04"]) is None
    # The home's page shows its account's stored energy; home-04 holds none.
    client = create_app({"TESTING": True, "INDEX_PATH": str(state / "index.sqlite")}).test_client()
    page = client.get(f"/participants/{ids['home-01']}").get_data(as_text=True)
    assert f'data-share-account="{ids["home-01@school"]}"' in page and "home-01@school" in page
    assert "data-share-account" not in client.get(f"/participants/{ids['home-04']}").get_data(as_text=True)


def test_a_rogue_oracle_key_cannot_skip_the_fee_or_route_it_elsewhere(run):
    community, result, _ = run
    market, ids = result.market, _ids(community, result)
    k = market.next_interval()
    market.chain.advance_time(market.clock().end(k) + 1)
    terms = market.terms_at(k)
    home, account = ids["home-01"], ids["home-01@school"]
    honest = priced_settlement(k, b"\x77" * 32, np.array([home, account]), np.array([0, 0]), np.array([-1000, 1000]),
                               terms.import_price, terms.export_price, terms.export_price, p2p_fee=terms.p2p_fee,
                               terms_index=terms.index, storage_fee=FEE, storage_operator=ids["community"],
                               shares={account})
    assert honest.storage_fees == FEE  # 1 kWh at 0.02
    skipped = replace(honest, amount=honest.amount + np.array([0, FEE]))
    with pytest.raises(ChainError, match="PaymentMismatch"):
        market.settle(skipped)
    elsewhere = replace(honest, amount=honest.amount + np.array([FEE, 0]))  # the fee to the seller
    with pytest.raises(ChainError, match="PaymentMismatch"):
        market.settle(elsewhere)
    before = market.balance(ids["community"])
    market.settle(honest)
    assert market.balance(ids["community"]) == before + FEE


def test_an_account_charged_beyond_its_share_or_the_batterys_power_fails_the_audit(run):
    community, result, _ = run
    market, ids = result.market, _ids(community, result)
    history = read_history(market)
    account = ids["home-02@school"]
    settled = next(s for s in history.settled if any(e.participant == account for e in s.entries))
    k = settled.header.args["interval"]
    inputs = IntervalInputs.from_json(result.index.inputs("0x" + settled.header.args["inputsHash"].hex()))
    assert share_reasons(inputs, settled.entries, history.shares) == []
    # The oracle commits inputs with a bigger account than the share registered on chain.
    bigger = replace(inputs, batteries=[replace(b, capacity_wh=25_000) if b.participant == account else b
                                        for b in inputs.batteries])
    assert any("not within its share" in r for r in share_reasons(bigger, settled.entries, history.shares))
    # ... or settles the account taking in more than the battery's power allows.
    entries = [replace(e, p2p_wh=e.p2p_wh + 60_000) if e.participant == account else e for e in settled.entries]
    reasons = share_reasons(inputs, entries, history.shares)
    assert any("beyond its" in r for r in reasons) and any("storage fees" in r for r in reasons)
    # ... or claims the shares add up to more than the battery.
    crowded = replace(inputs, shared_batteries=[replace(b, capacity_wh=20_000) for b in inputs.shared_batteries])
    assert any("shares of 30000 Wh" in r for r in share_reasons(crowded, settled.entries, history.shares))
    # ... or leaves an account out of the shares, so that it would pay no fee.
    unshared = replace(inputs, shares=[s for s in inputs.shares if s.participant != account])
    assert any(f"participant {account}" in r for r in share_reasons(unshared, settled.entries, history.shares))
    assert k == inputs.interval


@pytest.mark.parametrize("text, problem", [
    ('storage_fee_per_kwh = 0.02\n[[battery]]\nname = "b"\ncapacity_kwh = 10\npower_kw = 5\nshares = { "home-01" = 5 }',
     "operator"),
    ('operator = "c"\nstorage_fee_per_kwh = 0.02\n[[battery]]\nname = "b"\ncapacity_kwh = 10\npower_kw = 5\n'
     'shares = { "home-01" = 6, "home-02" = 6 }', "battery 1 (b): the shares add up to 12 kWh"),
    ('operator = "c"\nstorage_fee_per_kwh = 0.02\n[[battery]]\nname = "b"\ncapacity_kwh = 10\npower_kw = 0\n'
     'shares = { "home-01" = 6 }', "battery 1 (b): power_kw must be"),
    ('operator = "c"\nstorage_fee_per_kwh = 0.02\n[[battery]]\nname = "b"\ncapacity_kwh = 10\npower_kw = 5\n'
     'shares = { "home-01" = -1 }', "battery 1 (b): shares.home-01"),
    ('operator = "c"\nstorage_fee_per_kwh = 0.02\n[[battery]]\nname = "b"\ncapacity_kwh = 10\npower_kw = 5\n'
     'colour = "red"\nshares = { "home-01" = 1 }', "battery 1 (b): colour: unknown key"),
])
def test_a_bad_shared_batteries_file_is_refused_naming_the_battery(tmp_path, text, problem):
    path = tmp_path / "shared.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_shared_batteries(path)


def test_a_share_of_a_home_the_data_lacks_is_refused(tmp_path):
    path = tmp_path / "shared.toml"
    path.write_text(SHARED.replace('"home-03"', '"home-99"'))
    config = replace(default_config(), community=replace(default_config().community, homes=4))
    with pytest.raises(ConfigError, match="shares.home-99: no such home"):
        with_shared_batteries(generate_community(config), load_shared_batteries(path), str(path))


def test_the_config_names_the_file_relative_to_itself_and_the_accounts_join_the_community(tmp_path):
    (tmp_path / "shared.toml").write_text(SHARED)
    (tmp_path / "community.toml").write_text('[community]\nhomes = 4\nshared_batteries_file = "shared.toml"\n')
    config = load_config(tmp_path / "community.toml")
    community = apply_shared_batteries(generate_community(config), config)
    assert community.names[4:] == ("community", "home-01@school", "home-02@school", "home-03@school")
    account = community.homes[5]
    assert account.battery_spec.capacity_kwh == 10.0 and account.battery_spec.power_kw == 5.0
    assert community.consumption_kwh[4:].sum() == 0 and community.production_kwh[4:].sum() == 0


def test_a_new_storage_fee_needs_notice_and_the_oracle_follows_it_across_later_tariffs(run):
    community, result, _ = run
    market, ids = result.market, _ids(community, result)
    clock = market.clock()
    now = market.chain.w3.eth.get_block("latest")["timestamp"]
    soon = (now - clock.epoch) // clock.interval_s + 2
    with pytest.raises(ChainError, match="NoticeTooShort"):
        schedule_storage_fee(market, soon, 30_000, ids["home-04"])
    later = (now + clock.notice_s - clock.epoch) // clock.interval_s + 2
    schedule_storage_fee(market, later, 30_000, ids["home-04"])
    market.schedule_terms(later + 10, Tariffs(310_000, 310_000, 60_000))
    follower = ChainTerms(market)
    follower.refresh()
    terms = follower.snapshot(later)
    assert terms.storage_of(later - 1) == (FEE, ids["community"]) == storage_terms_at(market, later - 1)
    assert terms.storage_of(later) == (30_000, ids["home-04"]) == storage_terms_at(market, later)
    assert terms.storage_of(later + 10) == (30_000, ids["home-04"]) == storage_terms_at(market, later + 10)
    assert terms.prices_of(later + 10).import_price == 310_000


def test_an_index_written_before_storage_fees_counts_them_in_balances_once_opened(tmp_path):
    import sqlite3

    from node.index.store import Index

    path = tmp_path / "index.sqlite"
    old = sqlite3.connect(path)
    old.executescript("CREATE TABLE entries (interval INTEGER, participant INTEGER, grid_wh INTEGER, p2p_wh INTEGER, "
                      "amount INTEGER); CREATE TABLE intervals (grid_amount INTEGER);"
                      "CREATE TABLE wallet_events (participant INTEGER, kind TEXT, amount INTEGER);"
                      "CREATE VIEW wallet_changes AS SELECT participant, amount FROM entries;")
    old.close()
    index = Index(path)
    index.db.execute("INSERT INTO storage_fees VALUES (5, 3, 1234)")
    assert index.balances() == {3: 1234}
    index.close()


def test_the_chain_keeps_each_accounts_energy_as_the_oracle_carries_it_and_refuses_an_over_drain(run):
    """Over a day's settlements the contract's record of each account (pWh it can deliver)
    is the oracle's integer to the pWh, within its share; then a rogue oracle key draws
    one Wh more out of an account than it holds, or puts in more than its share has room
    for: refused with ShareEnergyOutOfRange, and the account is unchanged."""
    from node.chain.shares import share_energy_of
    from node.clearing.interval import run_clearing, soc_after
    from node.clearing.shares import deliverable_delta
    from node.errors import SettlementError

    community, result, _ = run
    market, ids = result.market, _ids(community, result)
    last = result.reports[-1].settlement
    inputs = IntervalInputs.from_json(result.index.inputs("0x" + last.inputs_hash.hex()))
    carried = soc_after(inputs, run_clearing(inputs)).share_pwh
    accounts = [ids[f"home-0{i}@school"] for i in (1, 2, 3)]
    # Intervals the tests above settled past the run (with their own keys) count too.
    for settled in read_history(market).settled:
        if settled.header.args["interval"] > last.interval:
            for e in settled.entries:
                if e.participant in accounts:
                    carried[e.participant] += deliverable_delta(e.net_wh, 950_000, 950_000)
    on_chain = {pid: share_energy_of(market, pid) for pid in accounts}
    assert {pid: e[0] for pid, e in on_chain.items()} == {pid: carried[pid] for pid in accounts}
    assert all(0 <= held <= capacity for held, capacity in on_chain.values())
    assert any(held > 0 for held, _ in on_chain.values())
    account = max(accounts, key=lambda pid: on_chain[pid][0])
    held, capacity = on_chain[account]
    k = market.next_interval()
    market.chain.advance_time(market.clock().end(k) + 1)
    terms = market.terms_at(k)
    home = ids["home-04"]
    for out_wh in (held // 10**12 + 1, -((capacity - held) // (950_000 * 950_000) + 1)):
        rogue = priced_settlement(k, b"\x66" * 32, np.array([home, account]), np.array([0, 0]),
                                  np.array([out_wh, -out_wh]), terms.import_price, terms.export_price,
                                  terms.export_price, p2p_fee=terms.p2p_fee, terms_index=terms.index,
                                  storage_fee=FEE, storage_operator=ids["community"], shares={account})
        with pytest.raises(SettlementError, match="ShareEnergyOutOfRange"):
            market.settle(rogue)
        assert share_energy_of(market, account) == (held, capacity)
