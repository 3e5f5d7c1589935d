"""Connection to an EVM chain: the embedded eth-tester chain or any JSON-RPC node.

Every transaction is built, signed locally (EIP-1559, type 2) and sent raw with an
explicit gas limit, so the same code runs on eth-tester, anvil, geth or besu and never
pays for ``eth_estimateGas``. Reverts are decoded into the contract's custom error,
with its arguments, and raised as :class:`node.errors.ChainError`.

The embedded chain keeps its state in a journal of accepted transactions (see
:mod:`node.chain.journal` for why that is crash safe). A JSON-RPC node may go away and come
back (restarted, network trouble): every call then waits and retries with backoff, and
a transaction whose fate is unknown is looked up by its hash before it is sent again,
so it is never lost and never applied twice.
"""

from __future__ import annotations

import ast
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import ValidationError, keccak, to_hex
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, TransactionNotFound, Web3RPCError

from node.errors import ChainError
from node.chain.rpc import RETRY_FOR, RetryingHTTPProvider
from node.faults import crash_point

log = logging.getLogger("gridledger.chain")

# eth-tester's funded accounts use the private keys 1, 2, 3, ...; anvil and hardhat use
# the well-known "test test ... junk" mnemonic. Both are for local development only.
EMBEDDED_KEYS = tuple(f"0x{i:064x}" for i in range(1, 11))
LOCAL_DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
)
LOCAL_DEV_CHAIN_IDS = (31337,)

RECEIPT_TIMEOUT = 120.0
# How often a transaction still waiting for its receipt is looked up on the node, in
# case the node dropped it (a restart loses the mempool).
RECHECK_PENDING = 10.0

# What a node answers to a transaction it will not take; eth-tester raises py-evm's
# ValidationError (bad nonce, not enough funds) unconverted.
REJECTED = (ContractLogicError, Web3RPCError, ValueError, ValidationError)


@dataclass(frozen=True)
class Operators:
    """The keys that run a market: admin, oracle and grid operator."""

    admin: LocalAccount
    oracle: LocalAccount
    grid_operator: LocalAccount

    @staticmethod
    def from_keys(admin: str, oracle: str, grid_operator: str) -> "Operators":
        return Operators(Account.from_key(admin), Account.from_key(oracle), Account.from_key(grid_operator))


