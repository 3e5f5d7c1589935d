"""GridLedger deletes nothing it did not make: --state must be new, empty, or GridLedger's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli.main import build_parser, main
from node.cli.run import RESTART_HINT, RESUME_HINT
from node.errors import InputError
from node.simulation.state import MARKER, claim_state, state_kind


def thesis_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "thesis"
    folder.mkdir()
    (folder / "chapter1.tex").write_text("\\section{Introduction}")
    (folder / "figures").mkdir()
    (folder / "figures" / "plot.pdf").write_bytes(b"%PDF-1.7")
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("command", [["demo", "--no-serve"], ["demo", "--no-serve", "--fresh"],
                                     ["simulate", "--fresh"], ["simulate"]])
def test_a_folder_gridledger_did_not_make_is_refused_and_left_alone(tmp_path, capsys, command):
    folder = thesis_folder(tmp_path)
    before = contents(folder)
    assert main(["-q", *command, "--homes", "2", "--state", str(folder), "--no-progress"]) == 2
    assert "is not a GridLedger state directory" in capsys.readouterr().err
    assert contents(folder) == before


def test_a_file_given_as_state_is_refused(tmp_path, capsys):
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    assert main(["-q", "demo", "--no-serve", "--homes", "2", "--state", str(path), "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert path.read_text() == "keep me"


def test_the_demo_does_not_start_over_a_simulation_without_fresh(tmp_path, capsys):
    state = tmp_path / "sim"
    claim_state(state, "simulate")
    (state / "deployment.json").write_text("{}")
    assert main(["-q", "demo", "--no-serve", "--homes", "2", "--state", str(state), "--no-progress"]) == 2
    assert "pass --fresh" in capsys.readouterr().err
    assert (state / "deployment.json").read_text() == "{}"


def test_starting_over_removes_only_gridledgers_own_files(tmp_path):
    state = tmp_path / "demo"
    claim_state(state, "demo")
    for name in ("deployment.json", "chain.journal", "index.sqlite", "orders.sqlite"):
        (state / name).write_text("old")
    (state / "results").mkdir()
    (state / "results" / "kpis.json").write_text("{}")
    (state / "my-notes.md").write_text("mine")
    removed = claim_state(state, "demo", start_over=True)
    assert set(removed) >= {"deployment.json", "chain.journal", "index.sqlite", "orders.sqlite", "results", MARKER}
    assert sorted(p.name for p in state.iterdir()) == sorted([MARKER, "my-notes.md"])
    assert (state / "my-notes.md").read_text() == "mine"
    assert json.loads((state / MARKER).read_text())["kind"] == "demo"


def test_a_new_or_empty_folder_is_claimed_and_a_resumed_state_is_kept(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert claim_state(empty, "simulate") == [] and state_kind(empty) == "simulate"
    (empty / "index.sqlite").write_text("settled")
    assert claim_state(empty, "simulate") == []  # resume: nothing removed
    assert (empty / "index.sqlite").read_text() == "settled"
    assert claim_state(tmp_path / "new" / "deep", "demo") == [] and state_kind(tmp_path / "new" / "deep") == "demo"


def test_a_state_from_before_markers_counts_as_gridledgers(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "deployment.json").write_text("{}")
    assert state_kind(old) == "unknown"
    claim_state(old, "simulate")  # resumed, and marked from now on
    assert state_kind(old) == "simulate" and (old / "deployment.json").exists()


def test_claim_refuses_unknown_kinds():
    with pytest.raises(ValueError):
        claim_state(Path("/nonexistent"), "thesis")


def test_a_damaged_marker_still_marks_a_gridledger_directory(tmp_path):
    state = tmp_path / "s"
    state.mkdir()
    (state / MARKER).write_text("{not json")
    assert state_kind(state) == "unknown"
    with pytest.raises(InputError, match="another run"):
        from node.cli.run import cmd_demo

        cmd_demo(build_parser().parse_args(["demo", "--state", str(state), "--no-serve"]))


def test_ctrl_c_tells_the_truth_about_what_happens_next():
    parser = build_parser()
    assert parser.parse_args(["demo"]).interrupted == RESTART_HINT and "starts over" in RESTART_HINT
    assert parser.parse_args(["simulate"]).interrupted == RESUME_HINT and "resume" in RESUME_HINT
