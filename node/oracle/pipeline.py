"""Clearings computed ahead, in a second process, while the oracle settles.

Interval k+1's clearing needs only the battery states after interval k, which the
clearing of k itself yields; it needs nothing from the chain. So in a replay a worker
process can run the whole chain of clearings ahead of the settlement transactions and
the two overlap on two cores. The worker is pure: it writes nothing, and the oracle
still stores every interval's inputs before sending its settlement, so crash safety
is unchanged (a killed worker dies with its parent; the restart resumes from chain).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import traceback
from typing import TYPE_CHECKING, Iterator

from node.errors import GridLedgerError
from node.clearing.inputs import IntervalInputs

if TYPE_CHECKING:
    from node.clearing.interval import IntervalClearing

AHEAD = 8  # clearings the worker may run ahead of the settlements


def _work(builder, start: int, stop: int, soc: dict[int, int], terms, excluded, out, parent: int) -> None:
    # The worker holds both ends of the queue, so at exit it waits for its buffered
    # results to be read; an orphan would wait for ever, hence it dies with its parent.
    _die_with_parent(parent)
    from node.clearing.interval import run_clearing, soc_after

    interval = start
    try:
        for interval in range(start, stop):
            inputs = builder.inputs(interval, soc, terms, (), excluded)
            clearing = run_clearing(inputs)
            soc = soc_after(inputs, clearing)
            _put(out, (inputs, clearing), parent)
    except BaseException as exc:  # reported to the parent, which raises it
        _put(out, GridLedgerError(f"the clearing worker failed at interval {interval}: {exc}\n{traceback.format_exc()}"), parent)


def _die_with_parent(parent: int) -> None:
    """Asks Linux to SIGKILL this process when its parent dies (a SIGKILLed oracle runs
    no clean-up, and an orphan would hold its stdout and stderr open), and exits now if
    the parent died while this process was starting."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the parent-pid checks still end an orphan
    if os.getppid() != parent:
        os._exit(0)


def _put(out, item, parent: int) -> None:
    """Waits for room in the queue, but not for a parent that died (SIGKILL skips its
    clean-up, and an orphan blocked on a full queue would never exit)."""
    while True:
        try:
            out.put(item, timeout=1.0)
            return
        except queue.Full:
            if os.getppid() != parent:
                os._exit(0)


def clearings_ahead(builder, start: int, stop: int, soc: dict[int, int], terms=None,
                    excluded: tuple[int, ...] = ()) -> Iterator[tuple[IntervalInputs, "IntervalClearing"]]:
    """(inputs, clearing) for intervals start..stop-1 under the chain's `terms`
    (node.oracle.terms.Terms, fixed for the run), with the homes whose wallet cannot pay
    `excluded` from each, computed in a worker process."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue(maxsize=AHEAD)
    worker = context.Process(target=_work, args=(builder, start, stop, soc, terms, excluded, results, os.getpid()), daemon=True, name="gridledger-clearing")
    worker.start()
    try:
        for _ in range(start, stop):
            item = _next(results, worker)
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if worker.is_alive():
            worker.terminate()
        worker.join()


def _next(results, worker):
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            if not worker.is_alive():
                raise GridLedgerError(f"the clearing worker died (exit code {worker.exitcode})") from None
