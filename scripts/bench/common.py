"""Timing helpers, config composition and process runs shared by the benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from growlab.config_registration import register_configs
from growlab.data import DataSplits
from growlab.growth.families import model_config
from growlab.growth.nets import GrowableNet, build_network, initial_arch

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"
SECTIONS = ("startup", "roofline", "tutorial", "stage_cost", "sweep", "slurm", "stacks", "lm")

# Seed 000's procedure, as growlab overrides (the tutorial baseline hard-codes the same values).
TUTORIAL_OVERRIDES = [
    "data=fashion_mnist",
    "model.width=256",
    "optimizer.lr=1e-4",
    "train.batch_size=250",
    "train.start_depth=1",
    "logger=none",
]
SWEEP_FULL = [
    "strategy=freeze-all-but-new,finetune-all-after,identity-insert,from-scratch",
    "depth=2,4",
    "seed=0,1,2",
]
SWEEP_QUICK = ["strategy=freeze-all-but-new,from-scratch", "depth=2", "seed=0,1"]


@dataclass
class Target:
    """A measured ratio against its goal: `ratio <= bound` ("<=") or `ratio >= bound` (">=")."""

    name: str
    measured: str
    ratio: float
    op: str
    bound: float
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.ratio <= self.bound if self.op == "<=" else self.ratio >= self.bound

    @property
    def target(self) -> str:
        return f"{self.op} {self.bound:.3g}{self.unit}"

    @property
    def margin(self) -> str:
        """The factor by which the goal is met or missed, as a percentage."""
        factor = self.ratio / self.bound if self.op == "<=" else self.bound / self.ratio
        return f"{'met' if self.met else 'missed'} by {abs(1 - factor) * 100:.0f}%"


# ---- helpers ------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t0


def interleaved(
    fns: dict[str, Callable[[], Any]], device: torch.device, rounds: int
) -> dict[str, list[float]]:
    """Time each function once per round, round after round, so that load from other processes
    hits all of them alike; callers take the best (least disturbed) time of each."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(timed(fn, device))
    return times


def compose_cfg(overrides: list[str]) -> DictConfig:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def growlab_net(cfg: DictConfig, data: DataSplits, depth: int, device: torch.device) -> GrowableNet:
    model_cfg = model_config(cfg.model)
    assert isinstance(model_cfg, dict)
    arch = initial_arch(model_cfg, data.input_shape, data.num_classes, depth)
    net = build_network(arch).to(device)
    net.set_trainable(set(range(net.depth)), head=True)
    return net


def run_process(args: list[str], timeout: float = 1800) -> tuple[float, str]:
    """Run `python args...` in the repository; (wall seconds, stdout). Raises on failure."""
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "WANDB_MODE": "disabled"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def log(msg: str) -> None:
    print(f"[benchmark] {msg}", file=sys.stderr, flush=True)


# ---- 1. roofline --------------------------------------------------------------------------
