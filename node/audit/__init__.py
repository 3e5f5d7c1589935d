"""The auditor: re-checks every settlement from the chain's logs and the committed inputs,
trusting neither the oracle nor its index.
"""
