"""The report's comparison sections on run directories built by hand, where the answer is known:
paired verdicts against the baseline, equal-compute interpolation and the per-stage Δ loss."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from growlab.report import make_report
from growlab.report.aggregate import Sweep
from growlab.report.baseline import compute_rows, context, stage_help_rows, verdict_rows
from growlab.report.collect import RunRecord, collect
from growlab.report.stats import (
    ALPHA,
    BETTER,
    NO_DIFFERENCE,
    acc_within_budget,
    flops_to_reach,
    holm,
    paired,
    verdict,
)
from growlab.report.wandb_report import SPEC_FILE

BASE_ACCS = [0.80, 0.83, 0.78, 0.85, 0.81]


def write_run(
    root: Path,
    strategy: str,
    seed: int,
    curve: list[tuple[float, float]],
    depth: int = 3,
    data: str = "digits",
    val_losses: list[float] | None = None,
    lr: float | None = None,
    threads: int | None = None,
    strategy_keys: dict[str, Any] | None = None,
) -> None:
    """A completed run whose stages end at the given (cumulative FLOPs, test accuracy)."""
    run = root / (f"{data}-{strategy}-d{depth}-s{seed}" + ("" if lr is None else f"-lr{lr}"))
    run = run.with_name(run.name + "".join(f"-{k}{v}" for k, v in (strategy_keys or {}).items()))
    run.mkdir(parents=True)
    if lr is not None:
        config = {"strategy": {"name": strategy, **(strategy_keys or {})}, "seed": seed}
        config["optimizer"] = {"lr": lr}
        config["train"] = {"num_threads": threads}
        (run / ".hydra").mkdir()
        OmegaConf.save(OmegaConf.create(config), run / ".hydra" / "config.yaml")
    losses = val_losses or [1.0 - acc for _, acc in curve]
    stages = [
        {
            "stage": k,
            "phase": "train" if k == 0 else "grow",
            "depth": depth,
            "test_acc": acc,
            "val_loss": losses[k],
            "cum_train_flops": flops,
            "improved": None if k == 0 else losses[k] < losses[k - 1],
        }
        for k, (flops, acc) in enumerate(curve)
    ]
    summary: dict[str, Any] = {
        "strategy": strategy, "model": "mlp", "data": data, "seed": seed, "depth": depth,
        "status": "completed", "test_acc": curve[-1][1], "train_flops": curve[-1][0],
        "stages": stages,
    }  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))


def sweep_dir(tmp_path: Path, deltas: dict[str, list[float]], seeds: int = 5) -> Path:
    """A baseline `from-scratch` plus one strategy per entry, its final accuracy the baseline's
    plus the given per-seed difference."""
    root = tmp_path / "sweep"
    for seed in range(seeds):
        base = BASE_ACCS[seed]
        write_run(root, "from-scratch", seed, [(1e9, base - 0.1), (2e9, base)])
        for strategy, delta in deltas.items():
            write_run(root, strategy, seed, [(0.5e9, base - 0.2), (1e9, base + delta[seed])])
    return root


def rows_by_strategy(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["strategy"]: row for row in rows}


def test_verdicts_on_known_differences(tmp_path: Path) -> None:
    deltas = {
        "better": [0.05] * 5,
        "worse": [-0.04, -0.05, -0.06, -0.05, -0.04],
        "same": [0.01, -0.01, 0.004, -0.004, 0.0],
    }
    rows = rows_by_strategy(verdict_rows(Sweep(collect(sweep_dir(tmp_path, deltas)))))
    assert set(rows) == set(deltas)  # the baseline is not compared with itself
    better, worse, same = rows["better"], rows["worse"], rows["same"]
    assert better["n"] == 5
    assert better["delta_mean"] == pytest.approx(0.05)
    assert better["ci_low"] == pytest.approx(0.05) and better["ci_high"] == pytest.approx(0.05)
    assert better["verdict"] == "better"
    assert worse["delta_mean"] == pytest.approx(-0.048)
    assert worse["ci_high"] < 0 and worse["verdict"] == "worse"
    assert same["ci_low"] < 0 < same["ci_high"]
    assert same["p_value"] > 0.5 and same["verdict"] == "no detectable difference"
    assert better["baseline_test_acc"] == pytest.approx(sum(BASE_ACCS) / 5)
    # Holm: the family is the table's three rows.
    assert [rows[s]["p_holm"] for s in deltas] == pytest.approx(
        holm([rows[s]["p_value"] for s in deltas])
    )
    assert worse["p_holm"] >= worse["p_value"]


def test_one_seed_is_too_few(tmp_path: Path) -> None:
    rows = verdict_rows(Sweep(collect(sweep_dir(tmp_path, {"better": [0.05]}, seeds=1))))
    (row,) = rows
    assert row["n"] == 1 and row["delta_mean"] == pytest.approx(0.05)
    assert row["ci_low"] is None and row["p_value"] is None
    assert row["verdict"] == "n too small (n=1)"


def test_a_strategy_without_a_baseline_partner_has_no_numbers(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    for seed in (0, 1):
        write_run(root, "from-scratch", seed, [(1e9, 0.8)])
        write_run(root, "orphan", seed + 5, [(1e9, 0.9)])  # seeds the baseline never ran
    (row,) = verdict_rows(Sweep(collect(root)))
    assert row["unpaired_runs"] == 2 and row["verdict"] == "no pairs"
    assert {k: row[k] for k in ("n", "delta_mean", "ci_low", "ci_high", "p_value", "p_holm")} == {
        "n": 0,
        "delta_mean": None,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "p_holm": None,
    }


def test_pairs_never_cross_data_sets(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    for seed in range(3):
        for data, base in (("digits", 0.9), ("mnist1d", 0.5)):
            write_run(root, "from-scratch", seed, [(1e9, base + 0.01 * seed)], data=data)
            write_run(root, "grow", seed, [(1e9, base + 0.01 * seed + 0.02)], data=data)
    rows = verdict_rows(Sweep(collect(root)))
    assert [(r["data"], r["strategy"]) for r in rows] == [("digits", "grow"), ("mnist1d", "grow")]
    for row in rows:  # paired within the data set: +0.02 on every seed, not ±0.4
        assert row["delta_mean"] == pytest.approx(0.02) and row["verdict"] == "better"
        assert row["n"] == 3 and row["unpaired_runs"] == 0


def test_a_swept_key_pairs_like_with_like_and_a_tuned_one_is_the_recipe(tmp_path: Path) -> None:
    swept = tmp_path / "swept"
    for seed in range(3):
        for lr, base in ((0.01, 0.9), (0.001, 0.5)):
            write_run(swept, "from-scratch", seed, [(1e9, base + 0.01 * seed)], lr=lr)
            write_run(swept, "grow", seed, [(1e9, base + 0.01 * seed - 0.03)], lr=lr)
    rows = verdict_rows(Sweep(collect(swept)))
    assert [r["optimizer.lr"] for r in rows] == [0.001, 0.01]  # the values, not their text
    assert all(r["delta_mean"] == pytest.approx(-0.03) and r["n"] == 3 for r in rows)

    speed = tmp_path / "speed"  # a knob that changes no result never splits or unpairs runs
    for seed in range(3):
        write_run(speed, "from-scratch", seed, [(1e9, 0.8)], lr=0.01, threads=None)
        write_run(speed, "grow", seed, [(1e9, 0.81)], lr=0.01, threads=seed % 2 + 1)
    (row,) = verdict_rows(Sweep(collect(speed)))
    assert row["n"] == 3 and "train.num_threads" not in row

    recipe = tmp_path / "recipe"  # a strategy.* key swept within a strategy is its recipe
    for seed in range(3):
        write_run(recipe, "from-scratch", seed, [(1e9, 0.8 + 0.01 * seed)], lr=0.01)
        for epochs in (1, 2):
            keys = {"finetune_epochs": epochs}
            acc = 0.8 + 0.01 * seed + 0.01 * epochs
            write_run(recipe, "grow", seed, [(1e9, acc)], lr=0.01, strategy_keys=keys)
    rows = verdict_rows(Sweep(collect(recipe)))
    assert [r["strategy.finetune_epochs"] for r in rows] == [1, 2]
    assert [(r["n"], r["unpaired_runs"]) for r in rows] == [(3, 0), (3, 0)]
    assert [r["delta_mean"] for r in rows] == pytest.approx([0.01, 0.02])

    tuned = tmp_path / "tuned"  # each strategy at its own learning rate
    for seed in range(3):
        write_run(tuned, "from-scratch", seed, [(1e9, 0.8 + 0.01 * seed)], lr=0.01)
        write_run(tuned, "grow", seed, [(1e9, 0.82 + 0.01 * seed)], lr=0.001)
    (row,) = verdict_rows(Sweep(collect(tuned)))
    assert row["n"] == 3 and row["delta_mean"] == pytest.approx(0.02)


def test_a_sweep_without_the_baseline_says_so(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    for seed in range(2):
        write_run(root, "grow", seed, [(1e9, 0.7)])
    files = make_report(root, tmp_path / "out")
    md = files.markdown.read_text()
    assert "No completed run of the baseline strategy `from-scratch`" in md
    tables = json.loads(files.json.read_text())["tables"]
    assert tables[0]["rows"] == [] and "from-scratch" in tables[0]["title"]


def test_paired_statistics() -> None:
    result = paired([0.01, 0.03, 0.02])
    assert result is not None and result.n == 3 and result.mean == pytest.approx(0.02)
    # t interval: mean ± t(0.975, 2) * sd / sqrt(3), sd = 0.01
    half = 4.302652729911275 * 0.01 / 3**0.5
    assert (result.ci_low, result.ci_high) == pytest.approx((0.02 - half, 0.02 + half))
    assert paired([]) is None
    assert paired([0.0, 0.0]).p_value == 1.0  # type: ignore[union-attr]
    assert holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])


def test_interpolation_at_equal_flops() -> None:
    curve = [(1e9, 0.5), (3e9, 0.7), (4e9, 0.9)]
    assert acc_within_budget(curve, 2e9) == pytest.approx(0.6)
    assert acc_within_budget(curve, 3.5e9) == pytest.approx(0.8)
    assert acc_within_budget(curve, 9e9) == pytest.approx(0.9)  # ended before the budget
    assert acc_within_budget(curve, 0.5e9) is None  # the budget ends before the first stage
    assert flops_to_reach(curve, 0.65) == pytest.approx(2.5e9)
    assert flops_to_reach(curve, 0.4) == pytest.approx(1e9)
    assert flops_to_reach(curve, 0.95) is None
    assert acc_within_budget(curve, 1e9) == pytest.approx(0.5)  # exactly the first stage's FLOPs
    # Reaching the target means equalling it: a run that ends exactly on it reaches it there.
    assert flops_to_reach(curve, 0.9) == pytest.approx(4e9)
    assert flops_to_reach([(1e9, 0.7), (2e9, 0.7)], 0.7) == pytest.approx(1e9)


def test_verdict_boundaries() -> None:
    # Two pairs are enough for the paired t-test: a consistent gain can be "better".
    two = paired([0.100, 0.101])
    assert two is not None and two.p_value is not None and two.p_value < ALPHA
    assert verdict(two, two.p_value) == BETTER
    assert verdict(two, ALPHA) == NO_DIFFERENCE  # significant means p < alpha, strictly
    # Holm's adjusted p-values stay probabilities: m x p is capped at 1.
    assert holm([0.6, 0.7, 0.9]) == [1.0, 1.0, 1.0]


def test_equal_compute_rows(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    for seed in range(3):
        write_run(root, "from-scratch", seed, [(2e9, 0.6), (4e9, 0.7)])
        write_run(root, "cheap", seed, [(1e9, 0.6), (2e9, 0.8)])  # reaches 0.7 at 1.5e9
        write_run(root, "slow", seed, [(2e9, 0.5), (8e9, 0.65)])  # 0.55 at 4e9, never 0.7
    rows = rows_by_strategy(compute_rows(Sweep(collect(root))))
    cheap, slow = rows["cheap"], rows["slow"]
    assert cheap["flops_ratio"] == pytest.approx(0.5)
    assert cheap["acc_at_baseline_budget"] == pytest.approx(0.8)
    assert cheap["delta_mean"] == pytest.approx(0.1)
    assert cheap["reached_baseline_acc"] == 3
    assert cheap["flops_to_baseline_acc_ratio"] == pytest.approx(1.5e9 / 4e9)
    assert slow["flops_ratio"] == pytest.approx(2.0)
    assert slow["acc_at_baseline_budget"] == pytest.approx(0.55)
    assert slow["reached_baseline_acc"] == 0 and slow["flops_to_baseline_acc_ratio"] is None
    md = make_report(root, tmp_path / "out").markdown.read_text()
    section = md.split("## At equal training compute")[1].split("\n## ")[0]
    assert "| slow | 3 | 3 | 2.000 | 0.5500 | -0.1500 |" in section
    assert "| 0/3 | never |" in section


def test_stage_help_is_the_mean_change_of_validation_loss(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    curve = [(1e9, 0.5), (2e9, 0.6), (3e9, 0.7)]
    for seed, losses in enumerate([[1.0, 0.8, 0.9], [1.0, 0.7, 0.8], [1.0, 0.9, 1.0]]):
        write_run(root, "grow", seed, curve, val_losses=losses)
    rows = stage_help_rows(Sweep(collect(root)))
    assert [(r["stage"], r["n"], r["helped"]) for r in rows] == [(1, 3, 3), (2, 3, 0)]
    assert rows[0]["delta_mean"] == pytest.approx(-0.2)
    assert rows[1]["delta_mean"] == pytest.approx(0.1)
    half = 4.302652729911275 * 0.1 / 3**0.5  # t(0.975, 2) * sd / sqrt(n), sd = 0.1
    assert (rows[0]["ci_low"], rows[0]["ci_high"]) == pytest.approx((-0.2 - half, -0.2 + half))
    assert [r["phase"] for r in rows] == ["grow", "grow"]


def test_stage_help_skips_a_stage_without_a_validation_loss(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    curve = [(1e9, 0.5), (2e9, 0.6), (3e9, 0.7)]
    write_run(root, "grow", 0, curve, val_losses=[1.0, 0.8, 0.9])
    write_run(root, "grow", 1, curve, val_losses=[1.0, 0.7, 0.8])
    path = root / "digits-grow-d3-s1" / "summary.json"
    summary = json.loads(path.read_text())
    summary["stages"][1]["val_loss"] = None  # as a NaN is written
    path.write_text(json.dumps(summary))
    write_run(root, "grow", 2, curve, val_losses=[1.0, 1.0, 1.0])  # no change: did not help
    rows = stage_help_rows(Sweep(collect(root)))
    assert [(r["stage"], r["n"], r["helped"]) for r in rows] == [(1, 2, 1), (2, 2, 0)]
    assert [r["delta_mean"] for r in rows] == pytest.approx([-0.1, 0.05])
    assert all("p_value" not in r for r in rows)  # an interval per stage, no test


def in_memory_run(strategy: str, seed: int, curve: list[tuple[float | None, float | None]]):
    stages = [
        {"stage": k, "phase": "grow", "depth": 3, "cum_train_flops": flops, "test_acc": acc}
        for k, (flops, acc) in enumerate(curve)
    ]
    summary = {"strategy": strategy, "model": "mlp", "data": "digits", "seed": seed, "depth": 3}
    summary |= {"test_acc": curve[-1][1], "stages": stages}
    return RunRecord(Path(f"/x/{strategy}-{seed}"), f"{strategy}-{seed}", "completed", summary)


def test_equal_compute_against_the_baselines_last_stage_over_the_pairs_with_curves() -> None:
    baseline = [(1e9, 0.5), (2e9, 0.6), (4e9, 0.7)]  # budget 4e9, accuracy 0.7
    runs = [in_memory_run("from-scratch", seed, baseline) for seed in range(4)]
    runs += [
        in_memory_run("s", 0, [(None, 0.55), (None, 0.75)]),  # no FLOPs recorded: no curve
        in_memory_run("s", 1, [(1e9, 0.55), (2e9, None), (3e9, 0.65), (6e9, 0.75)]),
        in_memory_run("s", 2, [(1e9, 0.55), (3e9, 0.65), (6e9, 0.75)]),
        in_memory_run("s", 3, [(5e9, 0.6), (8e9, 0.72)]),  # starts past the budget
    ]
    (row,) = compute_rows(Sweep(runs))
    assert row["n"] == 3  # seeds with a curve on both sides
    assert row["flops_ratio"] == pytest.approx((1.5 + 1.5 + 2.0) / 3)
    # Within 4e9 FLOPs: 0.65 + (4 - 3) / (6 - 3) x 0.1 on seeds 1 and 2; seed 3 has no point.
    assert row["acc_at_baseline_budget"] == pytest.approx(0.65 + 0.1 / 3)
    assert row["delta_mean"] == pytest.approx(0.65 + 0.1 / 3 - 0.7)
    assert row["ci_low"] == row["ci_high"] == pytest.approx(row["delta_mean"])  # no spread
    # 0.7 reached at 4.5e9 (seeds 1, 2) and 5e9 + 0.1 / 0.12 x 3e9 = 7.5e9 (seed 3).
    assert row["reached_baseline_acc"] == 3
    assert row["flops_to_baseline_acc_ratio"] == pytest.approx((4.5 + 4.5 + 7.5) / 3 / 4)
    assert "p_value" not in row  # equal compute reports the interval, no test


def test_a_lines_context_is_its_key_without_the_strategy(tmp_path: Path) -> None:
    root = tmp_path / "sweep"
    for data in ("digits", "blobs"):
        for lr in (0.1, 0.01):
            write_run(root, "grow", 0, [(1e9, 0.5)], data=data, lr=lr)
    sweep = Sweep(collect(root))
    assert sweep.line_dims == ["data", "strategy", "optimizer.lr"]
    assert sorted(context(sweep, key) for key in sweep.lines()) == [
        ("blobs", "0.01"),
        ("blobs", "0.1"),
        ("digits", "0.01"),
        ("digits", "0.1"),
    ]


def test_report_files_carry_the_same_rows(tmp_path: Path) -> None:
    root = sweep_dir(tmp_path, {"better": [0.05] * 5})
    files = make_report(root, tmp_path / "out", wandb=True)  # offline: the spec only
    report = json.loads(files.json.read_text())
    verdict = report["tables"][0]
    assert report["baseline"] == "from-scratch"
    (row,) = verdict["rows"]
    assert row["strategy"] == "better" and row["verdict"] == "better" and row["n"] == 5
    assert row["delta_mean"] == pytest.approx(0.05)
    titles = [t["title"] for t in report["tables"]]
    md, page = files.markdown.read_text(), files.html.read_text()
    for title in titles:
        assert f"## {title}" in md and title in page
    assert "| better | 3 | 5 |" in md and "| better |" in md.split("## At equal")[1]
    assert (tmp_path / "out" / "equal_compute.png").is_file()
    spec = (tmp_path / "out" / SPEC_FILE).read_text()
    for title in titles[:3]:
        assert json.dumps(title)[1:-1] in spec
    assert "equal_compute.png" in report["plots"]
