"""Experiment tracking: loggers that mirror the run directory (W&B)."""
