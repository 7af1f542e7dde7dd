"""Hydra jobs that differ only in `seed`, trained as one stack (hydra.sweeper.stack_seeds=true).

Hydra runs a sweep's jobs one at a time, each through its own `run_job` (run directory,
`.hydra/`, job number, log file). To train a stack, growlab's launcher
(hydra_plugins/growlab_launcher/stacks.py) runs the stack's jobs as usual but with the
session's `task` as their task function: each job's task validates its config, takes its run
directory and joins the session instead of training; the last job to join trains them all
together. A job that is refused, already finished or fails to start is answered at once and
stays out of the stack.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from growlab.config import ReturnMetric
from growlab.engine.job import Refused, open_run, start_run
from growlab.engine.outcome import RunOutcome, outcome
from growlab.engine.stacking.lockstep import StackedRun
from growlab.engine.stacking.replica import Replica, ReplicaRng
from growlab.engine.stacking.replica_logs import job_log_files

log = logging.getLogger("growlab")

PENDING = "stacked"  # status of a placeholder outcome until its stack has trained


class StackSession:
    def __init__(self, size: int) -> None:
        self.size, self.joined, self.trained = size, 0, False
        self.metric = "val_acc"  # what the jobs return to their sweeper (each join says)
        self.locks = ExitStack()
        self.replicas: list[Replica] = []
        self.outcomes: dict[str, RunOutcome] = {}

    def task(self, cfg: DictConfig) -> RunOutcome:
        """A Hydra task function for the stack's jobs: join the stack instead of training."""
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        return self.join(cfg, run_dir, ReturnMetric(cfg.return_metric).value)

    def join(self, cfg: Any, run_dir: Path, metric: str) -> RunOutcome:
        """Add a job; the last one trains the stack. Its outcome, or a placeholder."""
        self.joined, self.metric = self.joined + 1, metric
        try:
            self._add(cfg, run_dir, metric)
        finally:
            if self.joined == self.size:
                self.train()
        return self.outcomes.get(str(run_dir), RunOutcome(None, PENDING, str(run_dir), metric))

    def _add(self, cfg: Any, run_dir: Path, metric: str) -> None:
        key = str(run_dir)
        try:
            job = self.locks.enter_context(open_run(cfg, run_dir))
        except Refused as exc:
            log.error("%s", exc)
            self.outcomes[key] = RunOutcome(None, "refused", key, metric)
            return
        if job.finished is not None:
            self.outcomes[key] = outcome(job.finished, metric, key)
            return
        rng = ReplicaRng()
        t0 = time.perf_counter()
        try:
            with rng.active():
                run = start_run(job)
        except Exception:
            log.exception("run %s failed", run_dir)
            self.outcomes[key] = RunOutcome(None, "failed", key, metric)
            return
        setup_s = time.perf_counter() - t0
        self.replicas.append(Replica(run, rng, job_log_files(run_dir), setup_s))

    def train(self) -> None:
        self.trained = True
        try:
            summaries = StackedRun(self.replicas).run() if self.replicas else []
            for replica, summary in zip(self.replicas, summaries, strict=True):
                key = str(replica.run.run_dir)
                self.outcomes[key] = outcome(summary, self.metric, key)
        finally:
            self.locks.close()

    def finish(self) -> None:
        """After every job ran: train whoever joined if the stack never filled (a job that
        Hydra itself failed before its task ran), and release the run directories."""
        if not self.trained and self.replicas:
            log.warning("stack: %d of %d jobs joined; training those", self.joined, self.size)
            self.train()
        self.locks.close()

    def final(self, placeholder: Any) -> Any:
        """A job's outcome once its stack has trained (the value its task returned before)."""
        if isinstance(placeholder, RunOutcome):
            return self.outcomes.get(placeholder.run_dir, placeholder)
        return placeholder
