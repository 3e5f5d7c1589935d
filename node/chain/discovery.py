"""Finding markets on the chain itself, without a deployment record.

A contract created by a plain transaction lives at an address that follows from its
deployer's address and the transaction's nonce (CREATE: keccak(rlp(sender, nonce))).
So the chain already lists every contract an admin key deployed: walk the key's
nonces, keep the addresses with code that answer as a GridLedger market (the EIP-712
domain separator of "GridLedger" on this chain with itself verifying, a settlement token). That needs no
change to the contracts and no registry, and it is what lets a lost or wrong
``deployment.json`` be rebuilt from the chain instead of answered by a second market.

The deployment block (where indexing starts) is found by bisecting the blocks for the
first one at which the address has code, then confirmed by the market's own logs in
that block (its constructor emits events); a node without the historical state to
bisect falls back to scanning the market's logs from block 0.
"""

from __future__ import annotations

import logging

from eth_utils import to_checksum_address
from web3.utils.address import get_create_address

from node.chain.build import load_artifact
from node.chain.connection import Chain
from node.chain.market import LOG_CHUNK_BLOCKS, Deployment
from node.errors import ChainError
from node.intent.signing import Domain

log = logging.getLogger("gridledger.discovery")


def is_market(chain: Chain, address: str) -> str | None:
    """The settlement token of the GridLedger market at `address`, or None if there is
    no such market there (no code, or a contract that does not answer as one)."""
    address = to_checksum_address(address)
    if not chain.w3.eth.get_code(address):
        return None
    contract = chain.w3.eth.contract(address=address, abi=load_artifact("EnergyMarket")["abi"])
    try:
        separator = bytes(contract.functions.domainSeparator().call())
        token = contract.functions.token().call()
        contract.functions.nextInterval().call()
    except Exception:  # any contract that is not a market reverts or returns garbage here
        return None
    # The EIP-712 domain "GridLedger" on this chain with this very contract verifying.
    if separator != Domain(chain.chain_id, address).separator():
        return None
    return to_checksum_address(token)


def markets_deployed_by(chain: Chain, deployer: str) -> list[Deployment]:
    """Every GridLedger market `deployer` created on `chain`, oldest first."""
    deployer = to_checksum_address(deployer)
    found = []
    for nonce in range(chain.w3.eth.get_transaction_count(deployer)):
        address = to_checksum_address(get_create_address(deployer, nonce))
        token = is_market(chain, address)
        if token is not None:
            found.append(Deployment(chain.chain_id, token, address, creation_block(chain, address)))
    return found


def creation_block(chain: Chain, address: str) -> int:
    """The block in which the contract at `address` was created."""
    eth = chain.w3.eth
    low, high = 0, eth.block_number
    try:
        if not eth.get_code(address, high):
            raise ChainError(f"no contract at {address}")
        while low < high:  # the first block at which the address has code
            middle = (low + high) // 2
            if eth.get_code(address, middle):
                high = middle
            else:
                low = middle + 1
        if eth.get_logs({"address": address, "fromBlock": low, "toBlock": low}):
            return low
    except ChainError:
        raise
    except Exception as exc:  # a node without historical state answers in many ways
        log.debug("cannot bisect for %s's creation block (%s): scanning its logs", address, exc)
    head = eth.block_number
    for start in range(0, head + 1, LOG_CHUNK_BLOCKS):
        logs = eth.get_logs({"address": address, "fromBlock": start, "toBlock": min(head, start + LOG_CHUNK_BLOCKS - 1)})
        if logs:
            return min(int(entry["blockNumber"]) for entry in logs)
    raise ChainError(f"the market at {address} has no events on {chain.description}: cannot tell where it was created")
