"""Progress of a run (live bar on a terminal, plain lines otherwise) and of its sweep."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from hydra_plugins.growlab_sweeper.run_plan import read_sweep_runs

log = logging.getLogger("growlab")
FINISHED_STATUSES = ("completed", "failed", "diverged")
# A decimal number in text; one with more significant digits than a person types is rounded.
NUMBER = re.compile(r"(?<![\w.])-?(?:\d+\.\d*|\.\d+|\d+(?=[eE]))(?:[eE][-+]?\d+)?(?![\w.])")
TYPED_DIGITS = 6


def acc_text(value: float | None) -> str:
    """An accuracy (or another metric) as printed: 4 decimals. Records keep every digit."""
    return "None" if value is None else f"{value:.4f}"


def param_text(value: float) -> str:
    """A hyper-parameter drawn by a search (a learning rate) as printed: 3 significant digits."""
    return f"{value:.3g}"


def round_numbers(text: str, metric: bool = False) -> str:
    """`text` with each number of more than 6 significant digits (a float's full repr, as
    Optuna's draws print) rounded: to 3 significant digits, or 4 decimals if `metric`."""

    def short(match: re.Match[str]) -> str:
        number = match.group()
        mantissa = re.split("[eE]", number)[0].lstrip("-").replace(".", "").lstrip("0")
        if len(mantissa) <= TYPED_DIGITS:
            return number
        return acc_text(float(number)) if metric else param_text(float(number))

    return NUMBER.sub(short, text)


def finished_line(run_dir: object, summary: dict[str, Any]) -> str:
    """The line a run ends with: its primary metric (test_acc unless the summary names another;
    summary.json keeps every digit)."""
    metric = str(summary.get("primary_metric") or "test_acc")
    value = acc_text(summary.get(metric))
    return f"run {run_dir} finished: {summary.get('status')}, {metric} {value}"


class RunProgress:
    """A rich progress bar over all epochs of the run when stderr is a terminal; elsewhere a
    plain log line at most every `interval_s` seconds (stage results are logged anyway)."""

    def __init__(self, total_epochs: int, done: int = 0, interval_s: float = 10.0) -> None:
        self.interval_s = interval_s
        self.last_line = time.monotonic()
        self.bar: Any = None
        if sys.stderr.isatty():
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} epochs"),
                TimeRemainingColumn(),
                transient=True,
            )
            self.task = self.bar.add_task("starting", total=total_epochs, completed=done)
            self.bar.start()

    def update(self, stage: int, n_stages: int, depth: int, epoch: int, loss: float) -> None:
        text = f"stage {stage + 1}/{n_stages} depth {depth} epoch {epoch} loss {loss:.4f}"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=text)
        elif time.monotonic() - self.last_line >= self.interval_s:
            self.last_line = time.monotonic()
            log.info(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def sweep_size(overrides: list[str]) -> int:
    """Number of jobs a basic sweep over these command-line overrides makes."""
    size = 1
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            size *= len(list(override.sweep_string_iterator()))
    return size


def log_sweep_count() -> None:
    """In a multirun, say how many of the sweep's distinct runs have finished (any launcher).
    The sweeper records this sweep's run folders; the sweep folder may hold older runs too."""
    try:
        hydra_cfg = HydraConfig.get()
    except ValueError:
        return
    if str(hydra_cfg.mode) != "RunMode.MULTIRUN":
        return
    sweep_dir = Path(hydra_cfg.sweep.dir)
    multirun = sweep_dir / "multirun.yaml"
    if not multirun.exists():
        return
    folders = read_sweep_runs(sweep_dir)
    if folders is None:  # a sweeper other than growlab's
        total = sweep_size(list(OmegaConf.load(multirun).hydra.overrides.task))
        finished = sum(1 for path in sweep_dir.glob("*/summary.json") if _finished(path))
    else:
        total = len(folders)
        finished = sum(1 for f in folders if _finished(sweep_dir / f / "summary.json"))
    log.info("sweep %s: %d of %d runs finished", sweep_dir, finished, total)


def _finished(summary_path: Path) -> bool:
    try:
        summary = json.loads(summary_path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(summary, dict) and summary.get("status") in FINISHED_STATUSES
