"""``gridledger admin ...``: admin and grid-operator actions, signed with the role
holder's keystore key on this machine and relayed by a GridLedger server (--server)
or sent straight to the chain of a state directory (--state).

Each command builds one action (node.admin.actions), finds out which role it needs and
whether the signing account holds it (before asking for the password), signs the
transaction locally and relays it; the server and the contract check the role again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from urllib.parse import urlencode

from node.cli.common import add_key_options, find_key, open_index, unlock_account
from node.errors import InputError
from node.intent.client import DEFAULT_URL, Rejected, call_api

# What each command sends as GET /api/admin/prepare's parameters.
_PARAMS = {
    "setCapacity": lambda a: {"interval": a.interval, "import_kwh": a.import_kwh, "export_kwh": a.export_kwh},
    "setDefaultCapacity": lambda a: {"import_kwh": a.import_kwh, "export_kwh": a.export_kwh},
    "setIntervalPrices": lambda a: {"interval": a.interval, "import_price": a.import_price, "export_price": a.export_price},
    "register": lambda a: {"owner": a.owner, "meter": a.meter, "zone": a.zone, "name": a.name},
    "registerShare": lambda a: {"owner": a.owner, "meter": a.meter, "zone": a.zone, "name": a.name,
                                "battery": a.battery, "capacity_kwh": a.capacity_kwh, "stored_kwh": a.stored_kwh,
                                "charge_efficiency": a.charge_efficiency,
                                "discharge_efficiency": a.discharge_efficiency},
    "scheduleStorageFee": lambda a: {"from_interval": a.from_interval, "fee": a.fee, "operator": a.operator},
    "grantRole": lambda a: {"role": a.role, "account": a.address},
    "revokeRole": lambda a: {"role": a.role, "account": a.address},
}


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Registers ``admin set-capacity|set-default-capacity|set-interval-prices|register|register-share|
    schedule-storage-fee|grant-role|revoke-role|roles``."""
    admin = subparsers.add_parser(
        "admin",
        help="grid-operator and admin actions, signed with the role holder's own key",
        description="Changes what only a role may change: grid capacities (GRID_OPERATOR_ROLE), participants and "
        "roles (DEFAULT_ADMIN_ROLE). Each action is an Ethereum transaction signed here with the role holder's "
        "keystore key (the password from GRIDLEDGER_PASSWORD or the terminal) and relayed by a GridLedger server "
        "(--server, which checks the sender's role before relaying) or sent to the chain of a state directory "
        "(--state). The market contract checks the role in the end; nobody else's key can stand in for it.",
        epilog="Example: gridledger admin set-capacity --interval 1234 --import-kwh 40 --export-kwh 25 "
        "--keystore ~/.gridledger/keystore --account 0xGRID_OPERATOR --server http://127.0.0.1:5000",
    )
    actions = admin.add_subparsers(title="admin commands", metavar="ACTION", required=True)

    p = actions.add_parser("set-capacity", help="the grid capacity of one interval not started yet (grid operator)",
                           description="Sets the community's import and export limit for one interval "
                           "(EnergyMarket.setCapacity); settlements of that interval must stay within it. The interval must "
                           "not have started (a limit set once its flows are metered could bind after the fact), unless "
                           "it started before the market was deployed (a replay's history). Needs GRID_OPERATOR_ROLE. "
                           "kWh with at most 3 decimals; 0 forbids that direction.")
    p.add_argument("--interval", required=True, type=int, metavar="K", help="the interval (not started yet)")
    _add_capacity(p)
    _add_common(p)
    p.set_defaults(run=cmd_admin, build=_action("set_capacity", lambda a: (a.interval, a.import_kwh, a.export_kwh)))

    p = actions.add_parser("set-default-capacity", help="the grid capacity of every interval without its own",
                           description="Sets the default import and export limit (EnergyMarket.setDefaultCapacity) of intervals "
                           "that start from now on; those that started before keep theirs. Refused while an unsettled "
                           "interval still runs under the default before the current one. Needs GRID_OPERATOR_ROLE.")
    _add_capacity(p)
    _add_common(p)
    p.set_defaults(run=cmd_admin, build=_action("set_default_capacity", lambda a: (a.import_kwh, a.export_kwh)))

    p = actions.add_parser("set-interval-prices", help="the import and export tariffs of one interval (grid operator)",
                           description="Fixes one interval's import and export prices (EnergyMarket.setIntervalPrices), "
                           "e.g. day-ahead prices plus the grid fee, overriding the time-of-use tariffs for it; every "
                           "entry of that interval settles at them. The contract takes them only for an interval that "
                           "starts at least the market's notice period (set at deployment; a day for `simulate`) from now. Needs "
                           "GRID_OPERATOR_ROLE. Prices per kWh in the currency, at most 6 decimals.",
                           epilog="Example: gridledger admin set-interval-prices --interval 20160 --import-price 0.2875 "
                           "--export-price 0.0712 --keystore ~/.gridledger/keystore --account 0xGRID_OPERATOR --state "
                           "state/sim")
    p.add_argument("--interval", required=True, type=int, metavar="K", help="the interval (starting a notice period or "
                   "more from now)")
    p.add_argument("--import-price", required=True, metavar="PRICE", help="what importing costs, per kWh")
    p.add_argument("--export-price", required=True, metavar="PRICE", help="what exporting earns, per kWh (at most the "
                   "import price)")
    _add_common(p)
    p.set_defaults(run=cmd_admin, build=_action("set_interval_prices",
                                                lambda a: (a.interval, a.import_price, a.export_price)))

    p = actions.add_parser("register", help="register a participant (admin)",
                           description="Registers OWNER as a new participant in a zone (EnergyMarket.register); "
                           "its id is the next free one, shown in the ParticipantRegistered event. Needs "
                           "DEFAULT_ADMIN_ROLE.")
    p.add_argument("owner", metavar="OWNER", help="the address whose key will sign the participant's orders")
    p.add_argument("--meter", required=True, metavar="ADDRESS", help="the key the participant's meter signs its "
                   "readings with (the participant can set a new one later, for later intervals)")
    p.add_argument("--zone", type=int, default=0, help="grid zone (default: %(default)s)")
    p.add_argument("--name", required=True, help="a name shown in the UI")
    _add_common(p)
    p.set_defaults(run=cmd_admin, build=_action("register_participants",
                                                lambda a: ([a.owner], [a.meter], [a.zone], [a.name])))

    p = actions.add_parser("register-share", help="register a home's account in a shared battery (admin)",
                           description="Registers OWNER as a new share participant (SharedBatteryModule.registerShare): "
                           "a home's virtual account holding CAPACITY kWh of shared battery BATTERY (a number the "
                           "community gives each battery, from 0). It has no load and no PV, is settled like any "
                           "participant and pays the terms' storage fee on the energy it takes in; the contract keeps "
                           "its stored energy within its share. Its id is the next free one. Needs DEFAULT_ADMIN_ROLE.",
                           epilog="Example: gridledger admin register-share 0xOWNER --meter 0xMETER --zone 0 --name "
                           "home-01@school --battery 0 --capacity-kwh 10 --keystore ~/.gridledger/keystore --account "
                           "0xADMIN --state state/sim")
    p.add_argument("owner", metavar="OWNER", help="the address whose key signs the account's orders and mandate (a "
                   "key of its own: one address is one participant)")
    p.add_argument("--meter", required=True, metavar="ADDRESS", help="the key the battery's meter signs the account's "
                   "readings with")
    p.add_argument("--zone", type=int, default=0, help="grid zone, the home's (default: %(default)s)")
    p.add_argument("--name", required=True, help="a name shown in the UI, e.g. home-01@school")
    p.add_argument("--battery", required=True, type=int, metavar="N", help="the shared battery's number")
    p.add_argument("--capacity-kwh", required=True, metavar="KWH", help="the account's share of the battery, kWh "
                   "(more than 0, at most 3 decimals)")
    p.add_argument("--stored-kwh", default="0", metavar="KWH", help="what the account holds now, kWh (default: "
                   "%(default)s; at most its share)")
    p.add_argument("--charge-efficiency", default="0.95", metavar="FRACTION", help="the battery's charge efficiency, "
                   "(0, 1] (default: %(default)s): an account keeps this part of what it takes in")
    p.add_argument("--discharge-efficiency", default="0.95", metavar="FRACTION", help="the battery's discharge "
                   "efficiency, (0, 1] (default: %(default)s)")
    _add_common(p)
    p.set_defaults(run=cmd_admin, build=_action("register_share", lambda a: (
        a.owner, a.meter, a.zone, a.name, a.battery, a.capacity_kwh, a.stored_kwh, a.charge_efficiency,
        a.discharge_efficiency)))

    p = actions.add_parser("schedule-storage-fee", help="the shared batteries' storage fee and who gets it (grid "
                           "operator)",
                           description="Schedules the storage fee that accounts in shared batteries pay per kWh they "
                           "take in, and the participant it is paid to (SharedBatteryModule.scheduleStorageFee), from "
                           "interval FROM on: a new terms version with the tariffs of the one before it, carried over by "
                           "every later version until changed. Like any terms it needs the market's notice period "
                           "(set at deployment; a day for `simulate`). Needs GRID_OPERATOR_ROLE (the contract also "
                           "takes the admin's key). The fee per kWh in the currency, at most 6 decimals.",
                           epilog="Example: gridledger admin schedule-storage-fee --from-interval 20160 --fee 0.02 "
                           "--operator 5 --keystore ~/.gridledger/keystore --account 0xGRID_OPERATOR --state state/sim")
    p.add_argument("--from-interval", required=True, type=int, metavar="K", help="the first interval it applies to "
                   "(a notice period or more from now)")
    p.add_argument("--fee", required=True, metavar="PRICE", help="per kWh an account takes in (0: no fee)")
    p.add_argument("--operator", required=True, type=int, metavar="ID", help="the participant id the fees are paid "
                   "to (the batteries' owner; registered)")
    _add_common(p)
    p.set_defaults(run=cmd_admin, build=_action("schedule_storage_fee", lambda a: (a.from_interval, a.fee, a.operator)))

    for verb, build, what in (("grant-role", "grant_role", "grant a role to"),
                              ("revoke-role", "revoke_role", "revoke a role from")):
        p = actions.add_parser(verb, help=f"{what} an address (admin)",
                               description=f"{what.capitalize().replace('a role', 'ROLE')} ADDRESS (AccessControl."
                               f"{verb.split('-')[0]}Role). ROLE is admin, oracle or grid-operator (or "
                               "DEFAULT_ADMIN_ROLE, ORACLE_ROLE, GRID_OPERATOR_ROLE). Needs the role's admin role: "
                               "DEFAULT_ADMIN_ROLE.")
        p.add_argument("role", metavar="ROLE")
        p.add_argument("address", metavar="ADDRESS")
        _add_common(p)
        p.set_defaults(run=cmd_admin, build=_action(build, lambda a: (a.role, a.address)))

    p = actions.add_parser("roles", help="who holds each role, or which roles an address holds",
                           description="Without ADDRESS: lists the holders of each role (DEFAULT_ADMIN_ROLE, "
                           "ORACLE_ROLE, GRID_OPERATOR_ROLE), from the index's RoleGranted and RoleRevoked events: "
                           "the server's (--server) or the state directory's (--state, which needs no chain and works "
                           "while the oracle runs); an action sent just now shows once the oracle has read the chain. "
                           "With ADDRESS: reads hasRole for it and each role, from the server or the state "
                           "directory's chain.")
    p.add_argument("address", metavar="ADDRESS", nargs="?", help="the address to check (default: list every holder)")
    _add_target(p)
    p.set_defaults(run=cmd_roles)


