"""What a run needs to be reproduced: its config, seed, data fingerprint, the chain and
market it settled on, and the versions of everything that computed it.

`gridledger simulate` writes this as ``results/run.json``; every experiment run keeps
one. The config is written as a document `node.data.config.config_from_mapping` reads
back, so a run can be repeated from its record alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from node.data.community import Community
from node.data.config import CommunityConfig

# What computes a run's numbers: a different version of any of these may change them.
PACKAGES = ("gridledger", "numpy", "scipy", "pandas", "cvxpy", "clarabel", "highspy", "web3", "eth-tester", "py-evm",
            "eth-account", "gymnasium", "pettingzoo", "dask", "distributed")
REPO = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that compute a run, plus Python's and, in a
    git checkout, the commit (with ``+dirty`` when it has uncommitted changes)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    commit = _git_commit()
    if commit:
        versions["gridledger_commit"] = commit
    return versions


def config_document(config: CommunityConfig) -> dict[str, dict[str, Any]]:
    """`config` as TOML-shaped tables (what config_from_mapping reads back)."""
    def plain(value: Any) -> Any:
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        return value

    return {section.name: {f.name: plain(getattr(getattr(config, section.name), f.name))
                           for f in dataclasses.fields(getattr(config, section.name))}
            for section in dataclasses.fields(config)}


def data_fingerprint(community: Community) -> str:
    """sha256 of the homes' names, the timestamps and the energy in whole Wh (what the
    market commits), so two runs on the same data can be told apart from two on different data."""
    digest = hashlib.sha256()
    digest.update("\n".join(community.names).encode())
    digest.update(np.asarray(community.timestamps.asi8, dtype="<i8").tobytes())
    for energy in (community.consumption_kwh, community.production_kwh):
        digest.update(np.rint(energy * 1000).astype("<i8").tobytes())
    return digest.hexdigest()


def run_record(config: CommunityConfig, community: Community, chain: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The record of one run: `chain` names the chain and market (chain_id, chain,
    market, token); `extra` adds anything else the caller knows (mechanism, seed...)."""
    return {
        "config": config_document(config),
        "seed": config.community.seed,
        "homes": len(community.homes),
        "intervals": len(community.timestamps),
        "first_timestamp": community.timestamps[0].isoformat() if len(community.timestamps) else None,
        "data_sha256": data_fingerprint(community),
        **chain,
        "versions": package_versions(),
        **extra,
    }


def _git_commit() -> str | None:
    if not (REPO / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                               text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None
