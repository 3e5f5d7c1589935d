"""Connection to an EVM chain: the embedded eth-tester chain or any JSON-RPC node.

Every transaction is built, signed locally (EIP-1559, type 2) and sent raw with an
explicit gas limit, so the same code runs on eth-tester, anvil, geth or besu and never
pays for ``eth_estimateGas``. Reverts are decoded into the contract's custom error,
with its arguments, and raised as :class:`node.errors.ChainError`.
"""

from __future__ import annotations

import ast
import logging
import time
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_hex
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from node.errors import ChainError

log = logging.getLogger(__name__)

# eth-tester's funded accounts use the private keys 1, 2, 3, ...; anvil and hardhat use
# the well-known "test test ... junk" mnemonic. Both are for local development only.
EMBEDDED_KEYS = tuple(f"0x{i:064x}" for i in range(1, 11))
LOCAL_DEV_KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
)
LOCAL_DEV_CHAIN_IDS = (31337,)


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

    def __init__(self, w3: Web3, operators: Operators, description: str) -> None:
        self.w3 = w3
        self.operators = operators
        self.description = description
        self.chain_id = w3.eth.chain_id
        self._nonces: dict[str, int] = {}
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}

    @classmethod
    def embedded(cls) -> "Chain":
        """A fresh in-memory eth-tester chain (py-evm), with its dev keys as operators."""
        from eth_tester import EthereumTester, PyEVMBackend
        from web3 import EthereumTesterProvider

        backend = PyEVMBackend(genesis_parameters=PyEVMBackend.generate_genesis_params({"gas_limit": 60_000_000}))
        w3 = Web3(EthereumTesterProvider(EthereumTester(backend)))
        return cls(w3, Operators.from_keys(*EMBEDDED_KEYS[:3]), "embedded eth-tester chain")

    @classmethod
    def connect(cls, url: str, operators: Operators | None = None, timeout: float = 30.0) -> "Chain":
        """Connects to a JSON-RPC node. Without `operators`, a local dev chain (chain id
        31337: anvil, hardhat) uses its well-known dev keys; any other chain needs keys."""
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))
        try:
            chain_id = w3.eth.chain_id
        except Exception as exc:  # requests raises many kinds; all mean "not reachable"
            raise ChainError(f"cannot reach a JSON-RPC node at {url}: {exc}. Is the node running?") from exc
        if operators is None:
            if chain_id not in LOCAL_DEV_CHAIN_IDS:
                raise ChainError(
                    f"chain {chain_id} at {url} is not a local dev chain: give the operator keys "
                    "(GRIDLEDGER_ADMIN_KEY, GRIDLEDGER_ORACLE_KEY, GRIDLEDGER_GRID_OPERATOR_KEY)"
                )
            operators = Operators.from_keys(*LOCAL_DEV_KEYS)
        return cls(w3, operators, f"JSON-RPC node at {url} (chain {chain_id})")

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
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except ContractCustomError as exc:
            self._forget_nonce(sender.address)
            raise ChainError(f"transaction reverted: {self.decode_error(exc.data)}") from exc
        except (ContractLogicError, Web3RPCError, ValueError) as exc:
            self._forget_nonce(sender.address)
            raise ChainError(f"transaction rejected: {_reason(exc, self)}") from exc
        self._nonces[sender.address] = tx["nonce"] + 1
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        if receipt["status"] != 1:
            raise ChainError(f"transaction {to_hex(tx_hash)} reverted: {self._replay_reason(tx, sender, receipt)}")
        return receipt

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


def wait_for_node(url: str, attempts: int = 60, delay: float = 0.5) -> None:
    """Blocks until a JSON-RPC node answers (used after starting anvil)."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 2}))
    for _ in range(attempts):
        try:
            w3.eth.chain_id
            return
        except Exception:
            time.sleep(delay)
    raise ChainError(f"no JSON-RPC node answered at {url} after {attempts * delay:.0f} s")


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
