"""Request parameters, judged before they reach SQLite, Python's int() or a datetime.

Every whole number a request carries (path segments, query parameters, form fields)
goes through `whole`: ASCII digits only (``"²"`` and ``"٣"`` are digits to str.isdigit
but not numbers here), at most 19 of them, within the bounds the caller gives and never
above SQLite's INTEGER (2**63 - 1). A bad one is a 400 whose message and ``field`` name
the parameter, never a 500.
"""

from __future__ import annotations

from flask import request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from node.errors import InputError

SQLITE_MAX = 2**63 - 1
REQUIRED = object()


class FieldError(BadRequest):
    """A 400 that names the offending field (the API's error JSON carries it as ``field``)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


def whole(raw: str | None, name: str, default=REQUIRED, low: int = 0, high: int = SQLITE_MAX):
    """`raw` as a whole number from `low` to `high`; `default` (None included) if it is
    missing or empty, a 400 if it is REQUIRED."""
    if raw is None or raw == "":
        if default is REQUIRED:
            raise FieldError(name, f"{name} is required: a whole number from {low} to {high}")
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not low <= int(raw) <= high:
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise FieldError(name, f"{name} must be a whole number from {low} to {high}, got {shown!r}")
    return int(raw)


def arg(name: str, default=REQUIRED, low: int = 0, high: int = SQLITE_MAX):
    """The query parameter `name` as a whole number (see `whole`)."""
    return whole(request.args.get(name), name, default, low, high)


def refused(exc: InputError, prefix: str = "") -> FieldError:
    """The 400 for an input the library refused, naming its field when it knows it."""
    return FieldError(getattr(exc, "field", None), prefix + str(exc))


class BoundedInt(IntegerConverter):
    """Flask's ``<int:...>`` that matches only up to SQLite's INTEGER (and ASCII digits,
    as Werkzeug's does), so a route never hands SQLite a number it cannot bind."""

    def __init__(self, map, *args, **kwargs) -> None:
        kwargs.setdefault("max", SQLITE_MAX)
        super().__init__(map, *args, **kwargs)
