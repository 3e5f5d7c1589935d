"""Every benchmark answers `--help` with its usage, not a traceback (bench_devices.py
once crashed on a bare % in an option's help)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script", sorted(p.name for p in BENCH.glob("bench_*.py")))
def test_help_prints_usage(script: str) -> None:
    result = subprocess.run([sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True,
                            timeout=120, cwd=BENCH.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:") and not result.stderr
