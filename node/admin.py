"""Admin and grid-operator actions: transactions signed by the role holder's own key,
relayed to the market contract.

The contract is what enforces the roles (``onlyRole`` checks ``msg.sender``), so an
action *is* an Ethereum transaction signed by the role holder, and whoever relays it
adds no authority and holds no key. This module builds the unsigned transaction of an
action (:meth:`AdminRelay.prepare`), signs it locally (:func:`sign_transaction`, with
a keystore account), and relays a raw signed transaction (:meth:`AdminRelay.relay`)
after checks that say in words what is wrong before anything costs gas:

1. it decodes, and is a type-2 (EIP-1559) transaction: the only kind taken, since it
   names its chain and so cannot be replayed on another;
2. it is for this chain, sent to the market contract, without value, calling one of
   ``ADMIN_FUNCTIONS`` with well-formed arguments;
3. its sender, recovered from the signature, holds the role that function needs
   (``hasRole`` on chain): otherwise :class:`RoleMissing`, naming the function, the
   sender and the role;
4. its nonce is the sender's next, its fee covers the base fee, the sender can pay;
5. an ``eth_call`` of it succeeds: otherwise :class:`ContractRefused` with the
   contract's custom error by name.

Then it is sent exactly as :meth:`node.chain.Chain.send_raw` sends the node's own
transactions (on the embedded chain: journaled once accepted, so it survives a
restart), and the receipt's market events come back decoded.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError, EncodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_keys.exceptions import BadSignature
from eth_utils import is_hex_address, keccak, to_checksum_address, to_hex
from hexbytes import HexBytes
from rlp.exceptions import RLPException

from node.build import load_artifact
from node.chain import Chain
from node.errors import ChainError, InputError
from node.events import Event, EventDecoder
from node.market import MAX_TX_GAS, REGISTER_GAS_PER_PARTICIPANT
from node.order_cli import whole_wh

ROLES: dict[str, bytes] = {
    "DEFAULT_ADMIN_ROLE": bytes(32),
    "ORACLE_ROLE": keccak(text="ORACLE_ROLE"),
    "GRID_OPERATOR_ROLE": keccak(text="GRID_OPERATOR_ROLE"),
}
_ROLE_ALIASES = {"ADMIN": "DEFAULT_ADMIN_ROLE", "DEFAULT_ADMIN": "DEFAULT_ADMIN_ROLE", "ORACLE": "ORACLE_ROLE",
                 "GRID_OPERATOR": "GRID_OPERATOR_ROLE", "GRID-OPERATOR": "GRID_OPERATOR_ROLE"}
FEE_PRIORITY = 1  # wei per gas, as node/chain.py's own transactions
MAX_RELAYED_BYTES = 16 * 1024  # an admin transaction is a few hundred bytes; a batch of registrations more


class RoleMissing(InputError):
    """The transaction's sender does not hold the role its function needs (HTTP 403)."""

    def __init__(self, function: str, sender: str, role: str) -> None:
        super().__init__(f"{function} needs {role}, which the sender {sender} does not hold: sign it with the key "
                         f"of a {role} holder (ask an admin to grant the role with `gridledger admin grant-role`)")
        self.function, self.sender, self.role = function, sender, role


class ContractRefused(InputError):
    """The market contract refuses the call (it would revert, or did): `error` is its
    custom error's name, e.g. ``CapacityForPastInterval``."""

    def __init__(self, message: str, error: str | None) -> None:
        super().__init__(message)
        self.error = error


# -- what may be relayed -------------------------------------------------------------


@dataclass(frozen=True)
class AdminFunction:
    """A market function the relay takes, with the role its caller needs (None: the
    admin role of the role it grants or revokes, read with getRoleAdmin) and its gas."""

    name: str
    role: str | None
    gas: Callable[[tuple], int]


ADMIN_FUNCTIONS: dict[str, AdminFunction] = {f.name: f for f in (
    AdminFunction("setCapacity", "GRID_OPERATOR_ROLE", lambda args: 100_000),
    AdminFunction("setDefaultCapacity", "GRID_OPERATOR_ROLE", lambda args: 80_000),
    AdminFunction("register", "DEFAULT_ADMIN_ROLE",
                  lambda args: 60_000 + REGISTER_GAS_PER_PARTICIPANT + 50 * len(args[2].encode())),
    AdminFunction("registerBatch", "DEFAULT_ADMIN_ROLE", lambda args: min(
        MAX_TX_GAS, 60_000 + REGISTER_GAS_PER_PARTICIPANT * len(args[0]) + 50 * sum(len(n.encode()) for n in args[2]))),
    AdminFunction("updateParticipant", "DEFAULT_ADMIN_ROLE", lambda args: 80_000),
    AdminFunction("grantRole", None, lambda args: 100_000),
    AdminFunction("revokeRole", None, lambda args: 100_000),
)}


