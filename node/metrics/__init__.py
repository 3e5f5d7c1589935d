"""Key performance indicators of a run, defined once (``node.metrics.kpis``): the
simulation's results, the CLI, the CSV files, the web UI and the experiments all use
these definitions and nothing else.

Pure arithmetic on a run's energy and money flows: imports numpy and nothing of GridLedger.
"""
