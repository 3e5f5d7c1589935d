"""Admin and grid-operator actions: the /admin page and /api/admin.

The server signs nothing and grants nothing. An action is an Ethereum transaction
signed by the role holder's own key (a wallet, or `gridledger admin ...` with a
keystore); the server prepares the unsigned transaction for whoever asks, and relays a
signed one to the chain after node/admin/relay.py's checks (for the market, an admin
function, from a holder of the role it needs, would not revert). The contract's
``onlyRole`` decides in the end, so a server that skipped the checks could not grant
anyone anything either.

It needs a chain connection, which the rest of the UI (a view of the index) does not:
config CHAIN (a node.chain.Chain), CHAIN_RPC (env GRIDLEDGER_RPC, a JSON-RPC node) or
CHAIN_STATE (env GRIDLEDGER_CHAIN_STATE, a state directory whose embedded chain the
server then opens in-process and holds the lock of). Without one, /api/admin answers
503 saying how to configure it, and the page shows what the index knows: the
capacities and the role holders (GET /api/admin/roles without an address, too).
"""

from __future__ import annotations

import shlex
import threading

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from node.chain.roles import ROLES
from node.admin.actions import (
    Action,
    grant_role,
    register_participants,
    register_share,
    revoke_role,
    schedule_storage_fee,
    set_capacity,
    set_interval_prices,
    set_default_capacity,
)
from node.admin.relay import AdminRelay, ContractRefused, RoleChangesRefused, RoleMissing, parse_address
from node.errors import ChainError, InputError
from webui.context import get_index, get_meta
from webui.params import refused

bp = Blueprint("admin", __name__)

CHAIN_EXTENSION = "gridledger_chain"
RELAY_EXTENSION = "gridledger_admin_relay"
UPCOMING_INTERVALS = 8  # capacities shown on the page
_relay_lock = threading.Lock()

NO_CHAIN = (
    "Admin actions are transactions on the market's chain, and this server was started without a connection to it. "
    "Restart it with `gridledger serve --state DIR --with-chain` to open the state directory's own chain (stop any "
    "oracle running on it first), or with `gridledger serve --rpc URL` for the node the market runs on (the "
    "environment variables GRIDLEDGER_CHAIN_STATE=DIR and GRIDLEDGER_RPC=URL do the same). Without the web UI, "
    "`gridledger admin ... --state DIR` acts directly."
)

# The actions the page and /api/admin/prepare build, with their query parameters.
ACTIONS = {
    "set-capacity": ("interval", "import_kwh", "export_kwh"),
    "set-default-capacity": ("import_kwh", "export_kwh"),
    "set-interval-prices": ("interval", "import_price", "export_price"),
    "register": ("owner", "meter", "zone", "name"),
    "register-share": ("owner", "meter", "zone", "name", "battery", "capacity_kwh"),
    "schedule-storage-fee": ("from_interval", "fee", "operator"),
    "grant-role": ("role", "account"),
    "revoke-role": ("role", "account"),
}


def has_chain() -> bool:
    return current_app.extensions.get(CHAIN_EXTENSION) is not None


def get_relay() -> AdminRelay:
    """The app's relay, made on first use from its chain and the index's market; 503
    with what to do if there is no chain or no market on it."""
    app = current_app._get_current_object()
    relay = app.extensions.get(RELAY_EXTENSION)
    if relay is not None:
        return relay
    chain = app.extensions.get(CHAIN_EXTENSION)
    if chain is None:
        abort(503, NO_CHAIN)
    meta = get_meta()
    if "market" not in meta or "chain_id" not in meta:
        abort(503, "this index has no market yet: deploy one with `gridledger demo` or `gridledger simulate` first")
    if int(meta["chain_id"]) != chain.chain_id:
        abort(503, f"the index is of a market on chain {meta['chain_id']}, but the server's chain is {chain.description} "
                   f"(chain {chain.chain_id}): point GRIDLEDGER_RPC at the market's node")
    with _relay_lock:
        relay = app.extensions.get(RELAY_EXTENSION)
        if relay is None:
            try:
                relay = AdminRelay(chain, meta["market"], role_changes=app.config["RELAY_ROLE_CHANGES"])
            except ChainError as exc:
                abort(503, str(exc))
            app.extensions[RELAY_EXTENSION] = relay
    return relay


