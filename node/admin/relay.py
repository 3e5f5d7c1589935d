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
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from eth_keys.exceptions import BadSignature
from eth_utils import is_hex_address, keccak, to_checksum_address, to_hex
from hexbytes import HexBytes
from rlp.exceptions import RLPException

from node.chain.build import load_artifact
from node.chain.connection import Chain
from node.errors import ChainError, InputError
from node.chain.events import Event, EventDecoder
from node.admin.actions import (
    ADMIN_FUNCTIONS,
    Action,
    abi_functions,
    encode_call,
    jsonable,
    parse_address,
    parse_raw,
    show_value,
)
from node.chain.roles import ROLES, role_id, role_name

FEE_PRIORITY = 1  # wei per gas, as node/chain/connection.py's own transactions
ROLE_CHANGES = ("grantRole", "revokeRole")


class RoleChangesRefused(InputError):
    """This relay does not relay role changes (HTTP 403): a server on a dev chain, whose
    admin key is public, would otherwise let anyone grant themselves any role."""

    def __init__(self, function: str) -> None:
        super().__init__(f"this server does not relay {function}: role changes are relayed only by a server started "
                         "with `--allow-role-changes`; or send the transaction to the chain yourself "
                         "(`gridledger admin ... --state DIR` or --rpc)")
        self.function = function


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
        return f"{self.function}({', '.join(f'{k}={show_value(v)}' for k, v in self.args.items())})"


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
        return f"{self.function}({', '.join(f'{k}={show_value(v)}' for k, v in self.args.items())})"

    def to_json(self) -> dict[str, Any]:
        return {"tx_hash": self.tx_hash, "block": self.block, "gas_used": self.gas_used, "sender": self.sender,
                "function": self.function, "call": self.call, "args": {k: jsonable(v) for k, v in self.args.items()},
                "role": self.role, "events": [event_json(e) for e in self.events]}


class AdminRelay:
    """Builds, checks and relays admin transactions for one market contract.

    Every chain access goes through one lock: eth-tester is not thread-safe, and two
    relays at once could race on a sender's nonce."""

    def __init__(self, chain: Chain, market_address: str, role_changes: bool = True) -> None:
        self.role_changes = role_changes
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
        self._default, self._default_block = (0, 0), -1  # default capacity, as of block
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
        """(import, export) Wh of intervals the grid operator set nothing for: the market
        has no getter for it, so it is the latest DefaultCapacitySet, followed from the
        logs (one eth_getLogs for the blocks since the last call)."""
        with self.lock:
            head = self.chain.w3.eth.block_number
            if head > self._default_block:
                logs = self.chain.w3.eth.get_logs({
                    "address": self.address, "fromBlock": self._default_block + 1, "toBlock": head,
                    "topics": [to_hex(self.decoder.topic("DefaultCapacitySet"))]})
                for e in self.decoder.decode(logs):
                    self._default = (e.args["importWh"], e.args["exportWh"])
                self._default_block = head
            return self._default

    def capacity(self, interval: int) -> tuple[int, int]:
        with self.lock:
            return tuple(self.contract.functions.capacityOf(interval).call())

    def next_interval(self) -> int:
        with self.lock:
            return self.contract.functions.nextInterval().call()

    # -- building -----------------------------------------------------------------

    def encode(self, action: Action) -> bytes:
        self._allowed(action.function)
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
        self._allowed(function.name)
        try:
            values = abi_decode(list(function.types), data[4:])
        except (DecodingError, ValueError, OverflowError) as exc:
            raise InputError(f"the arguments of {function.signature} are malformed: {exc}") from exc
        role = self.required_role(function.name, tuple(values))
        if not self.has_role(role, sender):
            raise RoleMissing(function.name, sender, role)
        return Checked(raw, to_hex(keccak(raw)), sender, function.name, dict(zip(function.names, values)), role, tx)

    def _allowed(self, function: str) -> None:
        if function in ROLE_CHANGES and not self.role_changes:
            raise RoleChangesRefused(function)

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
    from node.chain.journal import JOURNAL_NAME

    if not (Path(state) / JOURNAL_NAME).exists():
        raise InputError(f"no embedded chain in {state} (no {JOURNAL_NAME}): give the state directory of "
                         "`gridledger demo`/`simulate`, or the node's URL")
    return Chain.embedded(Path(state))


# -- shown to people ----------------------------------------------------------------------


def event_json(e: Event) -> dict[str, Any]:
    return {"name": e.name, "args": {k: jsonable(v) for k, v in e.args.items()}, "block": e.block,
            "log_index": e.log_index, "text": describe_event(e)}


def describe_event(e: Event) -> str:
    shown = {k: role_name(v) if k in ("role", "previousAdminRole", "newAdminRole") else show_value(v)
             for k, v in e.args.items()}
    return f"{e.name}({', '.join(f'{k}={v}' for k, v in shown.items())})"


def _error_name(reason: str) -> str | None:
    name = reason.split("(", 1)[0]
    return name if name.isidentifier() else None