@dataclass(frozen=True)
class AbiFunction:
    """One function of the contract ABI: its selector and argument types and names."""

    name: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.types)})"

    @property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]


def abi_functions(abi: list[dict]) -> dict[bytes, AbiFunction]:
    found = {}
    for entry in abi:
        if entry.get("type") == "function":
            inputs = entry["inputs"]
            f = AbiFunction(entry["name"], tuple(_abi_type(a) for a in inputs), tuple(a["name"] for a in inputs))
            found[f.selector] = f
    return found


def _abi_type(arg: dict) -> str:
    if arg["type"].startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in arg["components"]) + ")" + arg["type"][len("tuple"):]
    return arg["type"]


def market_functions() -> dict[str, AbiFunction]:
    """The relayable functions present in the compiled market contract, by name."""
    return {f.name: f for f in abi_functions(load_artifact("EnergyMarket")["abi"]).values() if f.name in ADMIN_FUNCTIONS}


# -- actions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One call of an admin function with its arguments, as the chain takes them."""

    function: str
    args: tuple

    def describe(self, names: Sequence[str] = ()) -> str:
        shown = [_show(v) for v in self.args]
        return f"{self.function}({', '.join(f'{n}={v}' for n, v in zip(names, shown)) if names else ', '.join(shown)})"


def set_capacity(interval: int, import_kwh: str | int, export_kwh: str | int) -> Action:
    """The grid operator's capacity for one interval not yet settled, given in kWh."""
    return Action("setCapacity", (_uint(interval, 64, "interval"),
                                  _uint(whole_wh(import_kwh, "import capacity"), 64, "import capacity (Wh)"),
                                  _uint(whole_wh(export_kwh, "export capacity"), 64, "export capacity (Wh)")))


def set_default_capacity(import_kwh: str | int, export_kwh: str | int) -> Action:
    """The capacity of every interval without its own, in kWh."""
    return Action("setDefaultCapacity", (_uint(whole_wh(import_kwh, "import capacity"), 64, "import capacity (Wh)"),
                                         _uint(whole_wh(export_kwh, "export capacity"), 64, "export capacity (Wh)")))


def register_participants(owners: Sequence[str], zones: Sequence[int], names: Sequence[str]) -> Action:
    """Registers participants (ids in the order given); one is `register`, more `registerBatch`."""
    if not owners or not len(owners) == len(zones) == len(names):
        raise InputError(f"give one zone and one name per owner (got {len(owners)} owners, {len(zones)} zones, "
                         f"{len(names)} names)")
    owners = [parse_address(o, "owner") for o in owners]
    zones = [_uint(z, 16, "zone") for z in zones]
    names = [str(n) for n in names]
    if len(owners) == 1:
        return Action("register", (owners[0], zones[0], names[0]))
    return Action("registerBatch", (owners, zones, names))


def grant_role(role: str, account: str) -> Action:
    return Action("grantRole", (role_id(role), parse_address(account, "account")))


def revoke_role(role: str, account: str) -> Action:
    return Action("revokeRole", (role_id(role), parse_address(account, "account")))


def role_id(role: str | bytes) -> bytes:
    """A role's bytes32 id from its name (``GRID_OPERATOR_ROLE``, ``grid-operator``,
    ``admin``, ...) or its 0x-hex id."""
    if isinstance(role, (bytes, bytearray)) and len(role) == 32:
        return bytes(role)
    text = str(role).strip()
    if text.startswith("0x") and len(text) == 66:
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            pass
    name = text.upper().replace("-", "_")
    name = _ROLE_ALIASES.get(name, name)
    if not name.endswith("_ROLE"):
        name += "_ROLE"
    if name not in ROLES:
        raise InputError(f"unknown role {role!r}: use one of {', '.join(ROLES)} (or admin, oracle, grid-operator)")
    return ROLES[name]


def role_name(role: bytes) -> str:
    for name, value in ROLES.items():
        if value == bytes(role):
            return name
    return "0x" + bytes(role).hex()


def encode_call(function: AbiFunction, args: tuple) -> bytes:
    try:
        return function.selector + abi_encode(list(function.types), list(args))
    except (EncodingError, TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"cannot encode {function.signature} with {args!r}: {exc}") from exc


def encode_action(action: Action) -> bytes:
    """The calldata of `action`, from the compiled contract's ABI."""
    functions = market_functions()
    if action.function not in functions:
        raise InputError(f"the market contract has no {action.function}")
    return encode_call(functions[action.function], action.args)


