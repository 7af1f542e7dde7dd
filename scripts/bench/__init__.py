"""growlab's benchmarks, one module per target; run them with scripts/benchmark.py."""
