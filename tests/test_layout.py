"""The package layout is the architecture: imports point down the data flow, nothing
imports in a circle, and the CLI's parser loads no heavy library."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Each package may import the packages of lower layers (and its own), never higher ones:
# inputs -> optimizer -> settlement -> chain -> index -> UI/audit, with the CLI on top;
# bidding agents make signed intent from data, below everything that clears or settles.
LAYERS = [
    {"node", "node.errors", "node.units", "node.faults", "node.parallel"},
    {"node.data", "node.intent", "optimizer", "node.metrics"},
    {"node.agents"},
    {"node.chain"},
    {"node.clearing"},
    {"node.index"},
    {"node.oracle", "node.audit", "node.admin", "node.classroom"},
    {"node.simulation"},
    {"node.research", "node.envs"},
    {"webui"},
    {"node.cli"},
]
RANK = {package: rank for rank, packages in enumerate(LAYERS) for package in packages}
HEAVY = ("cvxpy", "web3", "eth_account", "eth_tester", "pandas", "matplotlib", "numpy", "scipy")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    found = {}
    for root in ("node", "webui", "optimizer"):
        for path in (REPO / root).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "node" else parts[0]


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    """Project modules `path` imports anywhere (top level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known}


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(path, known) - {name} for name, path in known.items()}


def test_every_package_is_placed_in_a_layer():
    assert {_package(m) for m in _modules()} <= set(RANK), "a new package: give it a layer in LAYERS"


def test_imports_point_down_the_data_flow():
    against = [f"{m} imports {t}" for m, targets in _graph().items() for t in targets
               if RANK[_package(t)] > RANK[_package(m)]]
    assert not against, "imports against the data flow:\n" + "\n".join(sorted(against))


def test_no_module_imports_itself_in_a_circle():
    graph = _graph()
    state: dict[str, int] = defaultdict(int)  # 0 new, 1 on the path, 2 done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state[target] == 1:
                cycles.append(" -> ".join(path[path.index(target):] + [target]))
            elif state[target] == 0:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(graph):
        if state[module] == 0:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("root", ["node", "webui"])
def test_modules_fit_a_few_screens(root: str):
    long = {str(p.relative_to(REPO)): n for p in (REPO / root).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by job): {long}"


def test_building_the_cli_parser_loads_no_heavy_library():
    code = ("import sys; from node.cli.main import build_parser; build_parser(); "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"building the parser imported {loaded.stdout.strip()}"


def test_reading_the_index_loads_no_solver_or_chain_client():
    code = ("import sys; import node.index.store, node.cli.ledger; "
            "print(' '.join(m for m in ('cvxpy', 'web3', 'eth_tester', 'matplotlib') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"the index readers imported {loaded.stdout.strip()}"
