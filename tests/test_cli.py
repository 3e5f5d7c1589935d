"""The command line: help everywhere, one clear line and exit status 2 for a user's
mistake, and nothing written when the input is bad."""

from __future__ import annotations

import pytest

from node.cli.main import build_parser, main

COMMANDS = ["demo", "simulate", "serve", "status", "balances", "trades", "generate", "build", "audit", "node", "account", "order", "mandate", "index", "dispute"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "usage: gridledger " + command in capsys.readouterr().out


def test_top_level_help_lists_every_command():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


def test_bad_dataset_is_rejected_before_anything_is_written(tmp_path, capsys):
    data = tmp_path / "meters.csv"
    data.write_text(
        "timestamp,participant,consumption_kwh,production_kwh\n"
        "2026-06-01T00:00:00Z,a,0.2,0\n"
        "2026-06-01T00:15:00Z,a,abc,0\n"
    )
    state = tmp_path / "state"
    assert main(["-q", "simulate", "--data", str(data), "--state", str(state), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "meters.csv" in err and "row 3" in err and "consumption_kwh" in err
    assert len(err.strip().splitlines()) == 1
    assert not state.exists()


def test_reading_a_state_directory_that_does_not_exist_says_what_to_do(tmp_path, capsys):
    assert main(["status", "--state", str(tmp_path / "nowhere")]) == 2
    assert "run `gridledger demo` or `gridledger simulate` first" in capsys.readouterr().err


def test_bad_config_value_names_the_key(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[tariffs]\nsell_per_kwh = -1\n")
    assert main(["-q", "simulate", "--config", str(config), "--state", str(tmp_path / "s"), "--no-progress"]) == 2
    assert "tariffs.sell_per_kwh" in capsys.readouterr().err


def test_unreachable_node_is_reported_without_a_traceback(tmp_path, capsys):
    code = main(["-q", "simulate", "--rpc", "http://127.0.0.1:9", "--homes", "2", "--state", str(tmp_path / "s"), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert "cannot reach a JSON-RPC node at http://127.0.0.1:9" in err and "Traceback" not in err
