"""The Solidity fuzz and invariant tests (contracts/test) pass under forge.

forge comes from npm (@foundry-rs/forge, see package.json) and runs offline with the
solc-js shim (foundry.toml). Run with `pytest -s` to see how many cases ran.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def forge_binary() -> Path | None:
    """forge from node_modules: the platform package holds the binary itself (the
    wrapper package's bin.mjs only finds it when its postinstall script ran)."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    system = {"Linux": "linux", "Darwin": "darwin"}.get(platform.system())
    candidate = ROOT / "node_modules" / "@foundry-rs" / f"forge-{system}-{arch}" / "bin" / "forge"
    return candidate if candidate.exists() else None


def _describe(name: str, result: dict) -> str:
    kind = result.get("kind") or {}
    if "Invariant" in kind:
        k = kind["Invariant"]
        return f"{name}: {k['runs']} runs, {k['calls']} calls, {k['reverts']} reverts"
    if "Fuzz" in kind:
        return f"{name}: {kind['Fuzz']['runs']} runs"
    return f"{name}: 1 case"


def test_forge_fuzz_and_invariant_tests_pass():
    forge = forge_binary()
    if forge is None:
        if os.environ.get("CI"):
            pytest.fail("forge is not installed: CI must run `npm ci` (package.json pins @foundry-rs/forge)")
        pytest.skip("forge not installed (npm install @foundry-rs/forge)")
    proc = subprocess.run(
        [str(forge), "test", "--json", "-vv"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    # forge prints the JSON report last; compiler chatter may precede it.
    report_line = next((line for line in reversed(proc.stdout.splitlines()) if line.startswith("{")), None)
    assert report_line is not None, f"forge gave no report (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    report = json.loads(report_line)

    failures, total_cases = [], 0
    for suite, suite_result in sorted(report.items()):
        print(f"\n{suite}")
        for name, result in sorted(suite_result["test_results"].items()):
            print(f"  {result['status']:<8} {_describe(name, result)}")
            for line in result.get("decoded_logs") or []:
                print(f"           {line}")
            kind = result.get("kind") or {}
            total_cases += kind.get("Invariant", {}).get("calls") or kind.get("Fuzz", {}).get("runs") or 1
            if result["status"] != "Success":
                failures.append(f"{suite}::{name}: {result.get('reason')}\n  counterexample: {result.get('counterexample')}")
    print(f"forge: {total_cases} cases (fuzz runs + invariant calls) in {len(report)} suites")
    assert not failures, "\n".join(failures)
    assert proc.returncode == 0, proc.stderr
