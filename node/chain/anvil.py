"""A local anvil node as a child process, for users who want a chain that lives apart
from GridLedger, and for the tests that run the whole flow on a real node.

anvil keeps its chain in memory and, with ``--state FILE --state-interval 1``, dumps it
to FILE every second and on a clean exit (SIGTERM, Ctrl+C). A SIGKILL loses at most
the blocks of the last second, so stop anvil with SIGTERM when you can; a real node
(geth, besu) writes every block to its database and has no such window.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from node.chain.rpc import wait_for_node
from node.errors import ChainError

log = logging.getLogger("gridledger.anvil")

REPO = Path(__file__).resolve().parents[2]
# package.json names the Linux x64 binary package directly, as an optional dependency so
# `npm ci` still succeeds elsewhere: the @foundry-rs/anvil wrapper lists every platform's
# package, and the registry reachable here serves only linux-amd64, so its lock file
# could not be completed and `npm ci` rejected it. Other platforms: `npm i --no-save
# @foundry-rs/anvil` or set GRIDLEDGER_ANVIL.
ANVIL_BINARIES = tuple(
    REPO / "node_modules" / "@foundry-rs" / f"anvil-{platform}" / "bin" / "anvil"
    for platform in ("linux-amd64", "linux-arm64", "darwin-arm64", "darwin-amd64")
)


def anvil_binary() -> Path:
    """The anvil executable: $GRIDLEDGER_ANVIL, else the one npm installed here."""
    if override := os.environ.get("GRIDLEDGER_ANVIL"):
        return Path(override)
    for candidate in ANVIL_BINARIES:
        if candidate.exists():
            return candidate
    raise ChainError(f"anvil is not installed under {REPO / 'node_modules'}: run `npm ci` in {REPO}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (another process may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class AnvilProcess:
    """A running anvil; a context manager that stops it on exit."""

    def __init__(self, process: subprocess.Popen, url: str, port: int, state_file: Path | None, log_file: Path) -> None:
        self.process = process
        self.url = url
        self.port = port
        self.state_file = state_file
        self.log_file = log_file

    def __enter__(self) -> "AnvilProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, so anvil writes its state file one last time; SIGKILL if it hangs."""
        if not self.running:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("anvil (pid %d) did not stop within %.0f s of SIGTERM: killing it", self.process.pid, timeout)
            self.kill()

    def kill(self) -> None:
        """SIGKILL: what a crash or a power cut looks like to anvil."""
        if self.running:
            self.process.kill()
            self.process.wait()


def start_anvil(
    state_file: Path | None,
    port: int = 0,
    gas_cap: bool = True,
    block_time: float | None = None,
    *,
    host: str = "127.0.0.1",
    log_file: Path | None = None,
    startup_timeout: float = 30.0,
) -> AnvilProcess:
    """Starts anvil and returns once it answers JSON-RPC.

    `state_file` persists the chain (loaded if it exists, written every second and on
    exit); None keeps it in memory only. `port` 0 picks a free port. `gas_cap` applies
    the 16,777,216 per-transaction gas cap of EIP-7825, as Osaka mainnet nodes do, so a
    settlement that would not fit there fails here too. `block_time` mines on a timer
    instead of one block per transaction. anvil's output goes to `log_file` (default:
    ``anvil.log`` beside the state file).
    """
    port = port or free_port(host)
    command = [str(anvil_binary()), "--host", host, "--port", str(port)]
    if state_file is not None:
        state_file = Path(state_file)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        command += ["--state", str(state_file), "--state-interval", "1"]
    if gas_cap:
        command.append("--enable-tx-gas-limit")
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    if log_file is None:
        log_dir = state_file.parent if state_file is not None else Path(tempfile.mkdtemp(prefix="gridledger-anvil-"))
        log_file = log_dir / "anvil.log"
    url = f"http://{host}:{port}"
    with open(log_file, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    anvil = AnvilProcess(process, url, port, state_file, Path(log_file))
    delay = 0.1
    try:
        wait_for_node(url, attempts=int(startup_timeout / delay), delay=delay, alive=lambda: anvil.running)
    except ChainError as exc:
        anvil.kill()
        raise ChainError(f"{exc}; anvil exited with status {process.returncode}, see {log_file}") from exc
    log.info("anvil %s on %s (pid %d)%s, log %s", "with per-tx gas cap" if gas_cap else "without gas cap", url,
             process.pid, f", state in {state_file}" if state_file else "", log_file)
    return anvil
