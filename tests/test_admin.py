"""Admin and grid-operator actions through the web API: transactions signed by the role
holder's own key, relayed to a real market contract on a real (eth-tester) chain, and
refused with a reason, before any gas is spent, when they are not what the relay takes."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest
from eth_account import Account
from eth_utils import keccak

from node.chain.roles import ROLES
from node.admin.relay import AdminRelay, open_chain
from node.admin.actions import (
    abi_functions,
    grant_role,
    register_participants,
    revoke_role,
    set_capacity,
    set_default_capacity,
    sign_transaction,
)
from node.chain.connection import Chain
from node.errors import ChainError
from node.index.store import Index
from node.chain.market import Deployment, Market
from node.index.rebuild import rebuild_index
from tests.conftest import home_key, served
from tests.test_webui_orders import browser  # noqa: F401  (fixture)
from webui import create_app

GRID_OPERATOR_ROLE = "0x" + keccak(text="GRID_OPERATOR_ROLE").hex()


def index_of(market: Market, path) -> str:
    """An index of `market`'s events, as the oracle would have written it."""
    index = Index(path)
    index.set_meta(chain_id=market.chain_id, market=market.deployment.market, token=market.deployment.token,
                   currency="EUR", interval_minutes=15, start="2026-06-01T00:00:00+00:00", first_interval=0,
                   description="Admin Street")
    index.apply(market.events())
    index.close()
    return str(path)


def catch_up(market: Market, path) -> None:
    """Indexes what `market` did since the index at `path` last read it, as the oracle
    does between settlements: relayed actions reach the index no other way."""
    index = Index(path)
    index.apply(market.events(index.last_block + 1))
    index.close()


@pytest.fixture
def app(bare_market, tmp_path):
    return create_app({"TESTING": True, "INDEX_PATH": index_of(bare_market, tmp_path / "index.sqlite"),
                       "CHAIN": bare_market.chain, "RELAY_ROLE_CHANGES": True})


@pytest.fixture
def client(app):
    return app.test_client()


def ops(market: Market):
    return market.chain.operators


def signed(market: Market, account, action, **changes) -> str:
    """`action` as a raw transaction signed by `account`, prepared like the API does."""
    fields = AdminRelay(market.chain, market.deployment.market).prepare(action, account.address) | changes
    return "0x" + sign_transaction(account, fields).hex()


def relay(client, raw) -> tuple[int, dict]:
    body = raw if isinstance(raw, (str, bytes)) and not str(raw).startswith("0x") else json.dumps({"raw": raw})
    response = client.post("/api/admin/transactions", data=body, content_type="application/json")
    return response.status_code, response.get_json()


# -- the grid operator's capacity ------------------------------------------------------------


def test_grid_operators_signed_set_capacity_is_relayed_and_changes_the_chain(client, bare_market):
    status, answer = relay(client, signed(bare_market, ops(bare_market).grid_operator, set_capacity(3, "12.5", "0.5")))
    assert status == 201, answer
    assert bare_market.capacity(3) == (12_500, 500)
    assert bare_market.capacity(4) == (10_000, 8_000)  # the default, untouched
    assert answer["function"] == "setCapacity" and answer["role"] == "GRID_OPERATOR_ROLE"
    assert answer["sender"] == ops(bare_market).grid_operator.address
    assert answer["args"] == {"interval": 3, "importWh": 12_500, "exportWh": 500}
    assert answer["call"] == "setCapacity(interval=3, importWh=12500, exportWh=500)"
    assert [(e["name"], e["args"]) for e in answer["events"]] == [
        ("CapacitySet", {"interval": 3, "importWh": 12_500, "exportWh": 500})]
    receipt = bare_market.chain.w3.eth.get_transaction_receipt(answer["tx_hash"])
    assert receipt["status"] == 1 and receipt["from"] == ops(bare_market).grid_operator.address


def test_default_capacity_is_set_the_same_way(client, bare_market):
    status, answer = relay(client, signed(bare_market, ops(bare_market).grid_operator, set_default_capacity(20, 15)))
    assert status == 201, answer
    assert bare_market.capacity(99) == (20_000, 15_000)
    assert answer["events"][0]["name"] == "DefaultCapacitySet"


