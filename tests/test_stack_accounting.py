"""A stack of seeds accounts honestly: each replica's wall time is its share of the stack's,
`stack_size` counts who trained each stage, a replica's log holds its own lines, and every
replica's numbers are its solo run's (BatchNorm and cached features included)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import read_summary, run_cli, run_in_process
from test_stacked import stacked

from growlab.engine.loop import Run

STACK = ["-m", "seed=0,1", "hydra.sweeper.stack_seeds=true", "debug=fast", "model.norm=batch"]
# SGD: a replica matches its solo run to float rounding. Adam turns the rounding noise in the
# gradient of a bias before BatchNorm (zero in exact arithmetic) into steps of size lr, so two
# solo runs on different thread counts differ as much as a stack and a solo run (README).
SGD = ["optimizer=sgd", "optimizer.lr=0.05"]


def stack_through_the_cli(extra: list[str], tmp_path: Path) -> list[Path]:
    sweep = tmp_path / "sweep"
    result = run_cli([*STACK, *extra, f"hydra.sweep.dir={sweep}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training 2 runs as one stack" in result.stdout + result.stderr
    return sorted(p for p in sweep.iterdir() if (p / "summary.json").exists())


def compare_stages(ours: dict[str, Any], solo: dict[str, Any], acc_tol: float, rel: float) -> None:
    assert len(ours["stages"]) == len(solo["stages"])
    for a, b in zip(ours["stages"], solo["stages"], strict=True):
        assert abs(a["test_acc"] - b["test_acc"]) <= acc_tol, (a["stage"], a, b)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=rel), a["stage"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=rel), a["stage"]


@pytest.mark.parametrize(
    ("optimizer", "acc_tol", "rel"),
    [(SGD, 1e-9, 1e-5), ([], 0.01, 1e-2)],
    ids=["sgd-to-rounding", "adam-within-a-point"],
)
def test_batchnorm_stacks_match_their_solo_runs_stage_by_stage(
    optimizer, acc_tol, rel, tmp_path
) -> None:
    runs = stack_through_the_cli(optimizer, tmp_path)
    assert len(runs) == 2
    for run in runs:
        ours = read_summary(run)
        assert ours["status"] == "completed"
        seed = ours["seed"]
        overrides = ["debug=fast", "model.norm=batch", *optimizer, f"seed={seed}"]
        solo = run_in_process(overrides, tmp_path / f"solo{seed}")
        compare_stages(ours, solo, acc_tol, rel)


def test_a_replica_counts_its_share_of_the_stack_and_logs_its_own_lines(tmp_path) -> None:
    runs = stack_through_the_cli(SGD, tmp_path)
    summaries = [read_summary(run) for run in runs]
    stack_wall = max(s["stack_wall_s"] for s in summaries)
    for summary in summaries:
        assert summary["stack_size"] == 2
        assert all(stage["stack_size"] == 2 for stage in summary["stages"])
        assert 0 < summary["wall_s"] < 0.8 * summary["stack_wall_s"]
        assert sum(stage["wall_s"] for stage in summary["stages"]) <= summary["wall_s"]
    # The shares add up to the whole (the first summary is written a moment earlier).
    assert sum(s["wall_s"] for s in summaries) == pytest.approx(stack_wall, rel=0.05)
    for run, summary in zip(runs, summaries, strict=True):
        log = (run / "growlab.log").read_text()
        other = 1 - summary["seed"]
        assert f"[seed {other}]" not in log
        assert log.count("finished: completed") == 1
        assert f"[seed {summary['seed']}] run {run} finished: completed" in log


def test_a_replica_leaving_a_stack_of_cached_features_leaves_the_others_their_own(
    tmp_path, monkeypatch
) -> None:
    # freeze-all-but-new: from stage 1 on, every replica trains on its own cached features of
    # its frozen blocks; seed 1 blows up in its first epoch of stage 1 and leaves mid-stage.
    overrides = ["debug=fast", "strategy=freeze-all-but-new", "train.epochs_per_stage=3"]
    begin_stage = Run.begin_stage

    def poisoned(self: Run, plan: Any) -> None:
        begin_stage(self, plan)
        if self.cfg.seed == 1 and self.progress.stage == 1:
            with torch.no_grad():
                for p in self.net.parameters():
                    p.fill_(float("nan"))

    monkeypatch.setattr(Run, "begin_stage", poisoned)
    summaries = stacked(overrides, [0, 1, 2], tmp_path / "stack")
    monkeypatch.setattr(Run, "begin_stage", begin_stage)
    assert [s["status"] for s in summaries] == ["completed", "diverged", "completed"]
    assert summaries[1]["stack_size"] == 3  # it trained with two others until it left
    for seed in (0, 2):
        ours = summaries[seed]
        assert ours["stack_size"] == 2
        assert [s["stack_size"] for s in ours["stages"]] == [3, 2, 2]
        solo = run_in_process([*overrides, f"seed={seed}"], tmp_path / f"solo{seed}")
        compare_stages(ours, solo, acc_tol=1e-9, rel=1e-5)


def test_a_stack_clock_gives_each_replica_its_own_steps_and_a_share_of_the_rest(
    monkeypatch,
) -> None:
    from growlab.engine.stacking import clock as stack_clock

    now = [0.0]
    monkeypatch.setattr(stack_clock.time, "perf_counter", lambda: now[0])
    clock = stack_clock.StackClock({0: 1.0, 1: 2.0, 2: 0.0})  # their seconds before the stack
    now[0] = 3.0  # shared by three
    with clock.own_step(1):
        now[0] = 5.0  # replica 1 alone
    clock.share_among([0, 2])  # replica 1 left
    now[0] = 9.0  # shared by two
    assert [clock.read(i) for i in range(3)] == [1.0 + 1 + 2, 2.0 + 1 + 2, 0.0 + 1 + 2]
    assert clock.total() == 1.0 + 2.0 + 9.0
