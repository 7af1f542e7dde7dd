"""The report's derived cells against their definitions, on made-up runs whose answers are known:
growth shock with its sign, stages helped, means and n, accuracy by depth, FLOP curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from growlab.report.aggregate import (
    Stat,
    Sweep,
    depth_curves,
    flops_curves,
    helped,
    helped_matrix,
    max_preservation_error,
    mean_shock,
)
from growlab.report.collect import RunRecord


def stage(k: int, depth: int, acc: float, improved: bool | None, **extra: Any) -> dict[str, Any]:
    return {
        "stage": k,
        "phase": "train" if k == 0 else "grow",
        "depth": depth,
        "test_acc": acc,
        "improved": improved,
        "cum_train_flops": 100.0 * (k + 1),
        **extra,
    }


def run(strategy: str, seed: int, stages: list[dict[str, Any]], status: str = "completed"):
    depth = stages[-1]["depth"]
    summary = {
        "strategy": strategy,
        "seed": seed,
        "depth": depth,
        "model": "mlp",
        "data": "digits",
        "operator": "IdentityBlock",
        "stages": stages,
    }
    return RunRecord(Path(f"/x/{strategy}-{seed}"), f"{strategy}-{seed}", status, summary)


def shock(before: float, after: float) -> dict[str, float]:
    return {"acc_before": before, "acc_after": after, "loss_before": 1.0, "loss_after": 1.0}


def test_shock_is_accuracy_after_minus_before_averaged_over_growths() -> None:
    r = run(
        "g",
        0,
        [
            stage(0, 1, 0.5, None),
            stage(1, 2, 0.6, True, shock=shock(0.80, 0.60)),  # a drop: -0.20
            stage(2, 3, 0.7, False, shock=shock(0.50, 0.60)),  # a gain: +0.10
        ],
    )
    assert mean_shock(r) == pytest.approx(-0.05)
    assert mean_shock(run("s", 0, [stage(0, 3, 0.5, None)])) is None


def test_stages_helped_counts_true_verdicts_and_skips_the_first_stage() -> None:
    r = run(
        "g",
        0,
        [
            stage(0, 1, 0.5, None),
            stage(1, 2, 0.6, True),
            stage(2, 3, 0.7, False),
            stage(3, 4, 0.7, True),
        ],
    )
    assert helped(r) == (2, 3)


def test_helped_matrix_counts_seeds_per_stage_from_the_deepest_runs() -> None:
    runs = [
        run("g", 0, [stage(0, 1, 0.5, None), stage(1, 2, 0.6, True), stage(2, 3, 0.6, False)]),
        run("g", 1, [stage(0, 1, 0.5, None), stage(1, 2, 0.6, True), stage(2, 3, 0.6, True)]),
        run("g", 2, [stage(0, 1, 0.5, None), stage(1, 2, 0.6, False)]),  # shallower: not used
    ]
    (cells,) = helped_matrix(Sweep(runs)).values()
    assert {k: (c.helped, c.judged) for k, c in cells.items()} == {1: (2, 2), 2: (1, 2)}


def test_stat_mean_sample_std_and_n() -> None:
    s = Stat.of([0.5, 0.7, 0.9, float("nan"), None])  # type: ignore[list-item]
    assert s is not None and s.n == 3
    assert s.mean == pytest.approx(0.7) and s.std == pytest.approx(0.2)  # n - 1 in the std
    one = Stat.of([0.4])
    assert one is not None and one.std is None and one.n == 1
    assert Stat.of([]) is None


def test_depth_curves_take_each_seeds_last_stage_at_each_depth() -> None:
    runs = [
        run(
            "g",
            seed,
            [
                stage(0, 1, 0.1 + seed, None),
                stage(1, 2, 0.2 + seed, True),
                stage(2, 2, 0.3 + seed, True, phase="finetune"),
            ],
        )
        for seed in (0, 1)
    ]
    (curve,) = depth_curves(Sweep(runs)).values()
    assert curve[1].mean == pytest.approx(0.6) and curve[1].n == 2
    assert curve[2].mean == pytest.approx(0.8)  # the fine-tune stage, not the growth stage


def test_failed_runs_never_enter_a_mean_and_preservation_takes_the_max() -> None:
    good = run(
        "g",
        0,
        [
            stage(0, 1, 0.5, None, preservation_error=None),
            stage(1, 2, 0.6, True, preservation_error=1e-7),
            stage(2, 3, 0.7, True, preservation_error=3e-7),
        ],
    )
    bad = run(
        "g",
        1,
        [stage(0, 1, 0.0, None), stage(1, 2, 0.0, False), stage(2, 3, 0.0, False)],
        status="diverged",
    )
    sweep = Sweep([good, bad])
    (curve,) = depth_curves(sweep).values()
    assert curve[3].mean == pytest.approx(0.7) and curve[3].n == 1
    assert max_preservation_error(good) == pytest.approx(3e-7)
    (by_line,) = flops_curves(sweep)[3].values()
    assert [(flops, acc.mean) for flops, acc in by_line] == [
        (100.0, 0.5),
        (200.0, 0.6),
        (300.0, 0.7),
    ]
