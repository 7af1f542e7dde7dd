"""Hydra jobs that differ only in `seed`, trained as one stack (hydra.sweeper.stack_seeds=true).

Hydra runs a sweep's jobs one at a time, each through its own `run_job` (run directory,
`.hydra/`, job number, log file). To train a stack, the launcher opens a `StackSession` for the
stack's jobs and runs them as usual: each job's task validates its config, takes its run
directory and joins the session instead of training; the last job to join trains them all
together, then every job's outcome is known and the launcher hands it back to the sweeper
(`resolve`). A job that is refused, already finished or fails to start is answered at once
and stays out of the stack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from growlab.engine.job import Refused, open_run, start_run
from growlab.engine.outcome import RunOutcome, outcome
from growlab.engine.stacking.lockstep import StackedRun
from growlab.engine.stacking.replica import Replica, ReplicaRng
from growlab.engine.stacking.replica_logs import job_log_files

log = logging.getLogger("growlab")

PENDING = "stacked"  # status of a placeholder outcome until its stack has trained
_current = threading.local()


class StackSession:
    def __init__(self, size: int) -> None:
        self.size, self.joined = size, 0
        self.locks = ExitStack()
        self.replicas: list[Replica] = []
        self.outcomes: dict[str, RunOutcome] = {}

    def join(self, cfg: Any, run_dir: Path, metric: str) -> RunOutcome:
        """Add a job; the last one trains the stack. Its outcome, or a placeholder."""
        self.joined += 1
        try:
            self._add(cfg, run_dir, metric)
        finally:
            if self.joined == self.size:
                self.train(metric)
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

    def train(self, metric: str) -> None:
        try:
            summaries = StackedRun(self.replicas).run() if self.replicas else []
            for replica, summary in zip(self.replicas, summaries, strict=True):
                key = str(replica.run.run_dir)
                self.outcomes[key] = outcome(summary, metric, key)
        finally:
            self.locks.close()


@contextmanager
def stack_session(size: int) -> Iterator[StackSession]:
    """While open, growlab's task function joins this stack instead of training alone."""
    session = StackSession(size)
    _current.session = session
    try:
        yield session
    finally:
        _current.session = None
        session.locks.close()


def current() -> StackSession | None:
    return getattr(_current, "session", None)


def resolve(returns: Sequence[Any], session: StackSession) -> None:
    """Give each job's Hydra JobReturn the outcome its stack produced."""
    for job_return in returns:
        value = getattr(job_return, "_return_value", None)
        if isinstance(value, RunOutcome) and value.run_dir in session.outcomes:
            job_return.return_value = session.outcomes[value.run_dir]
