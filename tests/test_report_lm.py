"""The report on runs ranked by a loss (`"primary_metric": "test_loss"`, a language model's),
built by hand where the answer is known: lower is better in every verdict, equal-compute row,
best-of and column name; a sweep mixing primary metrics is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from growlab.report import ReportInputError, make_report, make_run_page
from growlab.report.__main__ import main
from growlab.report.aggregate import Sweep
from growlab.report.baseline import compute_rows, verdict_rows
from growlab.report.collect import collect
from growlab.report.metric import LOSS
from growlab.report.stats import BETTER, WORSE, flops_to_reach, paired, verdict
from growlab.report.tables import best_line, group_table
from growlab.report.wandb_report import build_report, report_spec

BASE_LOSSES = [2.00, 2.10, 1.95, 2.05, 2.02]


def write_lm_run(
    root: Path,
    strategy: str,
    seed: int,
    curve: list[tuple[float, float]],
    metric: str | None = "test_loss",
    summary_loss: bool = True,
) -> Path:
    """A completed LM run whose stages end at the given (cumulative FLOPs, test loss); its
    next-character accuracy rises as the loss falls."""
    run = root / f"{strategy}-s{seed}"
    run.mkdir(parents=True)
    stages = [
        {
            "stage": k, "phase": "train" if k == 0 else "grow", "depth": k + 1,
            "test_loss": loss, "test_bpc": loss / 0.6931, "val_loss": loss + 0.01,
            "train_loss": loss - 0.1, "test_acc": 1.0 - loss / 4, "cum_train_flops": flops,
            "shock": {"acc_before": 0.5, "acc_after": 0.4, "loss_before": 2.0, "loss_after": 2.5},
        }
        for k, (flops, loss) in enumerate(curve)
    ]  # fmt: skip
    summary: dict[str, Any] = {
        "strategy": strategy, "model": "gpt", "data": "shakespeare_char", "seed": seed,
        "depth": len(curve), "status": "completed", "test_acc": 1.0 - curve[-1][1] / 4,
        "train_flops": curve[-1][0], "stages": stages,
        "config": {"strategy.name": strategy, "seed": seed, "model.name": "gpt"},
    }  # fmt: skip
    if metric is not None:
        summary["primary_metric"] = metric
    if summary_loss:
        summary["test_loss"] = curve[-1][1]
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def lm_sweep(tmp_path: Path, deltas: dict[str, list[float]]) -> Path:
    """from-scratch ends at BASE_LOSSES[seed] after 2e9 FLOPs; each strategy at the baseline's
    loss plus its delta after 1e9, from 0.4 above the baseline's at 0.5e9."""
    root = tmp_path / "lm"
    for seed, base in enumerate(BASE_LOSSES):
        write_lm_run(root, "from-scratch", seed, [(1e9, base + 0.5), (2e9, base)])
        for strategy, delta in deltas.items():
            write_lm_run(root, strategy, seed, [(0.5e9, base + 0.4), (1e9, base + delta[seed])])
    return root


def by_strategy(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["strategy"]: row for row in rows}


def test_a_lower_loss_is_better_and_the_fields_say_loss(tmp_path: Path) -> None:
    deltas = {"lower": [-0.1] * 5, "higher": [0.08, 0.1, 0.12, 0.1, 0.09]}
    sweep = Sweep(collect(lm_sweep(tmp_path, deltas)))
    assert sweep.metric.key == "test_loss" and not sweep.metric.higher_is_better
    rows = by_strategy(verdict_rows(sweep))
    assert rows["lower"]["delta_mean"] == pytest.approx(-0.1)
    assert rows["lower"]["verdict"] == BETTER
    assert (
        rows["higher"]["delta_mean"] == pytest.approx(0.098) and rows["higher"]["verdict"] == WORSE
    )
    assert rows["lower"]["test_loss"] == pytest.approx(sum(BASE_LOSSES) / 5 - 0.1)
    assert rows["lower"]["baseline_test_loss"] == pytest.approx(sum(BASE_LOSSES) / 5)
    assert not any("acc" in field for row in rows.values() for field in row)


def test_flops_to_reach_the_baselines_final_loss(tmp_path: Path) -> None:
    rows = by_strategy(compute_rows(Sweep(collect(lm_sweep(tmp_path, {"lower": [-0.1] * 5})))))
    row = rows["lower"]
    # The run's loss falls from base+0.4 (0.5e9) to base−0.1 (1e9): it reaches the baseline's
    # final loss 0.8 of the way, at 0.9e9 FLOPs, 0.45 of the baseline's 2e9. (Read as accuracy,
    # base+0.4 ≥ base would count as reached at 0.5e9.)
    assert row["reached_baseline_loss"] == 5
    assert row["flops_to_baseline_loss_ratio"] == pytest.approx(0.45)
    assert row["loss_at_baseline_budget"] == pytest.approx(sum(BASE_LOSSES) / 5 - 0.1)
    assert row["delta_mean"] == pytest.approx(-0.1)
    assert row["final_test_loss"] == pytest.approx(sum(BASE_LOSSES) / 5 - 0.1)
    # The baseline at the run's own 1e9 FLOPs: its first stage's end, base + 0.5.
    assert row["baseline_loss_at_own_budget"] == pytest.approx(sum(BASE_LOSSES) / 5 + 0.5)
    assert not any("acc" in field for field in row)


def test_a_loss_that_never_falls_far_enough_never_reaches(tmp_path: Path) -> None:
    rows = by_strategy(compute_rows(Sweep(collect(lm_sweep(tmp_path, {"high": [0.2] * 5})))))
    assert rows["high"]["reached_baseline_loss"] == 0
    assert rows["high"]["flops_to_baseline_loss_ratio"] is None


