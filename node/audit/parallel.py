"""The audit's re-clearing and meter checks fanned out over worker processes or a Dask cluster.

Each interval's clearing is a pure function of its committed inputs, and its meter
check of its readings and the keys and mandates that held for it (IntervalChain), so
intervals are checked independently. The auditor's own process still reads the chain,
checks every authorisation and the sequence, in order (node.audit.verify.audit); workers
(node.parallel) run `audit_interval` on chunks of intervals ahead of it, and the
verdicts come back in chain order. Nothing here decides anything: a verdict is the
same wherever it was computed.

Workers fetch inputs and readings themselves: from the same inputs store directory or
index file (an open index cannot be sent to another process, so each worker opens the
file once), or from a GridLedger server's URL, which is what workers on other machines need.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass
from functools import lru_cache

from node.audit.verify import IndexInputs, InputsSource, IntervalChain, Reruns, SettledInterval, StoreInputs, Verdict, rerun_here
from node.errors import GridLedgerError
from node.clearing.store import InputsStore
from node.index.store import Index
from node.intent.signing import SignedReading

CHUNK = 4  # intervals per job: enough to amortise sending one, few enough to spread evenly
AT_LEAST = 16  # below this many intervals, starting workers costs more than it saves


def reruns_on(executor: Executor, chunk: int = CHUNK, at_least: int = AT_LEAST) -> Reruns:
    """node.audit.verify.audit's `reruns`, on `executor` (node.parallel.workers)."""

    def reruns(settled: list[SettledInterval], chains: list[IntervalChain], source: InputsSource,
               owners: dict[int, str]) -> Iterator[Verdict]:
        if len(settled) < at_least:
            yield from rerun_here(settled, chains, source, owners)
            return
        portable = _portable(source)
        futures = [executor.submit(audit_chunk, settled[i:i + chunk], chains[i:i + chunk], portable, owners)
                   for i in range(0, len(settled), chunk)]
        try:
            for future in futures:
                yield from future.result()
        except BrokenExecutor as exc:
            raise GridLedgerError(f"a worker process died while re-running clearings ({exc}); nothing was decided "
                                  "for the intervals it held: run the audit again") from exc
        finally:
            for future in futures:
                future.cancel()

    return reruns


def audit_chunk(settled: list[SettledInterval], chains: list[IntervalChain], source: InputsSource,
                owners: dict[int, str]) -> list[Verdict]:
    """One job: the re-clearing of a few consecutive intervals (top level, for workers)."""
    return list(rerun_here(settled, chains, source, owners))


@dataclass(frozen=True)
class IndexFile:
    """Inputs kept in the index file at `path`, opened once per worker process."""

    path: str

    def fetch(self, digest: str) -> bytes:
        return _opened(self.path).inputs(digest)

    def readings(self, interval: int) -> list[SignedReading] | None:
        return _opened(self.path).readings(interval) or None


@dataclass(frozen=True)
class StoreAndIndexFile:
    """Inputs from an inputs store, meter readings from the index file at `index_path`
    (opened once per worker process): a state directory's sources, as a worker gets them."""

    store: InputsStore
    index_path: str

    def fetch(self, digest: str) -> bytes:
        return self.store.get(digest)

    def readings(self, interval: int) -> list[SignedReading] | None:
        return _opened(self.index_path).readings(interval) or None


@lru_cache(maxsize=4)
def _opened(path: str) -> Index:
    return Index(path)


def _portable(source: InputsSource) -> InputsSource:
    """What a worker can be sent: workers only fetch inputs, so no open index goes."""
    if isinstance(source, IndexInputs):
        return IndexFile(str(source.index.path))
    if isinstance(source, StoreInputs):
        # The readings the workers' meter checks need come from the index file.
        if source.index is None:
            return source
        return StoreAndIndexFile(source.store, str(source.index.path))
    return source
