"""growlab installs like a package: the metadata admits the environments clusters have, the
set-up installs the exact pins, and a built wheel runs from any directory with its configs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import REPO
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def requirement(name: str) -> Requirement:
    return next(Requirement(r) for r in PROJECT["dependencies"] if Requirement(r).name == name)


def test_metadata_admits_python_3_12_and_cluster_torch_builds() -> None:
    python = SpecifierSet(PROJECT["requires-python"])
    assert {"3.11", "3.12", "3.13"} <= {v for v in ("3.10", "3.11", "3.12", "3.13") if v in python}
    torch = requirement("torch").specifier
    assert "2.4.0" in torch and "2.11.0" in torch and "2.14.1" in torch
    assert "0.19.0" in requirement("torchvision").specifier


def test_setup_installs_the_exact_pins() -> None:
    pins = (REPO / "constraints.txt").read_text().split()
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins
    assert "-c constraints.txt" in (REPO / "scripts" / "setup.sh").read_text()


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def test_wheel_and_sdist_carry_the_configs_and_the_sweeper(dist: Path) -> None:
    with zipfile.ZipFile(next(dist.glob("*.whl"))) as archive:
        wheel = archive.namelist()
    for name in (
        "growlab/conf/config.yaml",
        "growlab/conf/strategy/identity-insert.yaml",
        "growlab/conf/hydra/launcher/slurm.yaml",
        "hydra_plugins/growlab_sweeper/growlab_sweeper.py",
        "hydra_plugins/growlab_searchpath/growlab_searchpath.py",  # GROWLAB_CONFIG_PATH
        "growlab/data/sets/scikit_learn.py",  # the built-in data sets register themselves
    ):
        assert name in wheel, name
    with tarfile.open(next(dist.glob("*.tar.gz"))) as archive:
        sdist = archive.getnames()
    assert any(n.endswith("conf/strategy/identity-insert.yaml") for n in sdist)


@pytest.mark.slow
def test_installed_wheel_runs_from_any_directory(dist: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    bin_dir = env_dir / "bin"
    wheel = next(dist.glob("*.whl"))
    subprocess.run(
        [bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work = tmp_path / "project"  # a user's own project, far from the repository
    work.mkdir()
    env = {**os.environ, "WANDB_MODE": "offline", "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            list(args), cwd=work, env={**env, **extra}, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        return result

    where = run("python", "-c", "import growlab, growlab.conf; print(growlab.conf.__file__)")
    assert where.stdout.strip().startswith(str(env_dir))
    assert run("growlab", "--version").stdout.strip().startswith("growlab 0.")
    run("growlab", "debug=fast", "hydra.run.dir=single")
    assert json.loads((work / "single" / "summary.json").read_text())["status"] == "completed"
    run("python", "-m", "growlab", "debug=fast", "depth=2", "hydra.run.dir=module")
    run("growlab", "-m", "debug=fast", "depth=2", "seed=0,1", "hydra.sweep.dir=sweep")
    run("growlab-report", "sweep")
    assert (work / "sweep" / "report.md").exists()
    # The user's own strategy and operator, found through GROWLAB_CONFIG_PATH.
    shutil.copytree(REPO / "examples", work / "mine")
    run(
        "growlab",
        "debug=fast",
        "strategy=rezero-insert",
        "hydra.run.dir=user",
        GROWLAB_CONFIG_PATH=str(work / "mine" / "conf"),
        PYTHONPATH=str(work / "mine"),
    )
    summary = json.loads((work / "user" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["operator"] == "ReZeroResidual"
