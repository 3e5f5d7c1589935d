"""What every response and every write gets: security headers, and a per-client limit
on the requests that write (signed orders and mandates, relayed transactions).

Headers. The pages run their own small scripts only (each inline ``<script>`` carries
the request's CSP nonce; JSON data blocks are not scripts), load nothing from other
origins and may not be framed, so the Content-Security-Policy says exactly that. HSTS
is left to the TLS terminator in front of a deployment (this server speaks plain HTTP).

Limits. Writes cost a signature check and a fsynced SQLite commit (orders), or chain
calls (the relay); a token bucket per client address (WRITE_RATE_LIMIT: requests per
window, refilled evenly) keeps one client from filling the order book or the relay's
queue. Over it the answer is 429 with Retry-After. Behind a reverse proxy every client
shares the proxy's address: put the limit there, or set WRITE_RATE_LIMIT to None here.
"""

from __future__ import annotations

import secrets
import threading
import time

from flask import Flask, g, request
from werkzeug.exceptions import TooManyRequests

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
_MAX_CLIENTS = 10_000  # buckets kept before idle ones are dropped


class TooManyWrites(TooManyRequests):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many write requests from this address: try again in {retry_after:.0f} s")
        self.retry_after = retry_after


class RateLimit:
    """`count` requests per `seconds` per client, as a token bucket (a burst of `count`,
    then one every seconds/count)."""

    def __init__(self, count: int, seconds: float) -> None:
        self.count, self.seconds = count, seconds
        self._buckets: dict[str, tuple[float, float]] = {}  # client: (tokens, at)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Takes one request of `client`; returns 0, or how long to wait if over the limit."""
        rate = self.count / self.seconds
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(client, (self.count, now))
            tokens = min(self.count, tokens + (now - at) * rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                return (1 - tokens) / rate
            self._buckets[client] = (tokens - 1, now)
            if len(self._buckets) > _MAX_CLIENTS:
                full = [c for c, (t, a) in self._buckets.items() if t + (now - a) * rate >= self.count]
                for c in full:
                    del self._buckets[c]
            return 0.0


def protect(app: Flask) -> None:
    """Installs the write limit and the security headers on `app`."""
    limit = app.config.get("WRITE_RATE_LIMIT")
    limiter = RateLimit(*limit) if limit else None

    @app.before_request
    def limit_writes():
        g.csp_nonce = secrets.token_urlsafe(16)
        if limiter is not None and request.method in WRITE_METHODS:
            wait = limiter.take(request.remote_addr or "unknown")
            if wait:
                raise TooManyWrites(wait)

    @app.context_processor
    def nonce() -> dict:
        return {"csp_nonce": g.get("csp_nonce", "")}

    @app.after_request
    def headers(response):
        h = response.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
        h.setdefault("Content-Security-Policy", (
            f"default-src 'self'; script-src 'self' 'nonce-{g.get('csp_nonce', '')}'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
            "object-src 'none'"))
        return response