def test_the_same_transaction_signed_by_a_participant_is_forbidden_and_changes_nothing(client, bare_market):
    chain = bare_market.chain
    home = home_key(1)
    head = chain.w3.eth.block_number
    status, answer = relay(client, signed(bare_market, home, set_capacity(3, "50", "50")))
    assert status == 403
    assert answer["missing_role"] == "GRID_OPERATOR_ROLE" and answer["function"] == "setCapacity"
    assert answer["sender"] == home.address
    assert "setCapacity needs GRID_OPERATOR_ROLE" in answer["error"] and home.address in answer["error"]
    assert bare_market.capacity(3) == (10_000, 8_000)
    assert chain.w3.eth.block_number == head  # nothing was sent


def test_a_participant_cannot_grant_itself_a_role(client, bare_market):
    home = home_key(2)
    status, answer = relay(client, signed(bare_market, home, grant_role("GRID_OPERATOR_ROLE", home.address)))
    assert status == 403 and answer["missing_role"] == "DEFAULT_ADMIN_ROLE" and answer["function"] == "grantRole"
    assert not bare_market.market.functions.hasRole(bytes.fromhex(GRID_OPERATOR_ROLE[2:]), home.address).call()


# -- the admin's roles and registrations -------------------------------------------------------


def test_admin_grants_a_role_and_the_grantee_can_then_act_until_revoked(client, bare_market):
    admin, home = ops(bare_market).admin, home_key(1)
    bare_market.chain.fund(home.address, 10**18)  # gas money for the new grid operator
    status, answer = relay(client, signed(bare_market, admin, grant_role("grid-operator", home.address)))
    assert status == 201, answer
    assert answer["role"] == "DEFAULT_ADMIN_ROLE"
    assert answer["events"][0]["name"] == "RoleGranted"
    assert answer["events"][0]["text"].startswith("RoleGranted(role=GRID_OPERATOR_ROLE")
    assert client.get(f"/api/admin/roles?address={home.address}").get_json()["roles"]["GRID_OPERATOR_ROLE"] is True

    status, answer = relay(client, signed(bare_market, home, set_capacity(7, 1, 2)))
    assert status == 201, answer
    assert bare_market.capacity(7) == (1_000, 2_000)

    assert relay(client, signed(bare_market, admin, revoke_role("GRID_OPERATOR_ROLE", home.address)))[0] == 201
    status, answer = relay(client, signed(bare_market, home, set_capacity(8, 1, 2)))
    assert status == 403 and answer["missing_role"] == "GRID_OPERATOR_ROLE"


def test_admin_registers_a_participant(client, bare_market):
    newcomer = Account.from_key("0x" + "c4" * 32)
    status, answer = relay(client, signed(bare_market, ops(bare_market).admin,
                                          register_participants([newcomer.address], [newcomer.address], [2], ["carol"])))
    assert status == 201, answer
    event = answer["events"][0]
    assert event["name"] == "ParticipantRegistered" and event["args"]["participant"] == 5
    assert event["args"]["name"] == "carol" and bare_market.participant_count() == 6


def test_the_contracts_custom_error_is_named_and_nothing_is_sent(client, bare_market):
    head = bare_market.chain.w3.eth.block_number
    again = register_participants([home_key(1).address], [home_key(1).address], [0], ["home-1 again"])
    status, answer = relay(client, signed(bare_market, ops(bare_market).admin, again))
    assert status == 400
    assert answer["contract_error"] == "AlreadyRegistered"
    assert f"AlreadyRegistered(owner={home_key(1).address.lower()}, participant=1)" in answer["error"]
    assert bare_market.chain.w3.eth.block_number == head


def test_capacity_for_a_settled_interval_is_refused_by_name(chain):
    market = Market.deploy(chain, 10_000, 8_000, first_interval=10)  # intervals before 10 are closed
    relay = AdminRelay(chain, market.deployment.market)
    raw = sign_transaction(chain.operators.grid_operator, relay.prepare(set_capacity(4, 1, 1), chain.operators.grid_operator.address))
    with pytest.raises(Exception) as refused:
        relay.relay(raw)
    assert refused.value.error == "CapacityForPastInterval"
    assert "CapacityForPastInterval(interval=4, nextInterval=10)" in str(refused.value)


# -- who holds which role, from the index ---------------------------------------------------------


def holders(client) -> dict[str, list[str]]:
    answer = client.get("/api/admin/roles")
    assert answer.status_code == 200, answer.get_json()
    return {role: [h["account"] for h in accounts] for role, accounts in answer.get_json()["roles"].items()}