def _action(builder: str, arguments):
    """A deferred call of node.admin.actions.`builder` on the parsed arguments: the
    actions module loads web3, which the parser must not wait for."""

    def build(args: argparse.Namespace):
        from node.admin import actions

        return getattr(actions, builder)(*arguments(args))

    return build


def _add_capacity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--import-kwh", required=True, metavar="KWH", help="most energy the community may import")
    p.add_argument("--export-kwh", required=True, metavar="KWH", help="most energy the community may export")


def _add_common(p: argparse.ArgumentParser) -> None:
    add_key_options(p, what="the role holder")
    _add_target(p)
    p.add_argument("--print-raw", action="store_true",
                   help="only print the signed raw transaction (to relay elsewhere, e.g. paste into /admin)")


def _add_target(p: argparse.ArgumentParser) -> None:
    target = p.add_mutually_exclusive_group()
    target.add_argument("--server", "--url", dest="url", metavar="URL",
                        help=f"a GridLedger web UI with a chain connection (default: {DEFAULT_URL})")
    target.add_argument("--state", type=Path, metavar="DIR",
                        help="send to the chain of this state directory instead (its embedded chain, which no "
                        "other process may hold meanwhile, or --rpc); market from DIR/deployment.json")
    p.add_argument("--rpc", metavar="URL", help="with --state: the JSON-RPC node the market runs on")


