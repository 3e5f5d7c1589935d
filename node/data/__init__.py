"""A community and its metered energy: the config (TOML), the community model, dataset
files (CSV/parquet) with row-numbered errors, meter-data repair rules, synthetic data.

Imports nothing of GridLedger but node.errors: data is where the flow starts.
"""
