"""The LP layer: assembly by named blocks and the sign of row prices for both solvers."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import solvers
from optimizer.lp import LinearProgram


def three_variable_lp() -> LinearProgram:
    lp = LinearProgram()
    x = lp.columns("x", 3)
    lower, upper, total = lp.rows("lower", 1), lp.rows("upper", 1), lp.rows("total", 1, equality=True)
    lp.add(lower, x[0], 1.0)  # x0 >= lo
    lp.add(upper, x[1], 1.0)  # x1 <= hi
    lp.add(total, x[1:], 1.0)  # x1 + x2 == total
    return lp


def solve(lp: LinearProgram, solver: str, lo: float, hi: float, total: float):
    data = lp.data()
    data.set_columns("x", lo=-10.0, hi=10.0, cost=np.array([1.0, -1.0, 2.0]))
    data.set_rows("lower", lo=lo)
    data.set_rows("upper", hi=hi)
    data.set_rows("total", lo=total, hi=total)
    if solver == solvers.PIQP:
        return solvers.PiqpWorkspace(lp, {}).solve(data, accept_inaccurate=False)
    return solvers.solve_clarabel(lp, data, {}, accept_inaccurate=False)


@pytest.mark.parametrize("solver", [solvers.PIQP, solvers.CLARABEL])
def test_row_price_is_the_cost_increase_per_unit_of_row_bound(solver: str) -> None:
    # min x0 - x1 + 2 x2 with x0 >= 1, x1 <= 2, x1 + x2 == 5: every row binds, and
    # the prices are +1 (lower), -3 (upper: x1 up by one, x2 down by one), +2 (total).
    lp = three_variable_lp()
    base = solve(lp, solver, 1.0, 2.0, 5.0)
    assert base.row_price.tolist() == pytest.approx([1.0, -3.0, 2.0], abs=1e-6)
    for row, bump in (("lower", (1.001, 2.0, 5.0)), ("upper", (1.0, 2.001, 5.0)), ("total", (1.0, 2.0, 5.001))):
        moved = solve(lp, solver, *bump)
        assert base.price(row)[0] == pytest.approx((moved.objective - base.objective) / 1e-3, abs=1e-5), row


def test_matrix_sums_duplicate_coefficients() -> None:
    lp = LinearProgram()
    x = lp.columns("x", 3)
    r = lp.rows("r", 1)
    lp.add(r, x[[0, 0, 2]], np.array([1.0, 2.0, 5.0]))
    assert lp.matrix.toarray().tolist() == [[3.0, 0.0, 5.0]]
