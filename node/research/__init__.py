"""The research workbench: experiments that run a grid of scenarios x seeds through the
real pipeline in parallel worker processes (local, or a Dask cluster), one tidy table
of KPIs (node.metrics) with 95 % intervals, plots, and a record that reproduces it.

Above node.simulation: an experiment run is a simulation; nothing below imports this.
"""