def action_from(args) -> tuple[str, Action]:
    """The action named by `args["action"]` with its parameters (kWh, not Wh); InputError."""
    name = (args.get("action") or "").strip()
    if name not in ACTIONS:
        raise InputError(f"action must be one of {', '.join(ACTIONS)}, got {name!r}")
    values = {k: (args.get(k) or "").strip() for k in ACTIONS[name]}
    missing = [k for k, v in values.items() if not v]
    if missing:
        raise InputError(f"{name} needs {', '.join(missing)}")
    if name == "set-capacity":
        return name, set_capacity(_int(values["interval"], "interval"), values["import_kwh"], values["export_kwh"])
    if name == "set-default-capacity":
        return name, set_default_capacity(values["import_kwh"], values["export_kwh"])
    if name == "set-interval-prices":
        return name, set_interval_prices(_int(values["interval"], "interval"), values["import_price"],
                                         values["export_price"])
    if name == "register":
        return name, register_participants([values["owner"]], [values["meter"]], [_int(values["zone"], "zone")],
                                           [values["name"]])
    if name == "register-share":
        extra = {k: (args.get(k) or "").strip() for k in ("stored_kwh", "charge_efficiency", "discharge_efficiency")}
        return name, register_share(values["owner"], values["meter"], _int(values["zone"], "zone"), values["name"],
                                    _int(values["battery"], "battery"), values["capacity_kwh"],
                                    **{k: v for k, v in extra.items() if v})
    if name == "schedule-storage-fee":
        return name, schedule_storage_fee(_int(values["from_interval"], "from_interval"), values["fee"],
                                          _int(values["operator"], "operator"))
    build = grant_role if name == "grant-role" else revoke_role
    return name, build(values["role"], values["account"])


def prepare(args) -> dict:
    """What GET /api/admin/prepare answers: the unsigned transaction of an action from
    `sender`, for a CLI to sign (`transaction`) or a wallet to send (`wallet`)."""
    relay = get_relay()
    name, action = action_from(args)
    sender = (args.get("sender") or "").strip()
    if not sender:
        raise InputError("give sender: the address whose key will sign the transaction")
    sender = parse_address(sender, "sender")
    fields = relay.prepare(action, sender)
    role = relay.required_role(action.function, action.args)
    return {
        "action": name, "function": action.function, "call": relay.describe(action), "role": role,
        "sender": sender, "sender_has_role": relay.has_role(role, sender),
        "transaction": fields,
        # eth_sendTransaction's parameters; the wallet fills in the nonce.
        "wallet": {"from": sender, "to": fields["to"], "data": fields["data"], "value": "0x0",
                   "gas": hex(fields["gas"]), "maxFeePerGas": hex(fields["maxFeePerGas"]),
                   "maxPriorityFeePerGas": hex(fields["maxPriorityFeePerGas"]), "chainId": hex(fields["chainId"])},
        "command": _command(name, args, sender),
    }


def relay_raw(raw) -> dict:
    """Relays a raw signed transaction; what POST /api/admin/transactions answers with."""
    return get_relay().relay(raw).to_json()


# -- JSON API --------------------------------------------------------------------------


@bp.get("/api/admin")
def api_status():
    relay = get_relay()
    default = relay.default_capacity()
    k = relay.next_interval()
    return {
        "chain": relay.chain.description, "chain_id": relay.chain.chain_id, "market": relay.address,
        "next_interval": k, "default_capacity": {"import_wh": default[0], "export_wh": default[1]},
        "capacity": [_capacity_row(relay, k + j, default) for j in range(UPCOMING_INTERVALS)],
        "roles": {name: "0x" + value.hex() for name, value in ROLES.items()},
    }


@bp.get("/api/admin/roles")
def api_roles():
    """With ?address=: the roles it holds, from the chain (hasRole). Without: each role's
    holders, from the index (which needs no chain connection)."""
    if "address" not in request.args:
        return get_index().role_holders()
    relay = get_relay()
    address = request.args.get("address", "")
    try:
        return {"address": parse_address(address), "roles": relay.roles_of(address)}
    except InputError as exc:
        raise refused(exc) from exc


@bp.get("/api/admin/prepare")
def api_prepare():
    try:
        return prepare(request.args)
    except RoleChangesRefused as exc:
        return jsonify(error=str(exc), function=exc.function), 403
    except InputError as exc:
        raise refused(exc) from exc


@bp.post("/api/admin/transactions")
def api_relay():
    get_relay()  # 503 before anything else if there is no chain
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or set(body) != {"raw"}:
        abort(400, 'send {"raw": "0x..."}: the signed transaction, as eth_signTransaction or '
                   '`gridledger admin ... --print-raw` give it, and nothing else')
    try:
        return relay_raw(body["raw"]), 201
    except RoleMissing as exc:
        return jsonify(error=str(exc), function=exc.function, sender=exc.sender, missing_role=exc.role), 403
    except RoleChangesRefused as exc:
        return jsonify(error=str(exc), function=exc.function), 403
    except ContractRefused as exc:
        return jsonify(error=str(exc), contract_error=exc.error), 400
    except InputError as exc:
        raise refused(exc) from exc
    except ChainError as exc:
        abort(502, f"the chain failed: {exc}")


# -- the page --------------------------------------------------------------------------


@bp.get("/admin")
def page():
    values = {k: request.args.get(k, "").strip() for k in ("action", "sender", "interval", "import_kwh", "export_kwh")}
    values["action"] = values["action"] or "set-capacity"
    prepared, error, status = None, None, 200
    if has_chain() and request.args.get("sender"):
        try:
            prepared = prepare(request.args)
        except InputError as exc:
            error, status = str(exc), 400
    return _render(values, prepared=prepared, error=error, status=status)