# -- running -----------------------------------------------------------------------------


def cmd_admin(args: argparse.Namespace) -> int:
    action = args.build(args)
    if args.state is not None:
        return _via_chain(args, action)
    return _via_server(args, action)


def _via_server(args: argparse.Namespace, action) -> int:
    from node.admin.actions import encode_action, sign_transaction
    from node.admin.relay import RoleMissing

    url = args.url or DEFAULT_URL
    _, sender = find_key(args.keystore, args.account)
    query = {"action": _command_name(action), "sender": sender} | _PARAMS[action.function](args)
    prepared = call_api(url, "/api/admin/prepare?" + urlencode(query), "preparation")
    if not prepared.get("sender_has_role"):
        raise RoleMissing(action.function, sender, prepared.get("role", "?"))
    tx = prepared["transaction"]
    # The server chose the nonce and fees; the call itself must be exactly what was asked.
    if str(tx.get("data", "")).lower() != "0x" + encode_action(action).hex():
        raise InputError(f"{url} prepared other calldata than {prepared.get('call')} asks for: not signing it")
    raw = sign_transaction(unlock_account(args.keystore, sender), tx)
    if args.print_raw:
        print("0x" + raw.hex())
        return 0
    try:
        answer = call_api(url, "/api/admin/transactions", "transaction", body=json.dumps({"raw": "0x" + raw.hex()}).encode())
    except Rejected as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return 1
    _report(answer)
    return 0


