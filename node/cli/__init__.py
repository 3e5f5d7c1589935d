"""The ``gridledger`` command: one module per command group, thin over the library.

Building the parser imports no heavy library (tests/test_layout.py checks it): each
command imports what it needs when it runs.
"""
