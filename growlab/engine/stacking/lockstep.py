"""Runs that differ only in their seed, trained together as a stack of replicas.

Each replica is a full `Run` with its own run directory, metrics, checkpoints, summary and
logger, and its own random state: the global torch RNG a solo run seeds and grows from is
swapped in for each replica's own steps (`ReplicaRng`), and each shuffles with its own
generator. The replicas grow in step (growth, preservation check, stage metrics and
checkpoints are each replica's own code, one after the other); what they share is every
training epoch and every validation pass, computed as one stack (growlab.engine.stacking).

A replica that diverges is finished with status `diverged` and leaves the stack; the others go
on. What cannot be stacked runs solo, and the log says why. A replica's wall time is its share
of the stack's (growlab.engine.stacking.clock), its `stack_size` the number it trains with.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from growlab.engine.deferred_signals import CheckpointGuard
from growlab.engine.progress import finished_line
from growlab.engine.run_directory import checkpoint as ckpt
from growlab.engine.runners import Member
from growlab.engine.stacking import replica_logs
from growlab.engine.stacking.clock import StackClock
from growlab.engine.stacking.replica import QuietProgress, Replica, unstackable
from growlab.engine.stage_loop import StageLoop

log = logging.getLogger("growlab")


class StackedRun:
    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        for index, replica in enumerate(replicas):
            replica.index = index
        self.clock = StackClock({r.index: r.setup_s for r in replicas})
        self.guard = CheckpointGuard(self.wait_for_writes)

    def run(self) -> list[dict[str, Any]]:
        """Every replica's summary (in order); a replica's crash is its own failed summary."""
        files = {r.index: r.log_files for r in self.replicas}
        # One checkpoint thread for the stack: R writer threads would fight over the GIL.
        with replica_logs.replica_logs(files), self.guard, ThreadPoolExecutor(1) as writer:
            for replica in self.replicas:
                replica.run.checkpoints.close()
                replica.run.checkpoints = ckpt.BackgroundWriter(writer)
            summaries = self.run_replicas()
            for replica, summary in zip(self.replicas, summaries, strict=True):
                # In its own log: the job that trains the stack is only one of them.
                replica.call(log.info, "%s", finished_line(replica.run.run_dir, summary))
            return summaries

    def wait_for_writes(self) -> None:
        for replica in self.replicas:
            replica.run.checkpoints.wait()

    def run_replicas(self) -> list[dict[str, Any]]:
        runs = [r.run for r in self.replicas]
        reason = unstackable(runs)
        self.attach_clock(stacked=reason is None)
        loop = StageLoop(self.replicas, self.guard)
        if reason is not None:
            log.info("%d runs that differ only in seed train one by one: %s", len(runs), reason)
            for replica in self.replicas:
                loop.guarded(replica, lambda rep: rep.call(rep.run.run))
            return self.summaries()
        loop.on_alive = self.share_clock
        loop.each(self.start)
        log.info("training %d runs as one stack (seeds %s)", len(loop.alive), loop.seeds())
        loop.bar = loop.alive[0].run.progress_bar() if loop.alive else None
        try:
            loop.run()
        finally:
            if loop.bar is not None:
                loop.bar.close()
        return self.summaries()

    def share_clock(self, alive: list[Member]) -> None:
        """Shared work is split among the replicas still in the stack; each trains with them."""
        self.clock.share_among(r.index for r in alive)
        for replica in alive:
            replica.run.stack_size = len(alive)

    def attach_clock(self, stacked: bool) -> None:
        """Each replica's times become its share of the stack's; runs that train one by one
        count only their own time, and are stacks of one."""
        for replica in self.replicas:
            run = replica.run
            replica.clock = self.clock
            run.clock = self.clock.reader(replica.index)
            run.stack_clock = self.clock.total if stacked else run.clock
            # Both clocks already hold the seconds before the stack (Replica.setup_s).
            run.started = run.stack_started = 0.0

    def summaries(self) -> list[dict[str, Any]]:
        return [r.summary or {"status": "failed"} for r in self.replicas]

    @staticmethod
    def start(replica: Member) -> None:
        replica.call(replica.run.start_or_resume)
        replica.run.bar = QuietProgress()