def test_statistics_go_the_metrics_way() -> None:
    curve = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)]
    assert flops_to_reach(curve, 1.5, higher_is_better=False) == pytest.approx(2.5)
    assert flops_to_reach(curve, 0.5, higher_is_better=False) is None
    assert flops_to_reach(curve, 3.5, higher_is_better=False) == 1.0  # the first stage already
    assert flops_to_reach(curve, 1.5) == 1.0  # as accuracy, 3.0 ≥ 1.5 at once
    lower = paired([-0.1, -0.12, -0.09])
    assert verdict(lower, 0.01, higher_is_better=False) == BETTER
    assert verdict(lower, 0.01) == WORSE


def test_best_and_results_table_pick_the_lowest_loss(tmp_path: Path) -> None:
    sweep = Sweep(collect(lm_sweep(tmp_path, {"lower": [-0.1] * 5, "higher": [0.1] * 5})))
    line = best_line(sweep)
    assert line is not None and line.startswith("Best: lower at depth 2: test loss")
    table = group_table(sweep)
    assert "test loss" in table.headers and "best test loss" in table.headers
    assert "shock (Δloss)" in table.headers and "test acc" not in table.headers
    record = next(r for r in table.records or [] if r["strategy"] == "lower")
    assert record["test_loss_mean"] == pytest.approx(sum(BASE_LOSSES) / 5 - 0.1)
    assert record["shock_loss_mean"] == pytest.approx(0.5)  # 2.0 -> 2.5 at the growth


def test_the_whole_report_says_loss(tmp_path: Path) -> None:
    root = lm_sweep(tmp_path, {"lower": [-0.1] * 5})
    files = make_report(root, tmp_path / "out")
    md = files.markdown.read_text()
    assert "Runs are compared by test_loss (lower is better)." in md
    assert "paired Δ final test loss" in md and "FLOPs to reach it" in md
    assert "| Δ test loss |" in md and "loss within baseline budget" in md
    assert "Δ test acc" not in md and "acc within baseline budget" not in md
    report = json.loads(files.json.read_text())
    tables = {t["name"]: t for t in report["tables"]}
    (verdict_row,) = tables["verdict"]["rows"]
    assert verdict_row["verdict"] == BETTER and "test_loss" in verdict_row
    assert "flops_to_baseline_loss_ratio" in tables["equal_compute"]["rows"][0]
    csv_header = (files.out_dir / "tables" / "equal_compute.csv").read_text().splitlines()[0]
    assert "reached_baseline_loss" in csv_header and "acc" not in csv_header
    runs_csv = (files.out_dir / "runs.csv").read_text().splitlines()
    assert "primary_metric" in runs_csv[0] and "stage1_test_loss" in runs_csv[0]


def test_the_final_loss_may_come_from_the_last_stage(tmp_path: Path) -> None:
    run = write_lm_run(tmp_path / "s", "x", 0, [(1.0, 2.5), (2.0, 2.2)], summary_loss=False)
    (record,) = collect(run.parent)
    assert record.ok and record.final == pytest.approx(2.2)


def test_a_completed_run_without_its_loss_is_invalid(tmp_path: Path) -> None:
    run = write_lm_run(tmp_path / "s", "x", 0, [(1.0, 2.5)], summary_loss=False)
    summary = json.loads((run / "summary.json").read_text())
    for stage in summary["stages"]:
        del stage["test_loss"]
    (run / "summary.json").write_text(json.dumps(summary))
    (record,) = collect(run.parent)
    assert record.status == "invalid" and record.error == "completed without a final test_loss"


def test_a_sweep_mixing_primary_metrics_is_refused(tmp_path: Path, capsys) -> None:
    root = tmp_path / "mixed"
    write_lm_run(root, "lm", 0, [(1.0, 2.0)])
    write_lm_run(root, "classifier", 0, [(1.0, 2.0)], metric=None)
    with pytest.raises(ReportInputError, match="mix primary metrics") as info:
        make_report(root, tmp_path / "out")
    assert "test_loss: 1 run(s)" in str(info.value) and "test_acc: 1 run(s)" in str(info.value)
    assert not (tmp_path / "out").exists()  # refused before writing anything
    assert main([str(root), "--out", str(tmp_path / "out")]) == 2
    assert "--include primary_metric=" in capsys.readouterr().err
    # Choosing one metric's runs makes the report.
    files = make_report(root, tmp_path / "out", include=["primary_metric=test_loss"])
    assert len(files.sweep.runs) == 1 and files.sweep.metric.key == "test_loss"


def test_an_unknown_primary_metric_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    write_lm_run(tmp_path / "s", "x", 0, [(1.0, 2.0)], metric="test_perplexity")
    with pytest.raises(ReportInputError, match="test_perplexity.*valid: test_acc, test_loss"):
        make_report(tmp_path / "s", tmp_path / "out")


def test_a_runs_page_gives_its_loss(tmp_path: Path) -> None:
    run = write_lm_run(tmp_path / "s", "x", 0, [(1.0, 2.5), (2.0, 2.25)])
    page = make_run_page(run)
    md = page.markdown.read_text()
    assert "final test_loss 2.2500 (test accuracy 0.4375)" in md
    assert "| test acc | test loss | val loss |" in md
    assert "| 2.2500 | 2.2600 |" in md  # the last stage's test and validation loss


def test_the_wandb_report_charts_the_loss() -> None:
    pytest.importorskip("wandb_workspaces")
    spec = json.dumps(report_spec(build_report("p", "", "g", "text", "", LOSS)))
    assert "stage/test_loss" in spec and "depth/test_loss" in spec
    assert "stage/test_acc" not in spec and "Test loss vs training FLOPs" in spec
