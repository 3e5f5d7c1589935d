"""Independent jobs fanned out over worker processes, on an existing engine.

Experiments (one job per scenario and seed) and audits (one job per interval's
re-clearing) are embarrassingly parallel. `workers()` gives a standard
``concurrent.futures.Executor`` over local worker processes by default, or over a Dask
cluster's workers when its scheduler address is given: callers submit jobs and collect
them with ``concurrent.futures.as_completed`` either way, and scheduling, retries and
placement are the engine's. One worker runs the jobs in this process, in order.

Jobs must be picklable top-level functions with picklable arguments; on a Dask cluster
the workers must have GridLedger installed (the same version) and reach any file a job
names (an index, a dataset), or be given a URL instead.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any

from node.errors import InputError


def local_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextmanager
def workers(count: int | None = None, cluster: str | None = None) -> Iterator[Executor]:
    """An executor over `count` local worker processes (default: one per CPU), or over
    the Dask cluster whose scheduler is at `cluster` (e.g. tcp://10.0.0.5:8786)."""
    if cluster:
        with _dask(cluster) as executor:
            yield executor
        return
    count = local_cpus() if count is None else count
    if count < 1:
        raise InputError(f"--workers must be at least 1, got {count}")
    if count == 1:
        yield InProcess()
        return
    # spawn, not fork: the parent may hold an open chain, SQLite connections and threads.
    with ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn")) as pool:
        try:
            yield pool
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


@contextmanager
def _dask(address: str) -> Iterator[Executor]:
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--cluster needs Dask: pip install 'gridledger[research]' (dask[distributed])") from None
    try:
        client = Client(address, timeout="5s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        # pure=False: two jobs with equal arguments are still two runs.
        yield client.get_executor(pure=False)
    finally:
        client.close()


class InProcess(Executor):
    """Runs each job at once in this process: one worker, no pickling, plain tracebacks."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # delivered through the future, as a pool does
            if isinstance(exc, KeyboardInterrupt):
                raise
            future.set_exception(exc)
        return future
