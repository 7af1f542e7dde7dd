"""The sweeper validates every job before the first starts, and a job that fails or diverges
never stops the others: the sweep's last line and exit status count them."""

from __future__ import annotations

import json
from typing import Any

from conftest import run_cli

FAST = ["train.epochs_per_stage=1", "depth=2", "logger=none"]


def test_a_bad_value_anywhere_in_the_sweep_fails_before_any_run(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", "depth=2,3,abc", "seed=0,1", *FAST[::2], f"hydra.sweep.dir={sweep}"], cwd=tmp_path
    )
    assert result.returncode != 0
    assert "abc" in result.stderr
    assert not sweep.exists()  # nothing written, no job ran


def test_an_invalid_value_in_the_last_job_refuses_the_whole_sweep(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "model.width=64,0", *FAST, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "model.width=0" in output and ">= 1" in output
    assert "Traceback" not in output
    assert not sweep.exists()


def test_combinations_are_checked_per_job_after_every_override(tmp_path) -> None:
    """The refused job is only visible with its group choice and its value overrides together."""
    sweep = tmp_path / "sweep"
    result = run_cli(
        [
            "-m",
            "strategy=freeze-all-but-new,identity-insert",
            "strategy.position=1,7",
            *FAST,
            f"hydra.sweep.dir={sweep}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert "strategy.position=7" in output and "1..1" in output
    assert "2 of 4 jobs are invalid" in output
    assert not sweep.exists()


def test_a_diverging_job_does_not_stop_the_sweep_and_is_counted(tmp_path) -> None:
    sweep = tmp_path / "sweep"
    result = run_cli(
        ["-m", "optimizer.lr=0.001,1e6", "seed=0,1", *FAST, f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    statuses = sorted(
        json.loads((run / "summary.json").read_text())["status"]
        for run in sweep.iterdir()
        if run.is_dir()
    )
    assert statuses == ["completed", "completed", "diverged", "diverged"]
    last = result.stdout.strip().splitlines()[-1]
    assert "2 of 4 runs completed" in last and "2 diverged" in last


JOBS = [
    ["strategy=identity-insert", "depth=4", "seed=3"],
    ["strategy=identity-insert", "depth=2", "seed=1", "model.width=32"],
    ["model=cnn", "strategy=conv-multiplicative", "optimizer.lr=0.01", "+optimizer.eps=1e-7"],
    ["data=blobs", "++train.max_loss=5", "hydra.job.name=other", "train.epochs_per_stage=1"],
    ["experiment=seed000_greedy_mlp", "depth=3", "train.batch_size=64"],
    ["debug=fast", "strategy=from-scratch", "seed=2", "strategy.name=renamed"],
]


def resolved_task_config(cfg: Any) -> dict:
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=False)
    container.pop("hydra")
    return OmegaConf.to_container(OmegaConf.create(container), resolve=True)


def test_composing_once_per_group_choice_gives_hydras_own_job_configs(tmp_path) -> None:
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from hydra_plugins.growlab_sweeper.composition import ComposeOncePerGroupChoice

    hydra_loader = ConfigLoaderImpl(
        config_search_path=create_config_search_path("pkg://growlab.conf")
    )
    master = hydra_loader.load_configuration(
        "config", [f"hydra.sweep.dir={tmp_path}", "hydra.job.chdir=false"], RunMode.MULTIRUN
    )
    ours = ComposeOncePerGroupChoice(hydra_loader)
    for job in [*JOBS, *JOBS[::-1]]:  # the second pass reads the cache
        expected = hydra_loader.load_sweep_config(master, list(job))
        got = ours.load_sweep_config(master, list(job))
        assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(expected), job
        assert resolved_task_config(got) == resolved_task_config(expected), job
    assert len(ours._composed) == len(JOBS) - 1  # the first two jobs share their group choice
