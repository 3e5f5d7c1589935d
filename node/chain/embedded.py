"""The embedded chain: eth-tester on py-evm, in this process, rebuilt from its journal.

Why a journal: see node.chain.journal. Opening a state directory replays each journaled
transaction into its own block at its original timestamp, so contract addresses, block
numbers, receipts and logs come back exactly; a snapshot of the chain's database (see
below) lets it replay only the transactions after the snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from eth_utils import keccak, to_hex

from node.errors import ChainError

log = logging.getLogger("gridledger.chain")

EMBEDDED_GAS_LIMIT = 60_000_000


def new_tester(genesis_timestamp: int):
    from eth_tester import EthereumTester, PyEVMBackend

    params = PyEVMBackend.generate_genesis_params({"gas_limit": EMBEDDED_GAS_LIMIT, "timestamp": genesis_timestamp})
    backend = PyEVMBackend(genesis_parameters=params)
    return EthereumTester(backend), backend


def open_embedded(chain_cls, operators, state_dir: Path | None, genesis_timestamp: int | None):
    """Chain.embedded's chain: in memory, or journaled (and snapshotted) in `state_dir`;
    a new one starting at `genesis_timestamp` (default now, never later)."""
    from node.chain.journal import JOURNAL_NAME, Journal

    now = int(time.time())
    genesis = now if genesis_timestamp is None else min(int(genesis_timestamp), now)
    if state_dir is None:
        tester, backend = new_tester(genesis)
        chain = chain_cls._in_process(tester, operators, "embedded eth-tester chain")
        _lag(chain, backend, now - genesis)
        return chain
    journal = Journal.open(Path(state_dir) / JOURNAL_NAME, genesis, comment=versions(), clock_lag=now - genesis)
    try:
        tester, backend = new_tester(journal.genesis_timestamp)
        covered = load_snapshot(Path(state_dir) / SNAPSHOT_NAME, backend, journal)
        replay(tester, backend, journal, start=covered)
        chain = chain_cls._in_process(tester, operators, f"embedded eth-tester chain in {state_dir}")
    except BaseException:
        journal.close()
        raise
    last = keccak(journal.records[-1].raw) if journal.records else None
    journal.records = []  # replayed; no need to keep the bytes in memory
    snapshots = Snapshots(Path(state_dir) / SNAPSHOT_NAME, backend, journal, covered, last)
    lagging = _lag(chain, backend, journal.clock_lag)

    def record(raw: bytes) -> None:
        journal.append(raw, tester.get_block_by_number("latest")["timestamp"])
        snapshots.recorded(raw)
        if lagging is not None:
            lagging()

    chain._journal, chain._after_send, chain._snapshots = journal, record, snapshots
    return chain


def _lag(chain, backend, lag: int) -> Callable[[], None] | None:
    """With `lag` > 0, keeps `chain`'s clock that far behind this one (lagging_clock);
    returns what re-pins it after each block (None: no lag)."""
    if lag <= 0:
        return None
    chain.clock_lag = lag
    chain._before_send = pin = lagging_clock(backend, lag, lambda: chain._clock_floor)
    if chain._after_send is None:  # an in-memory chain journals nothing
        chain._after_send = lambda raw: pin()
    return pin


def lagging_clock(backend, lag: int, floor: Callable[[], int]) -> Callable[[], None]:
    """Pins the next block's time to `lag` seconds behind this machine's clock, or later:
    just after the head, or at `floor()` (where advance_time moved it). eth-tester gives
    each next header this machine's time; the returned function, called before each
    transaction and after each block, undoes that. Returns it, having called it once."""

    def pin() -> None:
        head = backend.chain.get_canonical_head().timestamp
        wanted = max(head + 1, int(time.time()) - lag, floor())
        if wanted != backend.chain.header.timestamp:
            backend.chain.header = backend.chain.header.copy(timestamp=wanted)

    pin()
    return pin


def replay(tester, backend, journal, start: int = 0) -> None:
    """Re-applies the journaled transactions after the first `start` (which a snapshot
    holds already), each in its own block at its own time."""
    if len(journal.records) <= start:
        return
    started = time.perf_counter()
    chain_id = tester.backend.chain.chain_id
    for record in journal.records[start:]:
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
    count = len(journal.records) - start
    log.info("replayed %d transactions from %s in %.1f s (%.0f tx/s)", count, journal.path, seconds, count / seconds)


def typed_chain_id(raw: bytes) -> int:
    import rlp

    return int.from_bytes(rlp.decode(raw[1:], strict=False)[0], "big")


def versions() -> str:
    from importlib.metadata import version

    return f"eth-tester={version('eth-tester')} py-evm={version('py-evm')}"


# -- snapshots ------------------------------------------------------------------------
#
# Replaying a journal re-executes every transaction: a year of 15-minute settlements
# would take tens of minutes (hours for large communities) on every start. A snapshot
# is the whole of the embedded chain's database (py-evm keeps it in one dict of bytes:
# blocks, receipts, every state trie node) as it was after journal record N, tagged
# with N and the hash of record N. Opening loads the newest snapshot that matches the
# journal and replays only the records after it. The journal stays the chain's memory:
# a snapshot that is missing, damaged, from other eth-tester/py-evm versions or from
# another journal is ignored (and said so), and the journal is replayed as before.

SNAPSHOT_NAME = "chain.snapshot"
SNAPSHOT_MAGIC = "gridledger-chain-snapshot 1"
SNAPSHOT_EVERY = 5_000  # journal records between snapshots written while the chain runs
SNAPSHOT_AT_CLOSE = 100  # new records that make closing the chain write one


class _BytesOnly(__import__("pickle").Unpickler):
    """Unpickles dicts, bytes and ints only: a snapshot file never runs code."""

    def find_class(self, module, name):
        import pickle

        raise pickle.UnpicklingError(f"a chain snapshot holds no {module}.{name}")


class _Hashing:
    """A file wrapper that feeds what passes through it to a sha256."""

    def __init__(self, file) -> None:
        import hashlib

        self.file, self.sha = file, hashlib.sha256()

    def write(self, data) -> int:
        self.sha.update(data)
        return self.file.write(data)

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.sha.update(data)
        return data

    def readinto(self, buffer) -> int:
        count = self.file.readinto(buffer)
        self.sha.update(memoryview(buffer)[:count])
        return count

    def readline(self, size: int = -1) -> bytes:
        data = self.file.readline(size)
        self.sha.update(data)
        return data


def chain_database(backend) -> dict:
    """The embedded chain's whole database (eth-tester's AtomicDB over a MemoryDB)."""
    return backend.chain.chaindb.db.wrapped_db.kv_store


def write_snapshot(path, backend, records: int, last_hash: bytes, genesis_timestamp: int) -> None:
    """Writes the chain's database as of journal record `records` (whose transaction
    hash is `last_hash`) to `path`, atomically: a crash leaves the previous snapshot."""
    import os
    import pickle
    from pathlib import Path

    path = Path(path)
    started = time.perf_counter()
    tmp = path.with_name(path.name + ".tmp")
    header = f"{SNAPSHOT_MAGIC} records={records} last={last_hash.hex()} genesis-timestamp={genesis_timestamp} {versions()}\n"
    with open(tmp, "wb") as out:
        out.write(header.encode())
        hashing = _Hashing(out)
        pickle.dump(chain_database(backend), hashing, protocol=5)
        out.write(f"\nsha256={hashing.sha.hexdigest()}\n".encode())
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("wrote a chain snapshot at journal record %d to %s (%.0f MB, %.1f s)", records, path,
             path.stat().st_size / 1e6, time.perf_counter() - started)


def load_snapshot(path, backend, journal) -> int:
    """Replaces `backend`'s fresh chain with the snapshot at `path` if it matches
    `journal`; returns how many journal records it covers (0: none, replay them all)."""
    import pickle
    from pathlib import Path

    from eth.db.atomic import AtomicDB
    from eth.db.backends.memory import MemoryDB
    from eth_utils import keccak

    path = Path(path)
    if not path.is_file():
        return 0
    started = time.perf_counter()
    try:
        with open(path, "rb") as f:
            header = f.readline().split()
            if b" ".join(header[:2]).decode(errors="replace") != SNAPSHOT_MAGIC:
                raise ValueError("not a chain snapshot")
            fields = {k.decode(): v.decode() for k, v in (x.split(b"=", 1) for x in header[2:] if b"=" in x)}
            records, last = int(fields["records"]), bytes.fromhex(fields["last"])
            if fields["genesis-timestamp"] != str(journal.genesis_timestamp):
                raise ValueError("it is of another chain (genesis timestamp)")
            if f"eth-tester={fields.get('eth-tester')} py-evm={fields.get('py-evm')}" != versions():
                raise ValueError(f"it was written by other versions than {versions()}")
            if not 0 < records <= len(journal.records) or keccak(journal.records[records - 1].raw) != last:
                raise ValueError(f"it is of another journal (record {records} differs or is missing)")
            hashing = _Hashing(f)
            database = _BytesOnly(hashing).load()
            if f.read().strip() != f"sha256={hashing.sha.hexdigest()}".encode():
                raise ValueError("damaged (checksum)")
    except (OSError, ValueError, KeyError, EOFError, pickle.UnpicklingError) as exc:
        log.warning("ignoring the chain snapshot %s: %s; replaying the whole journal instead", path, exc)
        return 0
    fresh = backend.chain
    backend.chain = type(fresh)(AtomicDB(MemoryDB(database)))
    head = backend.chain.get_canonical_head()
    block = backend.chain.get_canonical_block_by_number(head.block_number)
    if head.block_number != records or not block.transactions or block.transactions[-1].hash != last:
        backend.chain = fresh
        log.warning("ignoring the chain snapshot %s: its head block does not hold journal record %d; replaying the "
                    "whole journal instead", path, records)
        return 0
    log.info("loaded the chain snapshot of journal record %d from %s in %.1f s", records, path, time.perf_counter() - started)
    return records


class Snapshots:
    """Writes a snapshot every SNAPSHOT_EVERY journal records and when the chain is
    closed after at least SNAPSHOT_AT_CLOSE new ones."""

    def __init__(self, path, backend, journal, covered: int, last_hash: bytes | None) -> None:
        self.path, self.backend, self.journal = path, backend, journal
        self.covered, self.last_hash = covered, last_hash

    def recorded(self, raw: bytes) -> None:
        from eth_utils import keccak

        self.last_hash = keccak(raw)
        if self.journal.count - self.covered >= SNAPSHOT_EVERY:
            self.write()

    def close(self) -> None:
        if self.last_hash is not None and self.journal.count - self.covered >= SNAPSHOT_AT_CLOSE:
            self.write()

    def write(self) -> None:
        try:
            write_snapshot(self.path, self.backend, self.journal.count, self.last_hash, self.journal.genesis_timestamp)
            self.covered = self.journal.count
        except OSError as exc:  # the journal is what counts: a snapshot is only a shortcut
            log.warning("could not write the chain snapshot %s (%s); the journal is complete, the next start replays "
                        "more of it", self.path, exc)
