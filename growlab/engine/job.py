"""One job of growlab: validate its config, take its run directory, run or resume it.

`open_run` does everything before training (and refuses with `Refused` before any of it);
`start_run` builds the run; `fail` records a crash. `run_job` chains them for a solo run; a
stack of replicas (growlab.engine.stacking.session, from growlab's launchers) opens several
and trains them together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from growlab.config import ConfigError, ResumeMode
from growlab.engine.loop import Run
from growlab.engine.run_directory import folder as rundir
from growlab.engine.run_directory.records import write_summary
from growlab.engine.stage_loop import fail
from growlab.growth.strategies import GrowthStrategy
from growlab.tracking.loggers import make_logger
from growlab.validated import validated

log = logging.getLogger("growlab")


class Refused(Exception):
    """Nothing was run: the config is invalid or the run directory cannot be used."""


@dataclass
class OpenRun:
    """A job whose run directory is locked: `finished` holds the summary of a run that needs
    nothing more; otherwise `last` is the checkpoint to resume from (None: a fresh run).
    `strategy`: the one its validation built, which the run uses."""

    cfg: Any
    run_dir: Path
    strategy: GrowthStrategy
    finished: dict[str, Any] | None = None
    last: dict[str, Any] | None = None


@contextmanager
def open_run(cfg: Any, run_dir: Path) -> Iterator[OpenRun]:
    """Validate, lock the run directory (held until exit) and see what it holds."""
    try:
        strategy = validated(cfg)  # once per job: skipped only for what its sweeper validated
        rundir.result_config(cfg)  # imports every class the strategy names, to hash its code
    except ConfigError as exc:
        if not (run_dir / "summary.json").exists():  # a fresh directory records why
            write_summary(run_dir / "summary.json", {"status": "failed", "error": str(exc)})
        rundir.restore_hydra(run_dir)
        raise Refused(f"invalid configuration: {exc}") from None
    try:
        lock = rundir.RunDirLock(run_dir).__enter__()
    except rundir.RunDirError as exc:
        rundir.restore_hydra(run_dir)
        raise Refused(str(exc)) from None
    try:
        try:
            job = _inspect(cfg, run_dir, strategy)
        except rundir.RunDirError as exc:
            rundir.restore_hydra(run_dir)
            raise Refused(str(exc)) from None
        yield job
    finally:
        lock.__exit__(None, None, None)


def _inspect(cfg: Any, run_dir: Path, strategy: GrowthStrategy) -> OpenRun:
    config = rundir.result_config(cfg)
    if ResumeMode(cfg.resume) is ResumeMode.restart:
        rundir.clear(run_dir)
    existing = rundir.inspect(run_dir, config)
    if existing.finished:
        assert existing.summary is not None
        rundir.restore_hydra(run_dir)
        log.info(
            "%s already holds a %s run of this config; nothing to do "
            "(resume=restart runs it again)",
            run_dir,
            existing.summary["status"],
        )
        return OpenRun(cfg, run_dir, strategy, finished=existing.summary)
    if existing.empty:
        rundir.backup_hydra(run_dir)
    return OpenRun(cfg, run_dir, strategy, last=existing.last)


def start_run(job: OpenRun) -> Run:
    """The run of an open job, with its logger (a failure to build it is recorded)."""
    logger = make_logger(job.cfg, job.run_dir, job.strategy)
    try:
        return Run(job.cfg, job.run_dir, logger, job.last, job.strategy)
    except Exception as exc:
        summary = {
            "status": "failed",
            "error": f"{type(exc).__name__}: {exc}",
            "config": rundir.result_config(job.cfg),
        }
        write_summary(job.run_dir / "summary.json", summary)
        logger.finish(summary)
        raise


def run_job(cfg: Any, run_dir: Path) -> dict[str, Any]:
    """Validate, check the run directory, then run the stage loop; returns the summary.

    Raises `Refused` before any training; a crash leaves a `failed` summary (never over a
    finished one) and is re-raised.
    """
    with open_run(cfg, run_dir) as job:
        if job.finished is not None:
            return job.finished
        run = start_run(job)
        try:
            return run.run()
        except Exception as exc:
            fail(run, exc)
            raise
