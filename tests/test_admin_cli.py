"""`gridledger admin ...`: a role holder's keystore key signs, a real server relays (or
the state directory's chain takes it directly), a real market contract decides."""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from node.intent import keys
from node.admin.relay import open_chain
from node.chain.connection import EMBEDDED_KEYS
from node.cli.main import main
from node.intent.keys import Keystore
from node.chain.market import Deployment, Market
from tests.conftest import KEYSTORE_PASSWORD, home_key, served
from tests.test_admin import catch_up, index_of, state  # noqa: F401  (fixture)
from webui import create_app

PASSWORD = KEYSTORE_PASSWORD
pytestmark = pytest.mark.usefixtures("keystore_password")
ADMIN_KEY, GRID_OPERATOR_KEY = EMBEDDED_KEYS[0], EMBEDDED_KEYS[2]  # the embedded chain's operators
ADMIN, ORACLE, GRID_OPERATOR = (Account.from_key(key).address for key in EMBEDDED_KEYS[:3])


@pytest.fixture
def keystore(tmp_path):
    """The admin's, the grid operator's and home 1's keys."""
    store = Keystore(tmp_path / "keystore")
    addresses = {name: store.import_key(key, PASSWORD)
                 for name, key in (("admin", ADMIN_KEY), ("grid", GRID_OPERATOR_KEY), ("home", home_key(1).key.hex()))}
    return store.directory, addresses


@pytest.fixture
def server(bare_market, tmp_path):
    """The web UI with the market's chain, on a free port, in a thread."""
    app = create_app({"INDEX_PATH": index_of(bare_market, tmp_path / "index.sqlite"), "CHAIN": bare_market.chain,
                      "RELAY_ROLE_CHANGES": True})
    with served(app) as url:
        yield url


