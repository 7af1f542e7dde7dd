"""Comparison report for a sweep: `python -m growlab.report SWEEP_DIR [--out DIR] [--wandb]`.

Reads only the output contract of every run directory under SWEEP_DIR and writes runs.csv,
report.md, a self-contained report.html and four PNG plots (into SWEEP_DIR, or --out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from growlab.report.aggregate import Sweep
from growlab.report.collect import MARKERS, collect
from growlab.report.plots import draw_all
from growlab.report.render import markdown, page, table_md
from growlab.report.run_page import PAGE, RunPage, make_run_page
from growlab.report.tables import (
    best_line,
    depth_table,
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
    plots: list[Path]
    sweep: Sweep
    messages: list[str] = field(default_factory=list)


def make_report(sweep_dir: Path, out_dir: Path | None = None, wandb: bool = False) -> ReportFiles:
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep directory {sweep_dir} does not exist")
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep = Sweep(collect(sweep_dir))
    if not sweep.runs:
        raise FileNotFoundError(
            f"no run directories under {sweep_dir} (a run directory holds summary.json, "
            "metrics.jsonl or .hydra/)"
        )

    runs_csv = out_dir / "runs.csv"
    write_runs_csv(sweep, runs_csv)
    plots = draw_all(sweep, out_dir)
    tables = [
        group_table(sweep),
        depth_table(sweep),
        link_run_pages(problem_table(sweep), sweep.problems, out_dir, PAGE),
        link_run_pages(runs_table(sweep), sweep.runs, out_dir, PAGE),
    ]
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary_counts(sweep).items()))
    fixed = ", ".join(f"{k} {v}" for k, v in sweep.fixed().items())
    intro = [
        f"Sweep `{sweep_dir.resolve()}`: {len(sweep.runs)} runs ({counts}).",
        f"Every run: {fixed}." if fixed else "",
        best_line(sweep) or "No completed run to compare.",
    ]
    title = f"growlab report: {sweep_dir.resolve().name}"
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(markdown(title, intro, tables, plots))
    html_path.write_text(page(title, [line.replace("`", "") for line in intro], tables, plots))
    files = ReportFiles(out_dir, runs_csv, md_path, html_path, plots, sweep)
    if wandb:
        from growlab.report.wandb_report import publish

        summary_md = "\n".join([*intro, "", table_md(tables[0]), table_md(tables[2])])
        files.messages.append(publish(sweep, sweep_dir, out_dir, summary_md))
    return files
