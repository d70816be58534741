"""Reproducible performance runs: ``python -m benchmarks [--quick]``."""
