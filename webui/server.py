"""Serving the web UI for real: waitress, a production WSGI server (pure Python, so it
runs wherever GridLedger does), with a fixed pool of threads.

Why threads and not processes: every request is a few SQLite reads on one shared,
serialised connection plus template rendering (webui/cache.py keeps the heavy parts
until the index changes); the chain relay (/admin) must stay in one process, since the
embedded chain lives in it. Eight threads keep eight clients served while one waits on
the disk; a slow client is buffered by waitress, not given a thread.
"""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger("gridledger.webui")

THREADS = 8
# Requests waiting for a thread beyond this many are answered 503 at once rather than
# queued for ever (waitress' backlog warning).
CONNECTION_LIMIT = 200


def make_server(app: Flask, host: str = "127.0.0.1", port: int = 0, threads: int = THREADS):
    """A waitress server for `app` on host:port (0: a free port), not yet running: call
    `.run()` (blocks; Ctrl+C or SIGTERM stops it) and `.close()`."""
    from waitress import create_server

    return create_server(app, host=host, port=port, threads=threads, connection_limit=CONNECTION_LIMIT,
                         ident="GridLedger", clear_untrusted_proxy_headers=True, channel_timeout=60)


def serve(app: Flask, host: str, port: int, threads: int = THREADS) -> None:
    server = make_server(app, host, port, threads)
    log.info("serving on http://%s:%d/ with %d threads (waitress)", host, server.effective_port, threads)
    try:
        server.run()
    finally:
        server.close()
