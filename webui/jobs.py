"""Simulations started from the browser: each one the real `gridledger simulate` in a
process of its own, in a folder of the runs directory.

A run's folder holds what the browser gave it (community.toml, the dataset), the job
record (job.json) and the command's output (job.log); its state directory (state/) is
claimed through node.simulation.state before the process starts, as the command
itself would. Progress is read from that state's index (how many of the run's
intervals are settled), never from the chain, so watching a run costs a query.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from node.errors import InputError
from node.index.store import Index
from node.simulation.state import StatePaths, claim_state

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,47}")
JOB_FILE, LOG_FILE, CONFIG_FILE = "job.json", "job.log", "community.toml"
_lock = threading.Lock()
# The processes this server started, by run name (a run from before a restart has a pid only).
_processes: dict[str, subprocess.Popen] = {}


@dataclass(frozen=True)
class Run:
    name: str
    folder: Path
    record: dict

    @property
    def state(self) -> StatePaths:
        return StatePaths(self.folder / "state")

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG_FILE

    @property
    def status(self) -> str:
        """running, done, failed, or interrupted (its process ended without a word: run it again to resume)."""
        if "returncode" in self.record:
            return "done" if self.record["returncode"] == 0 else "failed"
        process = _processes.get(self.name)
        if process is not None and process.poll() is None:
            return "running"
        return "running" if process is None and _alive(self.record.get("pid")) else "interrupted"

    def progress(self) -> dict:
        """How far the run's market is, from its index: settled intervals of the run's
        total (written by the run when it starts settling)."""
        path = self.state.index
        if not path.exists():
            return {"settled": 0, "total": None, "phase": "starting"}
        index = Index(path)
        try:
            meta, settled = index.meta(), index.settled_range()
        finally:
            index.close()
        if "run_stop_interval" not in meta:
            return {"settled": 0, "total": None, "phase": "deploying"}
        first, stop = int(meta["run_first_interval"]), int(meta["run_stop_interval"])
        done = 0 if settled is None else max(0, min(settled[1] + 1, stop) - first)
        return {"settled": done, "total": stop - first, "phase": "settling" if done < stop - first else "results"}

    def kpis(self) -> dict | None:
        """The run's KPIs (results/kpis.json) as one flat record, as an experiment's table
        has them: market KPIs by name, the baseline's as baseline_<name>, the comparison's
        by name, with the document's own scalars (intervals, participants, gas_used, currency)."""
        path = self.state.results / "kpis.json"
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        flat = {key: value for key, value in document.items() if not isinstance(value, (dict, list))}
        return (flat | document.get("market", {}) | {f"baseline_{k}": v for k, v in document.get("baseline", {}).items()}
                | document.get("comparison", {}))

    def log_tail(self, lines: int = 12) -> str:
        try:
            return "\n".join((self.folder / LOG_FILE).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise InputError(f"a run's name is 1-48 lower-case letters, digits, - or _, starting with a letter or digit; got {name!r}")
    return name


def runs(root: Path) -> list[Run]:
    """Every run in `root`, newest first."""
    found = [r for folder in root.iterdir() if folder.is_dir() and (r := _read(folder)) is not None] if root.is_dir() else []
    return sorted(found, key=lambda r: r.record.get("created", ""), reverse=True)


def get_run(root: Path, name: str) -> Run | None:
    return _read(root / check_name(name)) if NAME.fullmatch(name or "") else None


def new_folder(root: Path, name: str) -> Path:
    """The folder of a new run `name`; InputError if the name is taken."""
    folder = root / check_name(name)
    if folder.exists():
        raise InputError(f"there is a run named {name!r} already: choose another name")
    folder.mkdir(parents=True)
    return folder


def start(folder: Path, config_text: str, data: Path | None, meter_policy: str, max_running: int = 1) -> Run:
    """Claims the folder's state directory and starts `gridledger simulate` on it."""
    with _lock:
        busy = [name for name, p in _processes.items() if p.poll() is None]
        if len(busy) >= max_running:
            raise InputError(f"run {busy[0]!r} is still running: this server runs {max_running} at a time "
                             "(the machine's cores are the limit); start this one when it is done")
        (folder / CONFIG_FILE).write_text(config_text)
        state = folder / "state"
        claim_state(state, "simulate")
        command = [sys.executable, "-m", "node.cli", "simulate", "--config", str(folder / CONFIG_FILE),
                   "--state", str(state), "--no-progress"]
        if data is not None:
            command += ["--data", str(data), "--meter-policy", meter_policy]
        log = (folder / LOG_FILE).open("ab")
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=folder, env=os.environ | {"PYTHONUNBUFFERED": "1"})
        log.close()
        record = {"name": folder.name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  "pid": process.pid, "command": command, "data": data.name if data else None,
                  "meter_policy": meter_policy}
        _write(folder, record)
        _processes[folder.name] = process
    threading.Thread(target=_watch, args=(folder, process), daemon=True, name=f"run-{folder.name}").start()
    return Run(folder.name, folder, record)


def _watch(folder: Path, process: subprocess.Popen) -> None:
    code = process.wait()
    with _lock:
        record = json.loads((folder / JOB_FILE).read_text())
        record |= {"returncode": code, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        _write(folder, record)


def _read(folder: Path) -> Run | None:
    try:
        return Run(folder.name, folder, json.loads((folder / JOB_FILE).read_text()))
    except (OSError, ValueError):
        return None


def _write(folder: Path, record: dict) -> None:
    tmp = folder / (JOB_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(folder / JOB_FILE)


def _alive(pid: int | None) -> bool:
    """Whether a run started by an earlier server is still running: its process exists
    and is a gridledger simulate (a pid can be reused)."""
    if not pid:
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"simulate" in command and b"node.cli" in command

