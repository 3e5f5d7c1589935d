"""A community's market set up on a chain (deploy, register, fund, mandates) and its data
replayed through the oracle, with results against the no-trading baseline; the state
directory a run keeps.
"""
