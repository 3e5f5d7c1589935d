"""Stopping a command with SIGTERM or SIGINT (Ctrl+C) stops every child it started:
`gridledger node` leaves no anvil running."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from node.chain.anvil import ANVIL_BINARIES, free_port
from tests.helpers import start_gridledger

pytestmark = pytest.mark.skipif(not any(p.exists() for p in ANVIL_BINARIES), reason="anvil is installed by `npm ci`")


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_stopping_gridledger_node_stops_its_anvil(tmp_path, stop):
    node = start_gridledger("node", "--state", str(tmp_path), "--port", str(free_port()),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started: list[int] = []
    try:
        line = node.stdout.readline()
        assert "anvil is running" in line, node.stderr.read()
        started += children(node.pid)
        (anvil,) = started
        assert alive(anvil)
        node.send_signal(stop)
        assert node.wait(timeout=30) in (0, 130, 143)
        deadline = time.monotonic() + 10
        while alive(anvil) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(anvil), "anvil outlived `gridledger node`"
        assert (tmp_path / "anvil-state.json").exists()  # stopped cleanly: it wrote its state
    finally:
        if node.poll() is None:
            node.kill()
        for pid in started:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
