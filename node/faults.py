"""Fault injection for the crash tests: die by SIGKILL at a named point.

Set ``GRIDLEDGER_CRASH_AT=<point>:<n>`` and the process kills itself the n-th time it
passes ``crash_point("<point>")``. Unset (always, outside tests) it costs one dict
lookup. Points sit where a crash is most dangerous: between the steps that write the
chain, the journal and the index.
"""

from __future__ import annotations

import os
import signal

_plan = os.environ.get("GRIDLEDGER_CRASH_AT", "")
_point, _, _count = _plan.partition(":")
_remaining = int(_count or 1) if _point else 0


def crash_point(name: str) -> None:
    global _remaining
    if name != _point:
        return
    _remaining -= 1
    if _remaining <= 0:
        os.kill(os.getpid(), signal.SIGKILL)
