"""Pure clearing functions: no chain, no I/O; same inputs, same clearing.

Names are loaded on first use (PEP 562): ``optimizer.types`` is a few dataclasses that
the ledger's light readers need, while ``optimizer.community`` loads scipy.sparse (and
its LP solver on the first clearing), which only a clearing should pay for.
"""

from importlib import import_module

_HOMES = {
    "BaselineResult": "optimizer.baseline",
    "run_baseline": "optimizer.baseline",
    "CommunityModel": "optimizer.community",
    "clear": "optimizer.community",
    "largest_remainder": "optimizer.rounding",
    "round_conserving": "optimizer.rounding",
    "Batteries": "optimizer.types",
    "Clearing": "optimizer.types",
    "ClearingInputs": "optimizer.types",
    "ZoneNetwork": "optimizer.types",
    "ZonalClearing": "optimizer.zonal",
    "clear_zonal": "optimizer.zonal",
    "ZonalAuctionResult": "optimizer.zonal_auction",
    "clear_zonal_auction": "optimizer.zonal_auction",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'optimizer' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