def _via_chain(args: argparse.Namespace, action) -> int:
    from node.admin.actions import sign_transaction
    from node.admin.relay import AdminRelay, RoleMissing, open_chain
    from node.chain.market import Deployment

    deployment = Deployment.load(args.state / "deployment.json")
    with open_chain(rpc=args.rpc, state=args.state) as chain:
        relay = AdminRelay(chain, deployment.market)
        _, sender = find_key(args.keystore, args.account)
        role = relay.required_role(action.function, action.args)
        if not relay.has_role(role, sender):
            raise RoleMissing(action.function, sender, role)
        raw = sign_transaction(unlock_account(args.keystore, sender), relay.prepare(action, sender))
        if args.print_raw:
            print("0x" + raw.hex())
            return 0
        _report(relay.relay(raw).to_json())
    print("  the index learns of it when the oracle next reads the chain", file=sys.stderr)
    return 0


def cmd_roles(args: argparse.Namespace) -> int:
    if args.address is None:
        return _list_holders(args)
    if args.state is not None:
        from node.admin.relay import AdminRelay, open_chain
        from node.chain.market import Deployment

        deployment = Deployment.load(args.state / "deployment.json")
        with open_chain(rpc=args.rpc, state=args.state) as chain:
            roles = AdminRelay(chain, deployment.market).roles_of(args.address)
    else:
        query = urlencode({"address": args.address})
        roles = call_api(args.url or DEFAULT_URL, "/api/admin/roles?" + query, "roles")["roles"]
    held = [name for name, has in roles.items() if has]
    print(f"{args.address}: {', '.join(held) if held else 'no role'}")
    return 0


def _list_holders(args: argparse.Namespace) -> int:
    """`admin roles` without an address: one line per role with its holders."""
    if args.state is not None:
        index = open_index(args.state)
        try:
            answer = index.role_holders()
        finally:
            index.close()
        where, state = f"the index {args.state / 'index.sqlite'}", args.state
    else:
        url = args.url or DEFAULT_URL
        answer = call_api(url, "/api/admin/roles", "role holders")
        where, state = f"the index of the server {url}", "DIR"
    from node.chain.roles import ROLES

    order = {name: i for i, name in enumerate(ROLES)}  # a server's JSON comes with its keys sorted
    for role, holders in sorted(answer["roles"].items(), key=lambda item: (order.get(item[0], len(order)), item[0])):
        print(f"{role}: {', '.join(h['account'] for h in holders) or 'nobody'}")
    print(f"  from {where}, as of block {answer['as_of_block']}", file=sys.stderr)
    if not answer["complete"]:
        print("  warning: that index was written before it recorded roles, so grants in its older blocks are missing: "
              f"rebuild it with `gridledger index rebuild --state {state}`", file=sys.stderr)
    return 0


def _report(answer: dict) -> None:
    print(f"{answer['call']} by {answer['sender']} ({answer['role']}) in transaction {answer['tx_hash']}, "
          f"block {answer['block']}")
    for event in answer["events"]:
        print(f"  {event['text']}")


def _command_name(action) -> str:
    return {"setCapacity": "set-capacity", "setDefaultCapacity": "set-default-capacity", "register": "register",
            "setIntervalPrices": "set-interval-prices", "grantRole": "grant-role",
            "registerShare": "register-share", "scheduleStorageFee": "schedule-storage-fee",
            "revokeRole": "revoke-role"}[action.function]

