"""A loss that explodes while staying finite ends the run as `diverged`, saying where."""

from __future__ import annotations

import math

from conftest import read_summary, run_cli, run_in_process

from growlab.engine.training import DivergenceGuard


def test_guard_flags_finite_explosions_and_nothing_else() -> None:
    guard = DivergenceGuard(factor=10.0)
    assert guard.check(2.0, run_start=2.3, stage_start=2.3) is None
    assert guard.check(22.9, run_start=2.3, stage_start=2.3) is None
    assert "divergence_factor=10" in guard.check(23.1, run_start=2.3, stage_start=2.3)
    # A growth shock raises the stage's start: the bound follows the larger of the two.
    assert guard.check(30.0, run_start=2.3, stage_start=4.0) is None
    assert guard.check(math.nan, 2.3, 2.3) == "training loss is nan"
    assert guard.check(math.inf, 2.3, 2.3) == "training loss is inf"
    assert "max_loss=5" in DivergenceGuard(10.0, max_loss=5.0).check(6.0, 2.3, 2.3)
    # "Above" is strict: exactly 10 x the start, or exactly max_loss, is not divergence.
    assert guard.check(25.0, run_start=2.5, stage_start=2.5) is None
    assert DivergenceGuard(10.0, max_loss=5.0).check(5.0, 2.3, 2.3) is None
    # A start loss that is not finite bounds nothing; the other one still does.
    assert "divergence_factor=10" in guard.check(30.0, run_start=math.nan, stage_start=2.3)


def test_huge_learning_rate_diverges_and_is_not_called_completed(tmp_path) -> None:
    summary = run_in_process(["optimizer.lr=1e6", "depth=3", "logger=none"], tmp_path / "run")
    assert summary["status"] == "diverged"
    assert summary["error"].startswith("stage 0 epoch 1: training loss")
    assert math.isfinite(float(summary["error"].split("training loss ")[1].split()[0]))
    assert summary["stages"] == []  # no stage ended, so none "helped"


def test_a_diverged_single_run_exits_3_and_its_rerun_changes_nothing(tmp_path) -> None:
    run_dir = tmp_path / "run"
    args = ["optimizer.lr=1e6", "logger=none", f"hydra.run.dir={run_dir}"]
    result = run_cli(args, cwd=tmp_path)
    assert result.returncode == 3, result.stderr[-2000:]
    assert "diverged: stage 0 epoch 1" in result.stdout
    before = (run_dir / "summary.json").read_bytes()
    again = run_cli(args, cwd=tmp_path)
    assert again.returncode == 3 and "already holds a diverged run" in again.stdout
    assert (run_dir / "summary.json").read_bytes() == before
    assert read_summary(run_dir)["status"] == "diverged"
