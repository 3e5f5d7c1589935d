"""Exact conversion of float energy flows to integers (Wh) that conserve a total.

Settlements on chain are integers and must conserve energy to the Wh, so
rounding each value on its own is not enough: the rounded values must add up to
the rounded total. Largest remainder (Hamilton's method) does that while moving
each value by less than one unit, and breaks ties by index so the result is a
pure function of its inputs.
"""

from __future__ import annotations

import numpy as np


def largest_remainder(values: np.ndarray, total: int) -> np.ndarray:
    """Integers summing exactly to ``total``, each within 1 of its value.

    Every value is floored, then the units still missing go one each to the
    largest fractional parts (lower index first on ties). "Within 1" is strict,
    so a value that is already an integer is returned unchanged. Raises
    ``ValueError`` when no such integers exist (in particular whenever
    ``|sum(values) - total| >= len(values)``) or the inputs are not finite.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    total = _as_int(total)
    if not np.all(np.isfinite(v)):
        raise ValueError("largest_remainder: values must be finite")
    floors = np.floor(v)
    fractions = v - floors
    result = floors.astype(np.int64)
    missing = total - int(result.sum())
    # A value that is already an integer must stay put: moving it would be a full unit.
    if not 0 <= missing <= int(np.count_nonzero(fractions)):
        raise ValueError(
            f"largest_remainder: cannot reach total {total} from {v.size} values summing "
            f"to {float(v.sum())!r} while moving each by less than 1"
        )
    # Stable sort on -fraction: the largest parts first, lower index first on ties.
    order = np.argsort(-fractions, kind="stable")
    result[order[:missing]] += 1
    return result


def round_conserving(values: np.ndarray, *, tol: float = 1e-6) -> np.ndarray:
    """Round floats whose exact sum is an integer, keeping that sum exactly.

    The float sum may be off its integer by rounding error; more than ``tol``
    means the caller's values do not conserve anything, which is a bug worth a
    ``ValueError`` rather than a silently invented unit.
    """
    v = np.asarray(values, dtype=np.float64)
    exact = float(np.sum(v))
    total = round(exact)
    if abs(exact - total) > tol:
        raise ValueError(f"round_conserving: values sum to {exact!r}, not an integer")
    return largest_remainder(v, total).reshape(v.shape)


def _as_int(total: int) -> int:
    if isinstance(total, (bool, np.bool_)) or int(total) != total:
        raise ValueError(f"largest_remainder: total must be an integer, got {total!r}")
    return int(total)
