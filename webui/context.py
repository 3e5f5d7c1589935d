"""What a request reads: the app's index and its meta, cached per request (like the
Flask tutorial's ``get_db``). Blueprints import these, never the app factory."""

from __future__ import annotations

from flask import current_app, g

from node.index.store import Index

EXTENSION = "gridledger_index"


def get_index() -> Index:
    return current_app.extensions[EXTENSION]


def get_meta() -> dict[str, str]:
    """The index meta, read once per request."""
    if "meta" not in g:
        g.meta = get_index().meta()
    return g.meta


def currency() -> str:
    return get_meta().get("currency", "EUR")
