"""`python -m growlab.report PATH [--out DIR] [--baseline NAME] [--wandb] [--run-pages]`: a
sweep's comparison report, or one run's page when PATH is a run directory."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from growlab.report import is_run_dir, make_report, make_run_page
from growlab.report.baseline import DEFAULT_BASELINE
from growlab.report.collect import find_run_dirs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="growlab-report",
        description="Compare the runs of a growlab sweep (runs.csv, report.md, report.html, "
        "report.json, PNG plots, with --wandb a W&B report), or, given a run directory, "
        "that run's page.",
    )
    parser.add_argument("path", type=Path, help="a sweep folder, or one run directory")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: PATH)")
    parser.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help="strategy every other one is paired with, seed by seed (default: %(default)s)",
    )
    parser.add_argument(
        "--wandb", action="store_true", help="also build a W&B report (saved when online)"
    )
    parser.add_argument(
        "--run-pages", action="store_true", help="also write every run's own page (sweeps)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.path.is_dir():
        print(f"growlab.report: directory {args.path} does not exist", file=sys.stderr)
        return 2
    if is_run_dir(args.path):
        run_page = make_run_page(args.path, args.out)
        print(run_page.data.status_line)
        for path in [run_page.markdown, run_page.html, *run_page.plots]:
            print(f"wrote {path}")
        return 0
    if args.run_pages:
        for run_dir in find_run_dirs(args.path):
            make_run_page(run_dir)
    try:
        files = make_report(args.path, args.out, wandb=args.wandb, baseline=args.baseline)
    except FileNotFoundError as exc:
        print(f"growlab.report: {exc}", file=sys.stderr)
        return 2
    sweep = files.sweep
    print(
        f"{len(sweep.runs)} runs: {len(sweep.ok)} averaged, {len(sweep.problems)} listed as "
        f"failed/diverged/incomplete"
    )
    for path in [files.runs_csv, files.markdown, files.html, files.json, *files.plots]:
        print(f"wrote {path}")
    for message in files.messages:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
