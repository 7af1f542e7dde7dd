from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from growlab.config_registration import register_configs
from hydra_plugins.growlab_sweeper.run_plan import read_sweep_runs, run_folder

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

# Small and fast: a few epochs on digits, no W&B (conf/debug/fast.yaml).
FAST = ["debug=fast"]

register_configs()


def compose_cfg(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def sweep_folder(overrides: list[str]) -> str:
    """The folder growlab's sweeper gives the run of these overrides (named by its config)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    return run_folder(cfg, 0)


def sweep_runs(sweep: Path, timeout: float = 0) -> list[Path]:
    """The sweep's run folders in job order, as growlab's sweeper recorded them before launching
    (waiting up to `timeout` seconds for the record)."""
    deadline = time.time() + timeout
    while (folders := read_sweep_runs(sweep)) is None and time.time() < deadline:
        time.sleep(0.1)
    assert folders is not None, f"{sweep} has no record of its runs"
    return [sweep / name for name in folders]


def run_in_process(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    from growlab.__main__ import run_job

    run_dir.mkdir(parents=True, exist_ok=True)
    return run_job(compose_cfg(overrides), run_dir)


def run_cli(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "growlab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def without_timing(value: Any) -> Any:
    """Everything in a summary except wall-clock times, for exact comparisons."""
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if "wall" not in k}
    if isinstance(value, list):
        return [without_timing(v) for v in value]
    return value


def read_summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def grow(net: Any, operator: Any, position: int | None = None) -> int:
    """Insert `operator`'s block as a strategy would; returns the index it went to."""
    from growlab.growth.strategies import GrowthStrategy

    return GrowthStrategy("test", operator=operator, position=position).grow(net).index


def set_trainable(net: Any, trainable: Any, index: int) -> None:
    """The trainable set a strategy with `trainable` leaves after a growth at `index`."""
    from growlab.growth.strategies import GrowthStrategy

    GrowthStrategy("test", trainable=trainable).set_trainable(net, "grow", index)


def mark_interrupted(run_dir: Path) -> None:
    """What a run killed before its end leaves: the summary still says `running`, so the next
    start in the directory resumes from `last.pt` instead of reporting a finished run."""
    summary = read_summary(run_dir)
    summary["status"] = "running"
    (run_dir / "summary.json").write_text(json.dumps(summary))


@pytest.fixture(autouse=True)
def _offline_wandb(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")


@pytest.fixture(autouse=True)
def _own_flop_counts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """FLOP counts come from the code under test, not from counts a run remembered before
    (`~/.cache/growlab/flops.json`, or this process's memo): a wrong count fails here, and a
    test never leaves one behind for real runs. Needed for the mutation check too."""
    from growlab.engine.accelerators import flop_memo

    monkeypatch.setattr(flop_memo, "_MEMORY", {})
    monkeypatch.setattr(flop_memo, "_path", lambda: tmp_path / "flops.json")
