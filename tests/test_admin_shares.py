"""`gridledger admin register-share` and `admin schedule-storage-fee`: shared batteries'
accounts and storage fee outside a run's setup (issue 12), signed with the role holder's
keystore key and sent to a state directory's chain or relayed by a server; the market
contract decides, and refuses any other key."""

from __future__ import annotations

import time

import pytest

from node.admin.actions import encode_action, register_share, schedule_storage_fee
from node.admin.relay import open_chain
from node.chain.market import Deployment, Market
from node.chain.shares import share_of, storage_terms_at
from node.errors import ChainError, InputError
from node.cli.main import main
from tests.conftest import home_key
from tests.test_admin import state  # noqa: F401  (fixture)
from tests.test_admin_cli import gridledger, keystore, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("keystore_password")


def _ahead(market: Market) -> int:
    """The first interval that starts more than the market's notice period from now."""
    clock = market.clock()
    now = market.chain.w3.eth.get_block("latest")["timestamp"]
    return -(-(max(now, int(time.time())) + clock.notice_s + 3_600 - clock.epoch) // clock.interval_s)


def test_register_share_with_the_admins_key_goes_into_the_state_dirs_chain(state, keystore, capsys):
    directory, who = keystore
    owner, meter = home_key(7).address, home_key(8).address
    status, out, err = gridledger(["admin", "register-share", owner, "--meter", meter, "--zone", "0", "--name",
                                   "home-1@school", "--battery", "3", "--capacity-kwh", "12.5", "--keystore",
                                   str(directory), "--account", who["admin"], "--state", str(state)], capsys)
    assert status == 0, err
    assert out.startswith(f"registerShare(owner={owner}, meter={meter}, zone=0, name=home-1@school, battery=3, "
                          f"capacityWh=12500, storedWh=0, chargePpm=950000, dischargePpm=950000) by {who['admin']} "
                          "(DEFAULT_ADMIN_ROLE)")
    assert ("ShareRegistered(participant=2, battery=3, capacityWh=12500, storedWh=0, chargeEfficiencyPpm=950000, "
            "dischargeEfficiencyPpm=950000)") in out
    with open_chain(state=state) as chain:
        assert share_of(Market(chain, Deployment.load(state / "deployment.json")), 2) == (3, 12_500)


def test_register_share_is_refused_to_a_grid_operators_key_and_by_the_contract_to_any_non_admin(state, keystore,
                                                                                                capsys):
    directory, who = keystore
    status, out, err = gridledger(["admin", "register-share", home_key(7).address, "--meter", home_key(8).address,
                                   "--name", "sneaky", "--battery", "0", "--capacity-kwh", "10", "--keystore",
                                   str(directory), "--account", who["grid"], "--state", str(state)], capsys)
    assert status == 2 and f"registerShare needs DEFAULT_ADMIN_ROLE, which the sender {who['grid']} does not hold" in err
    with open_chain(state=state) as chain:
        market = Market(chain, Deployment.load(state / "deployment.json"))
        # Past the CLI and any relay: the contract itself refuses a key without the role.
        intruder = home_key(1)
        chain.fund(intruder.address, 10**18)
        call = market.market.functions.registerShare(home_key(7).address, home_key(8).address, 0, "sneaky", 0, 10_000,
                                                     0, 950_000, 950_000)
        with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
            chain.transact(call, intruder, 300_000)
        assert market.participant_count() == 2


@pytest.mark.parametrize("argv, problem", [
    (["--capacity-kwh", "0"], "share capacity must be more than 0"),
    (["--capacity-kwh", "0.0005"], "share capacity"),
    (["--capacity-kwh", "281474976711"], "at most 281474976710655 Wh"),
    (["--capacity-kwh", "10", "--zone", "70000"], "zone must be between 0 and 65535"),
    (["--capacity-kwh", "10", "--battery", "-1"], "battery must be between 0"),
    (["--capacity-kwh", "10", "--stored-kwh", "11"], "stored energy must be between 0 and the share's 10000 Wh"),
    (["--capacity-kwh", "10", "--charge-efficiency", "1.2"], "charge efficiency must be a fraction in (0, 1]"),
    (["--capacity-kwh", "10", "--discharge-efficiency", "0"], "discharge efficiency must be a fraction in (0, 1]"),
])
def test_register_share_refuses_bad_arguments_naming_them(state, keystore, capsys, argv, problem):
    directory, who = keystore
    base = ["admin", "register-share", home_key(7).address, "--meter", home_key(8).address, "--name", "x",
            "--battery", "0"]
    status, out, err = gridledger([*base, *argv, "--keystore", str(directory), "--account", who["admin"], "--state",
                                   str(state)], capsys)
    assert status == 2 and problem in err and err.count("\n") == 1, err


def test_register_share_refuses_a_bad_owner_address():
    with pytest.raises(InputError, match="owner must be an address"):
        register_share("0x123", home_key(8).address, 0, "x", 0, "10")


def test_schedule_storage_fee_relayed_by_the_server_a_notice_period_ahead(server, bare_market, keystore, capsys):
    directory, who = keystore
    ahead = _ahead(bare_market)
    key = ["--keystore", str(directory), "--account", who["grid"], "--server", server]
    status, out, err = gridledger(["admin", "schedule-storage-fee", "--from-interval", str(ahead), "--fee", "0.02",
                                   "--operator", "4", *key], capsys)
    assert status == 0, err
    assert f"scheduleStorageFee(fromInterval={ahead}, fee=20000, operator=4) by {who['grid']} (GRID_OPERATOR_ROLE)" in out
    assert f"StorageFeeScheduled(index=1, fromInterval={ahead}, storageFee=20000, storageOperator=4)" in out
    assert storage_terms_at(bare_market, ahead) == (20_000, 4)
    assert storage_terms_at(bare_market, ahead - 1) == (0, 0)
    # Within the notice period, to an unregistered operator, or with a fee finer than the
    # price unit: refused, each naming what is wrong.
    status, _, err = gridledger(["admin", "schedule-storage-fee", "--from-interval", str(bare_market.next_interval()),
                                 "--fee", "0.02", "--operator", "4", *key], capsys)
    assert status != 0 and "NoticeTooShort" in err
    status, _, err = gridledger(["admin", "schedule-storage-fee", "--from-interval", str(ahead + 5), "--fee", "0.02",
                                 "--operator", "99", *key], capsys)
    assert status != 0 and "UnknownParticipant" in err
    status, _, err = gridledger(["admin", "schedule-storage-fee", "--from-interval", str(ahead + 5), "--fee",
                                 "0.0000001", "--operator", "4", *key], capsys)
    assert status == 2 and "storage fee 0.0000001 per kWh has more decimals" in err
    assert storage_terms_at(bare_market, ahead + 5) == (20_000, 4)


def test_schedule_storage_fee_is_refused_by_the_server_and_the_contract_to_a_home_key(server, bare_market, keystore,
                                                                                     capsys):
    directory, who = keystore
    ahead = _ahead(bare_market)
    status, out, err = gridledger(["admin", "schedule-storage-fee", "--from-interval", str(ahead), "--fee", "0",
                                   "--operator", "1", "--keystore", str(directory), "--account", who["home"],
                                   "--server", server], capsys)
    assert status == 2 and "scheduleStorageFee needs GRID_OPERATOR_ROLE" in err
    # The same call sent straight to the chain with the home's key: the contract refuses it.
    intruder = home_key(1)
    bare_market.chain.fund(intruder.address, 10**18)
    call = bare_market.market.functions.scheduleStorageFee(ahead, 1_000_000, 1)
    with pytest.raises(ChainError, match="AccessControlUnauthorizedAccount"):
        bare_market.chain.transact(call, intruder, 300_000)
    assert storage_terms_at(bare_market, ahead) == (0, 0)


def test_the_server_prepares_both_actions_for_a_wallet(server, bare_market, keystore):
    import json
    import urllib.request

    _, who = keystore
    query = (f"/api/admin/prepare?action=schedule-storage-fee&from_interval={_ahead(bare_market)}&fee=0.5&operator=2"
             f"&sender={who['grid']}")
    with urllib.request.urlopen(server + query) as answer:
        prepared = json.load(answer)
    assert prepared["function"] == "scheduleStorageFee" and prepared["sender_has_role"]
    action = schedule_storage_fee(_ahead(bare_market), "0.5", 2)
    assert prepared["transaction"]["data"] == "0x" + encode_action(action).hex()
    query = (f"/api/admin/prepare?action=register-share&owner={home_key(7).address}&meter={home_key(8).address}"
             f"&zone=0&name=x&battery=0&capacity_kwh=5&sender={who['admin']}")
    with urllib.request.urlopen(server + query) as answer:
        assert json.load(answer)["call"].startswith("registerShare(")


@pytest.mark.parametrize("command", ["register-share", "schedule-storage-fee"])
def test_the_share_commands_explain_themselves(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["admin", command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert f"usage: gridledger admin {command}" in text and "Example: gridledger admin" in text