def gridledger(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(["-q", *argv])
    out, err = capsys.readouterr()
    return status, out, err


# -- straight to the chain of a state directory ------------------------------------------------


def test_set_capacity_signed_with_the_grid_operators_keystore_goes_into_the_state_dirs_chain(state, keystore, capsys):
    directory, who = keystore
    status, out, err = gridledger(["admin", "set-capacity", "--interval", "3", "--import-kwh", "5.5", "--export-kwh", "4",
                                   "--keystore", str(directory), "--account", who["grid"], "--state", str(state)], capsys)
    assert status == 0, err
    first, event = out.strip().splitlines()
    assert first.startswith(f"setCapacity(interval=3, importWh=5500, exportWh=4000) by {who['grid']} "
                            "(GRID_OPERATOR_ROLE) in transaction 0x")
    assert event.strip() == "CapacitySet(interval=3, importWh=5500, exportWh=4000)"
    with open_chain(state=state) as chain:  # reopened: the transaction is in the journal
        assert Market(chain, Deployment.load(state / "deployment.json")).capacity(3) == (5_500, 4_000)


def test_interval_prices_go_on_chain_a_notice_period_ahead_and_never_inside_it(state, keystore, capsys):
    directory, who = keystore
    with open_chain(state=state) as chain:
        clock = Market(chain, Deployment.load(state / "deployment.json")).clock()
    ahead = -(-(int(time.time()) + clock.notice_s + 3_600 - clock.epoch) // clock.interval_s)
    key = ["--keystore", str(directory), "--account", who["grid"], "--state", str(state)]
    status, out, err = gridledger(["admin", "set-interval-prices", "--interval", str(ahead), "--import-price", "0.2875",
                                   "--export-price", "0.0712", *key], capsys)
    assert status == 0, err
    assert f"IntervalPricesSet(interval={ahead}, importPrice=287500, exportPrice=71200)" in out
    with open_chain(state=state) as chain:
        terms = Market(chain, Deployment.load(state / "deployment.json")).terms_at(ahead)
        assert (terms.import_price, terms.export_price) == (287_500, 71_200)
    inside = ahead - (clock.notice_s + 7_200) // clock.interval_s  # starts within the notice period
    status, out, err = gridledger(["admin", "set-interval-prices", "--interval", str(inside), "--import-price", "9",
                                   "--export-price", "0", *key], capsys)
    assert status != 0 and "NoticeTooShort" in err
    status, out, err = gridledger(["admin", "set-interval-prices", "--interval", str(ahead), "--import-price", "0.1234567",
                                   "--export-price", "0", *key], capsys)
    assert status == 2 and "import price 0.1234567 per kWh has more decimals" in err


def test_a_key_without_the_role_is_refused_before_the_password_is_asked(state, keystore, capsys, monkeypatch):
    directory, who = keystore
    monkeypatch.delenv(keys.PASSWORD_ENV)  # a prompt would fail differently
    status, out, err = gridledger(["admin", "set-default-capacity", "--import-kwh", "1", "--export-kwh", "1",
                                   "--keystore", str(directory), "--account", who["home"], "--state", str(state)], capsys)
    assert status == 2 and out == ""
    assert err.startswith(f"error: setDefaultCapacity needs GRID_OPERATOR_ROLE, which the sender {who['home']} does not hold")
    assert err.count("\n") == 1
    with open_chain(state=state) as chain:
        assert Market(chain, Deployment.load(state / "deployment.json")).capacity(3) == (10_000, 8_000)


def test_a_single_keystore_file_is_enough(state, keystore, capsys):
    directory, who = keystore
    admins_file = next(p for p in directory.iterdir() if who["admin"][2:].lower() in p.name)
    status, out, err = gridledger(["admin", "grant-role", "oracle", home_key(2).address, "--keystore", str(admins_file),
                                   "--state", str(state)], capsys)
    assert status == 0, err
    assert out.startswith(f"grantRole(role=ORACLE_ROLE, account={home_key(2).address}) by {who['admin']}")
    status, out, _ = gridledger(["admin", "roles", home_key(2).address, "--state", str(state)], capsys)
    assert status == 0 and out.strip() == f"{home_key(2).address}: ORACLE_ROLE"


def test_roles_without_an_address_lists_the_holders_in_the_state_dirs_index(state, capsys):
    status, out, err = gridledger(["admin", "roles", "--state", str(state)], capsys)
    assert status == 0, err
    assert out.splitlines() == [f"DEFAULT_ADMIN_ROLE: {ADMIN}", f"ORACLE_ROLE: {ORACLE}", f"GRID_OPERATOR_ROLE: {GRID_OPERATOR}"]
    assert f"from the index {state / 'index.sqlite'}, as of block" in err and "warning" not in err


def test_roles_of_a_directory_without_an_index_is_one_error_line(tmp_path, capsys):
    status, out, err = gridledger(["admin", "roles", "--state", str(tmp_path / "nothing")], capsys)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert f"no index at {tmp_path / 'nothing' / 'index.sqlite'}" in err
    assert not (tmp_path / "nothing").exists()


# -- through a server ------------------------------------------------------------------------------


def test_set_capacity_relayed_by_the_server(server, bare_market, keystore, capsys):
    directory, who = keystore
    status, out, err = gridledger(["admin", "set-capacity", "--interval", "2", "--import-kwh", "0", "--export-kwh", "3",
                                   "--keystore", str(directory), "--account", who["grid"], "--server", server], capsys)
    assert status == 0, err
    assert out.startswith(f"setCapacity(interval=2, importWh=0, exportWh=3000) by {who['grid']} (GRID_OPERATOR_ROLE)")
    assert "CapacitySet(interval=2, importWh=0, exportWh=3000)" in out
    assert bare_market.capacity(2) == (0, 3_000)


def test_grant_role_through_the_server_then_the_grantee_acts(server, bare_market, keystore, capsys):
    directory, who = keystore
    status, out, err = gridledger(["admin", "grant-role", "grid-operator", who["home"], "--keystore", str(directory),
                                   "--account", who["admin"], "--server", server], capsys)
    assert status == 0, err
    assert f"RoleGranted(role=GRID_OPERATOR_ROLE, account={who['home']}, sender={who['admin']})" in out
    status, out, _ = gridledger(["admin", "roles", who["home"], "--server", server], capsys)
    assert out.strip() == f"{who['home']}: GRID_OPERATOR_ROLE"
    bare_market.chain.fund(who["home"], 10**18)
    status, out, err = gridledger(["admin", "set-default-capacity", "--import-kwh", "7", "--export-kwh", "6",
                                   "--keystore", str(directory), "--account", who["home"], "--server", server], capsys)
    assert status == 0, err
    assert bare_market.capacity(50) == (7_000, 6_000)


def test_roles_without_an_address_lists_the_servers_holders_as_grants_and_revocations_are_indexed(
        server, bare_market, keystore, capsys, tmp_path):
    directory, who = keystore
    status, out, err = gridledger(["admin", "roles", "--server", server], capsys)
    assert status == 0, err
    assert out.splitlines() == [f"DEFAULT_ADMIN_ROLE: {ADMIN}", f"ORACLE_ROLE: {ORACLE}", f"GRID_OPERATOR_ROLE: {GRID_OPERATOR}"]
    assert f"from the index of the server {server}, as of block" in err

    for verb, grid_operators in (("grant-role", f"{GRID_OPERATOR}, {who['home']}"), ("revoke-role", GRID_OPERATOR)):
        status, _, err = gridledger(["admin", verb, "grid-operator", who["home"], "--keystore", str(directory),
                                     "--account", who["admin"], "--server", server], capsys)
        assert status == 0, err
        catch_up(bare_market, tmp_path / "index.sqlite")
        status, out, err = gridledger(["admin", "roles", "--server", server], capsys)
        assert status == 0, err
        assert f"GRID_OPERATOR_ROLE: {grid_operators}" in out.splitlines()


def test_the_server_refuses_a_key_without_the_role_and_nothing_changes(server, bare_market, keystore, capsys):
    directory, who = keystore
    status, out, err = gridledger(["admin", "register", home_key(3).address, "--meter", home_key(3).address, "--name", "sneaky", "--keystore",
                                   str(directory), "--account", who["grid"], "--server", server], capsys)
    assert status == 2 and f"register needs DEFAULT_ADMIN_ROLE, which the sender {who['grid']} does not hold" in err
    assert bare_market.participant_count() == 5


def test_print_raw_signs_without_sending(server, bare_market, keystore, capsys, tmp_path):
    directory, who = keystore
    status, out, err = gridledger(["admin", "set-capacity", "--interval", "9", "--import-kwh", "1", "--export-kwh", "1",
                                   "--keystore", str(directory), "--account", who["grid"], "--server", server,
                                   "--print-raw"], capsys)
    assert status == 0, err
    raw = out.strip()
    assert raw.startswith("0x02") and bare_market.capacity(9) == (10_000, 8_000)
    # Carried elsewhere and relayed there: the same bytes do it.
    other = create_app({"INDEX_PATH": index_of(bare_market, tmp_path / "elsewhere.sqlite"), "CHAIN": bare_market.chain})
    assert other.test_client().post("/api/admin/transactions", json={"raw": raw}).status_code == 201
    assert bare_market.capacity(9) == (1_000, 1_000)


@pytest.mark.parametrize("command", ["set-capacity", "set-default-capacity", "set-interval-prices", "register", "grant-role", "revoke-role", "roles"])
def test_every_admin_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["admin", command, "--help"])
    assert exit_.value.code == 0
    help_text = capsys.readouterr().out
    assert f"usage: gridledger admin {command}" in help_text
    assert "--server" in help_text and "--state" in help_text


def test_roles_help_says_it_lists_every_holder_without_an_address(capsys):
    with pytest.raises(SystemExit):
        main(["admin", "roles", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "usage: gridledger admin roles" in text and "[ADDRESS]" in text
    assert "Without ADDRESS: lists the holders of each role" in text and "With ADDRESS: reads hasRole" in text


def test_admin_is_a_command_and_says_what_it_is_for(capsys):
    with pytest.raises(SystemExit):
        main(["admin", "--help"])
    text = capsys.readouterr().out
    assert "signed here with the role holder's keystore key" in text and "set-capacity" in text


def test_order_list_is_a_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["order", "list", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "usage: gridledger order list" in text and "Nobody else's orders are shown" in text