def sign_transaction(account: LocalAccount, fields: dict[str, Any]) -> bytes:
    """The raw signed type-2 transaction of prepared `fields` (as AdminRelay.prepare
    or GET /api/admin/prepare give them)."""
    tx = {k: fields[k] for k in ("type", "chainId", "nonce", "to", "data", "value", "gas", "maxFeePerGas",
                                 "maxPriorityFeePerGas")}
    tx["type"] = 2
    return bytes(account.sign_transaction(tx).raw_transaction)


def parse_raw(raw: str | bytes) -> bytes:
    """The bytes of a raw transaction given as 0x-hex (or bytes); InputError otherwise."""
    if isinstance(raw, (bytes, bytearray)):
        data = bytes(raw)
    elif isinstance(raw, str) and raw.strip().startswith("0x"):
        try:
            data = bytes.fromhex(raw.strip()[2:])
        except ValueError as exc:
            raise InputError("the raw transaction is not valid hex") from exc
    else:
        raise InputError('the raw transaction must be a 0x-prefixed hex string (eth_signTransaction\'s "raw")')
    if not data:
        raise InputError("the raw transaction is empty")
    if len(data) > MAX_RELAYED_BYTES:
        raise InputError(f"the raw transaction is {len(data)} bytes; an admin action needs far fewer (at most "
                         f"{MAX_RELAYED_BYTES})")
    return data


# -- the relay -------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    """A relayable transaction: who sent it, what it calls, with which role."""

    raw: bytes
    tx_hash: str
    sender: str
    function: str
    args: dict[str, Any]
    role: str
    fields: dict[str, Any]

    def describe(self) -> str:
        return f"{self.function}({', '.join(f'{k}={_show(v)}' for k, v in self.args.items())})"


@dataclass(frozen=True)
class Relayed:
    """A relayed transaction, mined successfully, with its market events."""

    tx_hash: str
    block: int
    gas_used: int
    sender: str
    function: str
    args: dict[str, Any]
    role: str
    events: list[Event]

    @property
    def call(self) -> str:
        return f"{self.function}({', '.join(f'{k}={_show(v)}' for k, v in self.args.items())})"

    def to_json(self) -> dict[str, Any]:
        return {"tx_hash": self.tx_hash, "block": self.block, "gas_used": self.gas_used, "sender": self.sender,
                "function": self.function, "call": self.call, "args": {k: _jsonable(v) for k, v in self.args.items()},
                "role": self.role, "events": [event_json(e) for e in self.events]}


