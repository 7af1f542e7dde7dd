"""A local run killed with SIGTERM and started again in the same directory finishes as if
it had never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, read_summary, run_in_process, without_timing

from growlab.engine.run_directory.records import read_metrics

OVERRIDES = ["train.batch_size=8", "train.epochs_per_stage=10", "depth=2", "logger=none"]


def growlab(run_dir, *extra) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline"}
    return subprocess.Popen(
        [sys.executable, "-m", "growlab", *OVERRIDES, f"hydra.run.dir={run_dir}", *extra],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_sigterm_then_restart_resumes_to_the_uninterrupted_result(tmp_path) -> None:
    run_in_process(OVERRIDES, tmp_path / "ref")  # the uninterrupted reference

    run_dir = tmp_path / "run"
    proc = growlab(run_dir)
    metrics = run_dir / "metrics.jsonl"
    deadline = time.time() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 3):
        assert time.time() < deadline and proc.poll() is None, "run ended before the signal"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    killed_rows = len(metrics.read_text().splitlines())
    assert killed_rows < 22  # it really stopped early

    restarted = growlab(run_dir)
    output, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, output[-2000:]
    assert "resuming from" in output
    resumed, ref = read_summary(run_dir), read_summary(tmp_path / "ref")
    assert resumed["status"] == "completed" and resumed["resumes"] == 1
    assert without_timing(resumed["stages"]) == without_timing(ref["stages"])
    rows = read_metrics(metrics)
    assert without_timing(rows) == without_timing(read_metrics(tmp_path / "ref" / "metrics.jsonl"))
    assert json.dumps(without_timing(rows)).count('"event": "epoch"') == 20