class Chain:
    """A web3 connection plus the local signing and error decoding GridLedger needs."""

    def __init__(self, w3: Web3, operators: Operators | None, description: str, receipt_timeout: float = RECEIPT_TIMEOUT) -> None:
        self.w3 = w3
        self.operators = operators
        self.description = description
        self.receipt_timeout = receipt_timeout
        self.chain_id = w3.eth.chain_id
        # Filled lazily from the chain ("pending" count), so a chain rebuilt from its
        # journal or a node restarted from its state file starts from what it holds.
        self._nonces: dict[str, int] = {}
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        self._journal = None
        self._snapshots = None
        self._after_send: Callable[[bytes], None] | None = None
        self._before_send: Callable[[], None] | None = None  # an embedded chain's lagging clock
        self._clock_floor = 0  # the time advance_time moved that clock to
        self.clock_lag = 0  # seconds an embedded chain's clock runs behind this machine's
        # Held while a transaction is sent and journaled, so two threads (an oracle and a
        # web UI relaying an admin transaction) journal in the order the chain mined.
        self._send_lock = threading.RLock()

    @classmethod
    def embedded(cls, state_dir: Path | None = None, genesis_timestamp: int | None = None) -> "Chain":
        """An eth-tester chain (py-evm) with its dev keys as operators.

        Without `state_dir` it lives in memory only. With one, every transaction it
        accepts is journaled to ``state_dir/chain.journal``, and opening the same
        directory again replays the journal, so the chain comes back as it was.

        A new chain starts at `genesis_timestamp` (default: now). One that starts in the
        past keeps its clock that far behind this machine's for good (the lag is
        journaled), moved on only by `advance_time`: a replay of past data can then do
        what a live market does ahead of each interval, such as post its prices with the
        notice the contract requires.
        """
        from node.chain.embedded import open_embedded

        return open_embedded(cls, Operators.from_keys(*EMBEDDED_KEYS[:3]), state_dir, genesis_timestamp)

    @classmethod
    def _in_process(cls, tester, operators: Operators, description: str) -> "Chain":
        """A chain on an eth-tester in this process. py-evm is not thread-safe, so every
        request holds the chain's lock: a web UI's thread may read while the oracle sends."""
        from web3 import EthereumTesterProvider

        provider = EthereumTesterProvider(tester)
        lock = threading.RLock()
        make_request = provider.make_request

        def locked(method, params):
            with lock:
                return make_request(method, params)

        provider.make_request = locked
        chain = cls(Web3(provider), operators, description)
        chain._send_lock = lock
        return chain

    @classmethod
    def connect(
        cls,
        url: str,
        operators: Operators | None = None,
        timeout: float = 30.0,
        retry_for: float = RETRY_FOR,
        receipt_timeout: float = RECEIPT_TIMEOUT,
        keyless: bool = False,
    ) -> "Chain":
        """Connects to a JSON-RPC node. Without `operators`, a local dev chain (chain id
        31337: anvil, hardhat) uses its well-known dev keys; any other chain needs keys,
        unless `keyless`: a relay of transactions others signed holds none.

        A node that is not there at the start is a mistake to report at once; a node
        that goes away later is waited for, up to `retry_for` seconds per outage."""
        provider = RetryingHTTPProvider(url, timeout=timeout, retry_for=0)
        w3 = Web3(provider)
        try:
            chain_id = w3.eth.chain_id
        except Exception as exc:  # requests raises many kinds; all mean "not reachable"
            raise ChainError(f"cannot reach a JSON-RPC node at {url}: {exc.__cause__ or exc}. Is the node running?") from exc
        provider.retry_for = retry_for
        if operators is None and not keyless:
            if chain_id not in LOCAL_DEV_CHAIN_IDS:
                raise ChainError(
                    f"chain {chain_id} at {url} is not a local dev chain: give the operator keys "
                    "(GRIDLEDGER_ADMIN_KEY, GRIDLEDGER_ORACLE_KEY, GRIDLEDGER_GRID_OPERATOR_KEY)"
                )
            operators = Operators.from_keys(*LOCAL_DEV_KEYS)
        return cls(w3, operators, f"JSON-RPC node at {url} (chain {chain_id})", receipt_timeout=receipt_timeout)

    def close(self) -> None:
        """Releases the journal (and its lock) of an embedded chain with a state dir,
        after a snapshot of the chain if it grew (node.chain.embedded)."""
        if self._journal is not None and not self._journal.closed:
            if self._snapshots is not None:
                with self._send_lock:  # the snapshot reads the chain's database
                    self._snapshots.close()
            self._journal.close()

    def __enter__(self) -> "Chain":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- contracts ---------------------------------------------------------------

    def register_errors(self, abi: list[dict]) -> None:
        """Teaches the chain to decode the custom errors of a contract ABI."""
        for entry in abi:
            if entry.get("type") == "error":
                types = [arg["type"] for arg in entry["inputs"]]
                names = [arg["name"] for arg in entry["inputs"]]
                selector = keccak(text=f"{entry['name']}({','.join(types)})")[:4]
                self._errors[selector] = (entry["name"], names, types)

    def decode_error(self, data: bytes | str) -> str:
        """``Name(arg=value, ...)`` for revert data of a known custom error."""
        raw = bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)
        known = self._errors.get(raw[:4])
        if known is None:
            return f"unknown revert data 0x{raw.hex()}"
        name, names, types = known
        values = abi_decode(types, raw[4:])
        shown = ", ".join(f"{n}={_show(v)}" for n, v in zip(names, values))
        return f"{name}({shown})"

    def deploy(self, artifact: dict, sender: LocalAccount, *args: Any, gas: int = 5_000_000) -> dict:
        """Deploys a compiled contract; returns the receipt (``contractAddress``)."""
        self.register_errors(artifact["abi"])
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        tx = factory.constructor(*args).build_transaction({"from": sender.address, "gas": gas, "nonce": 0})
        return self.send_raw({"data": tx["data"]}, sender, gas)

    def contract(self, address: str, artifact: dict):
        self.register_errors(artifact["abi"])
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact["abi"])

    # -- transactions -------------------------------------------------------------

    def transact(self, call: Any, sender: LocalAccount, gas: int) -> dict:
        """Sends a contract function call from `sender` and waits for its receipt."""
        return self.send_raw({"to": call.address, "data": call._encode_transaction_data()}, sender, gas)

    def send_raw(self, fields: dict, sender: LocalAccount, gas: int) -> dict:
        """Signs and sends a type-2 transaction; returns the receipt of a successful one."""
        if self._journal is not None:
            self._journal.check()  # a chain whose journal fell behind must not move on
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": self._next_nonce(sender.address),
            "gas": gas,
            "maxFeePerGas": self._max_fee(),
            "maxPriorityFeePerGas": 1,
            "value": fields.get("value", 0),
            "data": fields.get("data", b""),
        }
        if "to" in fields:
            tx["to"] = fields["to"]
        signed = sender.sign_transaction(tx)
        tx_hash = signed.hash
        with self._send_lock:
            if self._before_send is not None:
                self._before_send()
            try:
                self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except ContractCustomError as exc:
                self._forget_nonce(sender.address)
                raise ChainError(f"transaction reverted: {self.decode_error(exc.data)}") from exc
            except REJECTED as exc:
                # After a dropped connection the provider sends the same bytes again, and the
                # node may answer "already known" or "nonce too low": the first attempt got in.
                if not self._known(tx_hash):
                    self._forget_nonce(sender.address)
                    raise ChainError(f"transaction rejected: {_reason(exc, self)}") from exc
            self._nonces[sender.address] = tx["nonce"] + 1
            crash_point("after_send")
            if self._after_send is not None:
                self._after_send(bytes(signed.raw_transaction))
            crash_point("after_journal")
        receipt = self._wait_for_receipt(tx_hash, bytes(signed.raw_transaction))
        if receipt["status"] != 1:
            raise ChainError(f"transaction {to_hex(tx_hash)} reverted: {self._replay_reason(tx, sender, receipt)}")
        return receipt

    def dry_run(self, call: Any, sender: LocalAccount, gas: int, *, unpaid: bool = False) -> str | None:
        """Runs a contract function call as `sender`'s transaction with `gas` would run
        it on the head state, without sending it (one ``eth_call``: unlike
        ``eth_estimateGas`` it executes once). Returns None if it succeeds, else why it
        fails: the contract's custom error, or the node's words (e.g. out of gas). A
        node that cannot be reached raises ChainError. `unpaid`: at gas price 0, for a
        sender that holds no ether (what the contract does does not depend on it)."""
        fields = {"from": sender.address, "to": call.address, "data": call._encode_transaction_data(), "gas": gas}
        if unpaid:
            fields["gasPrice"] = 0
        try:
            self.w3.eth.call(fields)
        except ChainError:
            raise
        except Exception as exc:  # nodes and eth-tester raise many kinds; all mean "fails"
            return _reason(exc, self)
        return None

    def send_signed(self, raw: bytes) -> dict:
        """Sends a transaction someone else signed (a role holder's, relayed by the web
        UI) in the order send_raw sends our own: the node accepts it, the journal records
        it, then its receipt is awaited. Returns the receipt, a reverted one (status 0)
        too; a node's refusal raises ChainError."""
        raw = bytes(raw)
        tx_hash = keccak(raw)
        if self._journal is not None:
            self._journal.check()
        sender = Account.recover_transaction(raw)
        with self._send_lock:
            if self._before_send is not None:
                self._before_send()
            try:
                self.w3.eth.send_raw_transaction(raw)
            except REJECTED as exc:
                if not self._known(tx_hash):
                    raise ChainError(f"transaction rejected: {_reason(exc, self)}") from exc
            finally:
                self._forget_nonce(sender)  # if we also sign for this key, our cached nonce is stale
            if self._after_send is not None:
                self._after_send(raw)
        return self._wait_for_receipt(tx_hash, raw)

    def revert_reason(self, exc: Exception) -> str:
        """The contract's custom error (``Name(arg=value, ...)``) in a node's revert exception."""
        return _reason(exc, self)

    def _known(self, tx_hash: bytes) -> bool:
        """Whether the node has the transaction, mined or pending."""
        try:
            self.w3.eth.get_transaction(tx_hash)
            return True
        except TransactionNotFound:
            return False

    def _wait_for_receipt(self, tx_hash: bytes, raw: bytes) -> dict:
        """The receipt of a sent transaction. A node restarted from its state file may
        have lost a transaction that was still pending; then the same signed bytes are
        sent again (same hash, so it can land only once)."""
        deadline = time.monotonic() + self.receipt_timeout
        recheck = time.monotonic() + RECHECK_PENDING
        outages = self._outages()
        poll = 0.0  # anvil and eth-tester mine at once; only a timed block waits
        while True:
            try:
                receipt = self.w3.eth.get_transaction_receipt(tx_hash)
                if receipt is not None:
                    return receipt
            except TransactionNotFound:
                pass
            now = time.monotonic()
            if self._outages() != outages or now >= recheck:
                outages, recheck = self._outages(), now + RECHECK_PENDING
                if not self._known(tx_hash):
                    self._resend(tx_hash, raw)
                    deadline = now + self.receipt_timeout
            if now >= deadline:
                raise ChainError(
                    f"transaction {to_hex(tx_hash)} was not mined within {self.receipt_timeout:.0f} s on "
                    f"{self.description}: is the node mining (or, on a PoA network, are enough validators up)?"
                )
            time.sleep(poll)
            poll = min(0.5, poll + 0.05)

    def _resend(self, tx_hash: bytes, raw: bytes) -> None:
        log.warning("transaction %s is no longer known to %s (restarted?): sending it again", to_hex(tx_hash), self.description)
        try:
            self.w3.eth.send_raw_transaction(raw)
        except REJECTED as exc:
            if not self._known(tx_hash):
                raise ChainError(
                    f"transaction {to_hex(tx_hash)} was lost by {self.description} and could not be sent again: "
                    f"{_reason(exc, self)}. The node's chain may be behind what it confirmed before it went away"
                ) from exc

    def _outages(self) -> int:
        return getattr(self.w3.provider, "outages", 0)

    def advance_time(self, timestamp: int) -> None:
        """Makes the next block's timestamp `timestamp` (later than the head's): what a
        simulation does to let the chain's clock reach the end of an interval it
        replays. The embedded chain's next block takes it directly (its journal records
        each block's time, so a replay matches); anvil and hardhat are told by their dev
        RPC; any other node's clock is not ours to move."""
        from web3 import EthereumTesterProvider

        if isinstance(self.w3.provider, EthereumTesterProvider):
            backend = self.w3.provider.ethereum_tester.backend
            self._clock_floor = max(self._clock_floor, timestamp)
            if timestamp > backend.chain.header.timestamp:
                backend.chain.header = backend.chain.header.copy(timestamp=timestamp)
                # A block at that time (an empty transfer, journaled like any other, so a
                # replay has it too): eth-tester may run the next call on a header it
                # made before, but never before its parent's time.
                self.fund(self.operators.admin.address, 0)
            return
        try:
            self.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
        except Exception as exc:  # nodes answer in many ways; all mean "not here"
            raise ChainError(
                f"{self.description} cannot move its clock to {timestamp}: an interval settles only after it ended "
                "by the chain's clock; wait for it"
            ) from exc

    def fund(self, address: str, wei: int) -> None:
        """Sends native currency for gas from the admin account."""
        self.send_raw({"to": address, "value": wei}, self.operators.admin, 21_000)

    def _next_nonce(self, address: str) -> int:
        if address not in self._nonces:
            self._nonces[address] = self.w3.eth.get_transaction_count(address, "pending")
        return self._nonces[address]

    def _forget_nonce(self, address: str) -> None:
        self._nonces.pop(address, None)

    def _max_fee(self) -> int:
        base = self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0
        return 2 * base + 1_000_000_000

    def _replay_reason(self, tx: dict, sender: LocalAccount, receipt: dict) -> str:
        """Re-runs a failed transaction as a call to recover its revert data."""
        call = {"from": sender.address, "to": tx.get("to"), "data": tx["data"], "gas": tx["gas"]}
        try:
            self.w3.eth.call(call, receipt["blockNumber"] - 1)
        except ContractCustomError as exc:
            return self.decode_error(exc.data)
        except Exception as exc:  # any node error text is better than none
            return _reason(exc, self)
        return f"out of gas or reverted without data (gas used {receipt['gasUsed']} of {tx['gas']})"


def _reason(exc: Exception, chain: Chain) -> str:
    data = getattr(exc, "data", None)
    message = str(exc.args[0]) if exc.args else ""
    if data is None and message.startswith("execution reverted: b"):
        # eth-tester puts the raw revert bytes into the message as a bytes literal
        data = ast.literal_eval(message.removeprefix("execution reverted: "))
    if (isinstance(data, str) and len(data) >= 10) or (isinstance(data, bytes) and len(data) >= 4):
        try:
            return chain.decode_error(data)
        except Exception:
            pass
    return str(exc)


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)