class AdminRelay:
    """Builds, checks and relays admin transactions for one market contract.

    Every chain access goes through one lock: eth-tester is not thread-safe, and two
    relays at once could race on a sender's nonce."""

    def __init__(self, chain: Chain, market_address: str) -> None:
        if not is_hex_address(market_address):
            raise InputError(f"{market_address!r} is not a market contract address")
        artifact = load_artifact("EnergyMarket")
        self.chain = chain
        self.address = to_checksum_address(market_address)
        self.lock = threading.RLock()
        self.contract = chain.contract(self.address, artifact)  # also teaches the chain its custom errors
        self.decoder = EventDecoder(artifact["abi"], self.address)
        self._all = abi_functions(artifact["abi"])
        self.functions = {f.name: f for f in self._all.values() if f.name in ADMIN_FUNCTIONS}
        with self.lock:
            if not chain.w3.eth.get_code(self.address):
                raise ChainError(f"no market contract at {self.address} on {chain.description}: is this the chain "
                                 "the market was deployed on?")

    # -- reading ------------------------------------------------------------------

    def has_role(self, role: str | bytes, address: str) -> bool:
        with self.lock:
            return bool(self.contract.functions.hasRole(role_id(role), parse_address(address, "address")).call())

    def roles_of(self, address: str) -> dict[str, bool]:
        return {name: self.has_role(value, address) for name, value in ROLES.items()}

    def required_role(self, function: str, args: tuple) -> str:
        """The role a caller of `function` with `args` needs, by name."""
        role = ADMIN_FUNCTIONS[function].role
        if role is not None:
            return role
        with self.lock:
            return role_name(self.contract.functions.getRoleAdmin(args[0]).call())

    def default_capacity(self) -> tuple[int, int]:
        with self.lock:
            importing, exporting, _ = self.contract.functions.defaultCapacity().call()
        return importing, exporting

    def capacity(self, interval: int) -> tuple[int, int]:
        with self.lock:
            return tuple(self.contract.functions.capacityOf(interval).call())

    def next_interval(self) -> int:
        with self.lock:
            return self.contract.functions.nextInterval().call()

    # -- building -----------------------------------------------------------------

    def encode(self, action: Action) -> bytes:
        if action.function not in self.functions:
            raise InputError(f"the market contract at {self.address} has no {action.function}")
        return encode_call(self.functions[action.function], action.args)

    def describe(self, action: Action) -> str:
        f = self.functions.get(action.function)
        return action.describe(f.names if f else ())

    def prepare(self, action: Action, sender: str) -> dict[str, Any]:
        """The unsigned type-2 transaction of `action` from `sender`: its next nonce, the
        gas the action needs and a fee of twice the base fee plus 1 gwei."""
        sender = parse_address(sender, "sender")
        data = self.encode(action)
        with self.lock:
            nonce = self.chain.w3.eth.get_transaction_count(sender, "pending")
            base = self.chain.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        return {"type": 2, "chainId": self.chain.chain_id, "nonce": nonce, "to": self.address, "data": to_hex(data),
                "value": 0, "gas": ADMIN_FUNCTIONS[action.function].gas(action.args),
                "maxFeePerGas": 2 * base + 1_000_000_000, "maxPriorityFeePerGas": FEE_PRIORITY}

    # -- relaying -----------------------------------------------------------------

    def check(self, raw: bytes | str) -> Checked:
        """Decodes `raw` and runs every check but the eth_call; see the module docstring."""
        raw = parse_raw(raw)
        tx, sender = decode_transaction(raw)
        if tx["chainId"] != self.chain.chain_id:
            raise InputError(f"the transaction is signed for chain {tx['chainId']}, but the market is on chain "
                             f"{self.chain.chain_id}: prepare it again for this chain")
        to = tx.get("to") or b""
        if len(to) != 20 or to_checksum_address(to) != self.address:
            target = to_checksum_address(to) if len(to) == 20 else "nowhere (a contract creation)"
            raise InputError(f"the transaction is sent to {target}, not to the market contract {self.address}; "
                             "only calls of the market's admin and grid-operator functions are relayed")
        if tx["value"]:
            raise InputError(f"the transaction sends {tx['value']} wei; admin actions send none")
        data = bytes(tx["data"])
        function = self._all.get(data[:4])
        if function is None or function.name not in self.functions:
            called = (function.signature if function else f"selector 0x{data[:4].hex()}" if len(data) >= 4
                      else "a transaction without a function call")
            raise InputError(f"{called} is not an admin or grid-operator action; the relay takes only "
                             f"{', '.join(sorted(self.functions))}")
        try:
            values = abi_decode(list(function.types), data[4:])
        except (DecodingError, ValueError, OverflowError) as exc:
            raise InputError(f"the arguments of {function.signature} are malformed: {exc}") from exc
        role = self.required_role(function.name, tuple(values))
        if not self.has_role(role, sender):
            raise RoleMissing(function.name, sender, role)
        return Checked(raw, to_hex(keccak(raw)), sender, function.name, dict(zip(function.names, values)), role, tx)

    def relay(self, raw: bytes | str) -> Relayed:
        """Checks `raw` (InputError, RoleMissing, ContractRefused say why not), sends it
        and returns its mined receipt's events."""
        with self.lock:
            checked = self.check(raw)
            self._check_sendable(checked)
            self._preflight(checked)
            receipt = _send_signed(self.chain, checked.raw)
            if receipt["status"] != 1:
                reason = self._replay_reason(checked, receipt["blockNumber"] - 1)
                raise ContractRefused(f"transaction {checked.tx_hash} was mined but {checked.function} reverted: "
                                      f"{reason}", _error_name(reason))
            return Relayed(checked.tx_hash, receipt["blockNumber"], receipt["gasUsed"], checked.sender,
                           checked.function, checked.args, checked.role, self.decoder.decode(receipt["logs"]))

    def _check_sendable(self, c: Checked) -> None:
        w3 = self.chain.w3
        expected = w3.eth.get_transaction_count(c.sender, "pending")
        nonce = c.fields["nonce"]
        if nonce < expected:
            raise InputError(f"nonce {nonce} of {c.sender} is used already (the transaction was sent before, or "
                             f"another one took its place); the next is {expected}: prepare and sign it again")
        if nonce > expected:
            raise InputError(f"nonce {nonce} of {c.sender} is ahead of its next nonce {expected}: it would wait for "
                             "transactions that do not exist; prepare and sign it again")
        base = w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        if c.fields["maxFeePerGas"] < base:
            raise InputError(f"maxFeePerGas {c.fields['maxFeePerGas']} is below the base fee {base}: it would never "
                             "be mined; prepare and sign it again")
        cost = c.fields["gas"] * c.fields["maxFeePerGas"]
        balance = w3.eth.get_balance(c.sender)
        if balance < cost:
            raise InputError(f"{c.sender} has {balance} wei, but the transaction may cost up to {cost} wei "
                             "(gas x maxFeePerGas): fund the account first")

    def _preflight(self, c: Checked) -> None:
        call = {"from": c.sender, "to": self.address, "data": to_hex(c.fields["data"]), "gas": c.fields["gas"]}
        try:
            self.chain.w3.eth.call(call, "latest")
        except Exception as exc:  # eth-tester and nodes raise many kinds; the revert data is what counts
            reason = self.chain.revert_reason(exc)
            raise ContractRefused(f"the market contract refuses {c.describe()}: {reason}", _error_name(reason)) from exc

    def _replay_reason(self, c: Checked, block: int) -> str:
        call = {"from": c.sender, "to": self.address, "data": to_hex(c.fields["data"]), "gas": c.fields["gas"]}
        try:
            self.chain.w3.eth.call(call, block)
        except Exception as exc:
            return self.chain.revert_reason(exc)
        return "out of gas or reverted without data (gas limit " + str(c.fields["gas"]) + ")"


