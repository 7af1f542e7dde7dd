"""The report's tables: one flat row per run (runs.csv) and the grouped, seed-averaged views."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growlab.report.aggregate import (
    Stat,
    Sweep,
    depth_curves,
    helped,
    max_preservation_error,
    mean_shock,
)
from growlab.report.collect import RunRecord, is_number
from growlab.report.formats import num

RUN_COLUMNS = [
    "run", "status", "strategy", "operator", "model", "data", "depth", "width", "seed", "test_acc",
    "best_test_acc", "train_flops", "wall_s", "stack_size", "stack_wall_s", "resumes", "n_stages",
    "params_total", "flops_per_sample", "max_preservation_error", "mean_shock_acc", "stages_helped",
    "stages_judged", "metric_rows", "error",
]  # fmt: skip


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""
    name: str = ""  # file stem of its CSV and LaTeX copies (tables/<name>.csv, .tex)
    # row index -> where the row's first cell links (a run's own page)
    links: dict[int, str] = field(default_factory=dict)
    # The rows as named, unformatted fields for report.json (None: the formatted cells).
    records: list[dict[str, Any]] | None = None

    def as_records(self) -> list[dict[str, Any]]:
        if self.records is not None:
            return self.records
        return [dict(zip(self.headers, row, strict=True)) for row in self.rows]


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
    }
    for key in extra_keys:
        row[f"cfg.{key}"] = run.config.get(key)
    for stage in stages:
        row[f"stage{stage.get('stage')}_depth"] = stage.get("depth")
        row[f"stage{stage.get('stage')}_test_acc"] = stage.get("test_acc")
    return row


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


def fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, Stat):
        return value.fmt(digits)
    if value is None:
        return "—"
    if isinstance(value, float):
        return num(value, digits)
    return str(value)


def stat_fields(name: str, stat: Stat | None) -> dict[str, Any]:
    """A mean and its std as separate numbers (None when absent)."""
    return {
        f"{name}_mean": None if stat is None else stat.mean,
        f"{name}_std": None if stat is None else stat.std,
    }


def group_table(sweep: Sweep) -> Table:
    headers = [
        *sweep.line_dims, "depth", "n", "seeds", "test acc", "best test acc", "train FLOPs",
        "wall s", "stages helped", "max pres. err", "shock (Δacc)",
    ]  # fmt: skip
    rows, records = [], []
    for (key, depth), runs in sorted(sweep.groups().items()):
        n_helped = sum(helped(r)[0] for r in runs)
        n_judged = sum(helped(r)[1] for r in runs)
        errors = [e for r in runs if (e := max_preservation_error(r)) is not None]
        stats = {
            "test_acc": Stat.of([r.summary["test_acc"] for r in runs]),
            "best_test_acc": Stat.of([r.summary.get("best_test_acc") for r in runs]),
            "train_flops": Stat.of([r.summary.get("train_flops") for r in runs]),
            "wall_s": Stat.of([r.summary.get("wall_s") for r in runs]),
            "shock_acc": Stat.of([mean_shock(r) for r in runs]),
        }
        record: dict[str, Any] = sweep.line_fields(key)
        record |= {"depth": depth, "n": len(runs), "seeds": [r.seed for r in runs]}
        for name, stat in stats.items():
            record |= stat_fields(name, stat)
        record |= {"stages_helped": n_helped, "stages_judged": n_judged}
        record["max_preservation_error"] = max(errors) if errors else None
        records.append(record)
        rows.append(
            [
                *key,
                str(depth),
                str(len(runs)),
                ",".join(str(r.seed) for r in runs),
                fmt(stats["test_acc"]),
                fmt(stats["best_test_acc"]),
                fmt(stats["train_flops"], 3),
                fmt(stats["wall_s"], 1),
                f"{n_helped}/{n_judged}" if n_judged else "—",
                f"{max(errors):.1e}" if errors else "—",
                fmt(stats["shock_acc"], 3),
            ]
        )
    note = (
        "Completed runs only, mean ± std over seeds (std needs n ≥ 2), each mean rounded to "
        "the std's second significant digit."
    )
    title = "Final results by strategy × depth"
    return Table(title, headers, rows, note, "results", records=records)


def depth_table(sweep: Sweep) -> Table:
    curves = depth_curves(sweep)
    depths = sorted({d for curve in curves.values() for d in curve})
    headers = [*sweep.line_dims, *(f"d={d}" for d in depths)]
    rows, records = [], []
    for key, curve in curves.items():
        cells = [f"{curve[d].fmt(3)} (n={curve[d].n})" if d in curve else "—" for d in depths]
        rows.append([*key, *cells])
        for d, stat in curve.items():
            record: dict[str, Any] = sweep.line_fields(key)
            records.append(record | {"depth": d, "n": stat.n, **stat_fields("test_acc", stat)})
    note = (
        "Test accuracy after the last stage at each depth (growth runs contribute every depth "
        "they grew through; each seed counts once per depth)."
    )
    return Table("Test accuracy vs depth", headers, rows, note, "depth", records=records)


def problem_table(sweep: Sweep) -> Table:
    headers = ["run", "status", "strategy", "depth", "seed", "stages done", "error"]
    records = [
        {
            "run": r.name,
            "status": r.status,
            "strategy": r.strategy,
            "depth": r.depth,
            "seed": r.seed,
            "stages_done": len(r.stages),
            "error": (r.error or "").splitlines()[0][:200] if r.error else None,
        }
        for r in sweep.problems
    ]
    rows = [[fmt(v) for v in record.values()] for record in records]
    note = "Listed, never averaged." if rows else "None: every run completed."
    return Table("Failed, diverged or incomplete runs", headers, rows, note, "problems",
                 records=records)  # fmt: skip


def runs_table(sweep: Sweep) -> Table:
    headers = [
        "run", "status", "strategy", "depth", "seed", "test acc", "best test acc", "wall s",
        "stacked",
    ]  # fmt: skip
    records = [
        {
            "run": r.name, "status": r.status, "strategy": r.strategy, "depth": r.depth,
            "seed": r.seed, "test_acc": r.summary.get("test_acc"),
            "best_test_acc": r.summary.get("best_test_acc"), "wall_s": r.summary.get("wall_s"),
            "stack_size": r.summary.get("stack_size"),
        }
        for r in sweep.runs
    ]  # fmt: skip
    rows = [
        [r.name, r.status, r.strategy, fmt(r.depth), fmt(r.seed),
         fmt(r.summary.get("test_acc")), fmt(r.summary.get("best_test_acc")),
         fmt(r.summary.get("wall_s"), 1), stacked(r)]
        for r in sweep.runs
    ]  # fmt: skip
    note = (
        "A run's name links to its own page where `python -m growlab.report RUN_DIR` made one. "
        "Stacked: trained with this many seeds as one stack; its wall s is its share of the "
        "stack's."
    )
    return Table("Runs", headers, rows, note, "runs", records=records)


def stacked(run: RunRecord) -> str:
    size = run.summary.get("stack_size")
    return f"{size} seeds" if isinstance(size, int) and size > 1 else "—"


def duplicate_table(sweep: Sweep) -> Table:
    headers = ["run", "status", "same run as", "config fingerprint"]
    records = [
        {"run": d.run.name, "status": d.run.status, "same_as": d.same_as.name,
         "config_fingerprint": d.fingerprint}
        for d in sweep.duplicates
    ]  # fmt: skip
    rows = [[str(v) for v in record.values()] for record in records]
    note = (
        "Folders holding a run already counted (the same config fingerprint): never averaged."
        if rows
        else "None: every folder holds a different run."
    )
    return Table("Duplicate runs", headers, rows, note, "duplicates", records=records)


def link_run_pages(table: Table, runs: list[RunRecord], out_dir: Path, page: str) -> Table:
    """Link each row's run name (rows in `runs` order) to the run's page when it exists."""
    for i, run in enumerate(runs):
        if (run.path / page).is_file():
            table.links[i] = os.path.relpath(run.path / page, out_dir)
    return table


def summary_counts(sweep: Sweep) -> dict[str, int]:
    counts: dict[str, int] = {}
    for run in sweep.runs:
        counts[run.status] = counts.get(run.status, 0) + 1
    return counts


def best_line(sweep: Sweep) -> str | None:
    """One sentence naming the best group by mean final test accuracy."""
    best = None
    for (key, depth), runs in sweep.groups().items():
        stat = Stat.of([r.summary["test_acc"] for r in runs])
        if stat is not None and is_number(stat.mean) and (best is None or stat.mean > best[0].mean):
            best = (stat, key, depth)
    if best is None:
        return None
    stat, key, depth = best
    return f"Best: {sweep.line_label(key)} at depth {depth}: test acc {stat.fmt()} (n={stat.n})."
