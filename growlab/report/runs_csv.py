"""runs.csv: one flat row per run, every status, full precision (the report's raw table)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from growlab.report.aggregate import Sweep, helped, max_preservation_error, mean_shock
from growlab.report.collect import RunRecord, trigger_name
from growlab.report.growth_facts import signal_flops, stop_reason

RUN_COLUMNS = [
    "run", "status", "strategy", "operator", "model", "data", "depth", "width", "seed", "test_acc",
    "best_test_acc", "train_flops", "wall_s", "stack_size", "stack_wall_s", "resumes", "n_stages",
    "params_total", "flops_per_sample", "max_preservation_error", "mean_shock_acc", "stages_helped",
    "stages_judged", "metric_rows", "error", "primary_metric", "test_loss", "trigger",
    "signal_flops", "stopped_growing",
]  # fmt: skip


def run_row(run: RunRecord, extra_keys: list[str]) -> dict[str, Any]:
    stages = run.stages
    last = stages[-1] if stages else {}
    n_helped, n_judged = helped(run)
    row: dict[str, Any] = {
        "run": run.name,
        "status": run.status,
        "strategy": run.strategy,
        "operator": run.operator,
        "model": run.model,
        "data": run.data,
        "depth": run.depth,
        "width": run.summary.get("width"),
        "seed": run.seed,
        "test_acc": run.summary.get("test_acc"),
        "best_test_acc": run.summary.get("best_test_acc"),
        "train_flops": run.summary.get("train_flops"),
        "wall_s": run.summary.get("wall_s"),
        "stack_size": run.summary.get("stack_size"),
        "stack_wall_s": run.summary.get("stack_wall_s"),
        "resumes": run.summary.get("resumes"),
        "n_stages": len(stages),
        "params_total": last.get("params_total"),
        "flops_per_sample": last.get("flops_per_sample"),
        "max_preservation_error": max_preservation_error(run),
        "mean_shock_acc": mean_shock(run),
        "stages_helped": n_helped,
        "stages_judged": n_judged,
        "metric_rows": run.metric_rows,
        "error": run.error,
        "primary_metric": run.primary_metric,
        "test_loss": last_of(run, "test_loss"),
        "trigger": trigger_name(run),
        "signal_flops": signal_flops(run),
        "stopped_growing": stop_reason(run),
    }
    for key in extra_keys:
        row[f"cfg.{key}"] = run.config.get(key)
    for stage in stages:
        row[f"stage{stage.get('stage')}_depth"] = stage.get("depth")
        row[f"stage{stage.get('stage')}_test_acc"] = stage.get("test_acc")
        if run.primary_metric != "test_acc":
            row[f"stage{stage.get('stage')}_{run.primary_metric}"] = stage.get(run.primary_metric)
    return row


def last_of(run: RunRecord, key: str) -> Any:
    """The summary's value of `key`, else the last stage's."""
    if run.summary.get(key) is not None:
        return run.summary[key]
    return next((s[key] for s in reversed(run.stages) if s.get(key) is not None), None)


def write_runs_csv(sweep: Sweep, path: Path) -> list[dict[str, Any]]:
    rows = [run_row(r, sweep.extra_keys) for r in sweep.runs]
    columns = list(RUN_COLUMNS) + [f"cfg.{k}" for k in sweep.extra_keys]
    stage_cols = sorted(
        {k for row in rows for k in row if k.startswith("stage") and k[5].isdigit()},
        key=lambda k: (int(k[5:].split("_")[0]), k),
    )
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns + stage_cols, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return rows
