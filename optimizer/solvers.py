"""Interior-point solvers for a :class:`~optimizer.lp.LinearProgram`, with reused workspaces.

PIQP (proximal interior point, sparse LDLᵀ) takes column bounds and two-sided
rows natively, so a battery's charge and state-of-charge limits add no rows to
its KKT system; on the 1000 homes x 96 steps clearing it needs about half the
CPU time of Clarabel, which must turn every bound into a cone row (see
``bench/bench_clearing.py --solvers``). Its workspace (symbolic factorisation,
ordering) is set up once per LP and re-filled with ``update`` each interval.

Clarabel is the fallback when PIQP does not report success; it is set up from
scratch, with its default (refined) settings. Both are single-threaded here,
so the same data always gives the same bits, whatever was solved before.

Both solvers' dual sign conventions are normalised to ``row_price`` =
d(optimal cost)/d(row bound); ``tests/test_clearing_exact.py`` checks it by
finite differences.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

from optimizer.lp import LinearProgram, LPData, LPSolution

log = logging.getLogger("gridledger.optimizer")

PIQP = "PIQP"
CLARABEL = "CLARABEL"


class SolverFailure(Exception):
    """A solver stopped without an optimal (or, if allowed, nearly optimal) answer."""


class PiqpWorkspace:
    """One PIQP solver per LP structure: set up once, updated per interval."""

    def __init__(self, lp: LinearProgram, options: dict[str, object]) -> None:
        import piqp

        self._piqp = piqp
        self.lp = lp
        self.options = dict(options)
        A = lp.matrix
        eq = lp.is_equality()
        self._eq, self._ineq = np.flatnonzero(eq), np.flatnonzero(~eq)
        self._A = A[self._eq].tocsc() if self._eq.size else None
        self._G = A[self._ineq].tocsc() if self._ineq.size else None
        self._solver = None

    def solve(self, data: LPData, accept_inaccurate: bool) -> LPSolution:
        vectors = {
            "c": data.cost,
            "b": data.row_lo[self._eq] if self._A is not None else None,
            "h_l": data.row_lo[self._ineq] if self._G is not None else None,
            "h_u": data.row_hi[self._ineq] if self._G is not None else None,
            "x_l": data.col_lo,
            "x_u": data.col_hi,
        }
        if self._solver is None:
            solver = self._piqp.SparseSolver()
            for key, value in self.options.items():
                setattr(solver.settings, key, value)
            n = self.lp.num_columns
            solver.setup(sp.csc_matrix((n, n)), A=self._A, G=self._G, **vectors)
            self._solver = solver
        # Every solve goes through update() with the original matrices: PIQP
        # rescales its stored data on update, so reusing the scaled copy would
        # let rounding depend on the intervals solved before.
        given = {k: v for k, v in vectors.items() if v is not None}
        self._solver.update(A=self._A, G=self._G, **given)
        status = self._solver.solve()
        result = self._solver.result
        if status != self._piqp.PIQP_SOLVED:
            raise SolverFailure(f"PIQP {self.options}: {status.name}")
        price = np.zeros(self.lp.num_rows)
        # PIQP's Lagrangian is c'x + y'(Ax - b) + z_u'(Gx - h_u) - z_l'(Gx - h_l).
        price[self._eq] = -np.asarray(result.y)
        if self._ineq.size:
            price[self._ineq] = np.asarray(result.z_l) - np.asarray(result.z_u)
        return LPSolution(
            self.lp, np.array(result.x), price, float(result.info.primal_obj), "optimal", PIQP, int(result.info.iter)
        )


def solve_clarabel(lp: LinearProgram, data: LPData, options: dict[str, object], accept_inaccurate: bool) -> LPSolution:
    """Solve with Clarabel: bounds become nonnegative-cone rows, fixed ones zero-cone rows."""
    import clarabel

    A = lp.matrix.tocsr()
    n, m = lp.num_columns, lp.num_rows
    eye = sp.identity(n, format="csr")
    lo, hi, rlo, rhi = data.col_lo, data.col_hi, data.row_lo, data.row_hi
    row_eq = lp.is_equality() | (rlo == rhi)
    col_eq = lo == hi
    # (matrix, right-hand side, selected rows, d(row bounds)/d(rhs)); the zero cone comes first.
    parts = [
        (A, rhi, row_eq, 1.0),
        (eye, hi, col_eq, 0.0),
        (A, rhi, ~row_eq & np.isfinite(rhi), 1.0),
        (-A, -rlo, ~row_eq & np.isfinite(rlo), -1.0),
        (eye, hi, ~col_eq & np.isfinite(hi), 0.0),
        (-eye, -lo, ~col_eq & np.isfinite(lo), 0.0),
    ]
    G = sp.vstack([M[mask] for M, _, mask, _ in parts], format="csc")
    h = np.concatenate([rhs[mask] for _, rhs, mask, _ in parts])
    num_zero = int(row_eq.sum() + col_eq.sum())
    settings = clarabel.DefaultSettings()
    settings.verbose = False
    for key, value in options.items():
        setattr(settings, key, value)
    cones = [clarabel.ZeroConeT(num_zero), clarabel.NonnegativeConeT(G.shape[0] - num_zero)]
    solution = clarabel.DefaultSolver(sp.csc_matrix((n, n)), data.cost, G, h, cones, settings).solve()
    status = str(solution.status)
    if status != "Solved" and not (accept_inaccurate and status == "AlmostSolved"):
        raise SolverFailure(f"CLARABEL {options}: {status}")
    # Clarabel's Lagrangian is q'x + z'(Gx - h), so d(cost)/dh = -z for each row of G.
    z = np.asarray(solution.z)
    price = np.zeros(m)
    offset = 0
    for _, _, mask, sign in parts:
        count = int(mask.sum())
        if sign:
            price[mask] += -sign * z[offset : offset + count]
        offset += count
    return LPSolution(
        lp,
        np.array(solution.x),
        price,
        float(solution.obj_val),
        "optimal" if status == "Solved" else "optimal_inaccurate",
        CLARABEL,
        int(solution.iterations),
    )
