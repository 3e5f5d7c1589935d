"""A JSON-RPC node that may go away and come back: every call waits and retries."""

from __future__ import annotations

import logging
import time
from typing import Callable

import requests
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

from node.errors import ChainError

log = logging.getLogger("gridledger.chain")

RETRY_FIRST_DELAY = 0.5  # seconds; doubles per attempt up to RETRY_MAX_DELAY
RETRY_MAX_DELAY = 10.0
RETRY_FOR = 300.0  # how long a node may stay away before we give up


class RetryingHTTPProvider(HTTPProvider):
    """An HTTP provider that waits for a node that stopped answering.

    Every JSON-RPC call, reads and ``eth_sendRawTransaction`` alike, is retried on
    connection errors and timeouts with exponential backoff, one log line per retry,
    until the node answers again or `retry_for` seconds of one outage have passed.
    Resending a raw transaction is safe: the same bytes have the same hash, so a node
    that already has it can only say so (see ``Chain.send_raw``).
    """

    def __init__(self, url: str, timeout: float = 30.0, retry_for: float = RETRY_FOR) -> None:
        # web3's own retry skips eth_sendRawTransaction and gives up after ~2 s. A node's
        # chain id never changes, yet web3 asks for it twice per eth_call: it is cached
        # (about 4 round trips per settled interval), nothing else is.
        super().__init__(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None,
                         cache_allowed_requests=True, cacheable_requests={RPCEndpoint("eth_chainId")},
                         request_cache_validation_threshold=None)
        self.retry_for = retry_for
        self.outages = 0  # lets callers notice the node was away and re-check pending work

    def make_request(self, method, params):
        started = None
        delay = RETRY_FIRST_DELAY
        while True:
            try:
                response = super().make_request(method, params)
            except RETRYABLE as exc:
                if not _retryable(exc):
                    raise
                now = time.monotonic()
                if started is None:
                    started = now
                    self.outages += 1
                waited = now - started
                if waited + delay > self.retry_for:
                    raise ChainError(
                        f"node at {self.endpoint_uri} not answering ({type(exc).__name__}) for {waited:.0f} s: giving up. "
                        "Start the node and run the same command again; everything settled so far is kept"
                    ) from exc
                log.warning("node at %s not answering (%s): retrying in %.1f s", self.endpoint_uri, type(exc).__name__, delay)
                time.sleep(delay)
                delay = min(2 * delay, RETRY_MAX_DELAY)
                continue
            if started is not None:
                log.warning("node at %s answers again after %.0f s: carrying on", self.endpoint_uri, time.monotonic() - started)
            return response


RETRYABLE = (requests.exceptions.ConnectionError, requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError,
             requests.exceptions.HTTPError)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, requests.exceptions.HTTPError):
        # A proxy in front of a restarting node answers 502/503/504; other statuses are real answers.
        return exc.response is not None and exc.response.status_code in (502, 503, 504)
    return True


def wait_for_node(url: str, attempts: int = 60, delay: float = 0.5, alive: Callable[[], bool] | None = None) -> None:
    """Blocks until a JSON-RPC node answers (used after starting anvil). `alive` says
    whether the node's process still runs, so a node that died at start fails at once."""
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 2}, exception_retry_configuration=None))
    for _ in range(attempts):
        try:
            w3.eth.chain_id
            return
        except Exception:
            if alive is not None and not alive():
                raise ChainError(f"the node meant to answer at {url} exited") from None
            time.sleep(delay)
    raise ChainError(f"no JSON-RPC node answered at {url} after {attempts * delay:.0f} s")
