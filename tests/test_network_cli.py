"""`gridledger network ...`: each command on the examples, and a bad file as one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli.main import main

REPO = Path(__file__).resolve().parent.parent
CASE = REPO / "examples" / "mini-iso" / "three_zones.json"
NETWORK = REPO / "examples" / "network" / "network.toml"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_clear_prints_prices_binding_lines_and_money(capsys):
    code, out, _ = run(capsys, "network", "clear", str(CASE))
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()[1:4]] == [["North", "10.00"], ["East", "20.00"], ["City", "30.00"]]
    assert "north-city" in out and "at limit" in out.split("north-city")[1].splitlines()[0]
    assert "congestion rent 2,400.00" in out


def test_show_prints_an_intervals_limits(capsys):
    code, out, _ = run(capsys, "network", "show", str(NETWORK), "--interval", "40")
    assert code == 0 and "limits of interval 40" in out
    # In the file's own unit (kW): susceptance, then the two limits.
    assert "limit kW" in out and out.split("feeder-north")[-1].split()[1:3] == ["60", "100"]
    code, out, _ = run(capsys, "network", "show", str(NETWORK), "--interval", "40", "--unit", "MW")
    assert "limit MW" in out and out.split("feeder-north")[-1].split()[1:3] == ["0.06", "0.1"]


def test_a_case_imported_as_mini_iso_and_exported_clears_the_same(capsys, tmp_path):
    pytest.importorskip("pandapower")
    code, out, _ = run(capsys, "network", "import", str(REPO / "tests" / "data" / "case3_loop.m"), "--out",
                       str(tmp_path / "loop"), "--as", "mini-iso")
    assert code == 0 and "2 generators and 2 offers" in out
    code, out, _ = run(capsys, "network", "clear", str(tmp_path / "loop" / "case3_loop.json"))
    assert "congestion rent 2,400.00" in out
    code, out, _ = run(capsys, "network", "export", str(CASE), "--out", str(tmp_path / "three.mat"))
    assert code == 0 and (tmp_path / "three.mat").stat().st_size > 0
    code, out, _ = run(capsys, "network", "import", str(tmp_path / "three.mat"), "--out", str(tmp_path / "net"), "--unit", "kW")
    assert code == 0 and (tmp_path / "net" / "network.toml").exists()


@pytest.mark.parametrize("argv, message", [
    (["network", "show", "missing.toml"], "missing.toml: network file not found"),
    (["network", "clear", str(NETWORK)], "has no offers to clear"),
    (["network", "show", "case.xlsx"], "expected a Mini-ISO .json, a network .toml"),
])
def test_bad_input_is_one_line_and_exit_status_2(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
