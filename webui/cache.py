"""Pages computed once per version of the index, not once per request.

The index changes only when the oracle indexes a settlement (every interval, or not at
all for a finished run), while a dashboard of 100 homes over 30 days sums some 300,000
entries for its totals and balances. So what a page computes from the index is kept,
keyed on the index's version (Index.version: SQLite's data_version and this
connection's own changes), and computed again only after the index changed. Bounded:
the least recently used results beyond MAX_ENTRIES are dropped, so many distinct
intervals or participants asked for cannot grow it without limit. Results are shared
between requests and threads: callers must not change them.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

from flask import current_app, request

from webui.context import get_index
from webui.session import signed_in

EXTENSION = "gridledger_cache"
MAX_ENTRIES = 256


_MISSING = object()


class PageCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._version: tuple | None = None
        self._lock = threading.Lock()

    def lookup(self, version: tuple, key: Hashable) -> Any:
        with self._lock:
            if version != self._version:
                self._entries.clear()
                self._version = version
                return _MISSING
            if key not in self._entries:
                return _MISSING
            self._entries.move_to_end(key)
            return self._entries[key]

    def store(self, version: tuple, key: Hashable, value: Any) -> None:
        with self._lock:
            if version == self._version:
                self._entries[key] = value
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)

    def get(self, version: tuple, key: Hashable, compute: Callable[[], Any]) -> Any:
        value = self.lookup(version, key)
        if value is _MISSING:
            value = compute()  # outside the lock: two threads may both compute a missing entry, once each
            self.store(version, key, value)
        return value


def _cache() -> PageCache:
    app = current_app._get_current_object()
    cache = app.extensions.get(EXTENSION)
    if cache is None:
        cache = app.extensions.setdefault(EXTENSION, PageCache())
    return cache


def cached(key: Hashable, compute: Callable[[], Any]) -> Any:
    """compute(), or what it gave for `key` since the index last changed."""
    return _cache().get(get_index().version(), key, compute)


def cached_page(view: Callable[..., Any]) -> Callable[..., Any]:
    """A page that depends on nothing but the index, its URL and who is signed in,
    rendered once per version of the index (its HTML; a page that fails, or answers anything but 200
    HTML, is not kept)."""

    @functools.wraps(view)
    def page(**kwargs: Any) -> Any:
        # Who is signed in shows on every page (base.html), so it is part of the key.
        key = ("page", request.endpoint, request.full_path, signed_in())
        cache, version = _cache(), get_index().version()
        html = cache.lookup(version, key)
        if html is _MISSING:
            html = view(**kwargs)
            if not isinstance(html, str):
                return html
            cache.store(version, key, html)
        return html

    return page
