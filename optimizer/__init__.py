"""Pure clearing functions: no chain, no I/O; same inputs, same clearing."""

from optimizer.baseline import BaselineResult, run_baseline
from optimizer.community import CommunityModel, clear
from optimizer.rounding import largest_remainder, round_conserving
from optimizer.types import Batteries, Clearing, ClearingInputs

__all__ = [
    "Batteries",
    "BaselineResult",
    "Clearing",
    "ClearingInputs",
    "CommunityModel",
    "clear",
    "largest_remainder",
    "round_conserving",
    "run_baseline",
]