@bp.post("/admin")
def relay_form():
    """The pasted raw transaction, relayed without JavaScript."""
    values = {k: request.form.get(k, "").strip() for k in ("action", "sender", "interval", "import_kwh", "export_kwh")}
    raw = request.form.get("raw", "").strip()
    relayed, error, status = None, None, 201
    try:
        relayed = relay_raw(raw)
    except (RoleMissing, RoleChangesRefused) as exc:
        error, status = str(exc), 403
    except InputError as exc:
        error, status = str(exc), 400
    except ChainError as exc:
        error, status = f"the chain failed: {exc}", 502
    return _render(values, relayed=relayed, error=error and f"Not relayed: {error}", status=status)


def _render(values: dict, status: int, prepared: dict | None = None, relayed: dict | None = None,
            error: str | None = None):
    chain_status = _chain_status() if has_chain() else None
    index_capacity = _index_capacity() if chain_status is None else None
    grid = get_index().participant(0)
    if grid is not None:
        grid = dict(grid) | {"owner": parse_address(grid["owner"])}  # events index addresses in lower case
    address = request.args.get("address", "").strip()
    roles_of = None
    if address and chain_status is not None and chain_status.get("relay"):
        try:
            roles_of = {"address": parse_address(address), "roles": get_relay().roles_of(address)}
        except InputError as exc:
            error = error or str(exc)
    return render_template(
        "admin.html", values=values, prepared=prepared, relayed=relayed, error=error, status=chain_status,
        index_capacity=index_capacity, grid=grid, roles_of=roles_of, address=address, no_chain=NO_CHAIN,
        holders=get_index().role_holders(),
        grid_roles=(_at_head(get_relay(), "grid_roles", lambda: get_relay().roles_of(grid["owner"]))
                    if grid and chain_status and chain_status.get("relay") else None),
    ), status


def _chain_status() -> dict:
    """What the chain says now, for the page; a chain that cannot be used is said so."""
    try:
        relay = get_relay()
        return {"relay": relay, "description": relay.chain.description} | _at_head(relay, "status", lambda: _capacities(relay))
    except ChainError as exc:
        return {"relay": None, "problem": str(exc)}
    except HTTPException as exc:  # get_relay's 503: its description says why
        return {"relay": None, "problem": exc.description}


def _capacities(relay: AdminRelay) -> dict:
    default = relay.default_capacity()
    k = relay.next_interval()
    return {"next_interval": k, "default": default,
            "upcoming": [_capacity_row(relay, k + j, default) for j in range(UPCOMING_INTERVALS)]}


_head_lock = threading.Lock()


def _at_head(relay: AdminRelay, key: str, read):
    """`read()`, computed once per chain head: contract state changes only with a new
    block, and the page's dozen eth_calls cost ~40 ms each on the embedded chain."""
    head = relay.chain.w3.eth.block_number
    cache = current_app.extensions.setdefault("gridledger_admin_head_cache", {})
    with _head_lock:
        cached = cache.get(key)
    if cached is not None and cached[0] == head:
        return cached[1]
    value = read()
    with _head_lock:
        cache[key] = (head, value)
    return value


def _capacity_row(relay: AdminRelay, k: int, default: tuple[int, int]) -> dict:
    importing, exporting = relay.capacity(k)
    # The contract does not say whether an override is set; one equal to the default
    # makes no difference to a settlement either.
    return {"interval": k, "import_wh": importing, "export_wh": exporting, "override": (importing, exporting) != default}


def _index_capacity() -> dict:
    """The capacities the index has seen (DefaultCapacitySet, CapacitySet), for a server
    without a chain connection."""
    default, overrides = None, {}
    for row in get_index().capacity_events():
        interval, importing, exporting = row["interval"], row["import_wh"], row["export_wh"]
        if interval is None:
            default = (importing, exporting)
        else:
            overrides[interval] = (importing, exporting)
    last = get_index().last_interval()
    upcoming = sorted((k, v) for k, v in overrides.items() if last is None or k > last)
    return {"default": default, "overrides": upcoming}


def _command(name: str, args, sender: str) -> str:
    """The `gridledger admin` command line that does the same from a keystore."""
    command = ["gridledger", "admin", name]
    if name in ("grant-role", "revoke-role"):
        command += [args.get("role", ""), args.get("account", "")]
    elif name == "register":
        command += [args.get("owner", ""), "--meter", args.get("meter", ""), "--zone", args.get("zone", ""),
                    "--name", args.get("name", "")]
    else:
        if name == "set-capacity":
            command += ["--interval", args.get("interval", "")]
        command += ["--import-kwh", args.get("import_kwh", ""), "--export-kwh", args.get("export_kwh", "")]
    command += ["--keystore", "DIR", "--account", sender, "--server", request.host_url.rstrip("/")]
    return shlex.join(command)


def _int(raw: str, what: str) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20:
        raise InputError(f"{what} must be a whole number, got {raw[:40]!r}", field=what)
    return int(raw)


