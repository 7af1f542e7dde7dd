"""`python -m growlab.report SWEEP_DIR [--out DIR] [--wandb]`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from growlab.report import make_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="growlab-report",
        description="Compare the runs of a growlab sweep: runs.csv, report.md, report.html, "
        "PNG plots (mean ± std over seeds) and, with --wandb, a W&B report.",
    )
    parser.add_argument("sweep_dir", type=Path, help="folder holding the sweep's run directories")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: SWEEP_DIR)")
    parser.add_argument(
        "--wandb", action="store_true", help="also build a W&B report (saved when online)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        files = make_report(args.sweep_dir, args.out, wandb=args.wandb)
    except FileNotFoundError as exc:
        print(f"growlab.report: {exc}", file=sys.stderr)
        return 2
    sweep = files.sweep
    print(
        f"{len(sweep.runs)} runs: {len(sweep.ok)} averaged, {len(sweep.problems)} listed as "
        f"failed/diverged/incomplete"
    )
    for path in [files.runs_csv, files.markdown, files.html, *files.plots]:
        print(f"wrote {path}")
    for message in files.messages:
        print(message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