def initial_holders(market: Market) -> dict[str, list[str]]:
    return {"DEFAULT_ADMIN_ROLE": [ops(market).admin.address], "ORACLE_ROLE": [ops(market).oracle.address],
            "GRID_OPERATOR_ROLE": [ops(market).grid_operator.address]}


def test_role_holders_are_the_deployers_grants_to_the_operators(client, bare_market):
    assert holders(client) == initial_holders(bare_market)
    answer = client.get("/api/admin/roles").get_json()
    assert answer["roles"]["ORACLE_ROLE"] == [{"account": ops(bare_market).oracle.address,
                                               "block": bare_market.deployment.block,
                                               "tx_hash": bare_market.creation.tx_hash,
                                               "sender": ops(bare_market).admin.address}]
    assert answer["complete"] is True and answer["as_of_block"] == bare_market.chain.w3.eth.block_number


def test_a_granted_role_is_listed_once_indexed_and_gone_once_revoked(app, client, bare_market):
    admin, home, path = ops(bare_market).admin, home_key(1), app.config["INDEX_PATH"]
    status, granted = relay(client, signed(bare_market, admin, grant_role("grid-operator", home.address)))
    assert status == 201, granted
    assert holders(client) == initial_holders(bare_market)  # the relay does not write the index
    catch_up(bare_market, path)
    grid_operators = client.get("/api/admin/roles").get_json()["roles"]["GRID_OPERATOR_ROLE"]
    assert [h["account"] for h in grid_operators] == [ops(bare_market).grid_operator.address, home.address]
    assert grid_operators[1] == {"account": home.address, "block": granted["block"], "tx_hash": granted["tx_hash"],
                                 "sender": admin.address}

    status, revoked = relay(client, signed(bare_market, admin, revoke_role("grid-operator", home.address)))
    assert status == 201, revoked
    catch_up(bare_market, path)
    assert holders(client) == initial_holders(bare_market)
    index = Index(path)
    index.apply(bare_market.events())  # replaying every event changes nothing
    history = index.db.execute("SELECT kind, tx_hash, sender FROM role_events WHERE account = ? ORDER BY block",
                               (home.address.lower(),)).fetchall()
    index.close()
    assert [tuple(row) for row in history] == [("grant", granted["tx_hash"], admin.address.lower()),
                                               ("revoke", revoked["tx_hash"], admin.address.lower())]
    assert holders(client) == initial_holders(bare_market)


def test_a_role_the_node_does_not_name_is_listed_by_its_id(app, client, bare_market):
    auditor = keccak(text="AUDITOR_ROLE")
    bare_market.chain.transact(bare_market.market.functions.grantRole(auditor, home_key(2).address),
                               ops(bare_market).admin, 100_000)
    catch_up(bare_market, app.config["INDEX_PATH"])
    assert holders(client) == initial_holders(bare_market) | {"0x" + auditor.hex(): [home_key(2).address]}


def test_role_holders_need_no_chain_and_the_page_lists_them(bare_market, tmp_path, monkeypatch):
    monkeypatch.delenv("GRIDLEDGER_RPC", raising=False)
    monkeypatch.delenv("GRIDLEDGER_CHAIN_STATE", raising=False)
    client = create_app({"INDEX_PATH": index_of(bare_market, tmp_path / "index.sqlite")}).test_client()
    assert holders(client) == initial_holders(bare_market)
    assert client.get(f"/api/admin/roles?address={home_key(1).address}").status_code == 503  # hasRole needs the chain
    text = page_text(client.get("/admin"))
    admin, oracle = ops(bare_market).admin.address, ops(bare_market).oracle.address
    assert "Role holders" in text and "rebuild" not in text
    assert f"ORACLE_ROLE {oracle} {bare_market.deployment.block} {admin}" in text


def test_an_index_from_before_roles_were_indexed_says_it_misses_grants(bare_market, tmp_path):
    path = index_of(bare_market, tmp_path / "index.sqlite")
    old = Index(path)
    old.db.execute("DROP TABLE role_events")  # as an index written before there was one
    old.close()
    client = create_app({"INDEX_PATH": path, "CHAIN": bare_market.chain}).test_client()
    answer = client.get("/api/admin/roles").get_json()
    assert answer["complete"] is False and answer["roles"] == {name: [] for name in ROLES}
    assert "gridledger index rebuild --state DIR" in page_text(client.get("/admin"))

    rebuilt = rebuild_index(bare_market, tmp_path / "rebuilt.sqlite", progress=False)
    try:
        answer = rebuilt.role_holders()
    finally:
        rebuilt.close()
    assert answer["complete"] is True
    assert {role: [h["account"] for h in accounts] for role, accounts in answer["roles"].items()} == initial_holders(bare_market)


