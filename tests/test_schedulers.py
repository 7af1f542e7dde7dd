"""Learning-rate schedulers from the `scheduler` group: where the schedule stands at every
epoch, across growths (which rebuild the optimizer), with a restart at each stage, and after a
resume."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import FAST, compose_cfg, run_in_process, without_timing

from growlab.config import ConfigError
from growlab.engine import runners as solo_runner
from growlab.engine.run_directory.records import read_metrics
from growlab.validation import validate

LR = 1e-3


def epoch_lrs(run_dir) -> list[tuple[int, float]]:
    rows = read_metrics(run_dir / "metrics.jsonl")
    return [(r["stage"], r["lr"]) for r in rows if r.get("event") == "epoch"]


def cosine(k: int, horizon: int, base: float = LR) -> float:
    return base * (1 + math.cos(math.pi * k / horizon)) / 2


@pytest.mark.parametrize("strategy", ["freeze-all-but-new", "from-scratch"])
def test_cosine_restarts_at_every_stage(tmp_path, strategy) -> None:
    """Growth rebuilds the optimizer; from-scratch keeps one: both restart and both continue."""
    overrides = [*FAST, "train.epochs_per_stage=3", "scheduler=cosine", f"strategy={strategy}"]
    run_in_process([*overrides, "scheduler.restart_each_stage=true"], tmp_path / "restart")
    rows = epoch_lrs(tmp_path / "restart")
    assert [s for s, _ in rows] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    expected = [cosine(k % 3, 3) for k in range(9)]
    assert [lr for _, lr in rows] == pytest.approx(expected, rel=1e-9)

    run_in_process(overrides, tmp_path / "once")  # one schedule over the run's 9 epochs
    rows = epoch_lrs(tmp_path / "once")
    assert [lr for _, lr in rows] == pytest.approx([cosine(k, 9) for k in range(9)], rel=1e-9)


def test_warmup_rewarms_the_finetune_stage_at_its_lower_rate(tmp_path) -> None:
    overrides = [
        *FAST,
        "depth=2",
        "strategy=finetune-all-after",
        "strategy.finetune_epochs=3",
        "train.epochs_per_stage=3",
        "scheduler=warmup_cosine",
        "scheduler.restart_each_stage=true",
    ]
    run_in_process(overrides, tmp_path / "run")
    rows = epoch_lrs(tmp_path / "run")
    # warmup epoch at 0.1 x lr, then cosine over the 2 remaining epochs
    stage = [0.1 * LR, LR, LR / 2]
    assert [lr for _, lr in rows] == pytest.approx(stage * 2 + [x * 0.1 for x in stage])


def test_resumed_run_continues_the_schedule_exactly(tmp_path, monkeypatch) -> None:
    overrides = [*FAST, "depth=3", "train.epochs_per_stage=3", "scheduler=cosine"]
    reference = run_in_process(overrides, tmp_path / "ref")
    calls = {"n": 0}
    original = solo_runner.train_epoch

    def dies_at_epoch_5(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("killed")
        return original(*args, **kwargs)

    monkeypatch.setattr(solo_runner, "train_epoch", dies_at_epoch_5)
    with pytest.raises(RuntimeError):
        run_in_process(overrides, tmp_path / "run")
    monkeypatch.setattr(solo_runner, "train_epoch", original)
    resumed = run_in_process(overrides, tmp_path / "run")
    assert resumed["resumes"] == 1
    assert epoch_lrs(tmp_path / "run") == epoch_lrs(tmp_path / "ref")
    assert without_timing(resumed)["stages"] == without_timing(reference)["stages"]


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["scheduler=step", "scheduler.step_size=0"], "scheduler.step_size=0"),
        (["scheduler=step", "scheduler.gamma=0"], "scheduler.gamma=0"),
        (["scheduler=warmup_cosine", "scheduler.warmup_epochs=-1"], "scheduler.warmup_epochs"),
        (["scheduler=cosine", "+scheduler.bogus=1"], "bogus"),
        (["model.dropout=1.0"], "model.dropout=1.0"),
    ],
)
def test_bad_scheduler_and_dropout_settings_are_refused(overrides, named) -> None:
    with pytest.raises(ConfigError, match=named):
        validate(compose_cfg(overrides))


def test_dropout_acts_in_training_only(tmp_path) -> None:
    from growlab.growth.nets import build_network, initial_arch

    model = {"name": "mlp", "width": 16, "activation": "relu", "norm": "none", "dropout": 0.5}
    net = build_network(initial_arch(model, (10,), 3, 2))
    x = torch.randn(32, 10)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))
