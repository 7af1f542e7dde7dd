"""A page for one run: `python -m growlab.report RUN_DIR` writes report.md, a self-contained
report.html and its PNG figures into the run directory (or --out).

Learning curves with every growth marked, seed 004's train/validation/test accuracy against
depth, the per-stage table and the per-block norms. A run in progress, failed or diverged
gets a page too, with what it recorded and its status first.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from growlab.report.formats import num
from growlab.report.render import markdown, page
from growlab.report.run_data import RunData, load_run_data
from growlab.report.run_plots import draw_run
from growlab.report.tables import Table, fmt

PAGE = "report.html"


@dataclass
class RunPage:
    out_dir: Path
    markdown: Path
    html: Path
    plots: list[Path]
    data: RunData


def _shock(stage: dict) -> str:
    shock = stage.get("shock") or {}
    before, after = shock.get("acc_before"), shock.get("acc_after")
    return "" if before is None or after is None else f"{num(before, 3)} → {num(after, 3)}"


def _error(value: object) -> str:
    return f"{value:.1e}" if isinstance(value, int | float) else "—"


def stage_table(data: RunData) -> Table:
    metric = data.record.primary_metric
    extra = [] if metric == "test_acc" else [metric]  # a loss-ranked run: its metric too
    headers = [
        "stage",
        "phase",
        "depth",
        "params (trainable)",
        "FLOPs/sample",
        "test acc",
        *(k.replace("_", " ") for k in extra),
        "val loss",
        "helped",
        "preservation error",
        "shock acc",
        "wall s",
    ]
    rows = []
    for s in data.stages:
        helped = {True: "yes", False: "no"}.get(s.get("improved"), "")
        params = f"{s.get('params_total', '')} ({s.get('params_trainable', '')})"
        rows.append(
            [
                fmt(s.get("stage")),
                str(s.get("phase", "")),
                fmt(s.get("depth")),
                params,
                fmt(s.get("flops_per_sample")),
                fmt(s.get("test_acc")),
                *(fmt(s.get(k)) for k in extra),
                fmt(s.get("val_loss")),
                helped,
                _error(s.get("preservation_error")),
                _shock(s),
                fmt(s.get("wall_s"), 2),
            ]
        )
    note = "" if rows else "No stage has finished yet."
    return Table("Stages", headers, rows, note=note)


def final_text(data: RunData) -> str:
    """`test accuracy 0.95`, or for a run ranked by another metric `test_loss 1.93 (test
    accuracy 0.41)`."""
    record = data.record
    accuracy = f"test accuracy {fmt(record.summary.get('test_acc'))}"
    if record.primary_metric == "test_acc":
        return accuracy
    return f"{record.primary_metric} {fmt(record.final)} ({accuracy})"


def make_run_page(run_dir: Path, out_dir: Path | None = None) -> RunPage:
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_run_data(run_dir)
    summary = data.record.summary
    plots = draw_run(data, out_dir)
    facts = [
        f"{k} {summary[k]}"
        for k in ("strategy", "operator", "model", "data", "seed", "depth")
        if summary.get(k) is not None
    ]
    intro = [
        data.status_line,
        ", ".join(facts),
        f"{len(data.epochs)} epochs, {len(data.growth)} growth events, "
        f"{len(data.stages)} stages recorded; final {final_text(data)}.",
    ]
    title = f"growlab run: {run_dir.resolve().name}"
    tables = [stage_table(data)]
    md_path, html_path = out_dir / "report.md", out_dir / PAGE
    md_path.write_text(markdown(title, intro, tables, plots))
    html_path.write_text(page(title, intro, tables, plots))
    return RunPage(out_dir, md_path, html_path, plots, data)
