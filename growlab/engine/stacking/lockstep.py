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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch

from growlab.engine.deferred_signals import CheckpointGuard
from growlab.engine.job import fail
from growlab.engine.loop import StageInputs
from growlab.engine.progress import finished_line
from growlab.engine.run_directory import checkpoint as ckpt
from growlab.engine.stacking import replica_logs
from growlab.engine.stacking.clock import StackClock
from growlab.engine.stacking.forward import StackedNet
from growlab.engine.stacking.replica import QuietProgress, Replica, same, unstackable
from growlab.engine.stacking.state import StackedState, StackError
from growlab.engine.stacking.training import stacked_evaluate, stacked_train_epoch
from growlab.growth.strategies import StagePlan

log = logging.getLogger("growlab")


class StackedRun:
    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        for index, replica in enumerate(replicas):
            replica.index = index
        self.clock = StackClock({r.index: r.setup_s for r in replicas})
        self._alive: list[Replica] = []
        self.guard = CheckpointGuard(self.wait_for_writes)

    @property
    def alive(self) -> list[Replica]:
        """The replicas still training together."""
        return self._alive

    @alive.setter
    def alive(self, replicas: list[Replica]) -> None:
        self._alive = replicas
        self.clock.share_among(r.index for r in replicas)
        for replica in replicas:
            replica.run.stack_size = len(replicas)

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
        if reason is not None:
            log.info("%d runs that differ only in seed train one by one: %s", len(runs), reason)
            for replica in self.replicas:
                self.guarded(replica, lambda rep: rep.call(rep.run.run))
            return self.summaries()
        self.alive = [r for r in self.replicas if self.guarded(r, self.start)]
        log.info("training %d runs as one stack (seeds %s)", len(self.alive), self.seeds())
        self.bar = self.alive[0].run.progress_bar() if self.alive else None
        try:
            self.lockstep()
        finally:
            if self.bar is not None:
                self.bar.close()
        return self.summaries()

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

    def seeds(self) -> str:
        return ",".join(str(r.run.cfg.seed) for r in self.alive)

    def summaries(self) -> list[dict[str, Any]]:
        return [r.summary or {"status": "failed"} for r in self.replicas]

    def guarded(self, replica: Replica, step: Callable[[Replica], Any]) -> bool:
        """Run a replica's step; a crash fails that replica alone."""
        try:
            result = step(replica)
        except Exception as exc:
            log.exception("run %s failed", replica.run.run_dir)
            with replica.rng.active():
                replica.run.checkpoints.close()
                replica.summary = fail(replica.run, exc)
            return False
        if isinstance(result, dict):
            replica.summary = result
        return True

    @staticmethod
    def start(replica: Replica) -> None:
        replica.call(replica.run.start_or_resume)
        replica.run.bar = QuietProgress()

    def each(self, step: Callable[[Replica], Any]) -> None:
        self.alive = [r for r in self.alive if self.guarded(r, step)]

    def lockstep(self) -> None:
        while self.alive and self.alive[0].run.stages_left():
            plan = self.alive[0].run.plan[self.alive[0].run.progress.stage]
            self.each(
                lambda r, plan=plan: (
                    r.run.progress.current is not None or r.call(r.run.begin_stage, plan)
                )
            )
            try:
                self.train_stage(plan)
            except StackError as exc:
                log.info("the stack of seeds %s goes on one by one: %s", self.seeds(), exc)
                self.each(lambda r: r.call(self.go_solo, r))
                return
            with self.guard.handing_over_checkpoints():
                self.each(lambda r: r.call(r.run.end_stage))
        self.each(lambda r: r.call(self.finish_replica, r))

    @staticmethod
    def go_solo(replica: Replica) -> dict[str, Any]:
        replica.run.stack_size = 1  # what is left trains alone
        return replica.run.continue_run()

    @staticmethod
    def finish_replica(replica: Replica) -> dict[str, Any]:
        run = replica.run
        try:
            run.close_outputs()
        finally:
            run.checkpoints.close()
        return run.report()

    def train_stage(self, plan: StagePlan) -> None:
        t0 = {r.index: r.run.clock() for r in self.alive}
        inputs: list[StageInputs] = []
        self.each(lambda r: inputs.append(r.call(r.run.stage_inputs, len(self.alive))))
        if not self.alive:
            return
        if len({i.start for i in inputs}) > 1:
            raise StackError("the replicas' frozen prefixes differ")
        if not all(same(i.targets, inputs[0].targets) for i in inputs):
            raise StackError("the replicas train on different data")
        # Shared inputs (the data, or a parameter-free reshape of it), or each replica's
        # cached features of its frozen prefix.
        per_replica = not all(same(i.inputs, inputs[0].inputs) for i in inputs)
        stage = StackStage(
            inputs,
            torch.stack([i.inputs for i in inputs]) if per_replica else inputs[0].inputs,
            per_replica,
        )
        for replica in self.alive:
            stage_s = replica.run.clock() - t0[replica.index]
            replica.run.progress.current["stage_wall_s"] += stage_s  # type: ignore[index]
        while self.alive and not self.alive[0].run.stage_complete(plan):
            self.train_epoch(plan, stage)
            self.check_triggers_agree()

    def check_triggers_agree(self) -> None:
        """Replicas whose triggers end the stage at different epochs cannot go on as one stack:
        each goes on alone from here (the epoch just trained is everyone's)."""
        done = [r for r in self.alive if r.run.progress.stage_done]
        if done and len(done) < len(self.alive):
            ended = ",".join(str(r.run.cfg.seed) for r in done)
            epoch = self.alive[0].run.progress.epoch
            raise StackError(
                f"the growth trigger ends stage {self.alive[0].run.progress.stage + 1} after "
                f"{epoch} epoch(s) for seeds {ended} only"
            )

    def train_epoch(self, plan: StagePlan, stage: StackStage) -> None:
        t0 = [r.run.clock() for r in self.alive]
        runs = [r.run for r in self.alive]
        lead = runs[0]
        for run in runs:
            # As a solo epoch does: the probe before a growth leaves the net in eval mode,
            # and StackedState writes back the buffers of the modules that train now.
            run.net.train()
        state = StackedState([r.net for r in runs], [r.optimizer for r in runs], lead.cfg.optimizer)
        net = StackedNet(lead.net, state.tensors)
        generators = [r.generator for r in runs]
        before = [g.get_state() for g in generators]
        try:
            results = stacked_train_epoch(
                net,
                stage.stacked,
                stage.inputs[0].targets,
                state.optimizer,
                lead.cfg.train.batch_size,
                generators,
                stage.inputs[0].start,
                lead.objective.replica_losses,
                stage.per_replica,
                lead.cfg.train.cuda_graphs,
            )
        except Exception as exc:  # e.g. a module vmap cannot batch: each replica goes solo
            for generator, saved in zip(generators, before, strict=True):
                generator.set_state(saved)
            raise StackError(f"{type(exc).__name__}: {exc}") from exc
        state.write_back()
        x_val, y_val = lead.split("val")
        vals = stacked_evaluate(
            net,
            x_val,
            lead.objective.targets(x_val, y_val),
            lead.cfg.train.eval_batch_size,
            lead.objective.replica_losses,
        )
        # Each replica's share of the epoch (its clock stands still in the others' steps).
        seconds = [r.run.clock() - start for r, start in zip(self.alive, t0, strict=True)]
        keep = []
        with self.guard.handing_over_checkpoints():  # every replica's, or none
            trained = zip(self.alive, stage.inputs, results, vals, seconds, strict=True)
            for replica, inputs, result, val, seconds_of in trained:
                error = replica.call(replica.run.after_epoch, plan, inputs, result, val, seconds_of)
                if error is None:
                    keep.append(replica)
                    continue
                seed = replica.run.cfg.seed
                replica.call(replica.run.diverge, f"{error} (seed {seed}, stacked)")
                self.guarded(replica, lambda r: r.call(self.finish_replica, r))
        if len(keep) < len(self.alive):
            stage.keep([self.alive.index(r) for r in keep])
            self.alive = keep
        if self.bar is not None and keep:
            p = keep[0].run.progress
            self.bar.update(
                p.stage, len(lead.plan), keep[0].run.net.depth, p.epoch, results[0].loss
            )


@dataclass
class StackStage:
    """What the stack trains on in the open stage."""

    inputs: list[StageInputs]  # each replica's
    stacked: torch.Tensor  # the shared inputs, or each replica's stacked (R, N, ...)
    per_replica: bool

    def keep(self, rows: list[int]) -> None:
        """Only these replicas go on."""
        self.inputs = [self.inputs[i] for i in rows]
        if self.per_replica and rows:
            self.stacked = self.stacked[rows]
