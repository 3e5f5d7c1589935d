"""Compile the Solidity contracts into ``contracts/build/*.json``.

There is no native solc on our machines, so py-solc-x drives solc-js through
``contracts/tools/solc-shim.js`` (Node must be installed, with ``npm ci`` run at the
repository root). The compiled ABI and bytecode are committed, so running GridLedger
needs neither Node nor a compiler; ``stale_artifacts`` proves they match the sources.

The market is one address (``EnergyMarket``, a router) whose functions live in modules
it delegates to (``contracts/src/modules``). Its artifact carries the ABI of all of
them merged (every function, event and error the market answers with), the router's
bytecode, each module's bytecode in deployment order, and every contract's runtime
size against EIP-170.
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
# The market's modules, in the order the router is given them.
MODULES = (
    "SettlementModule",
    "ZonalSettlementModule",
    "DisputeModule",
    "ParticipantsModule",
    "WalletsModule",
    "MandatesModule",
    "TermsModule",
    "RolesModule",
    "SharedBatteryModule",
)
EIP170_LIMIT = 24_576  # bytes of runtime code a contract may have
SIZE_TARGET = EIP170_LIMIT * 3 // 4  # issue 8: every contract within 75 % of the limit
SETTINGS = {
    "optimizer": {"enabled": True, "runs": 10000},
    "viaIR": True,
    "evmVersion": "cancun",
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


def source_files() -> list[Path]:
    """Every Solidity source of the contracts, sub-folders included, in a fixed order."""
    return sorted(SOURCES.rglob("*.sol"))


def _standard_input() -> dict:
    sources = {f"src/{path.relative_to(SOURCES).as_posix()}": {"content": path.read_text()} for path in source_files()}
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def compile_contracts() -> dict[str, dict]:
    """Compile every contract under contracts/src; return {name: artifact} for the
    deployed ones (the market's with its modules and merged ABI)."""
    import solcx

    if shutil.which("node") is None or not (ROOT / "node_modules" / "solc").exists():
        raise GridLedgerError(
            "compiling needs Node.js and the npm packages: run `npm ci` in the repository root"
        )
    output = solcx.compile_standard(_standard_input(), solc_binary=str(SHIM), allow_paths=str(ROOT))
    compiled = {name: data for source in output["contracts"].values() for name, data in source.items()}
    missing = [name for name in DEPLOYED + MODULES if name not in compiled]
    if missing:
        raise GridLedgerError(f"the contracts no longer define {', '.join(missing)}: update node/chain/build.py")
    sizes = {name: len(compiled[name]["evm"]["deployedBytecode"]["object"]) // 2 for name in DEPLOYED + MODULES}
    token = compiled["GridToken"]
    router = compiled["EnergyMarket"]
    return {
        "GridToken": {"abi": token["abi"], "bytecode": "0x" + token["evm"]["bytecode"]["object"]},
        "EnergyMarket": {
            "abi": merged_abi([router["abi"]] + [compiled[name]["abi"] for name in MODULES]),
            "bytecode": "0x" + router["evm"]["bytecode"]["object"],
            "modules": [
                {"name": name, "bytecode": "0x" + compiled[name]["evm"]["bytecode"]["object"]} for name in MODULES
            ],
            "runtime_sizes": sizes,
        },
    }


def merged_abi(abis: list[list[dict]]) -> list[dict]:
    """One ABI for the market: the router's and every module's entries, each function,
    event and error once. Two modules serving one function signature is an error (the
    router would refuse them too); a module's own `selectors` is not the market's."""
    merged: dict[tuple[str, str], dict] = {}
    for abi in abis:
        for entry in abi:
            kind = entry["type"]
            if kind in ("constructor", "fallback", "receive"):
                if abi is abis[0]:
                    merged[(kind, "")] = entry
                continue
            if kind == "function" and entry["name"] == "selectors":
                continue
            key = (kind, f"{entry['name']}({','.join(canonical_type(arg) for arg in entry['inputs'])})")
            if key in merged and kind == "function":
                raise GridLedgerError(f"two modules of the market define {key[1]}: give one of them another name")
            merged[key] = entry
    return [merged[key] for key in sorted(merged)]


def canonical_type(arg: dict) -> str:
    """The ABI type of an argument as in a signature (tuples spelled out)."""
    kind = arg["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(canonical_type(c) for c in arg["components"]) + ")" + kind[len("tuple"):]
    return kind


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


def runtime_sizes() -> dict[str, int]:
    """Bytes of runtime code of the token, the market's router and each module, as
    committed (what EIP-170 limits)."""
    return dict(load_artifact("EnergyMarket")["runtime_sizes"])


def stale_artifacts() -> list[str]:
    """Names of contracts whose committed artifact differs from a fresh compile."""
    fresh = compile_contracts()
    return [name for name, artifact in fresh.items() if load_artifact(name) != artifact]


if __name__ == "__main__":
    write_artifacts(compile_contracts())
