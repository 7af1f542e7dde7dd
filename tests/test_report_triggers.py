"""The report's growth-trigger sections on run directories built by hand, where the answer is
known: each trigger against the best of four fixed schedules at equal training FLOPs (paired by
seed), where and when each trigger grew, and the growth plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from growlab.report import make_report
from growlab.report.aggregate import Sweep
from growlab.report.baseline import verdict_rows
from growlab.report.collect import collect, varying_keys
from growlab.report.growth_facts import growth_axis, growth_flops, signal_share
from growlab.report.stats import BETTER, WORSE
from growlab.report.trigger_compare import growth_rows, trigger_rows
from growlab.report.trigger_tables import growth_table, trigger_table

SEEDS = (0, 1, 2)
# train.epochs_per_stage -> stage ends (×1e9 FLOPs) and test accuracies before the seed's offset.
FIXED = {
    "1": ([1, 2, 3], [0.50, 0.60, 0.70]),
    "2": ([2, 4, 6], [0.60, 0.70, 0.80]),  # the best: mean final 0.81
    "4": ([4, 8, 12], [0.62, 0.72, 0.78]),
    "[3, 1, 1]": ([3, 4, 5], [0.55, 0.65, 0.75]),
}
PLATEAU_EXTRA = [0.0, 0.01, -0.005]


def write_run(
    root: Path,
    name: str,
    seed: int,
    flops: list[float],
    values: list[float],
    config: dict[str, Any],
    depths: list[int] | None = None,
    metric: str = "test_acc",
    **summary: Any,
) -> Path:
    run = root / f"{name}-s{seed}"
    run.mkdir(parents=True)
    depths = depths or list(range(1, len(flops) + 1))
    stages = [
        {"stage": k, "phase": "train" if k == 0 else "grow", "depth": d, "width": 64,
         metric: v, "test_acc": v if metric == "test_acc" else 0.3, "cum_train_flops": f * 1e9,
         "epochs": 2, "signal_flops": 1e7 * (k + 1)}
        for k, (f, v, d) in enumerate(zip(flops, values, depths, strict=True))
    ]  # fmt: skip
    summary = {
        "strategy": config["strategy.name"], "model": "mlp", "data": "digits", "seed": seed,
        "depth": depths[-1], "status": "completed", "test_acc": stages[-1]["test_acc"],
        metric: values[-1], "primary_metric": metric, "stages": stages,
        "config": {**config, "seed": seed}, **summary,
    }  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def trigger_sweep(tmp_path: Path) -> Path:
    root = tmp_path / "triggers"
    for seed in SEEDS:
        for epochs, (flops, accs) in FIXED.items():
            config = {"strategy.name": "grow", "train.epochs_per_stage": json.loads(epochs)}
            values = [a + 0.01 * seed for a in accs]
            write_run(root, f"fixed-e{epochs}", seed, flops, values, config)
        plateau = {"strategy.name": "grow", "train.epochs_per_stage": 2, "trigger.name": "plateau",
                   "trigger.patience": 2, "trigger._target_": "x.Plateau"}  # fmt: skip
        final = 0.80 + 0.01 * seed + PLATEAU_EXTRA[seed]
        stop = {"stopped_growing": {"stage": 1, "reason": "no gain"}} if seed == 2 else {}
        depths = [1, 2, 2] if seed == 2 else None  # seed 2 stopped growing after stage 1
        write_run(root, "plateau", seed, [1.5, 3, 5], [0.55, 0.7, final], plateau, depths, **stop)
        budget = {"strategy.name": "grow", "train.epochs_per_stage": 2, "trigger.name": "budget",
                  "trigger.fractions": [0.3, 0.6], "trigger._target_": "x.Budget"}  # fmt: skip
        values = [a + 0.01 * seed for a in (0.5, 0.55, 0.6)]
        write_run(root, "budget", seed, [1, 2, 2.5], values, budget)
        scratch = {"strategy.name": "from-scratch", "train.epochs_per_stage": 2}
        write_run(root, "scratch", seed, [6], [0.79 + 0.01 * seed], scratch, depths=[3])
    return root


def by_trigger(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["trigger"]: row for row in rows}


def test_each_trigger_against_the_best_of_four_fixed_schedules(tmp_path: Path) -> None:
    sweep = Sweep(collect(trigger_sweep(tmp_path)))
    rows = by_trigger(trigger_rows(sweep))
    assert set(rows) == {"plateau", "budget"}  # fixed schedules are not compared with themselves
    plateau, budget = rows["plateau"], rows["budget"]
    assert plateau["fixed_schedules"] == 4  # from-scratch is another strategy: not a candidate
    assert "train.epochs_per_stage=2" in plateau["best_fixed"]
    assert plateau["best_fixed_depth"] == 3 and plateau["best_fixed_test_acc"] == pytest.approx(
        0.81
    )
    # At the plateau runs' 5e9 FLOPs the best schedule (ends 4e9: 0.70, 6e9: 0.80) is at 0.75.
    assert plateau["n"] == 3 and plateau["unpaired_runs"] == 0
    assert plateau["fixed_acc_at_trigger_budget"] == pytest.approx(0.76)
    assert plateau["delta_mean"] == pytest.approx(0.05 + sum(PLATEAU_EXTRA) / 3)
    assert plateau["ci_low"] > 0 and plateau["verdict"] == BETTER
    assert plateau["flops_ratio"] == pytest.approx(5 / 6)
    assert plateau["fixed_final_test_acc"] == pytest.approx(0.81)
    # The budget trigger ends at 2.5e9, where the best schedule stands at 0.625: −0.025.
    assert budget["delta_mean"] == pytest.approx(-0.025) and budget["verdict"] == WORSE
    assert budget["p_holm"] >= budget["p_value"]


def test_a_trigger_that_ends_before_the_best_schedules_first_stage_meets_one_that_reaches_it(
    tmp_path: Path,
) -> None:
    root = trigger_sweep(tmp_path)
    gradient = {"strategy.name": "grow", "train.epochs_per_stage": 2, "trigger.name": "gradient"}
    for seed in SEEDS:  # ends at 1.5e9: before the best schedule's (e2) first stage at 2e9
        write_run(root, "gradient", seed, [0.5, 1.5], [0.4, 0.6 + 0.01 * seed + 0.002 * seed**2],
                  gradient)  # fmt: skip
    sweep = Sweep(collect(root))
    row = by_trigger(trigger_rows(sweep))["gradient"]
    assert "train.epochs_per_stage=2" in row["best_fixed"]
    # Only e1 (stage ends 1e9, 2e9) reaches 1.5e9 FLOPs: 0.55 there, + 0.01 x seed.
    assert "train.epochs_per_stage=1" in row["paired_fixed"]
    assert row["n"] == 3 and row["unpaired_runs"] == 0 and row["ended_before_fixed"] == 0
    assert row["fixed_acc_at_trigger_budget"] == pytest.approx(0.56)
    assert row["delta_mean"] == pytest.approx(0.05 + 0.002 * 5 / 3)
    assert row["verdict"] == BETTER
    cell = next(r for r in trigger_table(sweep).rows if "gradient" in r)
    assert any("(against " in c and "epochs_per_stage=1" in c for c in cell)
    # With no schedule reaching its FLOPs, the runs are counted, not compared.
    for seed in SEEDS:
        write_run(
            root, "early", seed, [0.2, 0.5], [0.3, 0.4], {**gradient, "trigger.name": "merit"}
        )
    rows = by_trigger(trigger_rows(Sweep(collect(root))))
    assert rows["merit"]["n"] == 0 and rows["merit"]["ended_before_fixed"] == 3
    assert rows["merit"]["paired_fixed"] == rows["merit"]["best_fixed"]
    assert rows["gradient"]["paired_fixed"] == row["paired_fixed"]


def test_a_lower_loss_makes_the_best_fixed_schedule(tmp_path: Path) -> None:
    root = tmp_path / "lm"
    for seed in SEEDS:
        for epochs, loss in (("1", 2.0), ("2", 1.8), ("4", 1.9)):
            config = {"strategy.name": "grow", "train.epochs_per_stage": int(epochs)}
            write_run(root, f"e{epochs}", seed, [1, 2], [loss + 0.5, loss + 0.01 * seed],
                      config, metric="test_loss")  # fmt: skip
        config = {"strategy.name": "grow", "train.epochs_per_stage": 1, "trigger.name": "gap"}
        write_run(root, "gap", seed, [1, 2], [2.2, 1.7 + 0.01 * seed + 0.001 * seed**2], config,
                  metric="test_loss")  # fmt: skip
    (row,) = trigger_rows(Sweep(collect(root)))
    assert "train.epochs_per_stage=2" in row["best_fixed"]  # the lowest mean loss, 1.81
    assert row["best_fixed_test_loss"] == pytest.approx(1.81)
    assert row["delta_mean"] < 0 and row["verdict"] == BETTER  # a lower loss is better
    assert "fixed_loss_at_trigger_budget" in row


def test_trigger_knobs_are_its_recipe_and_its_name_splits_lines(tmp_path: Path) -> None:
    runs = collect(trigger_sweep(tmp_path))
    keys = varying_keys(runs)
    assert "trigger.name" in keys and "train.epochs_per_stage" in keys
    assert not any(k.startswith("trigger.") and k != "trigger.name" for k in keys)
    extra = tmp_path / "triggers"
    config = {"strategy.name": "grow", "train.epochs_per_stage": 2, "trigger.name": "plateau",
              "trigger.patience": 5, "trigger._target_": "x.Plateau"}  # fmt: skip
    write_run(extra, "plateau-p5", 0, [1, 2], [0.5, 0.6], config)
    assert "trigger.patience" in varying_keys(collect(extra))  # swept within one trigger
    labels = [Sweep(runs).line_label(k) for k in Sweep(runs).lines()]
    assert "grow train.epochs_per_stage=2 trigger.name=fixed" in labels


def test_trigger_runs_pair_with_the_baseline_by_seed(tmp_path: Path) -> None:
    rows = verdict_rows(Sweep(collect(trigger_sweep(tmp_path))))
    plateau = next(r for r in rows if r["trigger.name"] == "plateau" and r["depth"] == 3)
    assert plateau["n"] == 2 and plateau["unpaired_runs"] == 0  # seeds 0 and 1 reached depth 3


def test_where_and_when_each_trigger_grew(tmp_path: Path) -> None:
    sweep = Sweep(collect(trigger_sweep(tmp_path)))
    rows = by_trigger(growth_rows(sweep))
    plateau = rows["plateau"]
    assert plateau["axis"] == "depth"
    assert dict(zip(plateau["seeds"], plateau["final_sizes"], strict=True)) == {0: 3, 1: 3, 2: 2}
    assert plateau["growths_mean"] == pytest.approx(5 / 3)
    assert plateau["first_growth_flops_mean"] == pytest.approx(1.5e9)
    assert plateau["stopped_early"] == 1 and plateau["stop_reasons"] == ["no gain"]
    assert plateau["signal_share_mean"] == pytest.approx(6e7 / 5e9)
    assert rows["budget"]["signal_share_max"] == pytest.approx(6e7 / 2.5e9)
    table = growth_table(sweep)
    assert "trigger" not in table.headers  # the line's trigger.name column says it
    (md_row,) = [row for row in table.rows if "plateau" in row]
    assert "2.7 (2–3)" in md_row and "1/3 (no gain)" in md_row


def test_a_widening_run_grows_in_width(tmp_path: Path) -> None:
    config = {"strategy.name": "widen", "trigger.name": "gradient"}
    run = write_run(tmp_path / "w", "w", 0, [1, 2, 3], [0.5, 0.6, 0.7], config, depths=[2, 2, 2])
    summary = json.loads((run / "summary.json").read_text())
    for stage, width in zip(summary["stages"], (4, 8, 8), strict=True):
        stage["width"] = None
        stage["widths"] = [width, 4]
    (run / "summary.json").write_text(json.dumps(summary))
    (record,) = collect(tmp_path / "w")
    assert growth_axis([record]) == "width"
    assert growth_flops(record, "width") == [1e9]
    assert signal_share(record) == pytest.approx(6e7 / 3e9)
    (row,) = growth_rows(Sweep([record]))
    assert row["axis"] == "width" and row["final_sizes"] == [8]


def test_the_report_shows_the_trigger_sections_and_the_growth_plot(tmp_path: Path) -> None:
    root = trigger_sweep(tmp_path)
    files = make_report(root, tmp_path / "out")
    assert (files.out_dir / "growth.png").read_bytes().startswith(b"\x89PNG")
    report = json.loads(files.json.read_text())
    names = [t["name"] for t in report["tables"]]
    assert names.index("equal_compute") < names.index("triggers") < names.index("trigger_growth")
    assert "growth.png" in report["plots"]
    md = files.markdown.read_text()
    assert "## Growth triggers against the best fixed schedule at equal training FLOPs" in md
    assert (files.out_dir / "tables" / "triggers.tex").is_file()
    table = trigger_table(files.sweep)
    assert "best fixed schedule" in table.headers and "Δ test acc" in table.headers
    # Only fixed schedules: no trigger sections, no growth plot.
    plain = make_report(root, tmp_path / "plain", include=["trigger.name=null"])
    assert not (plain.out_dir / "growth.png").exists()
    assert "Growth triggers" not in plain.markdown.read_text()


def test_runs_naming_no_trigger_and_fixed_runs_are_one_line(tmp_path: Path) -> None:
    root = tmp_path / "old_and_new"
    write_run(root, "old", 0, [1, 2], [0.5, 0.6], {"strategy.name": "grow"})
    write_run(
        root, "new", 1, [1, 2], [0.5, 0.7], {"strategy.name": "grow", "trigger.name": "fixed"}
    )
    sweep = Sweep(collect(root))
    assert "trigger.name" not in sweep.extra_keys and len(sweep.lines()) == 1


def test_a_trigger_swept_over_depth_pairs_each_seed_once_per_depth(tmp_path: Path) -> None:
    root = trigger_sweep(tmp_path)
    for seed in SEEDS:  # plateau again, allowed to grow to depth 4: it stops at 3 all the same
        config = {"strategy.name": "grow", "train.epochs_per_stage": 2, "trigger.name": "plateau",
                  "trigger.patience": 2, "trigger._target_": "x.Plateau", "depth": 4}  # fmt: skip
        write_run(root, "plateau-d4", seed, [1.5, 3, 5], [0.55, 0.7, 0.8 + 0.01 * seed], config)
    rows = [r for r in trigger_rows(Sweep(collect(root))) if r["trigger"] == "plateau"]
    assert sorted(r["max_depth"] or 0 for r in rows) == [0, 4]  # the first sweep names no depth
    assert all(r["n"] == 3 and r["unpaired_runs"] == 0 for r in rows)
    (deep,) = [r for r in rows if r["max_depth"] == 4]
    assert deep["delta_mean"] == pytest.approx(0.05)  # 0.80 + 0.01 s against 0.75 + 0.01 s
