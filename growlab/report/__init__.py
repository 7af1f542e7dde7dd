"""Comparison report for a sweep:
`python -m growlab.report SWEEP_DIR [--out DIR] [--baseline from-scratch] [--wandb]`.

Reads only the output contract of every run directory under SWEEP_DIR and writes runs.csv,
report.md, a self-contained report.html, report.json (every table as a list of rows with named
fields) and PNG plots (into SWEEP_DIR, or --out).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growlab.report.aggregate import Sweep
from growlab.report.baseline import DEFAULT_BASELINE
from growlab.report.collect import MARKERS, collect, deduplicate
from growlab.report.comparison_tables import compute_table, stage_help_table, verdict_table
from growlab.report.compute_plot import FILE as COMPUTE_PLOT
from growlab.report.compute_plot import equal_compute
from growlab.report.plots import draw_all, save
from growlab.report.render import markdown, page, table_md
from growlab.report.run_page import PAGE, RunPage, make_run_page
from growlab.report.tables import (
    Table,
    best_line,
    depth_table,
    duplicate_table,
    group_table,
    link_run_pages,
    problem_table,
    runs_table,
    summary_counts,
    write_runs_csv,
)

__all__ = ["ReportFiles", "RunPage", "is_run_dir", "make_report", "make_run_page"]


def is_run_dir(path: Path) -> bool:
    """A run directory holds the output contract itself (a sweep holds run directories)."""
    return any((Path(path) / marker).exists() for marker in MARKERS)


@dataclass
class ReportFiles:
    out_dir: Path
    runs_csv: Path
    markdown: Path
    html: Path
    json: Path
    plots: list[Path]
    sweep: Sweep
    messages: list[str] = field(default_factory=list)


def make_report(
    sweep_dir: Path,
    out_dir: Path | None = None,
    wandb: bool = False,
    baseline: str = DEFAULT_BASELINE,
) -> ReportFiles:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep directory {sweep_dir} does not exist")
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(*deduplicate(collect(sweep_dir)))
    if not sweep.runs:
        raise FileNotFoundError(
            f"no run directories under {sweep_dir} (a run directory holds summary.json, "
            "metrics.jsonl or .hydra/)"
        )

    runs_csv = out_dir / "runs.csv"
    write_runs_csv(sweep, runs_csv)
    plots = draw_all(sweep, out_dir)
    plots.insert(2, save(equal_compute(sweep, baseline), out_dir / COMPUTE_PLOT))
    verdict = verdict_table(sweep, baseline)
    tables = [
        verdict,
        compute_table(sweep, baseline),
        stage_help_table(sweep),
        group_table(sweep),
        depth_table(sweep),
        link_run_pages(problem_table(sweep), sweep.problems, out_dir, PAGE),
        link_run_pages(runs_table(sweep), sweep.runs, out_dir, PAGE),
        duplicate_table(sweep),
    ]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary_counts(sweep).items()))
    fixed = ", ".join(f"{k} {v}" for k, v in sweep.fixed().items())
    intro = [
        f"Sweep `{sweep_dir.resolve()}`: {len(sweep.runs)} runs ({counts})"
        + duplicates_clause(sweep)
        + ".",
        f"Every run: {fixed}." if fixed else "",
        best_line(sweep) or "No completed run to compare.",
    ]
    title = f"growlab report: {sweep_dir.resolve().name}"
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(markdown(title, intro, tables, plots))
    html_path.write_text(page(title, [line.replace("`", "") for line in intro], tables, plots))
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(report_json(title, intro, baseline, tables, plots), indent=1))
    files = ReportFiles(out_dir, runs_csv, md_path, html_path, json_path, plots, sweep)
    if wandb:
        from growlab.report.wandb_report import publish

        summary_md = "\n".join([*intro, "", *(table_md(t) for t in tables[:4])])
        files.messages.append(publish(sweep, sweep_dir, out_dir, summary_md))
    return files


def duplicates_clause(sweep: Sweep) -> str:
    n = len(sweep.duplicates)
    if not n:
        return ""
    return f"; {n} more folder(s) hold a run already counted, listed under Duplicate runs"


def report_json(
    title: str, intro: list[str], baseline: str, tables: list[Table], plots: list[Path]
) -> dict[str, Any]:
    """report.md's content for programs: each table's rows as named fields."""
    return {
        "title": title,
        "intro": [line for line in intro if line],
        "baseline": baseline,
        "tables": [{"title": t.title, "note": t.note, "rows": t.as_records()} for t in tables],
        "plots": [p.name for p in plots],
    }
