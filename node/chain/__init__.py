"""The EVM: a connection to the embedded eth-tester chain (journaled) or any JSON-RPC node,
compiling the contracts, the typed market contract, the settlement's calldata encoding,
gas and chunk planning, event decoding, role names.

Imports node.intent (the signed messages it carries) and the shared leaves; never a
stage above it (clearing, oracle, index).
"""
