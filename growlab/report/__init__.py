"""Comparison report over one or several sweep folders:
`python -m growlab.report SWEEP_DIR [SWEEP_DIR ...] [--out DIR] [--baseline from-scratch]
[--include KEY=VALUE] [--exclude KEY=VALUE] [--pair-on KEYS] [--wandb]`.

Reads only the output contract of every run directory under the folders (a run found in two
folders, by its config fingerprint, counts once) and writes runs.csv, report.md, a
self-contained report.html, report.json (every table as a list of rows with named, numeric
fields), tables/<name>.csv and tables/<name>.tex (booktabs) and PNG plots (into SWEEP_DIR, or
--out, which several folders need). Input it refuses raises ReportInputError before anything
is written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from growlab.report.aggregate import Sweep
from growlab.report.baseline import DEFAULT_BASELINE
from growlab.report.collect import deduplicate
from growlab.report.comparison_tables import compute_table, stage_help_table, verdict_table
from growlab.report.compute_plot import FILE as COMPUTE_PLOT
from growlab.report.compute_plot import equal_compute
from growlab.report.export import write_tables
from growlab.report.growth_plot import FILE as GROWTH_PLOT
from growlab.report.growth_plot import growth_plot
from growlab.report.plots import draw_all, save
from growlab.report.render import markdown, page, table_md
from growlab.report.run_page import PAGE, RunPage, make_run_page
from growlab.report.runs_csv import write_runs_csv
from growlab.report.select import (
    ReportInputError,
    collect_sweeps,
    is_run_dir,
    parse_pair_on,
    select,
)
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
)
from growlab.report.trigger_compare import has_triggers
from growlab.report.trigger_tables import growth_table, trigger_table

__all__ = [
    "ReportFiles",
    "ReportInputError",
    "RunPage",
    "is_run_dir",
    "make_report",
    "make_run_page",
]


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
    tables: list[Path] = field(default_factory=list)  # tables/<name>.csv and .tex


def make_report(
    sweep_dirs: Path | Sequence[Path],
    out_dir: Path | None = None,
    wandb: bool = False,
    baseline: str = DEFAULT_BASELINE,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    pair_on: str | None = None,
    before_writing: Callable[[], object] | None = None,
) -> ReportFiles:
    """The report; `before_writing` runs once every input is accepted (the run pages that
    the runs table then links to)."""
    if isinstance(sweep_dirs, str | Path):
        folders = [Path(sweep_dirs)]
    else:
        folders = [Path(f) for f in sweep_dirs]
    if not folders:
        raise ReportInputError("no sweep folder given")
    if len(folders) > 1 and out_dir is None:
        raise ReportInputError(
            f"{len(folders)} sweep folders need --out DIR (one report for all of them)"
        )
    if len(folders) > 1 and wandb:
        raise ReportInputError("--wandb builds a W&B report over one sweep folder; give one")
    runs = collect_sweeps(folders)
    pairing = parse_pair_on(pair_on, runs)
    sweep = Sweep(*deduplicate(select(runs, include, exclude)))
    out_dir = Path(out_dir) if out_dir is not None else folders[0]
    triggers = has_triggers(sweep)
    problems, runs_list = problem_table(sweep), runs_table(sweep)
    tables = [
        verdict_table(sweep, baseline, pairing),
        compute_table(sweep, baseline, pairing),
        *([trigger_table(sweep, pairing), growth_table(sweep)] if triggers else []),
        stage_help_table(sweep),
        group_table(sweep),
        depth_table(sweep),
        problems,
        runs_list,
        duplicate_table(sweep),
    ]
    # Nothing refused past this point: write.
    if before_writing is not None:
        before_writing()
    link_run_pages(problems, sweep.problems, out_dir, PAGE)
    link_run_pages(runs_list, sweep.runs, out_dir, PAGE)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs_csv = out_dir / "runs.csv"
    write_runs_csv(sweep, runs_csv)
    plots = draw_all(sweep, out_dir)
    plots.insert(2, save(equal_compute(sweep, baseline, pairing), out_dir / COMPUTE_PLOT))
    if triggers:
        plots.insert(3, save(growth_plot(sweep), out_dir / GROWTH_PLOT))
    table_files = write_tables(tables, out_dir)
    intro = intro_lines(folders, sweep, include, exclude, pairing)
    names = " + ".join(f.resolve().name for f in folders)
    title = f"growlab report: {names}"
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(markdown(title, intro, tables, plots))
    html_path.write_text(page(title, [line.replace("`", "") for line in intro], tables, plots))
    json_path = out_dir / "report.json"
    content = report_json(title, intro, baseline, tables, plots)
    content |= {
        "sweeps": [str(f.resolve()) for f in folders],
        "include": list(include),
        "exclude": list(exclude),
        "pair_on": pairing,
    }
    json_path.write_text(json.dumps(content, indent=1))
    files = ReportFiles(out_dir, runs_csv, md_path, html_path, json_path, plots, sweep)
    files.tables = table_files
    if wandb:
        from growlab.report.wandb_report import publish

        summary_md = "\n".join([*intro, "", *(table_md(t) for t in tables[: 6 if triggers else 4])])
        files.messages.append(publish(sweep, folders[0], out_dir, summary_md))
    return files


def intro_lines(
    folders: list[Path],
    sweep: Sweep,
    include: Sequence[str],
    exclude: Sequence[str],
    pairing: list[str] | None,
) -> list[str]:
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary_counts(sweep).items()))
    fixed = ", ".join(f"{k} {v}" for k, v in sweep.fixed().items())
    where = ", ".join(f"`{f.resolve()}`" for f in folders)
    label = "Sweep" if len(folders) == 1 else "Sweeps"
    chosen = [*(f"--include {t}" for t in include), *(f"--exclude {t}" for t in exclude)]
    return [
        f"{label} {where}: {len(sweep.runs)} runs ({counts})" + duplicates_clause(sweep) + ".",
        f"Runs chosen by {' '.join(chosen)}." if chosen else "",
        f"Pairs with the baseline share {', '.join(pairing)} (--pair-on)." if pairing else "",
        f"Every run: {fixed}." if fixed else "",
        metric_line(sweep),
        best_line(sweep) or "No completed run to compare.",
    ]


def metric_line(sweep: Sweep) -> str:
    """Which number the runs are compared by, where it is not test accuracy."""
    metric = sweep.metric
    if metric.higher_is_better and metric.key == "test_acc":
        return ""
    return f"Runs are compared by {metric.key} ({metric.way} is better)."


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
        "tables": [
            {"name": t.name, "title": t.title, "note": t.note, "rows": t.as_records()}
            for t in tables
        ],
        "plots": [p.name for p in plots],
    }
