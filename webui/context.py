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


def participant_list() -> list[dict]:
    """Who is who (Index.participant_list), read once per request: a page at 1,000 homes
    needs it for its drawing, its wallets and its sign-in."""
    if "participants" not in g:
        g.participants = get_index().participant_list()
    return g.participants


def currency() -> str:
    return get_meta().get("currency", "EUR")


def whole_arg(name: str) -> int | None:
    """Query argument `name` as a whole number, None if absent or empty; a 400 naming
    the field otherwise (webui.params.arg)."""
    from webui.params import arg

    return arg(name, None)
