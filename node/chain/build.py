"""Compile the Solidity contracts into ``contracts/build/*.json``.

There is no native solc on our machines, so py-solc-x drives solc-js through
``contracts/tools/solc-shim.js`` (Node must be installed, with ``npm ci`` run at the
repository root). The compiled ABI and bytecode are committed, so running GridLedger
needs neither Node nor a compiler; ``check_artifacts`` proves they match the sources.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from node.errors import GridLedgerError

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "contracts" / "src"
BUILD = ROOT / "contracts" / "build"
SHIM = ROOT / "contracts" / "tools" / "solc-shim.js"
DEPLOYED = ("GridToken", "EnergyMarket")
SETTINGS = {
    "optimizer": {"enabled": True, "runs": 10000},
    "viaIR": True,
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


def _standard_input() -> dict:
    sources = {
        f"src/{path.name}": {"content": path.read_text()} for path in sorted(SOURCES.glob("*.sol"))
    }
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def compile_contracts() -> dict[str, dict]:
    """Compile every contract under contracts/src; return {name: {abi, bytecode}}."""
    import solcx

    if shutil.which("node") is None or not (ROOT / "node_modules" / "solc").exists():
        raise GridLedgerError(
            "compiling needs Node.js and the npm packages: run `npm ci` in the repository root"
        )
    output = solcx.compile_standard(_standard_input(), solc_binary=str(SHIM), allow_paths=str(ROOT))
    artifacts = {}
    for source in output["contracts"].values():
        for name, data in source.items():
            if name in DEPLOYED:
                artifacts[name] = {"abi": data["abi"], "bytecode": "0x" + data["evm"]["bytecode"]["object"]}
    return artifacts


def write_artifacts(artifacts: dict[str, dict]) -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    for name, artifact in artifacts.items():
        (BUILD / f"{name}.json").write_text(json.dumps(artifact, indent=1, sort_keys=True) + "\n")


def load_artifact(name: str) -> dict:
    """The committed ABI and bytecode of contract `name`."""
    path = BUILD / f"{name}.json"
    if not path.exists():
        raise GridLedgerError(f"{path} is missing: run `gridledger build` to compile the contracts")
    return json.loads(path.read_text())


def stale_artifacts() -> list[str]:
    """Names of contracts whose committed artifact differs from a fresh compile."""
    fresh = compile_contracts()
    return [name for name, artifact in fresh.items() if load_artifact(name) != artifact]


if __name__ == "__main__":
    write_artifacts(compile_contracts())
