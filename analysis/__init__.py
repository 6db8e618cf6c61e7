"""Analysis of finished (or running) sweeps: results table, Pareto frontiers, plots, report.

Reads result files only (parquet, JSON); imports neither the CoFi core nor Ray.

    python -m analysis.report runs/sweeps/quickstart
"""
