"""A job's config is validated once: by its sweeper when that validated exactly this config in
this process (environment included), else by the job itself; the strategy that validation
built is the run's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FAST, REPO, compose_cfg, read_summary, sweep_runs

from growlab import validated as once
from growlab.config import ConfigError


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Each full validation, counted."""
    seen: list[object] = []
    real = once.validate

    def counted(cfg: object, environment: bool = True) -> object:
        seen.append(cfg)
        return real(cfg, environment=environment)

    monkeypatch.setattr(once, "validate", counted)
    once.start_sweep()
    yield seen
    once.start_sweep()


def test_a_job_its_sweeper_validated_is_not_validated_again(calls: list[object]) -> None:
    cfg = compose_cfg(FAST)
    once.validate_for_jobs(cfg, environment=True)
    strategy = once.validated(compose_cfg(FAST))  # composed again, as Hydra does for the job
    assert len(calls) == 1
    assert strategy.name == cfg.strategy.name
    once.validated(cfg)  # a key is used once: the same config again is validated again
    assert len(calls) == 2


def test_a_job_launched_alone_is_validated(calls: list[object]) -> None:
    once.validated(compose_cfg(FAST))
    assert len(calls) == 1
    with pytest.raises(ConfigError, match="depth=0"):
        once.validated(compose_cfg([*FAST, "depth=0"]))


def test_a_config_that_differs_from_the_validated_one_is_validated(
    calls: list[object],
) -> None:
    once.validate_for_jobs(compose_cfg(FAST), environment=True)
    with pytest.raises(ConfigError, match="optimizer.lr=-1"):
        once.validated(compose_cfg([*FAST, "optimizer.lr=-1"]))
    assert len(calls) == 2


def test_a_sweep_that_skipped_the_environment_leaves_it_to_the_job(
    calls: list[object],
) -> None:
    """A SLURM sweep checks no GPU or data files: its jobs check them where they run."""
    once.validate_for_jobs(compose_cfg(FAST), environment=False)
    once.validated(compose_cfg(FAST))
    assert len(calls) == 2


def test_a_new_sweep_forgets_the_last_ones_keys(calls: list[object]) -> None:
    once.validate_for_jobs(compose_cfg(FAST), environment=True)
    once.start_sweep()
    once.validated(compose_cfg(FAST))
    assert len(calls) == 2


COUNTING_SWEEP = """
import sys
from growlab import validated
from growlab.engine import run_base
from growlab.growth import strategies
import growlab.validation as validation
counts = {"validate": 0, "build_strategy": 0}
real_validate, real_build = validated.validate, strategies.build_strategy
def validate(cfg, environment=True):
    counts["validate"] += 1
    return real_validate(cfg, environment=environment)
def build(node):
    counts["build_strategy"] += 1
    return real_build(node)
validated.validate = validate
validation.build_strategy = run_base.build_strategy = build
sys.argv = ["growlab", *sys.argv[1:]]
from growlab.__main__ import cli
try:
    cli()
finally:
    print("COUNTS", counts["validate"], counts["build_strategy"], file=sys.stderr)
"""


@pytest.mark.parametrize("stacked", [False, True])
def test_each_sweep_job_is_validated_and_builds_its_strategy_once(
    tmp_path: Path, stacked: bool
) -> None:
    """Before: 2 validations and 5 strategy constructions per sweep job."""
    script = tmp_path / "count.py"
    script.write_text(textwrap.dedent(COUNTING_SWEEP), encoding="utf-8")
    sweep = tmp_path / "sweep"
    args = ["-m", *FAST, "seed=0,1", f"hydra.sweep.dir={sweep}"]
    args += ["hydra.sweeper.stack_seeds=true"] if stacked else []
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    counts = next(line for line in done.stderr.splitlines() if line.startswith("COUNTS"))
    assert counts.split()[1:] == ["2", "2"]  # 2 jobs: one validation, one strategy each
    assert [read_summary(run)["status"] for run in sweep_runs(sweep)] == ["completed"] * 2
