"""slither finds nothing of High or Medium impact in our contracts (contracts/src).

A finding that is a false positive is silenced in the source with
`// slither-disable-next-line <detector>` and a comment saying why.

slither is driven through its Python API rather than the command line that
../shared/TOOLING.md describes, for two reasons: with foundry.toml at the repository
root, crytic-compile treats any target inside the repository as a Foundry project and
runs `forge`; and its command line cannot put `viaIR` into a standard-JSON input,
without which EnergyMarket does not compile (stack too deep). Here the standard JSON
carries the same settings as node/chain/build.py and goes to the same solc-js shim.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from node.chain.build import SETTINGS, SHIM, source_files

ROOT = Path(__file__).resolve().parent.parent
FAILING_IMPACTS = ("High", "Medium")


def _standard_json() -> dict:
    settings = {key: value for key, value in SETTINGS.items() if key != "outputSelection"}
    settings["remappings"] = ["@openzeppelin/=node_modules/@openzeppelin/"]
    sources = {
        str(path.relative_to(ROOT)): {"urls": [str(path.relative_to(ROOT))]}
        for path in source_files()
    }
    return {"language": "Solidity", "sources": sources, "settings": settings}


def _run_slither() -> list[dict]:
    from crytic_compile import CryticCompile
    from crytic_compile.platform.solc_standard_json import SolcStandardJson
    from slither import Slither
    from slither.detectors import all_detectors
    from slither.detectors.abstract_detector import AbstractDetector

    # Detectors log every result, dependencies' included; the test prints its own.
    logging.getLogger("Detectors").setLevel(logging.ERROR)
    cwd = os.getcwd()
    os.chdir(ROOT)  # source names in the JSON, and so in the findings, are relative to the root
    try:
        compilation = CryticCompile(SolcStandardJson(_standard_json()), solc=str(SHIM))
        slither = Slither(compilation, exclude_dependencies=True)
        for detector in vars(all_detectors).values():
            if isinstance(detector, type) and issubclass(detector, AbstractDetector):
                slither.register_detector(detector)
        return [finding for findings in slither.run_detectors() for finding in findings]
    finally:
        os.chdir(cwd)


def _in_our_contracts(finding: dict) -> bool:
    """A finding counts if any element it points at is in contracts/src (not node_modules)."""
    for element in finding.get("elements", []):
        path = element.get("source_mapping", {}).get("filename_relative", "")
        if path.startswith("contracts/src/"):
            return True
    return False


def test_slither_finds_no_high_or_medium_issue_in_our_contracts():
    if shutil.which("slither") is None and not (ROOT / ".venv" / "bin" / "slither").exists():
        if os.environ.get("CI"):
            pytest.fail("slither is not installed: CI must `pip install slither-analyzer`")
        pytest.skip("slither not installed (pip install slither-analyzer)")
    if not (ROOT / "node_modules" / "solc").exists():
        if os.environ.get("CI"):
            pytest.fail("solc-js is not installed: CI must run `npm ci`")
        pytest.skip("solc-js not installed (npm ci)")

    findings = [f for f in _run_slither() if _in_our_contracts(f)]
    for finding in sorted(findings, key=lambda f: (f["impact"], f["check"])):
        description = finding["description"].strip()
        if finding["impact"] in ("Informational", "Optimization"):
            description = description.splitlines()[0]  # their lists run through every dependency
        print(f"slither {finding['impact']}/{finding['confidence']} {finding['check']}: {description}")
    serious = [f for f in findings if f["impact"] in FAILING_IMPACTS]
    print(f"slither: {len(findings)} findings in contracts/src, {len(serious)} High or Medium")
    assert not serious, "\n".join(f"{f['impact']} {f['check']}: {f['description'].strip()}" for f in serious)
