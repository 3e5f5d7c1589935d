"""Repairs of meter data are committed in the inputs and reported beside the results."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from node.cli.main import main
from node.index.store import Index
from node.clearing.inputs import IntervalInputs
from tests.helpers import GOOD_ROWS, write_csv


def test_repairs_are_committed_with_the_settled_interval_and_listed_for_the_operator(tmp_path: Path) -> None:
    rows = [r for r in GOOD_ROWS if not r.startswith("2026-06-01T00:15:00+00:00,b")]
    data = write_csv(tmp_path, rows)
    state = tmp_path / "state"
    assert main(["-q", "simulate", "--data", str(data), "--state", str(state), "--no-progress"]) == 2  # strict
    assert not state.exists()
    assert main(["-q", "simulate", "--data", str(data), "--state", str(state), "--no-progress", "--meter-policy", "repair"]) == 0
    index = Index(state / "index.sqlite")
    committed = [IntervalInputs.from_json(index.inputs(index.interval(k)["inputs_hash"])) for k in range(3)]
    assert [c.repairs for c in committed] == [[], [
        {"participant": 2, "column": "load_wh", "rule": "linear_interpolation", "original": "no row", "value_wh": 400},
        {"participant": 2, "column": "pv_wh", "rule": "linear_interpolation", "original": "no row", "value_wh": 375},
    ], []]
    assert b'"repairs"' not in committed[0].canonical_json()  # unrepaired inputs hash as before
    assert (state / "repairs.csv").read_text().count("linear_interpolation") == 2


def test_index_commands_rebuild_and_check(tmp_path: Path, capsys) -> None:
    data = write_csv(tmp_path, GOOD_ROWS)
    state = tmp_path / "state"
    assert main(["-q", "simulate", "--data", str(data), "--state", str(state), "--no-progress"]) == 0
    assert main(["-q", "index", "check", "--state", str(state)]) == 0
    assert "the index equals the chain" in capsys.readouterr().out
    assert main(["-q", "index", "rebuild", "--state", str(state), "--no-progress", "--chunk-blocks", "3"]) == 0
    assert (state / "index.sqlite.old").exists()
    assert main(["-q", "index", "check", "--state", str(state)]) == 0
    db = sqlite3.connect(state / "index.sqlite")
    db.execute("UPDATE entries SET p2p_wh = p2p_wh + 5 WHERE interval = 1 AND participant = 1")
    db.commit()
    db.close()
    capsys.readouterr()
    assert main(["-q", "index", "check", "--state", str(state)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("entries: interval 1, participant 1: p2p_wh is ")
