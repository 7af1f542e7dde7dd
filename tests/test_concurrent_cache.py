"""Processes building the same cold dataset cache at once all succeed and leave one valid file
(a SLURM array starting on a shared file system does exactly this)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from growlab.data.sets.fashion_mnist import FASHION_MNIST_DIR
from growlab.engine.files import umask_mode

LOAD = """
import sys, time
from omegaconf import OmegaConf
from growlab.config import DataConfig
from growlab.data import load_data
while time.time() < float(sys.argv[1]):  # start together
    time.sleep(0.001)
cfg = OmegaConf.merge(OmegaConf.structured(DataConfig), {"name": "fashion_mnist"})
data = load_data(cfg)
print(len(data.x_train), len(data.x_test), float(data.x_test.sum()))
"""


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
@pytest.mark.slow
def test_four_processes_build_one_cold_cache(tmp_path: Path) -> None:
    import time

    env = {**os.environ, "GROWLAB_CACHE_DIR": str(tmp_path / "cache")}
    start = str(time.time() + 3)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LOAD, start],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    assert len({out for out, _ in outputs}) == 1  # every process saw the same data
    files = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith(".tmp")]
    assert len([f for f in files if f.startswith("fashion_mnist-")]) == 1
    for path in (tmp_path / "cache").rglob("*"):
        if path.is_file():
            assert path.stat().st_mode & 0o777 == umask_mode(), path  # 0644 under umask 022