def decode_transaction(raw: bytes) -> tuple[dict[str, Any], str]:
    """(fields, sender) of a raw signed type-2 transaction; InputError naming the problem."""
    if raw[0] != 2:
        kind = "a legacy transaction" if raw[0] >= 0xC0 else f"a type-{raw[0]} transaction"
        raise InputError(f"the raw transaction is {kind}; only type-2 (EIP-1559) transactions are relayed: they "
                         "name their chain, so they cannot be replayed on another")
    try:
        tx = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        sender = Account.recover_transaction(raw)
    except (RLPException, BadSignature, ValueError, TypeError, KeyError) as exc:
        raise InputError(f"the raw transaction does not decode as a signed type-2 transaction ({exc})") from exc
    return tx, to_checksum_address(sender)


def _send_signed(chain: Chain, raw: bytes) -> dict:
    try:
        return chain.send_signed(raw)
    except ChainError as exc:
        raise ContractRefused(f"the chain refused transaction {to_hex(keccak(raw))}: {exc}", None) from exc


# -- opening a chain to relay to --------------------------------------------------------


def open_chain(rpc: str | None = None, state: Path | str | None = None, retry_for: float = 10.0) -> Chain:
    """A chain to relay to: the JSON-RPC node at `rpc`, or the embedded chain kept in the
    state directory `state` (which takes its journal's lock: no other process, the
    oracle included, may use that chain meanwhile). The relay needs no operator keys."""
    if rpc:
        return Chain.connect(rpc, timeout=10.0, retry_for=retry_for, keyless=True)
    if state is None:
        raise InputError("give a JSON-RPC node URL or a state directory with an embedded chain")
    from node.journal import JOURNAL_NAME

    if not (Path(state) / JOURNAL_NAME).exists():
        raise InputError(f"no embedded chain in {state} (no {JOURNAL_NAME}): give the state directory of "
                         "`gridledger demo`/`simulate`, or the node's URL")
    return Chain.embedded(Path(state))


# -- shown to people ----------------------------------------------------------------------


def event_json(e: Event) -> dict[str, Any]:
    return {"name": e.name, "args": {k: _jsonable(v) for k, v in e.args.items()}, "block": e.block,
            "log_index": e.log_index, "text": describe_event(e)}


def describe_event(e: Event) -> str:
    shown = {k: role_name(v) if k in ("role", "previousAdminRole", "newAdminRole") else _show(v)
             for k, v in e.args.items()}
    return f"{e.name}({', '.join(f'{k}={v}' for k, v in shown.items())})"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, str) and len(value) == 42 and is_hex_address(value):
        return to_checksum_address(value)  # eth_abi decodes addresses in lower case
    return value


def _show(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return role_name(value) if len(value) == 32 else "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(_jsonable(value))


def _error_name(reason: str) -> str | None:
    name = reason.split("(", 1)[0]
    return name if name.isidentifier() else None


def _uint(value: Any, bits: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a whole number, got {value!r}")
    if not 0 <= value < 1 << bits:
        raise InputError(f"{what} must be between 0 and {(1 << bits) - 1}, got {value}")
    return value


def parse_address(text: Any, what: str = "address") -> str:
    if not isinstance(text, str) or not is_hex_address(text.strip()):
        raise InputError(f"{what} must be an address (0x and 40 hex digits), got {text!r}")
    return to_checksum_address(text.strip())
