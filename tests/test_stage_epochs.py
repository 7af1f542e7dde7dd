"""Per-stage epoch lists: `train.epochs_per_stage=[10,3,3,3]` gives each stage its own
planned epochs (depth and width strategies), a list of the wrong length is refused naming both
lengths, and the run trains exactly those epochs."""

from __future__ import annotations

import pytest
from conftest import FAST, compose_cfg, run_in_process

from growlab.config import ConfigError
from growlab.growth.strategies import build_strategy, stage_plan
from growlab.validation import validate


def plan_of(overrides: list[str]) -> list[tuple[str, int]]:
    cfg = compose_cfg(overrides)
    return [(p.phase, p.epochs) for p in stage_plan(build_strategy(cfg.strategy), cfg)]


def test_a_list_gives_each_stage_its_epochs_and_a_number_every_stage() -> None:
    assert plan_of(["depth=4", "train.epochs_per_stage=[10,3,2,1]"]) == [
        ("train", 10), ("grow", 3), ("grow", 2), ("grow", 1),
    ]  # fmt: skip
    assert plan_of(["depth=3", "train.epochs_per_stage=4"]) == [
        ("train", 4), ("grow", 4), ("grow", 4),
    ]  # fmt: skip
    # The fine-tune stage is not one of the list's: it trains strategy.finetune_epochs.
    assert plan_of(["depth=2", "strategy=finetune-all-after", "train.epochs_per_stage=[5,1]"]) == [
        ("train", 5),
        ("grow", 1),
        ("finetune", 5),
    ]
    # Width: one entry per widening stage (16 -> 48 by 16: three stages).
    width = ["strategy=net2wider", "model.width=16", "strategy.final_width=48"]
    assert plan_of([*width, "strategy.widen_by=16", "train.epochs_per_stage=[4,2,1]"]) == [
        ("train", 4), ("grow", 2), ("grow", 1),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["depth=4", "train.epochs_per_stage=[10,3]"], "has 2 entries but strategy="),
        (["depth=4", "train.epochs_per_stage=[10,3]"], "plans 4 stage(s)"),
        (["depth=2", "train.epochs_per_stage=[1,-1]"], "train.epochs_per_stage=[1, -1]"),
        (["depth=2", "train.epochs_per_stage=[]"], "a list of them, one per stage"),
        (["train.epochs_per_stage=many"], "train.epochs_per_stage=many is not allowed"),
    ],
)
def test_a_bad_list_is_refused_before_the_run(overrides, named) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(compose_cfg([*FAST, *overrides]), environment=False)
    assert named in str(caught.value)


def test_a_run_trains_each_stage_its_listed_epochs(tmp_path) -> None:
    summary = run_in_process(
        [*FAST, "logger=none", "depth=3", "train.epochs_per_stage=[3,1,2]"], tmp_path / "run"
    )
    assert summary["status"] == "completed"
    assert [s["epochs"] for s in summary["stages"]] == [3, 1, 2]
    assert summary["epochs_per_stage"] == [3, 1, 2]
