"""A linear programme assembled once from named blocks, re-filled per interval.

The clearing is one LP whose matrix depends only on the battery fleet, while
costs and bounds change every interval. :class:`LinearProgram` collects named
blocks of columns (variables) and rows (constraints) and their coefficients, in
the spirit of PyPSA's component tables: a model declares ``lp.columns("charge",
(B, T))`` and ``lp.rows("balance", T)``, gets index arrays back, and adds
coefficients with numpy broadcasting. The sparse matrix is assembled once.

Per interval, an :class:`LPData` holds the vectors that change: column costs
and bounds, row bounds. Both are addressed by block name, so a formulation
reads like its docstring. Rows declared ``equality=True`` have ``lo == hi``;
all others are ranges (either side may be infinite).

Sign convention of duals (see :mod:`optimizer.solvers`): ``row_price[r]`` is
the increase of the optimal cost per unit increase of row ``r``'s bounds, i.e.
the marginal cost of the right-hand side. For an equality row
``supply - flexible demand == fixed demand`` that is the price of energy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Block:
    start: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)

    def index(self) -> np.ndarray:
        return np.arange(self.start, self.start + self.size).reshape(self.shape)


@dataclass
class LinearProgram:
    """Structure of ``min c'x  s.t.  row_lo <= A x <= row_hi,  col_lo <= x <= col_hi``."""

    column_blocks: dict[str, Block] = field(default_factory=dict)
    row_blocks: dict[str, Block] = field(default_factory=dict)
    equality_rows: list[str] = field(default_factory=list)
    _entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    _matrix: sp.csc_matrix | None = None
    _skip_zeros: bool = False

    @property
    def num_columns(self) -> int:
        return sum(b.size for b in self.column_blocks.values())

    @property
    def num_rows(self) -> int:
        return sum(b.size for b in self.row_blocks.values())

    def columns(self, name: str, shape: int | tuple[int, ...]) -> np.ndarray:
        """Declare a block of variables; returns their column indices in ``shape``."""
        block = Block(self.num_columns, _shape(shape))
        self.column_blocks[name] = block
        return block.index()

    def rows(self, name: str, shape: int | tuple[int, ...], *, equality: bool = False) -> np.ndarray:
        """Declare a block of constraints; returns their row indices in ``shape``."""
        block = Block(self.num_rows, _shape(shape))
        self.row_blocks[name] = block
        if equality:
            self.equality_rows.append(name)
        return block.index()

    def add(self, rows: np.ndarray, cols: np.ndarray, coef: float | np.ndarray) -> None:
        """Add ``coef`` at (rows, cols), all three broadcast together; duplicates sum."""
        r, c, v = np.broadcast_arrays(rows, cols, np.asarray(coef, dtype=np.float64))
        r, c, v = r.ravel(), c.ravel(), v.ravel()
        if self._skip_zeros:
            keep = v != 0.0
            r, c, v = r[keep], c[keep], v[keep]
        self._entries.append((r, c, v))
        self._matrix = None

    @contextmanager
    def skipping_zeros(self) -> Iterator[None]:
        """Within the block, :meth:`add` leaves out zero coefficients: a coefficient table
        with zeros (a line's PTDF over all zones, say) then adds no structural entries."""
        self._skip_zeros = True
        try:
            yield
        finally:
            self._skip_zeros = False

    @property
    def matrix(self) -> sp.csc_matrix:
        if self._matrix is None:
            r, c, v = (np.concatenate(parts) if parts else np.zeros(0) for parts in zip(*self._entries))
            self._matrix = sp.csc_matrix(
                (v, (r.astype(np.int64), c.astype(np.int64))), shape=(self.num_rows, self.num_columns)
            )
            self._matrix.sum_duplicates()
        return self._matrix

    def is_equality(self) -> np.ndarray:
        """Boolean mask of equality rows."""
        mask = np.zeros(self.num_rows, dtype=bool)
        for name in self.equality_rows:
            mask[self.row_blocks[name].slice] = True
        return mask

    def data(self) -> "LPData":
        """Fresh per-interval vectors: zero cost, x >= 0, rows unbounded."""
        n, m = self.num_columns, self.num_rows
        return LPData(self, np.zeros(n), np.zeros(n), np.full(n, np.inf), np.full(m, -np.inf), np.full(m, np.inf))


@dataclass
class LPData:
    """Costs and bounds of one interval, addressed by block name."""

    lp: LinearProgram
    cost: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray

    def set_columns(self, name: str, *, lo=None, hi=None, cost=None) -> None:
        block = self.lp.column_blocks[name]
        for target, value in ((self.col_lo, lo), (self.col_hi, hi), (self.cost, cost)):
            if value is not None:
                target[block.slice] = np.broadcast_to(value, block.shape).ravel()

    def set_rows(self, name: str, *, lo=None, hi=None) -> None:
        block = self.lp.row_blocks[name]
        for target, value in ((self.row_lo, lo), (self.row_hi, hi)):
            if value is not None:
                target[block.slice] = np.broadcast_to(value, block.shape).ravel()


@dataclass(frozen=True)
class LPSolution:
    """Primal values and row prices of a solved :class:`LinearProgram`."""

    lp: LinearProgram
    x: np.ndarray
    row_price: np.ndarray  # d(optimal cost) / d(row bound); see the module docstring
    objective: float
    status: str  # "optimal" or "optimal_inaccurate"
    solver: str
    iterations: int

    def value(self, name: str) -> np.ndarray:
        block = self.lp.column_blocks[name]
        return self.x[block.slice].reshape(block.shape)

    def price(self, name: str) -> np.ndarray:
        block = self.lp.row_blocks[name]
        return self.row_price[block.slice].reshape(block.shape)


def _shape(shape: int | tuple[int, ...]) -> tuple[int, ...]:
    return (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
