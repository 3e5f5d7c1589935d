"""Largest-remainder rounding: the integer boundary must conserve exactly."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from optimizer import largest_remainder, round_conserving

VALUES = arrays(
    np.float64,
    st.integers(1, 40),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)


def reachable_totals(values: np.ndarray) -> tuple[int, int]:
    """Smallest and largest total reachable moving each value by less than 1."""
    floors = np.floor(values)
    return int(floors.sum()), int(floors.sum()) + int(np.count_nonzero(values - floors))


@given(VALUES, st.data())
def test_largest_remainder_hits_the_total_exactly(values: np.ndarray, data: st.DataObject) -> None:
    low, high = reachable_totals(values)
    total = data.draw(st.integers(low, high))
    result = largest_remainder(values, total)
    assert result.dtype == np.int64
    assert int(result.sum()) == total


@given(VALUES, st.data())
def test_largest_remainder_moves_each_value_by_less_than_one(values: np.ndarray, data: st.DataObject) -> None:
    low, high = reachable_totals(values)
    result = largest_remainder(values, data.draw(st.integers(low, high)))
    # Exact arithmetic: in floats, -1 - (-1e-53) already rounds to -1.
    assert all(abs(Fraction(int(x)) - Fraction(float(v))) < 1 for x, v in zip(result, values))


@given(VALUES, st.data())
def test_largest_remainder_is_deterministic(values: np.ndarray, data: st.DataObject) -> None:
    low, high = reachable_totals(values)
    total = data.draw(st.integers(low, high))
    first = largest_remainder(values, total)
    np.testing.assert_array_equal(first, largest_remainder(values.copy(), total))


@given(VALUES, st.integers(0, 1000))
def test_largest_remainder_rejects_totals_too_far_from_the_sum(values: np.ndarray, extra: int) -> None:
    total = int(np.ceil(values.sum())) + values.size + extra
    with pytest.raises(ValueError, match="cannot reach total"):
        largest_remainder(values, total)
    with pytest.raises(ValueError, match="cannot reach total"):
        largest_remainder(values, int(np.floor(values.sum())) - values.size - extra)


def test_largest_remainder_gives_units_to_largest_fractions_first() -> None:
    np.testing.assert_array_equal(largest_remainder(np.array([1.2, 0.7, 2.1]), 4), [1, 1, 2])


def test_largest_remainder_breaks_ties_by_index() -> None:
    np.testing.assert_array_equal(largest_remainder(np.array([0.5, 0.5, 0.5, 0.5]), 2), [1, 1, 0, 0])


def test_largest_remainder_leaves_integers_alone() -> None:
    np.testing.assert_array_equal(largest_remainder(np.array([3.0, 0.5]), 4), [3, 1])
    with pytest.raises(ValueError):
        largest_remainder(np.array([3.0, 0.5]), 5)


def test_largest_remainder_rejects_non_integer_total_and_nan() -> None:
    with pytest.raises(ValueError, match="integer"):
        largest_remainder(np.array([0.5, 0.5]), 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        largest_remainder(np.array([np.nan, 0.5]), 1)


@given(arrays(np.int64, st.integers(1, 30), elements=st.integers(-10**6, 10**6)), st.data())
def test_round_conserving_keeps_an_integer_sum(units: np.ndarray, data: st.DataObject) -> None:
    # Split integer totals into float shares, as per-home flows of a conserved total are.
    weights = data.draw(arrays(np.float64, units.shape, elements=st.floats(0.01, 1.0)))
    shares = np.concatenate([units * weights, units * (1 - weights)])
    result = round_conserving(shares)
    assert int(result.sum()) == int(units.sum())
    assert all(abs(Fraction(int(x)) - Fraction(float(v))) < 1 for x, v in zip(result, shares))


def test_round_conserving_rejects_a_sum_that_is_not_an_integer() -> None:
    with pytest.raises(ValueError, match="not an integer"):
        round_conserving(np.array([0.25, 0.25]))
