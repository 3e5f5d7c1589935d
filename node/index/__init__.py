"""The local query store: the market's events and the committed inputs in SQLite, written
from receipts as the oracle settles, rebuilt and checked from the chain's logs.

Imports node.chain (events) and node.clearing (the inputs format); the UI, the CLI and the
auditor read it.
"""
