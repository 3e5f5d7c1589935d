"""The embedded chain's memory: a journal of every transaction it accepted, replayed
on start into a fresh eth-tester chain.

Why a journal and not a disk-backed py-evm database: eth-tester mines each transaction
into its own block on a chain that starts from a fixed genesis, and the EVM is
deterministic, so the signed transactions in order ARE the chain. Replaying them gives
back the same contract addresses, transaction hashes, block numbers, receipts, logs
and balances. The journal is small (the raw bytes of each transaction), easy to
inspect, and needs nothing beyond the eth-tester we already run.

What is and is not identical after a replay: block timestamps are journaled and
restored, so anything a contract derives from ``block.timestamp`` replays exactly;
block hashes are not, because eth-tester draws each block's ``prevrandao`` at random.

File format (text, one record per line, so a torn write is easy to see)::

    gridledger-chain-journal 1 genesis-timestamp=<unix seconds> [clock-lag=<seconds>] <comment>
    <block timestamp> 0x<raw signed transaction>

``clock-lag`` (0 if absent) is how far the chain's clock runs behind this machine's: a
chain made to replay past data starts before the data (node.chain.connection).
    ...

Crash safety rests on the order of two steps in ``Chain.send_raw``: the node accepts
the transaction first, the journal records it second, and only then does anything
else (the index, the caller) learn of it.

- The send raises: nothing was journaled and nothing happened.
- The process dies after the send, before the journal line is on disk: the in-memory
  chain died with it, so on restart the transaction never happened, and nothing else
  recorded it either, because the index is written only after ``send_raw`` returns.
  The oracle then simply settles that interval again.
- The process dies half-way through writing the line: the last line has no newline.
  Opening the journal truncates it; this is the case above.
- The line is written and fsynced: the transaction is part of the chain for good.

Journaling first and sending second would be wrong: a transaction the node then
rejects (bad nonce, not enough gas money) would be in the journal but not the chain,
and the replay would fail on it. Reverted transactions are fine either way: eth-tester
mines them (status 0) and they replay the same.

A journal write that fails (disk full) leaves the chain in memory ahead of its
journal; the journal must never skip a transaction (later ones depend on its nonce),
so the journal refuses further appends and the chain stops.
"""

from __future__ import annotations

import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from node.errors import ChainError

log = logging.getLogger("gridledger.journal")

MAGIC = b"gridledger-chain-journal 1"
JOURNAL_NAME = "chain.journal"


@dataclass(frozen=True)
class Record:
    """One accepted transaction: the timestamp of its block and its signed bytes."""

    number: int  # 1-based, as the error messages and `sed -n` count
    timestamp: int
    raw: bytes


class Journal:
    """An append-only, fsynced, exclusively locked journal file."""

    def __init__(self, path: Path, file, genesis_timestamp: int, records: list[Record], clock_lag: int = 0) -> None:
        self.path = path
        self._file = file
        self.genesis_timestamp = genesis_timestamp
        self.clock_lag = clock_lag
        self.records = records
        self.count = len(records)
        self._failed: str | None = None

    @classmethod
    def open(cls, path: Path, genesis_timestamp: int, comment: str = "", clock_lag: int = 0) -> "Journal":
        """Opens (or creates, with `genesis_timestamp` and `clock_lag`) the journal at
        `path` and reads its records; a torn last record is cut off. The journal keeps
        its own genesis timestamp and clock lag when it exists. Only one process may have
        a journal open."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        file = open(path, "a+b")
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            raise ChainError(f"{path} is in use by another GridLedger process: stop it first, or use another --state") from None
        try:
            file.seek(0)
            data = file.read()
            complete = data[: data.rfind(b"\n") + 1]
            if len(complete) < len(data):
                log.warning("%s: dropping a torn last record (%d bytes) left by a crash mid-write", path, len(data) - len(complete))
                _truncate(file, len(complete))
            if not complete:
                lag = f" clock-lag={clock_lag}" if clock_lag else ""
                header = f"{MAGIC.decode()} genesis-timestamp={genesis_timestamp}{lag} {comment}".rstrip() + "\n"
                file.write(header.encode())
                _sync(file)
                sync_dir(path.parent)
                return cls(path, file, genesis_timestamp, [], clock_lag)
            lines = complete.split(b"\n")[:-1]
            genesis, lag = _parse_header(path, lines[0])
            return cls(path, file, genesis, [_parse_record(path, n, line) for n, line in enumerate(lines[1:], 1)], lag)
        except BaseException:
            file.close()
            raise

    def check(self) -> None:
        """Raises if the journal can no longer follow the chain (checked before each send)."""
        if self._failed:
            raise ChainError(f"the chain journal {self.path} failed earlier ({self._failed}); restart to replay it")
        if self._file.closed:
            raise ChainError(f"the chain journal {self.path} is closed: this chain object was closed")

    def append(self, raw: bytes, timestamp: int) -> None:
        """Records one accepted transaction durably (fsync) before returning."""
        self.check()
        try:
            self._file.write(f"{timestamp} 0x{bytes(raw).hex()}\n".encode())
            _sync(self._file)
        except OSError as exc:
            self._failed = str(exc)
            raise ChainError(
                f"could not write the chain journal {self.path}: {exc}. The last transaction is not on disk; "
                "free the disk and restart, which replays the journal and settles it again"
            ) from exc
        self.count += 1

    def close(self) -> None:
        self._file.close()  # also releases the lock

    @property
    def closed(self) -> bool:
        return self._file.closed


def _parse_header(path: Path, line: bytes) -> tuple[int, int]:
    """(genesis timestamp, clock lag) of a journal's first line."""
    fields = line.split()
    if line[: len(MAGIC)] != MAGIC or len(fields) < 3 or not fields[2].startswith(b"genesis-timestamp="):
        raise ChainError(f"{path} is not a GridLedger chain journal (first line {line[:60]!r})")
    lag = int(fields[3].split(b"=", 1)[1]) if len(fields) > 3 and fields[3].startswith(b"clock-lag=") else 0
    return int(fields[2].split(b"=", 1)[1]), lag


def _parse_record(path: Path, number: int, line: bytes) -> Record:
    try:
        timestamp, raw = line.split(b" ")
        return Record(number, int(timestamp), bytes.fromhex(raw.removeprefix(b"0x").decode()))
    except ValueError:
        raise ChainError(f"{path}: record {number} is damaged ({line[:40]!r}...); the journal cannot be replayed") from None


def _truncate(file, size: int) -> None:
    file.truncate(size)
    _sync(file)


def _sync(file) -> None:
    file.flush()
    os.fsync(file.fileno())


def sync_dir(directory: Path) -> None:
    # A new file's directory entry is durable only once the directory is synced too.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