# -- what the relay refuses ----------------------------------------------------------------------


def test_a_transaction_to_another_contract_is_refused(client, bare_market):
    operator = ops(bare_market).grid_operator
    raw = signed(bare_market, operator, set_capacity(3, 1, 1), to=bare_market.deployment.token)
    status, answer = relay(client, raw)
    assert status == 400
    assert f"sent to {bare_market.deployment.token}, not to the market contract {bare_market.deployment.market}" in answer["error"]


def test_a_settlement_or_other_function_is_not_relayed(client, bare_market):
    oracle = ops(bare_market).oracle  # who may settle; still, settling is not for the relay
    settle = next(f for f in abi_functions(bare_market.abi).values() if f.name == "settle")
    data = "0x" + (settle.selector + bytes(96)).hex()
    status, answer = relay(client, signed(bare_market, oracle, set_capacity(3, 1, 1), data=data))
    assert status == 400
    assert f"{settle.signature} is not an admin or grid-operator action" in answer["error"]
    assert "setCapacity" in answer["error"]  # it says what is taken
    deposit = bare_market.market.functions.deposit(1, 5)._encode_transaction_data()
    status, answer = relay(client, signed(bare_market, ops(bare_market).admin, set_capacity(3, 1, 1), data=deposit))
    assert status == 400 and "deposit(uint32,uint256) is not an admin" in answer["error"]
    status, answer = relay(client, signed(bare_market, oracle, set_capacity(3, 1, 1), data="0xdeadbeef"))
    assert status == 400 and "selector 0xdeadbeef is not an admin" in answer["error"]


def test_malformed_arguments_or_no_call_at_all_are_refused(client, bare_market):
    operator = ops(bare_market).grid_operator
    set_capacity_fn = AdminRelay(bare_market.chain, bare_market.deployment.market).functions["setCapacity"]
    short = "0x" + (set_capacity_fn.selector + bytes(10)).hex()
    status, answer = relay(client, signed(bare_market, operator, set_capacity(3, 1, 1), data=short))
    assert status == 400 and "the arguments of setCapacity(uint64,uint64,uint64) are malformed" in answer["error"]
    status, answer = relay(client, signed(bare_market, operator, set_capacity(3, 1, 1), data="0x"))
    assert status == 400 and "a transaction without a function call is not an admin" in answer["error"]


def test_a_replayed_transaction_is_refused(client, bare_market):
    raw = signed(bare_market, ops(bare_market).grid_operator, set_capacity(3, 1, 1))
    assert relay(client, raw)[0] == 201
    status, answer = relay(client, raw)
    assert status == 400 and "is used already" in answer["error"]


def test_a_transaction_for_another_chain_is_refused(client, bare_market):
    raw = signed(bare_market, ops(bare_market).grid_operator, set_capacity(3, 1, 1), chainId=1)
    status, answer = relay(client, raw)
    assert status == 400 and "signed for chain 1" in answer["error"]


def legacy(market: Market) -> str:
    account = market.chain.operators.grid_operator
    tx = {"nonce": 0, "gasPrice": 10**9, "gas": 100_000, "to": market.deployment.market, "value": 0,
          "data": "0x", "chainId": market.chain_id}
    return "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()


