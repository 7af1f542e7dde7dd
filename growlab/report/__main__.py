"""`python -m growlab.report PATH [PATH ...] [--out DIR] [--baseline NAME] [--include KEY=VALUE]
[--exclude KEY=VALUE] [--pair-on KEYS] [--wandb] [--run-pages]`: one comparison report over
one or several sweep folders, or one run's page when PATH is a run directory."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from growlab.report import ReportInputError, is_run_dir, make_report, make_run_page
from growlab.report.baseline import DEFAULT_BASELINE
from growlab.report.collect import find_run_dirs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="growlab-report",
        description="Compare the runs of one or several growlab sweep folders (runs.csv, "
        "report.md, report.html, report.json, tables/*.csv and *.tex, PNG plots, with --wandb "
        "a W&B report), or, given a run directory, that run's page.",
    )
    p.add_argument("paths", type=Path, nargs="+", metavar="PATH",
                   help="sweep folder(s), or one run directory")  # fmt: skip
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default: PATH; required with several folders)")  # fmt: skip
    p.add_argument(
        "--baseline",
        default=DEFAULT_BASELINE,
        help="strategy every other one is paired with, seed by seed (default: %(default)s)",
    )
    p.add_argument("--include", action="append", default=[], metavar="KEY=VALUE",
                   help="keep only runs with this value (repeatable; a bare VALUE means "
                   "strategy=VALUE; KEY as in the run config, e.g. optimizer.lr)")  # fmt: skip
    p.add_argument("--exclude", action="append", default=[], metavar="KEY=VALUE",
                   help="leave out runs with this value (repeatable; as --include; "
                   "KEY=VALUE,KEY2=VALUE2 leaves out the runs with both)")  # fmt: skip
    p.add_argument(
        "--pair-on",
        default=None,
        metavar="KEYS",
        help="comma list of keys a run shares with its baseline run, e.g. seed,depth (default: "
        "seed, depth and every swept key that varies within a strategy)",
    )
    p.add_argument(
        "--wandb", action="store_true", help="also build a W&B report (saved when online)"
    )
    p.add_argument(
        "--run-pages", action="store_true", help="also write every run's own page (sweeps)"
    )
    return p


def run_pages(paths: list[Path]) -> None:
    for path in paths:
        for run_dir in find_run_dirs(path):
            make_run_page(run_dir)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths: list[Path] = args.paths
    for path in paths:
        if not path.is_dir():
            print(f"growlab.report: directory {path} does not exist", file=sys.stderr)
            return 2
    if len(paths) == 1 and is_run_dir(paths[0]):
        run_page = make_run_page(paths[0], args.out)
        print(run_page.data.status_line)
        for path in [run_page.markdown, run_page.html, *run_page.plots]:
            print(f"wrote {path}")
        return 0
    try:
        files = make_report(
            paths,
            args.out,
            wandb=args.wandb,
            baseline=args.baseline,
            include=args.include,
            exclude=args.exclude,
            pair_on=args.pair_on,
            before_writing=(lambda: run_pages(paths)) if args.run_pages else None,
        )
    except (ReportInputError, FileNotFoundError) as exc:
        print(f"growlab.report: {exc}", file=sys.stderr)
        return 2
    sweep = files.sweep
    print(
        f"{len(sweep.runs)} runs: {len(sweep.ok)} averaged, {len(sweep.problems)} listed as "
        f"failed/diverged/incomplete"
        + (f", {len(sweep.duplicates)} duplicate(s) counted once" if sweep.duplicates else "")
    )
    for path in [files.runs_csv, files.markdown, files.html, files.json, *files.plots]:
        print(f"wrote {path}")
    print(f"wrote {len(files.tables)} table files into {files.out_dir / 'tables'}")
    for message in files.messages:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
