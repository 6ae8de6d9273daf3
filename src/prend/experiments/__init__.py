"""Experiments: multi-run sweeps, reports with statistics, and the paper's intrinsic-reward diagnostics."""
