"""The engine: the stage loop, training and evaluation, checkpoints, records, caches, progress."""
