"""One exception family for everything a user or operator can get wrong.

Messages say what is wrong and what to do about it; the CLI prints them as one
line and exits non-zero, never with a traceback.
"""

from __future__ import annotations


class GridLedgerError(Exception):
    """Base of every error GridLedger raises on purpose."""


class InputError(GridLedgerError):
    """A file, config value, order or argument is malformed or inconsistent.

    `field`, when known, names the offending field as the user wrote it (for example
    ``order.nonce`` or ``limit``), so an API can point at it."""

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        self.field = field


class DataError(InputError):
    """A dataset row is invalid; the message names file, row and column."""

    def __init__(self, path: str, row: int | None, column: str | None, problem: str) -> None:
        where = str(path)
        if row is not None:
            where += f", row {row}"
        if column is not None:
            where += f", column '{column}'"
        super().__init__(f"{where}: {problem}")
        self.path, self.row, self.column, self.problem = path, row, column, problem


class ConfigError(InputError):
    """The community config file is missing a field or has a bad value."""


class ChainError(GridLedgerError):
    """The chain could not be reached, or a transaction failed or reverted."""


class SettlementError(ChainError):
    """The market contract rejected a settlement; the message says which check."""


class SolverError(GridLedgerError):
    """The optimiser found no usable solution for an interval."""


class ClockError(GridLedgerError):
    """The oracle's clock and the chain's do not allow settling now: an interval has not
    ended yet, or time made every participant's mandate lapse at once."""
