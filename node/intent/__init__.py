"""What participants sign: EIP-712 orders, mandates, revocations and read requests; keys
in standard keystore files; people's units to the chain's integers; the durable order
book; a client of a server's API.

Imports only node.errors and node.units.
"""
