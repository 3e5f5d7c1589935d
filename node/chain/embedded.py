"""The embedded chain: eth-tester on py-evm, in this process, rebuilt from its journal.

Why a journal: see node.chain.journal. Opening a state directory replays each journaled
transaction into its own block at its original timestamp, so contract addresses, block
numbers, receipts and logs come back exactly.
"""

from __future__ import annotations

import logging
import time

from eth_utils import to_hex

from node.errors import ChainError

log = logging.getLogger("gridledger.chain")

EMBEDDED_GAS_LIMIT = 60_000_000


def new_tester(genesis_timestamp: int):
    from eth_tester import EthereumTester, PyEVMBackend

    params = PyEVMBackend.generate_genesis_params({"gas_limit": EMBEDDED_GAS_LIMIT, "timestamp": genesis_timestamp})
    backend = PyEVMBackend(genesis_parameters=params)
    return EthereumTester(backend), backend


def replay(tester, backend, journal) -> None:
    """Re-applies the journaled transactions, each in its own block at its own time."""
    if not journal.records:
        return
    started = time.perf_counter()
    chain_id = tester.backend.chain.chain_id
    for record in journal.records:
        if record.raw[0] < 0x80 and (signed_for := typed_chain_id(record.raw)) != chain_id:
            # eth-tester would accept it anyway: it does not check a transaction's chain id.
            raise ChainError(
                f"{journal.path}: record {record.number} does not replay: it was signed for chain {signed_for}, this "
                f"is chain {chain_id}. The journal belongs to another chain; move it away to start a new chain"
            )
        # The original block's timestamp, so block.timestamp reads the same on replay.
        # eth-tester's own time_travel sets it this way; time_travel itself would mine an
        # extra block and shift every block number.
        backend.chain.header = backend.chain.header.copy(timestamp=record.timestamp)
        try:
            tester.send_raw_transaction(to_hex(record.raw))
        except Exception as exc:  # eth-tester and py-evm raise many kinds; all mean "not this chain"
            raise ChainError(
                f"{journal.path}: record {record.number} does not replay ({type(exc).__name__}: {exc}). The journal "
                "belongs to another chain (genesis or eth-tester version); move it away to start a new chain"
            ) from exc
    head = tester.get_block_by_number("latest")["number"]
    if head != len(journal.records):
        raise ChainError(f"{journal.path}: {len(journal.records)} records replayed into {head} blocks; expected one block each")
    seconds = time.perf_counter() - started
    log.info("replayed %d transactions from %s in %.1f s (%.0f tx/s)", len(journal.records), journal.path, seconds,
             len(journal.records) / seconds)


def typed_chain_id(raw: bytes) -> int:
    import rlp

    return int.from_bytes(rlp.decode(raw[1:], strict=False)[0], "big")


def versions() -> str:
    from importlib.metadata import version

    return f"eth-tester={version('eth-tester')} py-evm={version('py-evm')}"