@pytest.mark.parametrize("body, problem", [
    ("{not json", 'send {"raw": "0x..."}'),
    (json.dumps({"transaction": "0x02"}), 'send {"raw": "0x..."}'),
    (json.dumps({"raw": "0x02", "extra": 1}), 'send {"raw": "0x..."}'),
    (json.dumps({"raw": 5}), "must be a 0x-prefixed hex string"),
    (json.dumps({"raw": "02f8"}), "must be a 0x-prefixed hex string"),
    (json.dumps({"raw": "0x"}), "empty"),
    (json.dumps({"raw": "0xzz"}), "not valid hex"),
    (json.dumps({"raw": "0x02c0"}), "does not decode as a signed type-2 transaction"),
    (json.dumps({"raw": "0x02" + "00" * 40}), "does not decode"),
    (json.dumps({"raw": "0x01c0"}), "type-1 transaction"),
    (json.dumps({"raw": "0x" + "00" * 20_000}), "an admin action needs far fewer"),
])
def test_malformed_input_is_a_400_saying_what_is_wrong(client, body, problem):
    response = client.post("/api/admin/transactions", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_json()
    assert problem in response.get_json()["error"]


def test_legacy_and_value_carrying_transactions_are_refused(client, bare_market):
    status, answer = relay(client, legacy(bare_market))
    assert status == 400 and "legacy transaction" in answer["error"] and "type-2" in answer["error"]
    status, answer = relay(client, signed(bare_market, ops(bare_market).grid_operator, set_capacity(3, 1, 1), value=5))
    assert status == 400 and "sends 5 wei" in answer["error"]


def test_a_sender_without_gas_money_is_told_before_sending(client, bare_market):
    admin, home = ops(bare_market).admin, home_key(3)
    assert relay(client, signed(bare_market, admin, grant_role("grid-operator", home.address)))[0] == 201
    status, answer = relay(client, signed(bare_market, home, set_capacity(3, 1, 1)))
    assert status == 400 and f"{home.address} has 0 wei" in answer["error"] and "fund the account" in answer["error"]


# -- preparing ------------------------------------------------------------------------------------


def test_prepare_gives_what_to_sign_and_says_whether_the_sender_holds_the_role(client, bare_market):
    operator = ops(bare_market).grid_operator
    query = {"action": "set-capacity", "interval": "5", "import_kwh": "3", "export_kwh": "2.25",
             "sender": operator.address}
    prepared = client.get("/api/admin/prepare", query_string=query).get_json()
    assert prepared["call"] == "setCapacity(interval=5, importWh=3000, exportWh=2250)"
    assert prepared["role"] == "GRID_OPERATOR_ROLE" and prepared["sender_has_role"] is True
    tx = prepared["transaction"]
    assert tx["to"] == bare_market.deployment.market and tx["chainId"] == bare_market.chain_id and tx["type"] == 2
    assert prepared["wallet"]["from"] == operator.address and prepared["wallet"]["gas"] == hex(tx["gas"])
    assert "gridledger admin set-capacity --interval 5 --import-kwh 3 --export-kwh 2.25" in prepared["command"]

    raw = "0x" + bytes(operator.sign_transaction(tx).raw_transaction).hex()
    assert relay(client, raw)[0] == 201
    assert bare_market.capacity(5) == (3_000, 2_250)

    as_home = client.get("/api/admin/prepare", query_string=query | {"sender": home_key(1).address}).get_json()
    assert as_home["sender_has_role"] is False


@pytest.mark.parametrize("query, problem", [
    ({"action": "paint-it-green"}, "action must be one of set-capacity"),
    ({"action": "set-capacity", "import_kwh": "1", "export_kwh": "1"}, "set-capacity needs interval"),
    ({"action": "set-capacity", "interval": "1", "import_kwh": "1.0001", "export_kwh": "1"}, "not a whole number of Wh"),
    ({"action": "set-capacity", "interval": "-1", "import_kwh": "1", "export_kwh": "1"}, "interval must be a whole number"),
    ({"action": "set-default-capacity", "import_kwh": "1", "export_kwh": "1"}, "give sender"),
    ({"action": "set-default-capacity", "import_kwh": "1", "export_kwh": "1", "sender": "0x12"}, "sender must be an address"),
    ({"action": "grant-role", "role": "king", "account": "0x" + "12" * 20, "sender": "0x" + "12" * 20}, "unknown role 'king'"),
])
def test_prepare_names_a_bad_parameter(client, query, problem):
    response = client.get("/api/admin/prepare", query_string=query)
    assert response.status_code == 400 and problem in response.get_json()["error"]


def test_status_shows_the_chains_capacities(client, bare_market):
    relay(client, signed(bare_market, ops(bare_market).grid_operator, set_capacity(1, 4, 4)))
    status = client.get("/api/admin").get_json()
    assert status["market"] == bare_market.deployment.market and status["next_interval"] == 0
    assert status["default_capacity"] == {"import_wh": 10_000, "export_wh": 8_000}
    assert status["capacity"][1] == {"interval": 1, "import_wh": 4_000, "export_wh": 4_000, "override": True}
    assert status["capacity"][0]["override"] is False


# -- without a chain --------------------------------------------------------------------------------


def test_without_a_chain_admin_answers_503_saying_how_to_enable_it(bare_market, tmp_path, monkeypatch):
    monkeypatch.delenv("GRIDLEDGER_RPC", raising=False)
    monkeypatch.delenv("GRIDLEDGER_CHAIN_STATE", raising=False)
    client = create_app({"INDEX_PATH": index_of(bare_market, tmp_path / "index.sqlite")}).test_client()
    raw = signed(bare_market, ops(bare_market).grid_operator, set_capacity(3, 1, 1))
    for response in (client.post("/api/admin/transactions", json={"raw": raw}),
                     client.get("/api/admin/prepare?action=set-capacity"), client.get("/api/admin")):
        assert response.status_code == 503
        assert "GRIDLEDGER_RPC=" in response.get_json()["error"] and "GRIDLEDGER_CHAIN_STATE" in response.get_json()["error"]
    page = client.get("/admin")
    assert page.status_code == 200
    text = unescape(re.sub(r"<[^>]+>", " ", page.get_data(as_text=True)))
    assert "No chain connection" in text and "GRIDLEDGER_RPC" in text
    assert "import 10.00 kWh, export 8.00 kWh" in " ".join(text.split())  # the index's DefaultCapacitySet
    assert bare_market.capacity(3) == (10_000, 8_000)


def test_a_chain_other_than_the_indexed_markets_is_refused(bare_market, tmp_path):
    other = Chain.embedded()
    other.chain_id = bare_market.chain_id + 1  # as a node of another network would answer
    client = create_app({"INDEX_PATH": index_of(bare_market, tmp_path / "index.sqlite"), "CHAIN": other}).test_client()
    response = client.get("/api/admin")
    assert response.status_code == 503 and f"on chain {bare_market.chain_id}" in response.get_json()["error"]


# -- the page ------------------------------------------------------------------------------------------


def page_text(response) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def test_admin_page_shows_capacities_and_roles_from_the_chain(client, bare_market):
    relay(client, signed(bare_market, ops(bare_market).grid_operator, set_capacity(2, "6.5", 1)))
    response = client.get("/admin")
    assert response.status_code == 200
    text = page_text(response)
    assert "Default import 10.00 kWh, export 8.00 kWh" in text
    assert "#2 6.50 kWh 1.00 kWh set for this interval" in text
    grid_owner = ops(bare_market).grid_operator.address
    assert f"owned by {grid_owner} : GRID_OPERATOR_ROLE" in text

    text = page_text(client.get(f"/admin?address={ops(bare_market).admin.address}"))
    assert f"{ops(bare_market).admin.address} : DEFAULT_ADMIN_ROLE" in text


def test_admin_page_prepares_then_relays_a_pasted_transaction(client, bare_market):
    operator = ops(bare_market).grid_operator
    form = {"action": "set-capacity", "interval": "4", "import_kwh": "2", "export_kwh": "3", "sender": operator.address}
    response = client.get("/admin", query_string=form)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "setCapacity(interval=4, importWh=2000, exportWh=3000)" in page_text(response)
    assert "the sender holds it" in page_text(response)
    wallet = json.loads(re.search(r'<script id="wallet-tx" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert wallet["from"] == operator.address and wallet["to"] == bare_market.deployment.market

    raw = signed(bare_market, operator, set_capacity(4, 2, 3))
    response = client.post("/admin", data=form | {"raw": raw})
    assert response.status_code == 201
    assert "Relayed: setCapacity(interval=4, importWh=2000, exportWh=3000)" in page_text(response) and "CapacitySet(interval=4, importWh=2000, exportWh=3000)" in page_text(response)
    assert bare_market.capacity(4) == (2_000, 3_000)

    response = client.post("/admin", data=form | {"raw": signed(bare_market, home_key(1), set_capacity(4, 9, 9))})
    assert response.status_code == 403 and "Not relayed: setCapacity needs GRID_OPERATOR_ROLE" in page_text(response)
    assert bare_market.capacity(4) == (2_000, 3_000)


# -- the chain of a state directory ------------------------------------------------------------------


@pytest.fixture
def state(tmp_path):
    """A state directory as `gridledger simulate` leaves it: a journaled embedded chain,
    the deployment record and an index; its chain closed again."""
    directory = tmp_path / "state"
    with Chain.embedded(directory) as chain:
        market = Market.deploy(chain, 10_000, 8_000)
        market.register([home_key(1).address], [0], ["home-1"])
        market.deployment.save(directory / "deployment.json")
        index_of(market, directory / "index.sqlite")
    return directory


def test_the_server_opens_a_state_directorys_chain_and_relays_into_its_journal(state):
    app = create_app({"INDEX_PATH": str(state / "index.sqlite"), "CHAIN_STATE": str(state)})
    chain = app.extensions["gridledger_chain"]
    try:
        # The journal is locked while the server has it: no oracle can settle meanwhile.
        with pytest.raises(ChainError, match="in use by another GridLedger process"):
            Chain.embedded(state)
        market = Market(chain, Deployment.load(state / "deployment.json"))
        status, answer = relay(app.test_client(), signed(market, chain.operators.grid_operator, set_capacity(6, 7, 8)))
        assert status == 201, answer
    finally:
        chain.close()
    # Reopened, as after a restart: the relayed transaction was journaled with the rest.
    with open_chain(state=state) as again:
        assert Market(again, Deployment.load(state / "deployment.json")).capacity(6) == (7_000, 8_000)


def test_a_state_directory_without_a_chain_is_refused(tmp_path, bare_market):
    with pytest.raises(Exception, match="no embedded chain in"):
        create_app({"INDEX_PATH": index_of(bare_market, tmp_path / "index.sqlite"), "CHAIN_STATE": str(tmp_path / "empty")})
    assert not (tmp_path / "empty").exists()


# -- the real browser: a wallet sends the prepared transaction ---------------------------------------


@pytest.fixture
def live_admin(bare_market, tmp_path):
    app = create_app({"INDEX_PATH": index_of(bare_market, tmp_path / "index.sqlite"), "CHAIN": bare_market.chain})
    with served(app) as url:
        yield url


def sending_wallet(account: str, chain_id: int) -> str:
    return f"""
      window.ethereum = {{ request: async ({{method, params}}) => {{
        if (method === "eth_requestAccounts") return ["{account.lower()}"];
        if (method === "eth_chainId") return "{hex(chain_id)}";
        if (method === "eth_sendTransaction") {{ sessionStorage.setItem("sent", JSON.stringify(params)); return "0x{'ab' * 32}"; }}
        throw new Error("unexpected " + method);
      }} }};"""


@pytest.mark.parametrize("wallet_chain, shown", [(None, "Sent by the wallet: transaction 0x" + "ab" * 32),
                                                  (1, "The wallet is on chain 1, the market on chain")])
def test_the_wallet_button_sends_the_prepared_transaction_on_the_markets_chain(bare_market, live_admin, browser,
                                                                                wallet_chain, shown):
    from urllib.parse import urlencode

    operator = ops(bare_market).grid_operator
    form = {"action": "set-capacity", "interval": "4", "import_kwh": "2", "export_kwh": "3", "sender": operator.address}
    browser.call("Page.enable")
    browser.call("Page.addScriptToEvaluateOnNewDocument",
                 source=sending_wallet(operator.address, wallet_chain or bare_market.chain_id))
    browser.call("Page.navigate", url=f"{live_admin}/admin?{urlencode(form)}")
    browser.wait_for("document.readyState === 'complete' && !document.getElementById('wallet').hidden")
    browser.eval("document.getElementById('wallet').click()")
    text = browser.wait_for("!document.getElementById('wallet-result').hidden && document.getElementById('wallet-result').innerText")
    assert shown in text
    sent = browser.eval("sessionStorage.getItem('sent')")
    if wallet_chain is not None:
        assert sent is None
        return
    (tx,) = json.loads(sent)
    assert tx["from"] == operator.address and tx["to"] == bare_market.deployment.market
    assert bytes.fromhex(tx["data"][2:]) == AdminRelay(bare_market.chain, bare_market.deployment.market).encode(set_capacity(4, 2, 3))


def test_a_relay_to_a_json_rpc_node_holds_no_keys():
    from node.chain.anvil import start_anvil

    with start_anvil(None) as anvil:
        chain = open_chain(rpc=anvil.url)
        # Even on a local dev chain, whose well-known keys the oracle would take.
        assert chain.operators is None and chain.chain_id == 31337
