"""The run directory: its folder and lock, the run's identity (fingerprint), checkpoints,
records (metrics.jsonl, summary.json) and where a run stands."""
