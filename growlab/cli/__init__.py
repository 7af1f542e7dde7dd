"""Command-line tools besides the main entry point: evaluate a run, seed 003's norm study."""
