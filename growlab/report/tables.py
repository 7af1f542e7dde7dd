"""The report's tables: the grouped, seed-averaged views and the lists of runs (runs.csv is
growlab.report.runs_csv)."""

from __future__ import annotations

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
from growlab.report.collect import RunRecord
from growlab.report.formats import num


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
    metric = sweep.metric
    headers = [
        *sweep.line_dims, "depth", "n", "seeds", metric.label, f"best {metric.label}",
        "train FLOPs", "wall s", "stages helped", "max pres. err", f"shock (Δ{metric.short})",
    ]  # fmt: skip
    rows, records = [], []
    for (key, depth), runs in sorted(sweep.groups().items()):
        n_helped = sum(helped(r)[0] for r in runs)
        n_judged = sum(helped(r)[1] for r in runs)
        errors = [e for r in runs if (e := max_preservation_error(r)) is not None]
        stats = {
            metric.key: Stat.of([r.final for r in runs]),
            f"best_{metric.key}": Stat.of([r.summary.get(f"best_{metric.key}") for r in runs]),
            "train_flops": Stat.of([r.summary.get("train_flops") for r in runs]),
            "wall_s": Stat.of([r.summary.get("wall_s") for r in runs]),
            f"shock_{metric.short}": Stat.of([mean_shock(r, metric.short) for r in runs]),
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
                fmt(stats[metric.key]),
                fmt(stats[f"best_{metric.key}"]),
                fmt(stats["train_flops"], 3),
                fmt(stats["wall_s"], 1),
                f"{n_helped}/{n_judged}" if n_judged else "—",
                f"{max(errors):.1e}" if errors else "—",
                fmt(stats[f"shock_{metric.short}"], 3),
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
            key_fields = stat_fields(sweep.metric.key, stat)
            records.append(record | {"depth": d, "n": stat.n, **key_fields})
    noun = f"Test {sweep.metric.noun}"
    note = (
        f"{noun} after the last stage at each depth (growth runs contribute every depth "
        "they grew through; each seed counts once per depth)."
    )
    return Table(f"{noun} vs depth", headers, rows, note, "depth", records=records)


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
    key = sweep.metric.key
    headers = [
        "run", "status", "strategy", "depth", "seed", sweep.metric.label,
        f"best {sweep.metric.label}", "wall s", "stacked",
    ]  # fmt: skip
    records = [
        {
            "run": r.name, "status": r.status, "strategy": r.strategy, "depth": r.depth,
            "seed": r.seed, key: r.final if r.summary else None,
            f"best_{key}": r.summary.get(f"best_{key}"), "wall_s": r.summary.get("wall_s"),
            "stack_size": r.summary.get("stack_size"),
        }
        for r in sweep.runs
    ]  # fmt: skip
    rows = [
        [r.name, r.status, r.strategy, fmt(r.depth), fmt(r.seed),
         fmt(record[key]), fmt(record[f"best_{key}"]),
         fmt(r.summary.get("wall_s"), 1), stacked(r)]
        for r, record in zip(sweep.runs, records, strict=True)
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
    """One sentence naming the best group by mean final metric (highest accuracy, lowest
    loss)."""
    metric = sweep.metric
    best = None
    for (key, depth), runs in sweep.groups().items():
        stat = Stat.of([r.final for r in runs])
        if stat is not None and (best is None or metric.better(stat.mean, best[0].mean)):
            best = (stat, key, depth)
    if best is None:
        return None
    stat, key, depth = best
    label = f"{sweep.line_label(key)} at depth {depth}"
    return f"Best: {label}: {metric.label} {stat.fmt()} (n={stat.n}, {metric.way} is better)."
