"""The report's derived cells against their definitions, on made-up runs whose answers are known:
growth shock with its sign, stages helped, means and n, accuracy by depth, FLOP curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from growlab.report.aggregate import (
    TRAIN_ACC,
    Stat,
    Sweep,
    acc_by_depth,
    depth_curves,
    flops_curves,
    helped,
    helped_matrix,
    max_preservation_error,
    mean_shock,
    preservation_by_operator,
)
from growlab.report.collect import RunRecord
from growlab.report.formats import num


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
    assert {k: c.phase for k, c in cells.items()} == {1: "grow", 2: "grow"}


def test_stat_mean_sample_std_and_n() -> None:
    s = Stat.of([0.5, 0.7, 0.9, float("nan"), None])  # type: ignore[list-item]
    assert s is not None and s.n == 3
    assert s.mean == pytest.approx(0.7) and s.std == pytest.approx(0.2)  # n - 1 in the std
    one = Stat.of([0.4])
    assert one is not None and one.std is None and one.n == 1
    two = Stat.of([0.4, 0.6])
    assert two is not None and two.std == pytest.approx(0.02**0.5)
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
    assert sweep.ok == [good] and sweep.problems == [bad]
    (curve,) = depth_curves(sweep).values()
    assert curve[3].mean == pytest.approx(0.7) and curve[3].n == 1
    assert max_preservation_error(good) == pytest.approx(3e-7)
    (by_line,) = flops_curves(sweep)[3].values()
    assert [(flops, acc.mean) for flops, acc in by_line] == [
        (100.0, 0.5),
        (200.0, 0.6),
        (300.0, 0.7),
    ]


def test_numbers_print_fixed_point_unless_very_large_or_very_small() -> None:
    assert num(0.87) == "0.8700"
    assert num(0.0) == "0.0000"  # zero is not "very small"
    assert num(1e-3) == "0.0010"
    assert num(99999.0, 1) == "99999.0"
    # From 1e5 up and below 1e-3: scientific with digits - 1 decimals (at least one).
    assert num(1e5) == "1.000e+05"
    assert num(1.64e11) == "1.640e+11"
    assert num(2.5e-5) == "2.500e-05"
    assert num(123456.0, 1) == "1.2e+05"
    assert Stat(0.87, 0.0044, 3).fmt() == "0.8700 ± 0.0044"
    # The mean is rounded to the std's second significant digit (the 1e8 place here).
    assert Stat(1.64e11, 2.5e9, 3).fmt(3) == "1.640e+11 ± 2.5e+09"
    assert Stat(0.87, None, 1).fmt() == "0.8700"
    assert Stat(0.87, None, 1).fmt(2) == "0.87"


def config_run(strategy: str, seed: int, data: str, lr: float, errors: list[float]) -> RunRecord:
    stages = [stage(0, 1, 0.5, None, preservation_error=None)]
    stages += [
        stage(k, k + 1, 0.5, True, preservation_error=e) for k, e in enumerate(errors, start=1)
    ]
    r = run(strategy, seed, stages)
    r.summary["data"] = data
    r.config = {"data.name": data, "optimizer.lr": lr, "seed": seed}
    return r


def test_lines_are_labelled_by_what_varies_and_the_header_holds_what_does_not() -> None:
    runs = [
        config_run("g", 0, "digits", 0.1, [1e-7, 2e-7]),
        config_run("g", 0, "blobs", 0.1, [3e-7]),
        config_run("g", 0, "digits", 0.01, [0.0]),
    ]
    sweep = Sweep(runs)
    assert sweep.fixed() == {"model": "mlp"}  # the data set varies, so it is not in the header
    assert sorted(sweep.line_label(k) for k in sweep.lines()) == [
        "blobs g optimizer.lr=0.1",
        "digits g optimizer.lr=0.01",
        "digits g optimizer.lr=0.1",
    ]
    models = [run("g", 0, [stage(0, 1, 0.5, None)]), run("g", 1, [stage(0, 1, 0.5, None)])]
    models[1].summary["model"] = "cnn"
    by_model = Sweep(models)
    assert by_model.fixed() == {"data": "digits"}
    assert sorted(by_model.line_label(k) for k in by_model.lines()) == ["cnn g", "mlp g"]
    assert Sweep(models[:1]).fixed() == {"model": "mlp", "data": "digits"}
    # Every growth stage's measured error, per operator and line; the first stage has none.
    assert preservation_by_operator(sweep) == {
        "IdentityBlock": {
            "digits g optimizer.lr=0.1": [1e-7, 2e-7],
            "blobs g optimizer.lr=0.1": [3e-7],
            "digits g optimizer.lr=0.01": [0.0],
        }
    }


def test_each_depth_comes_from_the_run_ending_there_else_the_deepest_run() -> None:
    def grown(final: int) -> RunRecord:
        # Accuracy final/1e3 + depth/1e6 tells which run and which stage a value came from;
        # train accuracy is ten times it.
        stages = [
            stage(
                k, k + 1, final / 1e3 + (k + 1) / 1e6, None, train_acc=final / 1e2 + (k + 1) / 1e5
            )
            for k in range(final)
        ]
        return run("g", 0, stages)

    sweep = Sweep([grown(2), grown(3), grown(100)])
    (test,) = depth_curves(sweep).values()
    assert {d: test[d].mean for d in (1, 2, 3, 4, 100)} == pytest.approx(
        {1: 0.1 + 1e-6, 2: 0.002 + 2e-6, 3: 0.003 + 3e-6, 4: 0.1 + 4e-6, 100: 0.1 + 1e-4}
    )
    assert all(s.n == 1 for s in test.values())  # one seed counts once per depth
    (train,) = depth_curves(sweep, TRAIN_ACC).values()
    assert {d: train[d].mean for d in (1, 2)} == pytest.approx({1: 1 + 1e-5, 2: 0.02 + 2e-5})


def test_stages_without_a_number_are_left_out_of_curves() -> None:
    r = run("g", 0, [stage(0, 1, 0.5, None), stage(1, 2, None, True), stage(2, 3, 0.7, True)])  # type: ignore[arg-type]
    assert acc_by_depth(r) == {1: 0.5, 3: 0.7}
    (points,) = flops_curves(Sweep([r]))[3].values()
    assert [(flops, acc.mean) for flops, acc in points] == [(100.0, 0.5), (300.0, 0.7)]
    # The autoencoder's classifier reports its own training accuracy, which comes first.
    both = run("a", 0, [stage(0, 1, 0.5, None, classifier_train_acc=0.9, train_acc=0.1)])
    assert acc_by_depth(both, TRAIN_ACC) == {1: 0.9}
