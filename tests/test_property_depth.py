"""PROPERTY_DEPTH multiplies every property test's examples (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COUNT_EXAMPLES = """
import tests.conftest
from hypothesis import given, settings, strategies as st
drawn = []
@settings(max_examples=3, database=None)
@given(st.binary(min_size=16, max_size=16))
def explicit(value):
    drawn.append(value)
explicit()
print(len(drawn), settings.default.max_examples)
"""


def run(depth: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PROPERTY_DEPTH", "HYPOTHESIS_PROFILE")}
    if depth is not None:
        env["PROPERTY_DEPTH"] = depth
    return subprocess.run([sys.executable, "-c", COUNT_EXAMPLES], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("depth, explicit, default", [(None, 3, 100), ("1", 3, 100), ("4", 12, 400)])
def test_property_depth_multiplies_explicit_and_default_examples(depth, explicit, default) -> None:
    out = run(depth)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(explicit), str(default)]


@pytest.mark.parametrize("depth", ["0", "-2", "deep", "2.5"])
def test_a_bad_property_depth_is_refused_naming_the_variable(depth: str) -> None:
    out = run(depth)
    assert out.returncode != 0
    assert f"PROPERTY_DEPTH must be a whole number >= 1, got '{depth}'" in out.stderr
